"""CCTV cameras placed inside real district boundaries, with simulated activity counts.

These stand in for the city's camera inventory on the map; the real analytics path (vision/)
publishes the same layer for the cameras it actually watches.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from feeds.simulator.world import district_index

CAMERA_TYPES = (("crime_prevention", 0.6), ("traffic", 0.3), ("disaster", 0.1))
# Denser in the built-up gu than on the islands.
DISTRICT_WEIGHT = {"ganghwa": 0.3, "ongjin": 0.1, "yeongjong": 0.6}


@dataclass
class Camera:
    id: str
    lat: float
    lon: float
    props: dict


class CameraInventory:
    def __init__(self, count: int, seed: int) -> None:
        rng = random.Random(seed + 1)
        self.rng = rng
        index = district_index()
        districts = index.edition.districts
        weights = [DISTRICT_WEIGHT.get(d.id, 1.0) for d in districts]
        types, type_w = zip(*CAMERA_TYPES, strict=True)
        self.cameras: list[Camera] = []
        for i in range(count):
            d = rng.choices(districts, weights)[0]
            lat, lon = index.random_point(d.id, rng)
            kind = rng.choices(types, type_w)[0]
            self.cameras.append(Camera(f"cam-{i + 1:04d}", lat, lon, {
                "name": f"{d.name_ko} {kind.replace('_', ' ')} #{i + 1}", "district": d.name_ko,
                "type": kind, "heading": rng.randrange(0, 360, 15), "fov": 60,
                "status": "online" if rng.random() > 0.02 else "offline",
                "people": 0, "vehicles": 0, "last_activity": None}))

    def step(self, now_ms: int, share: float = 0.1) -> list[Camera]:
        """Some cameras see something this tick; returns the ones that changed."""
        changed = []
        for cam in self.rng.sample(self.cameras, max(1, int(len(self.cameras) * share))):
            if cam.props["status"] != "online":
                continue
            people = max(0, int(self.rng.expovariate(0.5)) - 1)
            vehicles = max(0, int(self.rng.expovariate(0.4)) - 1) if cam.props["type"] == "traffic" else 0
            cam.props = {**cam.props, "people": people, "vehicles": vehicles,
                         "last_activity": now_ms if people or vehicles else cam.props["last_activity"]}
            changed.append(cam)
        return changed
