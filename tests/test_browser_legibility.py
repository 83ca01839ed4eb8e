"""Issue 9 points 2 and 3 in real headless Chromium: the page-error check itself, map marks scaled
with the wall's physical size, district labels clear of camera badges, severity told by shape,
a palette that survives colour-vision deficiencies, and WCAG 2.2 AA text contrast."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest

from spine.contract import now_ms
from spine.layers import AIR_GRADE_COLORS, SENSOR_LEVEL_COLORS, SEVERITY_COLORS
from spine.publisher import Publisher, connect
from spine.servers.embedded_redis import EmbeddedRedis
from tests.stack import RunningStack, sign_in, start_stack
from tests.webtools import CheckedBrowser, chromium
from widgets.city_map import LEVEL_SHAPES

pytestmark = pytest.mark.browser



# ---- the page-error check (point 3) ----------------------------------------------------------------

def test_the_page_error_check_fails_on_a_throwing_page_and_on_a_console_error(
        browser: CheckedBrowser) -> None:
    browser.errors.take()
    page = browser.new_page()
    page.set_content("<p>fine</p>")
    page.wait_for_timeout(100)
    browser.errors.assert_clean()  # a quiet page passes
    page.set_content("<script>setTimeout(() => { throw new TypeError('boom in a timer'); }, 0)</script>")
    page.wait_for_timeout(300)
    with pytest.raises(AssertionError, match="boom in a timer"):
        browser.errors.assert_clean()
    page.evaluate("() => console.error('logged as an error')")
    with pytest.raises(AssertionError, match="logged as an error"):
        browser.errors.assert_clean()
    page.evaluate("() => console.warn('a warning is not an error')")
    browser.errors.assert_clean()
    # Pages of a context are watched too (the sign-out test uses one).
    context = browser.new_context()
    other = context.new_page()
    other.set_content("<script>null.equals(1)</script>")
    other.wait_for_timeout(200)
    with pytest.raises(AssertionError, match="equals"):
        browser.errors.assert_clean()
    context.close()
    page.close()


# ---- colour-vision deficiencies (no browser) -------------------------------------------------------

# Machado, Oliveira & Fernandes (2009), severity 1.0: dichromat simulation in linear RGB.
CVD = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}
IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
# CIE76 distance after simulation. 2.3 is a just-noticeable difference for large patches side by
# side; markers are a few millimetres seen at 5 m and not side by side, so a level must stand
# several JNDs from every other: 18 (about 8 JND). Shapes carry the level too.
MIN_DELTA_E = 18.0


def _linear(hex_colour: str) -> list[float]:
    out = []
    for i in (1, 3, 5):
        c = int(hex_colour[i:i + 2], 16) / 255
        out.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    return out


def _lab(rgb: list[float]) -> tuple[float, float, float]:
    r, g, b = (min(max(v, 0.0), 1.0) for v in rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def simulated_lab(hex_colour: str, matrix: tuple) -> tuple[float, float, float]:
    rgb = _linear(hex_colour)
    return _lab([sum(row[j] * rgb[j] for j in range(3)) for row in matrix])


def min_distance(colours: dict[str, str], matrix: tuple) -> tuple[float, str, str]:
    labs = {k: simulated_lab(v, matrix) for k, v in colours.items()}
    return min((sum((p - q) ** 2 for p, q in zip(labs[a], labs[b], strict=True)) ** 0.5, a, b)
               for a, b in itertools.combinations(colours, 2))


@pytest.mark.parametrize("name,colours", [("severities", SEVERITY_COLORS),
                                          ("sensor levels", SENSOR_LEVEL_COLORS),
                                          ("air grades", AIR_GRADE_COLORS)])
@pytest.mark.parametrize("deficiency", [*CVD, "none"])
def test_level_colours_stay_apart_for_colour_blind_viewers(name: str, colours: dict[str, str],
                                                           deficiency: str) -> None:
    distance, a, b = min_distance(colours, CVD.get(deficiency, IDENTITY))
    assert distance >= MIN_DELTA_E, f"{name} under {deficiency}: {a} and {b} only {distance:.1f} apart"


def test_the_colour_blind_check_can_fail() -> None:
    """The old AirKorea green and orange merge for a deuteranope (about 8 apart)."""
    assert min_distance({"보통": "#00c73c", "나쁨": "#fd9b5a"}, CVD["deuteranopia"])[0] < MIN_DELTA_E


# ---- the live pages ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[CheckedBrowser]:
    with chromium() as b:
        yield b


@pytest.fixture
def no_page_errors(browser: CheckedBrowser) -> Iterator[None]:
    """Any uncaught page error or console error during a page test fails it (issue 9)."""
    browser.errors.take()
    yield
    browser.errors.assert_clean()


@pytest.fixture(scope="module")
def redis_url(redis_server: EmbeddedRedis) -> str:
    """Emptied once for the module's stack: the session's Redis still holds an earlier module's recent
    events, whose snapshots are in that stack's data folder (this stack's pages would get 404s)."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[RunningStack]:
    s = start_stack(tmp_path_factory.mktemp("legibility"), {"REDIS_URL": redis_url})
    yield s
    s.stop()




