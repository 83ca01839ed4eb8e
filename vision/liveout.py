"""What the analytics add to the live view: overlay metadata per processed frame, and, for privacy
cameras, the only video that may leave the server: a re-encoded stream with persons and fixed
polygons blurred (the raw remux is never published for them).

Metadata, JSON per processed frame, coordinates as fractions of the frame (so they fit any
variant's resolution): {"t": source time s, "b": [[x1, y1, x2, y2, track id or -1, label], ...],
"z": [[zone id, [[x, y], ...]], ...], "l": [[line id, [ax, ay], [bx, by]], ...]}.
"""

from __future__ import annotations

import contextlib
import logging
from fractions import Fraction

import av
import msgspec
import numpy as np
import redis

from vision.config import Camera
from vision.detections import Detections
from vision.fmp4 import BoxError, Splitter, codec_string, timescale
from vision.live import MOVFLAGS, _Sink
from vision.relay import VideoRelay, publish_meta

log = logging.getLogger(__name__)
_enc = msgspec.json.Encoder()


def overlay_meta(camera: Camera, tracks: Detections, ts: float, size: tuple[int, int]) -> bytes:
    w, h = max(1, size[0]), max(1, size[1])
    boxes = []
    labels = tracks.labels()
    for i in range(min(len(tracks), 200)):
        x1, y1, x2, y2 = (float(v) for v in tracks.xyxy[i])
        tid = int(tracks.track_id[i]) if tracks.track_id is not None else -1
        boxes.append([round(x1 / w, 4), round(y1 / h, 4), round(x2 / w, 4), round(y2 / h, 4), tid,
                      labels[i][:32]])
    zones = [[z.id, z.polygon] for z in camera.zones]
    lines = [[ln.id, ln.a, ln.b] for ln in camera.lines]
    return _enc.encode({"t": round(ts, 3), "b": boxes, "z": zones, "l": lines})


class MaskedEncoder:
    """BGR frames (already masked) -> H.264 (libx264, ultrafast, zero latency) -> fMP4 -> relay."""

    def __init__(self, relay: VideoRelay, fps: float, max_width: int) -> None:
        self.relay = relay
        self.fps = fps
        self.max_width = max_width
        self._out: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._sink = _Sink()
        self._splitter = Splitter()
        self._t0 = 0.0
        self._size: tuple[int, int] = (0, 0)
        self._last_pts = -1
        self._ts: list[float] = []
        self.encoded = 0

    def _open(self, w: int, h: int, ts: float) -> None:
        self.close()
        self._sink = _Sink()
        self._splitter = Splitter()
        self._out = av.open(self._sink, "w", format="mp4", options={"movflags": MOVFLAGS})
        gop = max(1, round(self.fps))  # a keyframe a second: viewers join within a second
        s = self._out.add_stream("libx264", rate=Fraction(round(self.fps * 1000), 1000))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        # Millisecond clock for the encoder too: at its default 1/fps, frames closer than a frame
        # period (the analytics do not run like a metronome) round to one tick and the muxer refuses
        # the repeated timestamp.
        s.time_base = Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        s.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(gop), "crf": "28"}
        self._stream = s
        self._t0 = ts
        self._size = (w, h)
        self._last_pts = -1

    def put(self, image: np.ndarray, ts: float) -> None:
        h, w = image.shape[:2]
        if w > self.max_width:
            scale = self.max_width / w
            w, h = self.max_width, int(h * scale)
        w, h = w - w % 2, h - h % 2
        if self._out is None or (w, h) != self._size:
            self._open(w, h, ts)
        assert self._stream is not None and self._out is not None
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame = frame.reformat(width=w, height=h, format="yuv420p")
        pts = int((ts - self._t0) * 1000)
        if pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = Fraction(1, 1000)
        self._ts.append(ts)
        for pkt in self._stream.encode(frame):
            self._out.mux(pkt)
        self.encoded += 1
        try:
            segs = self._splitter.feed(self._sink.take())
        except BoxError as exc:
            log.warning("masked stream %s: %s; restarting it", self.relay.camera_id, exc)
            self.close()
            return
        for seg in segs:
            if seg.kind == "init":
                self.relay.init(seg.data, codec_string(seg.data), timescale(seg.data))
            else:
                self.relay.segment(seg.data, seg.key, self._ts.pop(0) if self._ts else ts, seg.decode_time)
        del self._ts[:-16]

    def close(self) -> None:
        if self._out is not None:
            with contextlib.suppress(av.FFmpegError, OSError, ValueError):
                self._out.close()
        self._out = None


class LiveOutputs:
    """Per camera: publish the overlay metadata of each processed frame; encode the masked stream."""

    def __init__(self, client: redis.Redis, camera: Camera, max_width: int) -> None:
        self.client = client
        self.camera = camera
        self.masked = (MaskedEncoder(VideoRelay(client, camera.id, "sub"), camera.fps, max_width)
                       if camera.privacy.enabled else None)
        self.meta_sent = 0

    def after(self, tracks: Detections, image: np.ndarray, masked: np.ndarray | None, ts: float) -> None:
        if publish_meta(self.client, self.camera.id,
                        overlay_meta(self.camera, tracks, ts, (image.shape[1], image.shape[0]))):
            self.meta_sent += 1
        if self.masked is not None and masked is not None:
            try:
                self.masked.put(masked, ts)
            except (av.FFmpegError, ValueError) as exc:
                log.warning("masked stream %s: %s", self.camera.id, exc)
                self.masked.close()
