"""After-action report of one incident: the timeline, the alarms, the SOP steps with their times,
the cameras and the shares sent; as rows for CSV and as a printable HTML page.

Every value is operator or producer text, so the HTML escapes all of it (html.escape) and the page
has no script; times are shown in KST (stored in UTC ms).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from html import escape
from typing import Any

from incidents.cap import KST
from incidents.db import IncidentStore

CSV_HEADER = ("section", "time_kst", "kind", "actor", "subject", "detail")


def kst_text(ts: int | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts / 1000, KST).strftime("%Y-%m-%d %H:%M:%S")


def collect(store: IncidentStore, incident_id: int) -> dict[str, Any]:
    inc = store.get(incident_id, timeline=100_000)
    inc["alarm_rows"] = store.linked_alarms(incident_id)
    return inc


def _defuse(value: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def rows(inc: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [
        (
            "incident",
            kst_text(inc["opened_ts"]),
            inc["type"],
            inc["created_by"],
            inc["title"],
            f"priority={inc['priority']} state={inc['state']} district={inc['district_name'] or ''} "
            f"geocode={inc['geocode']} lat={inc['lat']:.5f} lon={inc['lon']:.5f}",
        )
    ]
    for a in inc["alarm_rows"]:
        out.append(
            (
                "alarm",
                kst_text(a["linked_ts"]),
                a["condition"] or "",
                a["source"] or "",
                a["title"] or "",
                f"alarm={a['alarm_id']} priority={a['priority']} state={a['state']}",
            )
        )
    for s in (inc.get("sop_view") or {}).get("steps", []):
        out.append(
            (
                "sop_step",
                kst_text(s["done_ts"]),
                s["status"],
                s["actor"],
                s["title"],
                f"step={s['id']} opened={kst_text(s['opened_ts'])} due={kst_text(s['due_ts'])} "
                f"answer={s['answer'] or ''} note={s['note']}",
            )
        )
    for c in inc["cameras"]:
        out.append(
            (
                "camera",
                "",
                "in_view" if c["in_view"] else "nearby",
                "",
                c["camera_id"],
                f"rank={c['rank']} distance_m={c['distance_m']} preset={c['preset'] or ''}",
            )
        )
    for sh in inc["shares"]:
        out.append(
            (
                "share",
                kst_text(sh["sent_ts"] or sh["created_ts"]),
                sh["msg_type"],
                sh["created_by"],
                sh["identifier"],
                f"agency={sh['agency']} status={sh['status']} references={sh['references']}",
            )
        )
    for t in inc["timeline"]:
        out.append(
            (
                "timeline",
                kst_text(t["ts"]),
                t["kind"],
                t["actor"],
                t["text"],
                " ".join(f"{k}={v}" for k, v in t["data"].items())[:2000],
            )
        )
    return [tuple(_defuse(str(v)) for v in r) for r in out]


def to_csv(inc: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_HEADER)
    w.writerows(rows(inc))
    return "\ufeff" + buf.getvalue()  # BOM: spreadsheet programs then read the Korean text as UTF-8


def _table(title: str, head: tuple[str, ...], body: list[tuple[Any, ...]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in r) + "</tr>" for r in body)
    return f"<h2>{escape(title)}</h2><table><thead><tr>{th}</tr></thead><tbody>{trs or ''}</tbody></table>"


CSS = (
    "body{font-family:'Noto Sans KR',sans-serif;margin:2em;color:#111}table{border-collapse:collapse;"
    "width:100%;margin-bottom:1.5em}th,td{border:1px solid #999;padding:4px 6px;font-size:12px;"
    "text-align:left;vertical-align:top}th{background:#eee}h1{font-size:20px}h2{font-size:16px}"
    "@media print{body{margin:0}a{display:none}}"
)


def to_html(inc: dict[str, Any], lang: str = "ko") -> str:
    facts = [
        ("번호", inc["id"]),
        ("유형", inc["type_label"]),
        ("제목", inc["title"]),
        ("우선순위", inc["priority"]),
        ("상태", inc["state_name"]),
        ("담당", inc["owner"] or ""),
        ("위치", f"{inc['lat']:.5f}, {inc['lon']:.5f}"),
        ("행정구역", f"{inc['district_name'] or ''} ({inc['geocode']})"),
        ("발생", kst_text(inc["opened_ts"])),
        ("해결", kst_text(inc["resolved_ts"])),
        ("종결", kst_text(inc["closed_ts"])),
        ("병합 대상", inc["merged_into"] or ""),
    ]
    parts = [
        f"<h1>상황 종료 보고서 — #{inc['id']} {escape(inc['title'])}</h1>",
        "<table><tbody>"
        + "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in facts)
        + "</tbody></table>",
    ]
    parts.append(
        _table(
            "연계 경보",
            ("경보", "연계 시각", "출처", "조건", "우선순위", "제목"),
            [
                (
                    a["alarm_id"],
                    kst_text(a["linked_ts"]),
                    a["source"],
                    a["condition"],
                    a["priority"],
                    a["title"],
                )
                for a in inc["alarm_rows"]
            ],
        )
    )
    sv = inc.get("sop_view")
    if sv:
        parts.append(
            _table(
                f"표준운영절차: {sv['title']}",
                ("순서", "단계", "상태", "시작", "기한", "완료", "처리자", "답변", "메모"),
                [
                    (
                        s["order"],
                        s["title"],
                        s["status"],
                        kst_text(s["opened_ts"]),
                        kst_text(s["due_ts"]),
                        kst_text(s["done_ts"]),
                        s["actor"],
                        s["answer"] or "",
                        s["note"],
                    )
                    for s in sv["steps"]
                ],
            )
        )
    parts.append(
        _table(
            "CCTV",
            ("순위", "카메라", "거리(m)", "시야 내", "프리셋"),
            [
                (
                    c["rank"],
                    c["camera_id"],
                    c["distance_m"],
                    "예" if c["in_view"] else "아니오",
                    c["preset"] or "",
                )
                for c in inc["cameras"]
            ],
        )
    )
    parts.append(
        _table(
            "기관 공유(CAP)",
            ("작성", "기관", "종류", "식별자", "상태", "발송"),
            [
                (
                    kst_text(s["created_ts"]),
                    s["agency"],
                    s["msg_type"],
                    s["identifier"],
                    s["status"],
                    kst_text(s["sent_ts"]),
                )
                for s in inc["shares"]
            ],
        )
    )
    parts.append(
        _table(
            "경과 기록",
            ("시각", "구분", "처리자", "내용", "세부"),
            [
                (
                    kst_text(t["ts"]),
                    t["kind"],
                    t["actor"],
                    t["text"],
                    " ".join(f"{k}={v}" for k, v in t["data"].items())[:500],
                )
                for t in inc["timeline"]
            ],
        )
    )
    return (
        f'<!DOCTYPE html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
        f"<title>상황 종료 보고서 #{inc['id']}</title><style>{CSS}</style></head><body>"
        + "".join(parts)
        + "</body></html>"
    )
