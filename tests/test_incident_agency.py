"""Agency links and the frames an agency sees (incidents/agency.py, incidents/agency_page.py):
links cannot be forged, widened or used after expiry; persons are obscured, and a frame without a
fresh overlay is obscured entirely (fail closed)."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from incidents.agency import LinkRefused, make_link, read_link
from incidents.agency_page import obscure_persons, page_html

SECRET = "k" * 48


def test_link_round_trip_expiry_and_forgery() -> None:
    now = int(time.time() * 1000)
    token, link = make_link(SECRET, 7, "112", 5, "cmd", now_ms=now)
    assert read_link(SECRET, token, now + 60_000) == link
    with pytest.raises(LinkRefused, match="expired"):
        read_link(SECRET, token, now + 5 * 60_000)
    with pytest.raises(LinkRefused, match="bad signature"):
        read_link("other" * 10, token, now)
    body, sig = token.rsplit(".", 1)
    with pytest.raises(LinkRefused):  # another incident id under the same signature
        read_link(SECRET, body.replace("eyJpIjo3", "eyJpIjo4") + "." + sig, now)
    with pytest.raises(LinkRefused):
        read_link(SECRET, "x" * 700, now)
    _, capped = make_link(SECRET, 7, "119", 10**6, "cmd", now_ms=now)
    assert capped.expires_ms == now + 24 * 60 * 60_000  # at most a day


def _frame() -> bytes:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)  # high detail: blur shows as lost variance
    ok, jpeg = cv2.imencode(".jpg", img, [int(cv2.IMWRITE_JPEG_QUALITY), 95])
    assert ok
    return jpeg.tobytes()


def _var(jpeg: bytes, y0: int, y1: int, x0: int, x1: int) -> float:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(img[y0:y1, x0:x1].var())


def test_persons_obscured_and_fail_closed() -> None:
    raw = _frame()
    now = time.time()
    meta = json.dumps({"t": now, "b": [[0.0, 0.0, 0.25, 0.5, 3, "person"], [0.6, 0.6, 0.9, 0.9, 4, "car"]]})
    out = obscure_persons(raw, meta.encode(), now)
    assert out is not None
    assert _var(out, 5, 50, 5, 35) < _var(raw, 5, 50, 5, 35) / 5  # the person's box lost its detail
    assert _var(out, 75, 105, 100, 140) > _var(raw, 75, 105, 100, 140) / 2  # the car kept it
    for stale in (None, b"not json", json.dumps({"t": now - 60, "b": []}).encode()):
        whole = obscure_persons(raw, stale, now)
        assert whole is not None and _var(whole, 0, 120, 0, 160) < _var(raw, 0, 120, 0, 160) / 5
    assert obscure_persons(b"\xff\xd8garbage", meta.encode(), now) is None


def test_page_escapes_everything() -> None:
    inc = {"id": 3, "type": "x", "type_label": "<b>t</b>", "title": "<script>alert(1)</script>", "lat": 37.5,
           "lon": 126.7, "state": "new", "district_name": "\"><img src=x>"}
    cams = [{"camera_id": "cam<1>", "distance_m": 10, "lat": 37.5001, "lon": 126.7001}]
    html = page_html(inc, cams, "tok\"en", "112", "2026-12-02 13:00", False,
                     {"title": "T", "read_only": "R", "until": "U", "blurred": "B"})
    assert "<script>alert" not in html and "<img src=x>" not in html and "cam<1>" not in html
    assert "&lt;script&gt;" in html and "tok&#34;en" in html
