"""The camera's ground footprint (standards.md 5.3): a trapezoid from height, field of view and gimbal
pitch, rotated by heading and placed with a flat-earth offset (fine for a few kilometres)."""

from __future__ import annotations

import math

EARTH_M = 6_371_000.0


def ground_extent(h: float, hfov_deg: float, vfov_deg: float, pitch_deg: float,
                  max_range_m: float) -> tuple[float, float, float, float]:
    """(near, far, near_width, far_width) in metres; pitch -90 = nadir (DJI convention).

    Exact pinhole projection of the image's top and bottom rows onto flat ground. It gives the
    standards' nadir figures (150 x 100 m at 100 m, 24 mm eq.) and its oblique near/far distances
    (33.3 / 300 m at 45°); its oblique widths (158 / 474 m) come from a slant-range shortcut that
    overstates width, so ours are 141 / 424 m.
    """
    phi = math.radians(90.0 + pitch_deg)  # tilt from nadir
    tu, tv = math.tan(math.radians(hfov_deg) / 2), math.tan(math.radians(vfov_deg) / 2)
    out = []
    for v in (-tv, tv):
        down = math.cos(phi) - v * math.sin(phi)  # downward component of the row's ray
        fwd_per_t = math.sin(phi) + v * math.cos(phi)
        if down <= 1e-6 or h * fwd_per_t / down > max_range_m:
            # The row looks at or above the horizon: clamp rather than draw to infinity.
            fwd = max_range_m
            t = fwd / fwd_per_t if fwd_per_t > 1e-6 else max_range_m
        else:
            t = h / down
            fwd = t * fwd_per_t
        out.append((fwd, 2 * t * tu))
    (near, w1), (far, w2) = out
    return min(near, far), far, w1, w2


def footprint(lat: float, lon: float, h: float, heading_deg: float, hfov_deg: float, vfov_deg: float,
              pitch_deg: float, max_range_m: float) -> list[list[float]] | None:
    """Four [lat, lon] corners: near-left, near-right, far-right, far-left. None below 1 m."""
    if not (math.isfinite(h) and h >= 1.0):
        return None
    near, far, w1, w2 = ground_extent(h, hfov_deg, vfov_deg, pitch_deg, max_range_m)
    hd = math.radians(heading_deg)
    cos_lat = math.cos(math.radians(lat))
    corners = []
    for fwd, right in ((near, -w1 / 2), (near, w1 / 2), (far, w2 / 2), (far, -w2 / 2)):
        north = fwd * math.cos(hd) - right * math.sin(hd)
        east = fwd * math.sin(hd) + right * math.cos(hd)
        corners.append([round(lat + math.degrees(north / EARTH_M), 6),
                        round(lon + math.degrees(east / (EARTH_M * cos_lat)), 6)])
    return corners
