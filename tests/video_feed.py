"""A real H.264 clip relayed into Redis as N live cameras, the way the vision worker relays a camera.

The clip is made once with Debian's ffmpeg/libx264 (testsrc, a keyframe a second, no B-frames as a
camera's stream), remuxed by PyAV with the worker's own fragmenting options (vision/live.py MOVFLAGS)
and cut by the worker's own box splitter (vision/fmp4.py); `ClipFeeder` then writes every camera's
segments through the worker's relay (vision/relay.py VideoRelay) at the clip's frame rate, each a
real fMP4 fragment with its source time. No RTSP server and no decoding: 16 cameras cost a thread
writing to Redis, so a test can play a whole wall on a 2-core machine.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import av
import redis

from vision.fmp4 import Segment, Splitter, codec_string, timescale
from vision.live import MOVFLAGS, _Sink
from vision.relay import VideoRelay, publish_meta


@dataclass
class Clip:
    init: bytes
    segments: list[Segment]
    fps: float

    @property
    def codec(self) -> str:
        return codec_string(self.init)

    @property
    def timescale(self) -> int:
        return timescale(self.init)


def make_clip(folder: Path, seconds: int = 90, fps: int = 10, size: str = "320x240") -> Clip:
    """`seconds` of testsrc as fMP4 fragments, one frame each (long enough that a test never loops:
    a looped fragment would carry the same decode time again)."""
    path = folder / "feed.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc=size={size}:rate={fps}", "-t", str(seconds), "-c:v", "libx264",
                    "-preset", "ultrafast", "-bf", "0", "-g", str(fps), "-pix_fmt", "yuv420p", str(path)],
                   check=True, timeout=120)
    sink = _Sink()
    with av.open(str(path)) as inp:
        vin = inp.streams.video[0]
        out = av.open(sink, "w", format="mp4", options={"movflags": MOVFLAGS})
        vout = out.add_stream_from_template(vin)
        for pkt in inp.demux(vin):
            if pkt.dts is None:
                continue
            pkt.stream = vout
            out.mux(pkt)
        out.close()
    segs = Splitter().feed(sink.take())
    assert segs[0].kind == "init" and segs[1].key, "the clip starts with its init and a keyframe"
    return Clip(segs[0].data, segs[1:], float(fps))


META = b'{"t": %.3f, "b": [[0.1, 0.1, 0.3, 0.6, 7, "person"]], "z": [], "l": []}'


class ClipFeeder:
    """Relays `clip` as `variant` of each of `cameras` in real time, from one thread."""

    def __init__(self, client: redis.Redis, cameras: list[str], clip: Clip, meta: bool = True,
                 variant: str = "sub") -> None:
        self.client = client
        self.clip = clip
        self.meta = meta
        self.relays = {cam: VideoRelay(client, cam, variant) for cam in cameras}
        self.pos = dict.fromkeys(cameras, 0)
        self.paused: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clip-feeder", daemon=True)

    def start(self) -> ClipFeeder:
        for cam in self.relays:
            self.restart(cam)
        self._thread.start()
        return self

    def restart(self, cam: str) -> None:
        """The camera reconnects: a new generation (init), the clip from its start."""
        with self._lock:
            self.relays[cam].init(self.clip.init, self.clip.codec, self.clip.timescale)
            self.pos[cam] = 0
            self.paused.discard(cam)

    def pause(self, cam: str) -> None:
        """The camera goes silent (its keys stay until their TTL)."""
        with self._lock:
            self.paused.add(cam)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        period = 1.0 / self.clip.fps
        next_at = time.monotonic()
        while not self._stop.is_set():
            now = time.time()
            with self._lock:
                for cam, relay in self.relays.items():
                    i = self.pos[cam]
                    if cam in self.paused or i >= len(self.clip.segments):
                        continue
                    seg = self.clip.segments[i]
                    relay.segment(seg.data, seg.key, now, seg.decode_time)
                    if self.meta and i % 2 == 0:  # the analytics' rate: every other frame
                        publish_meta(self.client, cam, META % now)
                    self.pos[cam] = i + 1
            next_at += period
            self._stop.wait(max(0.0, next_at - time.monotonic()))
