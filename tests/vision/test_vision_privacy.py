"""Privacy mode: no person region leaves the worker unblurred (Redis frame and event snapshot)."""

from __future__ import annotations

import cv2
import numpy as np
import redis

from spine.channels import frame_key
from vision.config import Camera


def _sharpness(img: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def _pipeline(redis_url, vision_settings, detector, privacy: bool, zones=None):
    from spine.publisher import Publisher, connect
    from vision.frames import FrameSink
    from vision.pipeline import CameraPipeline
    from vision.snapshots import SnapshotStore

    cam = Camera(id="priv-1", name="Privacy test", lat=37.4, lon=126.6, source="x.avi",
                 privacy={"enabled": privacy}, zones=zones or [])
    client = connect(redis_url)
    vs = vision_settings.model_copy(update={"frame_max_width": 1920})  # compare at full size
    return CameraPipeline(cam, vs, detector, Publisher(client), FrameSink(client),
                          SnapshotStore(vs.snapshots_path())), client


def test_privacy_blurs_every_person_in_frames_and_snapshots(redis_url, vision_settings, onnx_detector,
                                                           onnx_detector_640, bus_image) -> None:
    # Persons as a stronger detector (640) sees them: the masking, driven by the 320 pipeline, must
    # still cover each of them.
    truth = onnx_detector_640.detect(bus_image).of_class("person")
    assert len(truth) >= 3
    zone = [{"id": "all", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]], "intrusion": ["person"]}]
    pipe, client = _pipeline(redis_url, vision_settings, onnx_detector, True, zone)
    for k in range(3):  # the intrusion needs two frames to confirm; 1 s apart passes the still-frame gate
        res = pipe.process(bus_image, 1000.0 + k * 1.0)
    sent = cv2.imdecode(np.frombuffer(client.get(frame_key("priv-1")), np.uint8), cv2.IMREAD_COLOR)
    assert sent.shape == bus_image.shape
    assert pipe.events >= 1
    assert all(e.snapshot for e in res.events)
    snap_files = sorted(vision_settings.snapshots_path().glob("priv-1-*.jpg"))
    assert snap_files, "an intrusion event must store a snapshot"
    snapshot = cv2.imread(str(snap_files[-1]))
    for image in (sent, snapshot):
        for x1, y1, x2, y2 in truth.xyxy.astype(int):
            # The inner part of the box (labels and box lines are drawn at its edges).
            cx1, cy1 = x1 + (x2 - x1) // 5, y1 + (y2 - y1) // 5
            cx2, cy2 = x2 - (x2 - x1) // 5, y2 - (y2 - y1) // 5
            orig, out = bus_image[cy1:cy2, cx1:cx2], image[cy1:cy2, cx1:cx2]
            assert _sharpness(out) < 0.1 * _sharpness(orig), "person region still sharp"


def test_without_privacy_persons_stay_sharp(redis_url, vision_settings, onnx_detector, bus_image) -> None:
    pipe, client = _pipeline(redis_url, vision_settings, onnx_detector, False)
    pipe.process(bus_image, 1000.0)
    sent = cv2.imdecode(np.frombuffer(client.get(frame_key("priv-1")), np.uint8), cv2.IMREAD_COLOR)
    x1, y1, x2, y2 = pipe.tracks.of_class("person").xyxy[0].astype(int)
    cx1, cy1, cx2, cy2 = x1 + (x2 - x1) // 5, y1 + (y2 - y1) // 5, x2 - (x2 - x1) // 5, y2 - (y2 - y1) // 5
    assert _sharpness(sent[cy1:cy2, cx1:cx2]) > 0.3 * _sharpness(bus_image[cy1:cy2, cx1:cx2])


def test_privacy_fails_closed_when_detections_are_stale(redis_url, vision_settings, onnx_detector,
                                                        bus_image) -> None:
    pipe, _ = _pipeline(redis_url, vision_settings, onnx_detector, True)
    out = pipe.outgoing(bus_image, ts=1e9)  # the detector has never run: nothing is known
    assert _sharpness(out) < 0.1 * _sharpness(bus_image)


def test_redis_down_does_not_crash(vision_settings, onnx_detector, bus_image) -> None:
    from vision.pipeline import CameraPipeline

    dead = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    from spine.publisher import Publisher
    from vision.frames import FrameSink

    cam = Camera(id="dead-1", name="D", lat=37.4, lon=126.6, source="x.avi")
    pipe = CameraPipeline(cam, vision_settings, onnx_detector, Publisher(dead), FrameSink(dead))
    res = pipe.process(bus_image, 1.0)
    assert res.inferred and pipe.sink.failures == 1
    bad = pipe.process(np.zeros((0, 0, 3), np.uint8), 2.0)  # a corrupt frame is counted, not raised
    assert not bad.inferred and pipe.errors == 1
