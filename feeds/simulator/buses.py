"""Buses on routes through real Incheon places.

There is no road network offline, so a route is a polyline through real stops (landmarks and
air-station sites) with an L-shaped leg between each pair, which reads like a street grid on
the map. Each bus runs its route back and forth, dwells at stops, and carries route, heading,
speed, delay and occupancy (GTFS-realtime OccupancyStatus names).
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass

from feeds.simulator.world import air_stations, bearing_deg, distance_m, places

OCCUPANCY = ("EMPTY", "MANY_SEATS_AVAILABLE", "FEW_SEATS_AVAILABLE", "STANDING_ROOM_ONLY",
             "CRUSHED_STANDING_ROOM_ONLY", "FULL")
# Island and far-west sites are left out of city-bus routes; the airport gets its own line.
_MAINLAND_LON = (126.58, 126.80)
_MAINLAND_LAT = (37.36, 37.62)


@dataclass(frozen=True)
class Stop:
    name: str
    lat: float
    lon: float


@dataclass
class Route:
    id: str
    stops: list[Stop]
    points: list[tuple[float, float]]
    stop_at: list[float]  # distance along the polyline of each stop
    cum: list[float]  # cumulative distance at each point

    @property
    def length(self) -> float:
        return self.cum[-1]

    def position(self, d: float) -> tuple[float, float, float]:
        """lat, lon, heading at distance d along the route."""
        i = max(1, min(bisect.bisect_left(self.cum, d), len(self.cum) - 1))
        a, b = self.points[i - 1], self.points[i]
        seg = self.cum[i] - self.cum[i - 1] or 1.0
        f = min(max((d - self.cum[i - 1]) / seg, 0.0), 1.0)
        return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, bearing_deg(a, b)


def _candidate_stops() -> list[Stop]:
    stops = [Stop(p.name_ko, p.lat, p.lon) for p in places()]
    stops += [Stop(f"{s.name} 측정소 앞", s.lat, s.lon) for s in air_stations()]
    return [s for s in stops if _MAINLAND_LAT[0] <= s.lat <= _MAINLAND_LAT[1]
            and _MAINLAND_LON[0] <= s.lon <= _MAINLAND_LON[1]]


def _build_route(route_id: str, stops: list[Stop]) -> Route:
    points: list[tuple[float, float]] = [(stops[0].lat, stops[0].lon)]
    stop_points = [0]
    for a, b in itertools.pairwise(stops):
        points.append((a.lat, b.lon))  # east-west first, then north-south
        points.append((b.lat, b.lon))
        stop_points.append(len(points) - 1)
    cum = [0.0]
    for p, q in itertools.pairwise(points):
        cum.append(cum[-1] + distance_m(p, q))
    return Route(route_id, stops, points, [cum[i] for i in stop_points], cum)


def build_routes(rng: random.Random, count: int = 48) -> list[Route]:
    cands = _candidate_stops()
    routes = []
    for r in range(count):
        start = rng.choice(cands)
        chain = [start]
        while len(chain) < rng.randint(4, 7):
            here = chain[-1]
            near = sorted((s for s in cands if s not in chain),
                          key=lambda s: distance_m((here.lat, here.lon), (s.lat, s.lon)))[:4]
            chain.append(rng.choice(near))
        number = rng.choice(["", "", "", "M", "9"]) + str(rng.randint(1, 99) + 100 * (r % 9))
        routes.append(_build_route(number, chain))
    by_name = {p.id: p for p in places()}
    airport = [by_name[k] for k in ("bus_terminal", "juan_stn", "incheon_stn", "unseo_stn",
                                    "airport_t1")]
    routes.append(_build_route("306", [Stop(p.name_ko, p.lat, p.lon) for p in airport]))
    return routes


@dataclass
class Bus:
    id: str
    route: Route
    d: float
    direction: int
    speed_ms: float
    delay_s: float
    occupancy: int
    dwell_s: float = 0.0


class BusFleet:
    def __init__(self, count: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.routes = build_routes(self.rng)
        self.buses = []
        for i in range(count):
            route = self.routes[i % len(self.routes)]
            self.buses.append(Bus(
                id=f"bus-{i + 1:05d}", route=route, d=self.rng.uniform(0, route.length),
                direction=self.rng.choice((1, -1)), speed_ms=self.rng.uniform(5, 11),
                delay_s=self.rng.gauss(60, 90), occupancy=self.rng.randint(0, 4)))

    def advance(self, bus: Bus, dt: float) -> None:
        rng = self.rng
        if bus.dwell_s > 0:
            bus.dwell_s -= dt
            return
        bus.speed_ms = min(max(bus.speed_ms + rng.gauss(0, 0.6) * dt, 2.0), 14.0)
        before = bus.d
        bus.d += bus.direction * bus.speed_ms * dt
        if bus.d <= 0 or bus.d >= bus.route.length:
            bus.d = min(max(bus.d, 0.0), bus.route.length)
            bus.direction *= -1
        lo, hi = sorted((before, bus.d))
        if any(lo < s <= hi for s in bus.route.stop_at):
            bus.dwell_s = rng.uniform(10, 30)
            bus.occupancy = min(max(bus.occupancy + rng.choice((-1, 0, 1)), 0), len(OCCUPANCY) - 1)
        bus.delay_s += rng.gauss(0, 2) * dt

    def state(self, bus: Bus) -> tuple[float, float, dict]:
        lat, lon, heading = bus.route.position(bus.d)
        if bus.direction < 0:
            heading = (heading + 180) % 360
        ahead = [s for s in bus.route.stop_at if (s - bus.d) * bus.direction > 0]
        nxt = (min(ahead, key=lambda s: abs(s - bus.d)) if ahead else bus.route.stop_at[0])
        stop = bus.route.stops[bus.route.stop_at.index(nxt)]
        return lat, lon, {
            "route": bus.route.id, "heading": round(heading), "speed_kmh": round(
                0 if bus.dwell_s > 0 else bus.speed_ms * 3.6), "delay_s": round(bus.delay_s),
            "occupancy": OCCUPANCY[bus.occupancy], "next_stop": stop.name}
