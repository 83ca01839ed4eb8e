"""Writes the replay test captures in this folder with the real encoders (run from the repository root:
`.venv/bin/python -m tests.field.captures.make_captures`). The files are committed; this script says how
they were made. Times are fixed in the past (2024-05-01 around 03:00 UTC) on purpose: the replay tests
check that `--clock feed` replays them as seen then and `--clock now` shows them stale.
"""

from __future__ import annotations

import json
from pathlib import Path

from google.transit import gtfs_realtime_pb2 as rt
from pymavlink.dialects.v20 import common as mavlink2

HERE = Path(__file__).parent
T0 = 1_714_532_400  # 2024-05-01 03:00:00 UTC = 12:00 KST
INCHEON = [("bus-1", 37.4563, 126.7052), ("bus-2", 37.5070, 126.7219), ("bus-3", 37.3920, 126.6440)]
PORTLAND = [("pdx-101", 45.5231, -122.6765), ("pdx-102", 45.5120, -122.6587)]


def gtfs(vehicles: list[tuple[str, float, float]], header_ts: int, extra_no_position: str | None = None
         ) -> bytes:
    msg = rt.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.incrementality = rt.FeedHeader.FULL_DATASET
    msg.header.timestamp = header_ts
    for i, (vid, lat, lon) in enumerate(vehicles):
        e = msg.entity.add()
        e.id = f"e{i}"
        v = e.vehicle
        v.vehicle.id = vid
        v.trip.trip_id = f"trip-{vid}"
        v.trip.route_id = "R1"
        v.position.latitude = lat
        v.position.longitude = lon
        v.position.bearing = 90
        v.position.speed = 8.0
        v.timestamp = header_ts - 5
    if extra_no_position:
        e = msg.entity.add()
        e.id = "np"
        e.vehicle.vehicle.id = extra_no_position
        e.vehicle.timestamp = header_ts - 5
    return msg.SerializeToString()


def airkorea(names: list[str], total: int, page: int, rows: int) -> bytes:
    items = [{"stationName": n, "dataTime": "2024-05-01 12:00", "pm10Value": "35", "pm25Value": "18",
              "o3Value": "0.031", "no2Value": "0.022", "so2Value": "0.003", "coValue": "0.4",
              "khaiValue": "62", "pm10Flag": None, "pm25Flag": None} for n in names]
    return json.dumps({"response": {"header": {"resultCode": "00", "resultMsg": "NORMAL_CODE"},
                                    "body": {"items": items, "totalCount": total, "pageNo": page,
                                             "numOfRows": rows}}}, ensure_ascii=False).encode()


def _mav(sysid: int, compid: int) -> mavlink2.MAVLink:
    return mavlink2.MAVLink(None, srcSystem=sysid, srcComponent=compid)


def drone_messages(fix: bool, seconds: int = 6) -> list[tuple[float, bytes]]:
    """(epoch s, frame) for a quadrotor flying east, with a camera's and a ground station's heartbeats."""
    ap, cam, gcs = _mav(1, 1), _mav(1, 100), _mav(255, 190)
    out: list[tuple[float, bytes]] = []
    armed = mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mavlink2.MAV_MODE_FLAG_SAFETY_ARMED
    for s in range(seconds):
        t = T0 + s
        boot = 60_000 + s * 1000
        out.append((t, ap.heartbeat_encode(mavlink2.MAV_TYPE_QUADROTOR, mavlink2.MAV_AUTOPILOT_ARDUPILOTMEGA,
                                           armed, 5, mavlink2.MAV_STATE_ACTIVE).pack(ap)))
        out.append((t + 0.01, cam.heartbeat_encode(mavlink2.MAV_TYPE_CAMERA, mavlink2.MAV_AUTOPILOT_INVALID,
                                                   0, 0, mavlink2.MAV_STATE_ACTIVE).pack(cam)))
        out.append((t + 0.02, gcs.heartbeat_encode(mavlink2.MAV_TYPE_GCS, mavlink2.MAV_AUTOPILOT_INVALID,
                                                   0, 0, mavlink2.MAV_STATE_ACTIVE).pack(gcs)))
        out.append((t + 0.03, ap.system_time_encode(int(t * 1e6), boot).pack(ap)))
        lat, lon = (int(37.4563e7), int((126.7052 + s * 0.0005) * 1e7)) if fix else (0, 0)
        out.append((t + 0.04, ap.gps_raw_int_encode(int(t * 1e6), 3 if fix else 0, lat, lon, 50_000, 90, 120,
                                                    500, 9000, 14 if fix else 0).pack(ap)))
        out.append((t + 0.05, ap.battery_status_encode(0, 0, 0, 2500, [16200] + [65535] * 9, 100, -1, -1,
                                                       -1).pack(ap)))
        out.append((t + 0.06, ap.global_position_int_encode(boot, lat, lon, 50_000, 40_000, 500, 0, 0,
                                                            9000).pack(ap)))
    return out


