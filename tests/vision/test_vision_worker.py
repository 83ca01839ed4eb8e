"""The worker loop end to end on the real clip with a real Redis: status, frames, notifications."""

from __future__ import annotations

import json

import redis

from config.settings import REPO_ROOT
from spine import channels
from spine.channels import FRAME_CHANNEL, frame_key
from vision.config import VisionConfig

VTEST = REPO_ROOT / "data" / "media" / "vtest.avi"


def test_worker_publishes_status_and_frames(redis_url: str, vision_settings) -> None:
    from vision.worker import run_group

    cfg = VisionConfig(vision=vision_settings, cameras=[{
        "id": "vt-1", "name": "vtest", "district": "부평구", "lat": 37.49, "lon": 126.72, "heading": 90,
        "source": str(VTEST), "realtime": False, "loop": False,
        "lines": [{"id": "mid", "a": [0.45, 0.25], "b": [0.45, 0.8]}]}, {
        "id": "dead-1", "name": "dead stream", "lat": 37.5, "lon": 126.7,
        "source": "/nonexistent/cam.avi", "loop": False}])
    r = redis.Redis.from_url(redis_url)
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(FRAME_CHANNEL)
    runners = run_group(redis_url, None, max_frames=8, cfg=cfg)
    vt = next(x for x in runners if x.camera.id == "vt-1")
    assert vt.pipeline.processed >= 8 and vt.pipeline.errors == 0
    state = json.loads(r.hget(channels.state_key("camera"), "vt-1"))
    props = state["props"]
    assert props["name"] == "vtest" and props["district"] == "부평구" and props["video"] is True
    assert {"fps", "people", "vehicles", "last_activity", "status", "type", "heading", "fov"} <= set(props)
    assert props["last_activity"] and props["last_activity"] > 10**12
    dead = json.loads(r.hget(channels.state_key("camera"), "dead-1"))["props"]
    assert dead["status"] == "offline"  # a dead source is reported, not fatal
    assert r.get(frame_key("vt-1"))[:2] == b"\xff\xd8"
    notes = [sub.get_message(timeout=0.2) for _ in range(5)]  # the first read returns the subscribe reply
    assert any(n and n["data"] == b"vt-1" for n in notes)
