"""The transit adapter: polls GTFS-realtime feeds and publishes the bus layer.

A vehicle reported with a timestamp older than `fade_s` is republished with `stale: true` (the UI
fades by age), and after `gone_s` it is removed with `gone=True`, whether it dropped out of the feed
or the feed keeps repeating an old fix. Unchanged fixes are not republished.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from feeds.adapter import Adapter, Clock, ServiceArea, fetch
from feeds.transit.config import TransitConfig
from feeds.transit.realtime import ParsedFeed, VehicleRecord, parse_feed
from feeds.transit.static import StaticGtfs, parse_static
from spine.channels import PREFIX
from spine.publisher import Publisher

SHAPES_KEY = f"{PREFIX}:transit:shapes"  # hash shape_id -> {route, color, coords}
SHAPES_TMP_KEY = f"{PREFIX}:transit:shapes-next"
SHAPES_REFRESH_S = 300.0


STATIC_FIRST_RETRY_S = 5.0  # a missing static GTFS is tried again after this, doubling up to
STATIC_RETRY_S = 300  # this (a server that starts after us answers within seconds)


@dataclass(slots=True)
class _Seen:
    rec: VehicleRecord
    lat: float
    lon: float
    props: dict
    stale: bool = False


class TransitAdapter(Adapter):
    source = "gtfs_rt"
    layer = "bus"

    def __init__(self, client: redis.Redis, cfg: TransitConfig, area: ServiceArea | None = None, *,
                 clock: Clock | None = None, publisher: Publisher | None = None) -> None:
        super().__init__(client, cfg.contract_s, area, clock=clock, publisher=publisher)
        self.cfg = cfg
        self.urls = list(cfg.urls)
        self.static_url = cfg.static_url
        self.static = StaticGtfs()
        self._static_loaded = False
        self._static_retry_at = 0.0
        self._static_wait = STATIC_FIRST_RETRY_S
        self._seen: dict[str, _Seen] = {}
        self._delays: dict[str, tuple[int, float]] = {}  # trip or "veh:<id>" -> (delay s, seen at)

    def connect(self) -> None:
        self._maybe_load_static()

    def _maybe_load_static(self) -> None:
        """Route names and lines are optional: without them live positions still flow."""
        if not self.static_url or self._static_loaded or time.monotonic() < self._static_retry_at:
            return
        try:
            self.load_static(fetch(self.static_url, timeout=30))
        except Exception as exc:
            self._static_retry_at = time.monotonic() + self._static_wait
            self.log.warning("static GTFS unavailable (%s); live feed runs without it, retry in %.0f s",
                             exc, self._static_wait)
            self._static_wait = min(self._static_wait * 2, STATIC_RETRY_S)

    def load_static(self, data: bytes) -> None:
        try:
            self.static = parse_static(data, self.reject)
        except Exception as exc:
            self.reject("gtfs_static:bad_zip", str(exc))
            self._static_loaded = True
            return
        self._static_loaded = True
        shapes = self.static.shapes_geojson()
        if shapes:
            mapping = {k: json.dumps(v, ensure_ascii=False) for k, v in shapes.items()}

            def write(pipe: Any) -> None:
                # Built aside and renamed into place: readers never see a half-written set of lines.
                pipe.delete(SHAPES_TMP_KEY)
                pipe.hset(SHAPES_TMP_KEY, mapping=mapping)
                pipe.rename(SHAPES_TMP_KEY, SHAPES_KEY)

            # Written at the next flush (retried until Redis takes it), again whenever Redis lost it,
            # and every SHAPES_REFRESH_S: route lines are written once but must survive a restart.
            with self._lock:
                self.publisher.retain("transit:shapes", write, refresh_s=SHAPES_REFRESH_S)
        self.log.info("static GTFS: %d routes, %d shapes, %d stops, %d trips", len(self.static.routes),
                      len(shapes), len(self.static.stops), len(self.static.trips))

    def run_once(self) -> None:
        started = time.monotonic()
        self._maybe_load_static()
        failed: list[Exception] = []
        for url in self.urls:
            # VehiclePositions and TripUpdates are separate feeds: one down must not hide the other.
            try:
                self.ingest(fetch(url, timeout=max(self.cfg.period_s * 2, 5)))
            except Exception as exc:
                failed.append(exc)
                self.log.warning("GTFS-realtime %s failed: %s", url, exc)
        if failed and len(failed) == len(self.urls):
            raise failed[-1]
        self._stop.wait(max(0.0, self.cfg.period_s - (time.monotonic() - started)))

    def ingest(self, raw: bytes, **context: str) -> int:
        feed = parse_feed(raw, self.reject)
        if feed is None:
            return 0
        with self._lock:
            return self._apply(feed)

    def _apply(self, feed: ParsedFeed) -> int:
        now_s = self.clock.time()
        self._delays.update({k: (d, now_s) for k, d in feed.delays.items()})
        accepted = 0
        newest = 0
        for rec in feed.vehicles:
            if rec.ts_s > now_s + self.cfg.max_future_s:
                self.reject("future_timestamp", f"{rec.vehicle_id}: {rec.ts_s - now_s:.0f}s ahead")
                continue
            if rec.ts_s > now_s:
                # Within the clock-skew tolerance: counted as "now", so one future-dated fix cannot
                # hold the vehicle until real time catches up with it.
                rec = dataclasses.replace(rec, ts_s=int(now_s))
            if rec.speed_ms is not None and rec.speed_ms > self.cfg.max_speed_ms:
                self.reject("out_of_range:speed", f"{rec.vehicle_id}: {rec.speed_ms} m/s")
                continue
            if not self.in_area(rec.lat, rec.lon, rec.vehicle_id):
                continue
            if now_s - rec.ts_s > self.cfg.gone_s:
                continue  # an old fix repeated by the feed: not shown (tick() removes it), not counted
            # Counted only now that it is on the map: a frozen feed must not look alive to health.
            accepted += 1
            newest = max(newest, rec.ts_s)
            prev = self._seen.get(rec.vehicle_id)
            if prev and prev.rec.ts_s >= rec.ts_s and not feed.delays:
                continue  # nothing new for this vehicle (still shown, so counted above)
            props = self._props(rec)
            if prev and prev.rec == rec and prev.props == props:
                continue
            self._seen[rec.vehicle_id] = _Seen(rec, rec.lat, rec.lon, props)
            self.publisher.update("bus", rec.vehicle_id, rec.lat, rec.lon, props, ts=rec.ts_s * 1000)
        # Delays from a TripUpdates-only poll update vehicles already on the map.
        if feed.delays and not feed.vehicles:
            for vid, seen in self._seen.items():
                d = self._delay_for(seen.rec)
                if d is not None and d != seen.props.get("delay_s"):
                    seen.props = {**seen.props, "delay_s": d}
                    self.publisher.update("bus", vid, seen.lat, seen.lon, seen.props, ts=seen.rec.ts_s * 1000)
            accepted += len(feed.delays)
            newest = feed.header_ts_s
        if accepted or not feed.vehicles:
            self.accepted(accepted, (newest or feed.header_ts_s) * 1000 or None)
        return accepted

    def _delay_for(self, rec: VehicleRecord) -> int | None:
        d = self._delays.get(rec.trip_id) if rec.trip_id else None
        d = self._delays.get("veh:" + rec.vehicle_id) if d is None else d
        return None if d is None else d[0]

    def _props(self, rec: VehicleRecord) -> dict:
        trip = self.static.trips.get(rec.trip_id)
        route_id = rec.route_id or (trip.route_id if trip else "")
        route = self.static.routes.get(route_id)
        stop = self.static.stops.get(rec.stop_id) if rec.stop_id else None
        props: dict = {
            "route": route.short_name if route else (route_id or None),
            "route_id": route_id or None,
            "route_shape": (trip.shape_id if trip and trip.shape_id
                            else self.static.route_shape.get(route_id)),
            "trip": rec.trip_id or None,
            "heading": None if rec.bearing is None else round(rec.bearing),
            "speed_kmh": None if rec.speed_ms is None else round(rec.speed_ms * 3.6),
            "delay_s": self._delay_for(rec),
            "occupancy": rec.occupancy,
        }
        if stop:
            props["next_stop"] = stop.name
        if rec.label:
            props["label"] = rec.label
        return props

    def tick(self) -> None:
        """Fade vehicles whose last fix is older than fade_s, remove them after gone_s."""
        now_s = self.clock.time()
        with self._lock:
            # Trip ids repeat daily: yesterday's delay must not stick to today's trip.
            self._delays = {k: v for k, v in self._delays.items() if now_s - v[1] <= self.cfg.gone_s}
            for vid in list(self._seen):
                seen = self._seen[vid]
                age = now_s - seen.rec.ts_s
                if age > self.cfg.gone_s:
                    self.publisher.update("bus", vid, seen.lat, seen.lon, seen.props,
                                          ts=seen.rec.ts_s * 1000, gone=True)
                    del self._seen[vid]
                elif age > self.cfg.fade_s and not seen.stale:
                    seen.stale = True
                    seen.props = {**seen.props, "stale": True}
                    self.publisher.update("bus", vid, seen.lat, seen.lon, seen.props, ts=seen.rec.ts_s * 1000)
