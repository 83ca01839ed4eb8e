"""A drone-mounted camera reports where its drone is, not where it was configured."""

from __future__ import annotations

import msgspec

from spine.channels import state_key
from spine.contract import EntityUpdate
from spine.publisher import Publisher, connect
from vision.config import Camera
from vision.frames import FrameSink
from vision.pipeline import CameraPipeline


def test_mounted_camera_follows_its_drone(redis_url, vision_settings, onnx_detector, bus_image) -> None:
    client = connect(redis_url)
    drone = Publisher(client, src="mavlink")
    drone.update("drone", "drone-9", 37.5601, 126.7203, {"heading": 250, "alt_m": 120})
    assert drone.flush()
    cam = Camera(id="cam-on-drone", name="Drone 9 camera", lat=37.0, lon=126.0, heading=0,
                 source="x.avi", mount="drone-9", privacy={"enabled": True})
    pipe = CameraPipeline(cam, vision_settings, onnx_detector, Publisher(client), FrameSink(client))
    assert pipe.position() == (37.5601, 126.7203, 250.0)
    pipe.process(bus_image, 1000.0)
    pipe.publish_status()
    pipe.publisher.flush()
    status = msgspec.json.decode(client.hget(state_key("camera"), "cam-on-drone"), type=EntityUpdate)
    assert (status.lat, status.lon) == (37.5601, 126.7203)
    assert status.props["mount"] == "drone-9" and status.props["heading"] == 250


def test_unmounted_or_unknown_drone_keeps_the_configured_place(redis_url, vision_settings,
                                                                onnx_detector) -> None:
    client = connect(redis_url)
    cam = Camera(id="cam-x", name="X", lat=37.1, lon=126.1, heading=30, source="x.avi", mount="drone-none")
    pipe = CameraPipeline(cam, vision_settings, onnx_detector, Publisher(client), FrameSink(client))
    assert pipe.position() == (37.1, 126.1, 30)
