"""The gettext catalogues are complete and current: `pybabel extract` over the Python and JS
sources (babel.cfg) finds exactly the messages the committed catalogues hold, every message has a
Korean text that is not fuzzy, and a translation keeps its message's {placeholders}."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from dashboard.i18n import LANGS, TRANSLATIONS, catalogue, compile_catalogues

ROOT = Path(__file__).resolve().parent.parent
PYBABEL = Path(sys.executable).parent / "pybabel"
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _ids(catalog: Catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


def _read(path: Path, lang: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=lang)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """What the sources mark for translation now (the same command as scripts/i18n.sh extract)."""
    exe = str(PYBABEL) if PYBABEL.exists() else shutil.which("pybabel")
    assert exe, "pybabel (Babel) is not installed: run scripts/setup.sh"
    out = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run([exe, "extract", "-F", "babel.cfg", "-k", "t", "-k", "N_", "--add-location=file",
                    "-o", str(out), "."], cwd=ROOT, check=True, capture_output=True, timeout=120)
    return _read(out)


def test_extraction_covers_python_and_javascript(extracted: Catalog) -> None:
    files = {loc[0] for m in extracted if m.id for loc in m.locations}
    assert any(f.endswith(".js") for f in files), files
    assert {"spine/layers.py", "vision/rules.py", "feeds/sensors/adapter.py", "dashboard/auth.py",
            "dashboard/assets/cc/panels.js", "dashboard/assets/cc/popups.js"} <= files
    ids = _ids(extracted)
    assert {"LIVE", "Sign in", "Buses", "{cls} entered {zone}", "심각 Critical"} <= ids


def test_every_literal_page_text_is_extracted(extracted: Catalog) -> None:
    """Each t('...') literal of every page module is in the catalogue: pybabel's JavaScript lexer can
    lose the rest of a file after a construct it misreads (a `/>/g` regex literal did), and then those
    texts silently stay English on a Korean page."""
    ids = _ids(extracted)
    for path in sorted((ROOT / "dashboard" / "assets" / "cc").glob("*.js")):
        literal = set(re.findall(r"\bt\('((?:[^'\\\n]|\\.)*)'", path.read_text(encoding="utf-8")))
        missing = {m for m in literal if m.encode().decode("unicode_escape") not in ids and m not in ids}
        assert not missing, (path.name, sorted(missing)[:5])


@pytest.mark.parametrize("lang", LANGS)
def test_the_committed_catalogue_is_current_with_the_sources(extracted: Catalog, lang: str) -> None:
    po = _read(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", lang)
    new, gone = _ids(extracted) - _ids(po), _ids(po) - _ids(extracted)
    assert not new, f"in the sources, not in {lang}/messages.po (scripts/i18n.sh update): {sorted(new)}"
    assert not gone, f"messages in {lang}/messages.po no source uses any more: {sorted(gone)}"
    template = _read(TRANSLATIONS / "messages.pot")
    assert _ids(template) == _ids(extracted), "translations/messages.pot is stale (scripts/i18n.sh extract)"


def test_every_message_has_a_korean_text_and_none_is_fuzzy() -> None:
    po = _read(TRANSLATIONS / "ko" / "LC_MESSAGES" / "messages.po", "ko")
    missing, fuzzy = [], []
    for m in po:
        if not m.id:
            continue
        texts = m.string if isinstance(m.string, tuple) else (m.string,)
        if not texts or not all(texts):
            missing.append(m.id)
        if m.fuzzy:
            fuzzy.append(m.id)
    assert not missing, f"no Korean for: {missing}"
    assert not fuzzy, f"fuzzy (unchecked) Korean for: {fuzzy}"
    assert len(_ids(po)) > 150  # the whole interface, not a sample


@pytest.mark.parametrize("lang", LANGS)
def test_no_catalogue_is_fuzzy_and_translations_keep_their_placeholders(lang: str) -> None:
    po = _read(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", lang)
    for m in po:
        if not m.id:
            continue
        assert not m.fuzzy, m.id
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        texts = [s for s in (m.string if isinstance(m.string, tuple) else (m.string,)) if s]
        for text in texts:
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(ids[0])), (m.id, text)


def test_compiled_catalogues_are_what_the_pages_get(tmp_path: Path) -> None:
    for lang in LANGS:
        target = tmp_path / lang / "LC_MESSAGES"
        target.mkdir(parents=True)
        shutil.copy(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", target / "messages.po")
    written = compile_catalogues(tmp_path)
    assert {p.parent.parent.name for p in written} == set(LANGS)
    ko, en = catalogue("ko", tmp_path), catalogue("en", tmp_path)
    assert ko["LIVE"] == "실시간" and ko["Buses"] == "버스" and ko["Sign in"] == "로그인"
    assert en["LIVE"] == "LIVE" and en["Buses"] == "Buses"  # English: the msgid itself
    assert set(ko) == set(en)
    # A fuzzy text is not shipped: the message falls back to its id.
    po = (tmp_path / "ko" / "LC_MESSAGES" / "messages.po")
    text = po.read_text(encoding="utf-8").replace('msgid "LIVE"', '#, fuzzy\nmsgid "LIVE"', 1)
    po.write_text(text, encoding="utf-8")
    compile_catalogues(tmp_path)
    assert catalogue("ko", tmp_path)["LIVE"] == "LIVE"


def test_pybabel_compile_accepts_every_catalogue(tmp_path: Path) -> None:
    """The set-up's own step (scripts/i18n.sh compile) must not fail: gettext reads "% o" in a msgid
    as a printf conversion and refuses a translation without it, which stopped a fresh install."""
    import shutil
    import subprocess
    import sys

    shutil.copytree(TRANSLATIONS, tmp_path / "translations")
    pybabel = Path(sys.executable).with_name("pybabel")
    p = subprocess.run([str(pybabel), "compile", "-d", str(tmp_path / "translations")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "error" not in p.stderr.lower()