BUS_SIZE = """(id) => {
  const m = ccLive.markers.bus.get(id);
  if (!m || !m._pxBounds) { return null; }
  const b = m._pxBounds, size = b.getSize();
  // The pixels the canvas actually painted in the bus colour inside the marker's box.
  const ctx = m._renderer._ctx, dpr = window.devicePixelRatio || 1, o = m._renderer._bounds.min;
  const x = Math.floor((b.min.x - o.x) * dpr), y = Math.floor((b.min.y - o.y) * dpr);
  const w = Math.ceil(size.x * dpr) + 1, h = Math.ceil(size.y * dpr) + 1;
  const px = ctx.getImageData(x, y, w, h).data, want = m.options.fillColor;
  const rgb = [1, 3, 5].map((i) => parseInt(want.slice(i, i + 2), 16));
  let painted = 0;
  for (let i = 0; i < px.length; i += 4) {
    if ([0, 1, 2].every((k) => Math.abs(px[i + k] - rgb[k]) < 40)) { painted += 1; }
  }
  const label = document.querySelector('.cc-district-label');
  return { scale: ccLive.scale, width: size.x, radius: m._radius, painted: painted / (dpr * dpr),
           label: label ? parseFloat(getComputedStyle(label).fontSize) : null };
}"""


def test_a_bus_marker_doubles_on_a_4k_wall_of_the_same_physical_size(
        browser: CheckedBrowser, stack: RunningStack, redis_url: str, no_page_errors: None) -> None:
    """Wall 2 is configured as a 55-inch panel (1.21 m wide) seen from 5 m: at 3840x2160 each CSS px
    is half as big as at 1920x1080, so a bus must be twice as many px across to subtend the same angle."""
    sizes = {}
    for width, height in ((1920, 1080), (3840, 2160)):
        page = browser.new_page(viewport={"width": width, "height": height})
        sign_in(page, stack, "/wall/2", live=True)
        pub = Publisher(connect(redis_url), src="legibility-test")
        pub.update("bus", "bus-legible", 37.495, 126.70, {"route": "L1", "delay_s": 0})
        assert pub.flush()
        page.wait_for_function("() => ccLive.markers.bus.has('bus-legible')", timeout=10_000)
        page.wait_for_timeout(300)  # one canvas frame
        sizes[width] = page.evaluate(BUS_SIZE, "bus-legible")
        page.close()
    small, large = sizes[1920], sizes[3840]
    print("bus marker at 1920 and 3840 px across:", sizes)
    assert small["scale"] == 1 and large["scale"] == 2, sizes
    assert large["width"] == pytest.approx(2 * small["width"], rel=0.15), sizes
    assert large["radius"] == pytest.approx(2 * small["radius"]), sizes
    assert small["painted"] > 20, sizes
    assert large["painted"] == pytest.approx(4 * small["painted"], rel=0.35), sizes  # area: 2 x 2
    assert large["label"] == pytest.approx(2 * small["label"], rel=0.02), sizes


LABELS_AND_BADGES = """() => {
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const shown = (e) => getComputedStyle(e).visibility !== 'hidden' && e.getBoundingClientRect().width > 0;
  const labels = Array.from(document.querySelectorAll('.cc-district-label'));
  return { labels: labels.filter(shown).map((e) => [e.textContent, box(e)]),
           moved: labels.filter((e) => Number(e.dataset.ccShift || 0) !== 0 || !shown(e)).length,
           total: labels.length,
           badges: Array.from(document.querySelectorAll('.cc-cam-badge')).filter(shown).map(box) };
}"""

