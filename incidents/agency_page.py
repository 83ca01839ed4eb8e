"""The agency view's page and video frames: server-rendered HTML (every value escaped, no script)
with a small SVG map of the incident and its cameras, and JPEG frames with persons obscured.

Frames: the worker's latest JPEG of the camera (spine.channels.frame_key) and its latest overlay
message (vision.relay.meta_key: normalised boxes with labels). Persons are obscured with
vision.privacy.mask_boxes, boxes grown generously since the overlay and the frame are not the same
instant; when no fresh overlay is there, the whole frame is obscured (fail closed).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from markupsafe import escape

META_FRESH_S = 2.0
PERSON_LABELS = {"person", "사람"}


def obscure_persons(jpeg: bytes, meta: bytes | None, now_s: float | None = None) -> bytes | None:
    """The frame with persons obscured, re-encoded; None when it cannot be decoded."""
    import cv2
    import numpy as np

    from vision.privacy import _obscure, mask_boxes

    frame = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        return None
    h, w = frame.shape[:2]
    boxes = None
    try:
        m = json.loads(meta) if meta else None
        fresh = isinstance(m, dict) and isinstance(m.get("t"), int | float) and \
            abs((now_s if now_s is not None else time.time()) - float(m["t"])) <= META_FRESH_S
        if fresh:
            boxes = [[b[0] * w, b[1] * h, b[2] * w, b[3] * h] for b in m.get("b", [])[:200]
                     if isinstance(b, list) and len(b) >= 6 and str(b[5]) in PERSON_LABELS
                     and all(isinstance(v, int | float) and math.isfinite(v) for v in b[:4])]
    except (ValueError, TypeError):
        boxes = None
    if boxes is None:
        frame = _obscure(frame)  # nothing known of where the persons are: hide everything
    elif boxes:
        mask_boxes(frame, np.array(boxes, dtype=float), grow=0.35)
    ok, out = cv2.imencode(".jpg", frame, [int(cv2.IMWRITE_JPEG_QUALITY), 80])
    return out.tobytes() if ok else None


def _svg_map(inc: dict, cams: list[dict]) -> str:
    lat0, lon0 = float(inc["lat"]), float(inc["lon"])
    k = math.cos(math.radians(lat0))
    pts = [((c["lon"] - lon0) * 111_320 * k, (c["lat"] - lat0) * 110_540) for c in cams]
    reach = max([60.0, *[max(abs(x), abs(y)) for x, y in pts]]) * 1.25
    size = 360

    def xy(x: float, y: float) -> tuple[float, float]:
        return size / 2 + x / reach * size / 2, size / 2 - y / reach * size / 2

    parts = [f'<svg class="ag-map" viewBox="0 0 {size} {size}" role="img" aria-label="map">',
             f'<rect width="{size}" height="{size}" fill="#101820"/>']
    for c, (x, y) in zip(cams, pts, strict=True):
        cx, cy = xy(x, y)
        parts.append(f'<line x1="{size / 2}" y1="{size / 2}" x2="{cx:.1f}" y2="{cy:.1f}" stroke="#58a6ff" '
                     'stroke-dasharray="4 4"/>')
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="7" fill="#58a6ff"/>')
        parts.append(f'<text x="{cx + 9:.1f}" y="{cy + 4:.1f}" fill="#e6edf3" font-size="12">'
                     f'{escape(c["camera_id"])}</text>')
    parts.append(f'<circle cx="{size / 2}" cy="{size / 2}" r="10" fill="none" stroke="#ff7b72" '
                 'stroke-width="3"/>')
    bar = 50 if reach > 100 else 20
    parts.append(f'<line x1="10" y1="{size - 12}" x2="{10 + bar / reach * size / 2:.1f}" y2="{size - 12}" '
                 f'stroke="#e6edf3" stroke-width="2"/><text x="10" y="{size - 18}" fill="#e6edf3" '
                 f'font-size="11">{bar} m</text></svg>')
    return "".join(parts)


def page_html(inc: dict, cams: list[dict], token: str, agency: str, expires_text: str,
              faces: bool, texts: dict[str, str]) -> str:
    """`texts`: the page's fixed words, already translated (the caller's gettext)."""
    e = escape
    tiles = "".join(
        f'<figure class="ag-cam"><img src="/agency/{e(token)}/video/{e(c["camera_id"])}.mjpg" '
        f'alt="{e(c["camera_id"])}" data-camera="{e(c["camera_id"])}"><figcaption>{e(c["camera_id"])} · '
        f'{round(float(c.get("distance_m") or 0))} m</figcaption></figure>' for c in cams[:3])
    return (
        "<!DOCTYPE html><html lang=\"ko\"><head><meta charset=\"utf-8\">"
        "<link rel=\"icon\" href=\"/_favicon.ico\">"
        f"<title>{e(texts['title'])} #{int(inc['id'])}</title><style>"
        "body{background:#0b111a;color:#e6edf3;font-family:sans-serif;margin:16px}"
        ".ag-cams{display:flex;gap:8px;flex-wrap:wrap}.ag-cam{margin:0}.ag-cam img{width:320px;height:180px;"
        "object-fit:cover;background:#05080d}.ag-note{color:#9aa7b4}</style></head><body>"
        f"<h1>{e(texts['title'])} · {e(agency)}</h1>"
        f"<p class=\"ag-note\">{e(texts['read_only'])} · {e(texts['until'])} {e(expires_text)}"
        f"{'' if faces else ' · ' + e(texts['blurred'])}</p>"
        f"<h2 id=\"ag-incident\" data-incident=\"{int(inc['id'])}\">#{int(inc['id'])} "
        f"{e(inc.get('type_label') or inc.get('type'))} · {e(inc.get('title'))}</h2>"
        f"<p>{e(inc.get('state_name') or inc.get('state'))} · {e(inc.get('district_name') or '')} · "
        f"{float(inc['lat']):.5f}, {float(inc['lon']):.5f}</p>"
        f"{_svg_map(inc, cams)}<div class=\"ag-cams\" id=\"ag-cams\">{tiles}</div></body></html>")


def cameras_with_positions(inc: dict, configured: dict[str, Any]) -> list[dict]:
    out = []
    for c in inc.get("cameras") or []:
        cam = configured.get(c.get("camera_id"))
        if cam is not None:
            out.append({**c, "lat": cam.lat, "lon": cam.lon})
    return out
