"""Language on the server: Korean by default, a user's choice kept in SQL (POST /lang with the form
token), a wall screen in its configured language, <html lang> and the page's catalogue per page,
and event texts as a bounded message key with params."""

from __future__ import annotations

import json
import re

import msgspec
import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from config.settings import Settings, load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store
from spine.contract import Event
from tests.webtools import FAST_HASHER

SECRET = "i18n-test-secret"


@pytest.fixture
def store(sqlite_url: str) -> Store:
    s = Store(sqlite_url, FAST_HASHER)
    s.add_user("sup", "sup-password", "supervisor")
    s.add_user("adm", "adm-password", "admin")
    return s


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def client(store: Store, settings: Settings) -> FlaskClient:
    return create_app(settings, store, SECRET).server.test_client()


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def login(client: FlaskClient, name: str) -> None:
    csrf = csrf_of(client.get("/login").get_data(as_text=True))
    r = client.post("/login", data={"username": name, "password": f"{name}-password", "csrf": csrf})
    assert r.status_code == 302


def page_lang(client: FlaskClient, path: str) -> tuple[str, dict]:
    body = client.get(path).get_data(as_text=True)
    lang = re.search(r'<html lang="([^"]*)">', body).group(1)
    data = json.loads(re.search(r'<script type="application/json" id="cc-i18n">(.*?)</script>', body,
                                re.S).group(1))
    return lang, data


def layout_text(client: FlaskClient, path: str) -> str:
    """The page layout as the router callback renders it (what Dash fetches after the index)."""
    body = {"output": "cc-root.children", "outputs": {"id": "cc-root", "property": "children"},
            "inputs": [{"id": "url", "property": "pathname", "value": path}],
            "changedPropIds": ["url.pathname"]}
    r = client.post("/_dash-update-component", json=body)
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    return json.dumps(r.get_json(), ensure_ascii=False)


def test_the_login_page_is_korean_and_offers_english(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="ko">' in page and "로그인" in page and "비밀번호" in page
    assert 'id="cc-lang-en"' in page
    r = client.post("/lang", data={"csrf": csrf_of(page), "lang": "en", "next": "/login"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in page and ">Sign in</button>" in page


def test_a_user_choice_is_kept_in_sql_and_needs_the_form_token(client: FlaskClient, store: Store,
                                                               settings: Settings) -> None:
    login(client, "sup")
    assert page_lang(client, "/supervisor")[0] == "ko"
    assert "인천 통합관제 - 관제 책임자" in layout_text(client, "/supervisor")
    assert client.post("/lang", data={"lang": "en"}).status_code == 400  # no token
    page = client.get("/login").get_data(as_text=True)
    token = csrf_of(page)
    assert client.post("/lang", data={"csrf": token, "lang": "fr"}).status_code == 400
    assert client.post("/lang", data={"csrf": token, "lang": "en" * 500}).status_code == 400
    assert store.user_lang("sup") is None
    r = client.post("/lang", data={"csrf": token, "lang": "en", "next": "https://evil.example/"})
    assert r.status_code == 302 and r.headers["Location"] == "/"  # no open redirect
    assert store.user_lang("sup") == "en"
    lang, data = page_lang(client, "/supervisor")
    assert lang == "en" and data["lang"] == "en" and data["messages"]["LIVE"] == "LIVE"
    text_en = layout_text(client, "/supervisor")
    assert "Incheon integrated control - supervisor" in text_en and "cc-lang-ko" in text_en
    # Another browser, another session: the choice comes from SQL.
    other = create_app(settings, store, SECRET).server.test_client()
    login(other, "sup")
    assert page_lang(other, "/supervisor")[0] == "en"


def test_a_wall_screen_speaks_its_configured_language_whoever_looks(client: FlaskClient, store: Store,
                                                                    settings: Settings) -> None:
    store.set_user_lang("adm", "user", "en")
    login(client, "adm")
    assert settings.walls[1].lang == "ko"
    lang, data = page_lang(client, "/wall/1")
    assert lang == "ko" and data["messages"]["LIVE"] == "실시간"
    assert "최근 이벤트" in layout_text(client, "/wall/1")
    assert page_lang(client, "/supervisor")[0] == "en"
    english_wall = settings.model_copy(deep=True)
    english_wall.walls[1].lang = "en"
    en_client = create_app(english_wall, store, SECRET).server.test_client()
    store.set_user_lang("adm", "user", "ko")
    login(en_client, "adm")
    assert page_lang(en_client, "/wall/1")[0] == "en"
    assert "Latest events" in layout_text(en_client, "/wall/1")


def test_an_older_store_gains_the_preferences_table(sqlite_url: str) -> None:
    s = Store(sqlite_url, FAST_HASHER)
    with s.engine.begin() as c:
        c.execute(text("DROP TABLE user_prefs"))  # a database made before languages existed
    s2 = Store(sqlite_url, FAST_HASHER)
    assert s2.user_lang("nobody") is None
    s2.set_user_lang("op", "user", "en")
    s2.set_user_lang("op", "user", "ko")
    s2.set_user_lang("wall-1", "device", "en")
    assert s2.user_lang("op") == "ko"
    assert (s2.user_lang("wall-1", "device"), s2.user_lang("wall-1")) == ("en", None)
    for bad in ("", "x" * 65, "a\x00b"):
        assert s2.user_lang(bad) is None
        with pytest.raises(ValueError):
            s2.set_user_lang(bad, "user", "en")
    with pytest.raises(ValueError):
        s2.set_user_lang("op", "user", "de")


EVENT = {"v": 1, "id": "e1", "type": "zone_intrusion", "severity": "high", "ts": 1, "layer": "camera",
         "entity": "cam", "lat": 37.4, "lon": 126.6, "title": "person entered Gate"}


def test_events_carry_a_bounded_message_key_and_params() -> None:
    ok = msgspec.convert({**EVENT, "msg": "{cls} entered {zone}", "params": {"cls": "person", "zone": "G"}},
                         Event)
    assert ok.msg == "{cls} entered {zone}" and ok.params == {"cls": "person", "zone": "G"}
    assert msgspec.convert(EVENT, Event).msg is None  # an older producer: title only
    for bad in ({"msg": ""}, {"msg": "x" * 201}, {"params": {"bad name": 1}},
                {"params": {f"p{i}": i for i in range(17)}}, {"params": {"p": "x" * 201}},
                {"params": {"p": {"nested": 1}}}, {"params": {"p": 1e300}}, {"msg": 5}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert({**EVENT, **bad}, Event)