def tlog(messages: list[tuple[float, bytes]]) -> bytes:
    return b"".join(int(t * 1e6).to_bytes(8, "big") + frame for t, frame in messages)


def main() -> None:
    (HERE / "gtfs_incheon.pb").write_bytes(gtfs(INCHEON, T0, extra_no_position="subway-9"))
    (HERE / "gtfs_incheon_later.pb").write_bytes(gtfs(INCHEON[:2], T0 + 30))
    (HERE / "gtfs_portland.pb").write_bytes(gtfs(PORTLAND, T0))
    names = ["신흥", "송림", "부평"]
    (HERE / "airkorea_p1.json").write_bytes(airkorea(names[:2], total=3, page=1, rows=2))
    (HERE / "airkorea_p2.json").write_bytes(airkorea(names[2:], total=3, page=2, rows=2))
    (HERE / "drone.tlog").write_bytes(tlog(drone_messages(fix=True)))
    (HERE / "drone_nofix.tlog").write_bytes(tlog(drone_messages(fix=False)))
    lost = [(t, f) for t, f in drone_messages(fix=True) if t < T0 + 3]
    lost += [(t, f) for t, f in drone_messages(fix=False) if t >= T0 + 3]
    (HERE / "drone_lostfix.tlog").write_bytes(tlog(lost))
    (HERE / "drone_raw.bin").write_bytes(b"".join(f for _, f in drone_messages(fix=True)))
    sensors = []
    for i, (ds, value) in enumerate([("sen-water_level-01", 2.1), ("sen-water_level-01", 2.2),
                                     ("sen-rain-09", 1.5), ("sen-wind-16", 7.0)]):
        t = T0 + 60 * i
        when = f"2024-05-01T03:{i:02d}:00Z"
        payload = {"phenomenonTime": when, "result": value,
                   "FeatureOfInterest": {"feature": {"type": "Point", "coordinates": [126.72, 37.49]}}}
        sensors.append({"ts": t + 0.5, "topic": f"incheon/v1.1/Datastreams({ds})/Observations",
                        "payload": payload if i % 2 == 0 else json.dumps(payload)})
    lines = [json.dumps(s, ensure_ascii=False) for s in sensors]
    lines.insert(2, "this line is on a topic the feed does not subscribe to")
    lines.insert(3, '{"ts": 1714532460, "topic": "incheon/v1.1/Datastreams(sen-rain-09)/Obs')  # cut short
    (HERE / "sensors.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    mosq = [f"{s['topic']} {json.dumps(s['payload']) if isinstance(s['payload'], dict) else s['payload']}"
            for s in sensors]
    (HERE / "sensors_mosquitto.txt").write_text("\n".join(mosq) + "\n", encoding="utf-8")
    (HERE / "frigate.log").write_text(frigate_log(), encoding="utf-8")


FRIGATE_SERVERS = ('{gate: {mqtt_url: "mqtt://127.0.0.1:1883", topic_prefix: frigate, cameras: '
                   '{yard: {id: frigate-gate-yard, name: Gate yard, lat: 37.45, lon: 126.70, heading: 90}}}}')


def frigate_log() -> str:
    """A Frigate server's MQTT as `mosquitto_sub -v -F '%U %t %p'` and JSON lines show it: online, a
    0.14+ review from new to end, a 0.10-era event on a camera no map camera maps to, offline."""
    start = T0 + 10.5
    review = {"id": "1714532410.500000-rv0001", "camera": "yard", "start_time": start, "end_time": None,
              "severity": "alert", "thumb_path": "/media/frigate/clips/review/thumb-yard.webp",
              "data": {"detections": ["1714532410.400000-ab12cd"], "objects": ["person"], "sub_labels": [],
                       "zones": ["driveway"], "audio": []}}
    ended = {**review, "end_time": start + 20}
    old_event = {"id": "1714532420.475377-mxklsc", "camera": "garage", "frame_time": start + 10,
                 "label": "car", "sub_label": "", "top_score": 0.72, "false_positive": False,
                 "start_time": start + 9, "end_time": None, "current_zones": [], "entered_zones": [],
                 "has_snapshot": False, "has_clip": False, "thumbnail": None}
    rows = [
        f"{T0 + 1:.3f} frigate/available online",
        json.dumps({"ts": start, "topic": "frigate/reviews",
                    "payload": {"type": "new", "before": review, "after": review}}),
        json.dumps({"ts": start + 10, "topic": "frigate/events",
                    "payload": json.dumps({"type": "new", "before": old_event, "after": old_event})}),
        json.dumps({"ts": start + 20, "topic": "frigate/reviews",
                    "payload": {"type": "end", "before": review, "after": ended}}),
        f"{T0 + 40:.3f} frigate/available offline",
    ]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    main()