# Where each district label sits, and a point a little to its left: a camera there has its badge
# (drawn to the camera's right) across the label, as 계양구 was on /wall/1.
UNDER_LABELS = """() => {
  const out = [];
  ccLive.map.eachLayer((l) => {
    const t = l.getTooltip && l.getTooltip();
    if (!t || !String(t.options.className).includes('cc-district-label')) { return; }
    const p = ccLive.map.latLngToContainerPoint(l.getLatLng());
    const at = ccLive.map.containerPointToLatLng([p.x - 30, p.y]);
    out.push([at.lat, at.lng]);
  });
  return out;
}"""


def _intersect(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_district_labels_do_not_overlap_camera_badges_on_the_wall(
        browser: CheckedBrowser, stack: RunningStack, redis_url: str, no_page_errors: None) -> None:
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    sign_in(page, stack, "/wall/1", live=True)
    spots = page.evaluate(UNDER_LABELS)
    assert len(spots) >= 8
    pub = Publisher(connect(redis_url), src="legibility-test")
    for i, (lat, lon) in enumerate(spots):
        pub.update("camera", f"cam-legible-{i}", lat, lon,
                   {"video": True, "people": 3, "vehicles": 12, "last_activity": now_ms()})
    assert pub.flush()
    page.wait_for_function("(n) => document.querySelectorAll('.cc-cam-badge').length >= n",
                           arg=len(spots), timeout=15_000)
    page.wait_for_timeout(1500)  # the labels are re-placed at least once a second
    seen = page.evaluate(LABELS_AND_BADGES)
    overlaps = [(name, b) for name, a in seen["labels"] for b in seen["badges"] if _intersect(a, b)]
    assert overlaps == [], overlaps
    assert seen["moved"] >= 1  # the badges were across the labels: something had to move
    assert len(seen["labels"]) >= seen["total"] - 2, seen  # moved, not simply hidden
    page.close()


def test_sensor_and_air_levels_differ_in_shape_as_well_as_colour(
        browser: CheckedBrowser, stack: RunningStack, redis_url: str, no_page_errors: None) -> None:
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    sign_in(page, stack, "/wall/1", live=True)
    pub = Publisher(connect(redis_url), src="legibility-test")
    for i, level in enumerate(SENSOR_LEVEL_COLORS):
        pub.update("sensor", f"sen-shape-{level}", 37.45 + i * 0.01, 126.65, {"name": level, "level": level})
    for i, grade in enumerate(AIR_GRADE_COLORS):
        pub.update("air", f"air-shape-{i}", 37.45 + i * 0.01, 126.75, {"station": grade, "grade": grade})
    assert pub.flush()
    page.wait_for_function("() => ccLive.markers.sensor.has('sen-shape-critical') && "
                           "ccLive.markers.air.has('air-shape-3')", timeout=10_000)
    sensors = page.evaluate("(ids) => ids.map((id) => ccLive.markers.sensor.get(id).options.shape)",
                            [f"sen-shape-{lv}" for lv in SENSOR_LEVEL_COLORS])
    air = page.evaluate("(n) => Array.from({length: n}, (_, i) => ccLive.markers.air.get('air-shape-' + i)"
                        ".options.shape)", len(AIR_GRADE_COLORS))
    assert sensors == list(LEVEL_SHAPES["sensor"].values()) and len(set(sensors)) == len(sensors)
    assert air == list(LEVEL_SHAPES["air"].values()) and len(set(air)) == len(air)
    # The legend shows the same shapes beside the colours.
    legend = page.evaluate("() => Array.from(document.querySelectorAll('.cc-legend .cc-swatch'))"
                           ".map((s) => s.className)")
    for shape in set(sensors) | set(air):
        assert any(f"cc-shape-{shape}" in c for c in legend), (shape, legend)
    page.close()


# ---- WCAG 2.2 AA text contrast -------------------------------------------------------------------

# Every element with text of its own: its colour, the colour under it (the first opaque background
# among its ancestors, with translucent ones composited on the way), font size and weight. Text over
# the map has the district fill under it (widgets/city_map.py: #172130 at 0.85 on the map's own
# background), which is lighter than the container's, so both are measured.
TEXT_COLOURS = """(districtFill) => {
  const parse = (c) => { const m = c.match(/[\\d.]+/g); if (!m) { return null; }
    const v = m.map(Number); return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1]; };
  const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  const out = [];
  document.querySelectorAll('body *').forEach((e) => {
    const own = Array.from(e.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) { return; }
    const cs = getComputedStyle(e), r = e.getBoundingClientRect();
    if (cs.visibility === 'hidden' || cs.display === 'none' || r.width === 0 || r.height === 0) { return; }
    if (e.closest('script, style, noscript')) { return; }
    const layers = [];
    let bg = null, onMap = false;
    for (let a = e; a; a = a.parentElement) {
      const ac = getComputedStyle(a);
      if (ac.backgroundImage !== 'none' && a !== e) { layers.length = 0; bg = [0, 0, 0, 1]; break; }
      if (a.classList && a.classList.contains('leaflet-container')) { onMap = true; }
      const c = parse(ac.backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) { bg = c; break; } }
    }
    const base = bg || parse(getComputedStyle(document.body).backgroundColor);
    const bases = [base];
    if (onMap && !e.closest('.leaflet-control-container, .leaflet-popup')) {
      bases.push(over(districtFill, base));
    }
    bases.forEach((b) => {
      let under = b;
      layers.slice(0, bg ? -1 : undefined).reverse().forEach((l) => { under = over(l, under); });
      out.push({ text: e.textContent.trim().slice(0, 40), cls: String(e.className).slice(0, 60),
                 color: over(parse(cs.color), under), bg: under, size: parseFloat(cs.fontSize),
                 weight: Number(cs.fontWeight) || 400 });
    });
  });
  return out;
}"""


def _luminance(rgb: list[float]) -> float:
    def chan(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (chan(v) for v in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: list[float], b: list[float]) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _required(size_px: float, weight: int) -> float:
    """WCAG 2.2 SC 1.4.3: large text is >= 18 pt (24 px), or >= 14 pt (18.66 px) bold."""
    return 3.0 if size_px >= 24 or (size_px >= 18.66 and weight >= 700) else 4.5


def test_contrast_of_the_formula_on_known_pairs() -> None:
    assert contrast([255, 255, 255], [0, 0, 0]) == pytest.approx(21)
    assert contrast([0x77, 0x77, 0x77], [255, 255, 255]) == pytest.approx(4.48, abs=0.01)  # just fails AA
    assert _required(24, 400) == 3.0 and _required(19, 700) == 3.0 and _required(19, 400) == 4.5


@pytest.mark.parametrize("path,viewport", [("/wall/1", (1920, 1080)), ("/supervisor", (1600, 1000)),
                                           ("/commander", (1024, 768))])
def test_text_contrast_meets_wcag_aa(browser: CheckedBrowser, stack: RunningStack, path: str,
                                     viewport: tuple[int, int], no_page_errors: None) -> None:
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    sign_in(page, stack, path, live=True)
    page.wait_for_timeout(2500)  # panels, health, events and badges have rendered
    fill = [int(c, 16) for c in re.findall("..", "172130")] + [0.85]
    texts = page.evaluate(TEXT_COLOURS, fill)
    assert len(texts) >= 10, texts
    low = [(t["text"], t["cls"], round(contrast(t["color"], t["bg"]), 2), t["size"])
           for t in texts if contrast(t["color"], t["bg"]) < _required(t["size"], t["weight"])]
    worst = min(texts, key=lambda t: contrast(t["color"], t["bg"]) / _required(t["size"], t["weight"]))
    print(path, len(texts), "texts; lowest:", worst["text"], round(contrast(worst["color"], worst["bg"]), 2))
    assert low == [], low
    page.close()


def test_an_allowed_error_is_only_allowed_for_one_test(browser: CheckedBrowser) -> None:
    browser.errors.take()
    page = browser.new_page()
    browser.errors.allow("expected by this test")
    page.evaluate("() => { console.error('expected by this test'); console.error('not this one'); }")
    with pytest.raises(AssertionError, match="not this one") as failed:
        browser.errors.assert_clean()
    assert "expected by this test" not in str(failed.value)
    page.evaluate("() => console.error('expected by this test')")  # the allowance ended with the test
    with pytest.raises(AssertionError, match="expected by this test"):
        browser.errors.assert_clean()
    page.close()
