"""Parse-validate-publish throughput of each field-feed adapter on one core, into a private Redis.

    .venv/bin/python bench/feeds.py [--quick] [--seconds N]

Each adapter's ingest() is driven with pre-built wire messages (GTFS-realtime protobuf, AirKorea JSON,
SensorThings Observation JSON, MAVLink 2 frames) and flushed to Redis every batch, as in production.
Records are vehicles, station-hours, observations and MAVLink messages. Ends with one summary line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from google.transit import gtfs_realtime_pb2 as rt
from pymavlink.dialects.v20 import common as mavlink2

from feeds.adapter import service_area
from feeds.air.adapter import AirAdapter
from feeds.air.config import AirConfig
from feeds.air.stations import air_stations
from feeds.drone.adapter import DroneAdapter
from feeds.drone.config import DroneConfig
from feeds.sensors.adapter import SensorAdapter
from feeds.sensors.config import SensorsConfig
from feeds.transit.adapter import TransitAdapter
from feeds.transit.config import TransitConfig
from spine.servers.embedded_redis import EmbeddedRedis


def gtfs_feeds(n_feeds: int, per_feed: int) -> list[bytes]:
    now = int(time.time())
    out = []
    for k in range(n_feeds):
        msg = rt.FeedMessage()
        msg.header.gtfs_realtime_version = "2.0"
        msg.header.timestamp = now
        for i in range(per_feed):
            e = msg.entity.add()
            e.id = f"v{k}-{i}"  # distinct ids: every record is new work, none skipped as unchanged
            v = e.vehicle
            v.vehicle.id = e.id
            v.trip.trip_id, v.trip.route_id = f"t{i}", f"r{i % 50}"
            v.position.latitude = 37.40 + (i % 200) * 0.001
            v.position.longitude = 126.65 + (i // 200) * 0.005
            v.position.bearing, v.position.speed = float(i % 360), 8.0
            v.occupancy_status = i % 5
            v.timestamp = now
        out.append(msg.SerializeToString())
    return out


def air_bodies() -> list[bytes]:
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    for h in range(23, -1, -1):
        label = (hour - timedelta(hours=h) + timedelta(hours=9)).strftime("%Y-%m-%d %H:00")
        items = [
            {
                "stationName": s.name,
                "dataTime": label,
                "pm10Value": str(30 + h),
                "pm25Value": str(15 + h),
                "o3Value": "0.031",
                "no2Value": "0.022",
                "so2Value": "0.003",
                "coValue": "0.4",
                "pm10Flag": None,
                "pm25Flag": None,
            }
            for s in air_stations()
        ]
        out.append(
            json.dumps(
                {"response": {"header": {"resultCode": "00"}, "body": {"items": items}}}, ensure_ascii=False
            ).encode()
        )
    return out


class Observations:
    """Observation payloads with ever-increasing times (a repeated time is rejected as a duplicate)."""

    def __init__(self, sensors: int = 50) -> None:
        self.sensors = sensors
        self.t0 = int((time.time() - 7200) * 1000)
        self.k = 0
        self.tail = json.dumps(
            {
                "Datastream": {
                    "unitOfMeasurement": {"symbol": "m"},
                    "ObservedProperty": {"name": "water_level"},
                },
                "FeatureOfInterest": {"feature": {"type": "Point", "coordinates": [126.72, 37.49]}},
            }
        )[1:]

    def batch(self, n: int) -> list[tuple[str, bytes]]:
        out = []
        for _ in range(n):
            k = self.k
            self.k += 1
            when = datetime.fromtimestamp((self.t0 + k) / 1000, UTC).isoformat()
            out.append(
                (
                    f"b/v1.1/Datastreams(s{k % self.sensors})/Observations",
                    f'{{"phenomenonTime": "{when}", "result": {1.0 + (k % 7) * 0.1}, {self.tail}'.encode(),
                )
            )
        return out


def mavlink_frames(n: int) -> list[bytes]:
    mav = mavlink2.MAVLink(None, srcSystem=1, srcComponent=1)
    out = []
    for k in range(n):
        if k % 4 == 0:
            m = mav.global_position_int_encode(k, 375532000, 1267146000, 150000, 120000, 900, 0, 0, 9000)
        elif k % 4 == 1:
            m = mav.attitude_encode(k, 0, 0, 1.5, 0, 0, 0)
        elif k % 4 == 2:
            m = mav.heartbeat_encode(2, 3, 1, 3, 4)
        else:
            m = mav.battery_status_encode(0, 0, 0, 2500, [4000] * 10, 100, -1, -1, 70)
        out.append(m.pack(mav))
    return out


def measure(name: str, step: Callable[[int], int], flush: Callable[[], bool], seconds: float) -> float:
    records, i = 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        records += step(i)
        flush()
        i += 1
    rate = records / (time.perf_counter() - start)
    print(f"  {name:8s} {rate:12,.0f} records/s ({records} records, {i} batches)")
    return rate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="short runs (under a minute in all)")
    ap.add_argument("--seconds", type=float, default=None)
    args = ap.parse_args()
    seconds = args.seconds or (4.0 if args.quick else 15.0)
    logging.basicConfig(level=logging.ERROR)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for this process
    area = service_area(0.05)
    with EmbeddedRedis(Path(tempfile.mkdtemp(prefix="bench-feeds-"))) as server:
        client = redis.Redis.from_url(server.url)
        print(f"feeds benchmark, {seconds:.0f} s per adapter, one core, private Redis")
        feeds = gtfs_feeds(8, 2000)
        gtfs = TransitAdapter(client, TransitConfig(), area)

        def gtfs_step(i: int) -> int:
            if i and i % len(feeds) == 0:
                gtfs._seen.clear()  # a new round of ids, not a pile of remembered vehicles
            return gtfs.ingest(feeds[i % len(feeds)])

        g = measure("gtfs", gtfs_step, gtfs.flush, seconds)
        bodies = air_bodies()
        air = AirAdapter(client, AirConfig(), area)
        a = measure("air", lambda i: air.ingest(bodies[i % len(bodies)]), air.flush, seconds)
        obs = Observations()
        batches = [obs.batch(100) for _ in range(3000)]  # built before timing; 300,000 observations
        sens = SensorAdapter(client, SensorsConfig(), area)

        def mqtt_step(i: int) -> int:
            if i >= len(batches):
                batches.append(obs.batch(100))
            return sum(sens.ingest(payload, topic=topic) for topic, payload in batches[i])

        m = measure("mqtt", mqtt_step, sens.flush, seconds)
        frames = mavlink_frames(4000)
        drone = DroneAdapter(client, DroneConfig(publish_hz=50), area)
        chunk = [b"".join(frames[k : k + 20]) for k in range(0, len(frames), 20)]  # 20 messages a datagram
        v = measure("mavlink", lambda i: drone.ingest(chunk[i % len(chunk)]), drone.flush, seconds)
        for ad in (gtfs, air, sens, drone):
            if ad.rejects.total:
                print(f"  {ad.source}: {ad.rejects.total} rejects {dict(ad.rejects.counts)}")
    print(f"feeds gtfs_per_s={g:.0f} air_per_s={a:.0f} mqtt_per_s={m:.0f} mavlink_per_s={v:.0f}")


if __name__ == "__main__":
    main()
