"""Stream sources through PyAV (FFmpeg): one connection per camera stream, shared by the live
restream and the analytics.

A `LiveSource` demuxes any FFmpeg URL (rtsp:// over UDP or TCP, http(s)://, files). Every H.264
packet is remuxed, not re-encoded, into fragmented MP4 (one fragment per frame, so latency is one
frame, and viewers join at a keyframe) and handed to a `VideoRelay`. When the camera's analytics
read this stream (`decode=True`), packets are decoded too, but a frame is converted to a BGR array
only at the analytics rate: the conversion and everything after it cost per analysed frame, not per
received one. It offers the same consumer interface as vision.sources.FrameSource (latest, start,
stop, stats), so the worker does not care which it has.

Reconnects with back-off (1 s doubling to 30 s); health (fps and kbit/s received, last keyframe,
read errors, reconnects) is kept in `stats` for the camera layer.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections import deque
from dataclasses import dataclass

import av
import numpy as np

from vision.fmp4 import BoxError, Splitter, codec_string, timescale
from vision.relay import VideoRelay
from vision.sources import Frame, LatestFrameReader, SourceStats

log = logging.getLogger(__name__)

MOVFLAGS = "empty_moov+default_base_moof+frag_every_frame"
OPEN_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 5.0


@dataclass
class LiveStats(SourceStats):
    packets: int = 0
    stream_errors: int = 0
    keyframe_at: float = 0.0  # epoch s of the last keyframe received
    stream_fps: float = 0.0
    kbps: float = 0.0
    codec: str = ""
    last_error: str = ""


class _Sink(io.RawIOBase):
    """The muxer's output file: collects what it writes, taken after each packet."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.chunks.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


class Remuxer:
    """H.264 packets in, fMP4 segments out to a relay; no decoding, no encoding."""

    def __init__(self, template: av.VideoStream, relay: VideoRelay) -> None:
        self.relay = relay
        self.sink = _Sink()
        self.out = av.open(self.sink, "w", format="mp4", options={"movflags": MOVFLAGS})
        self.vout = self.out.add_stream_from_template(template)
        self.splitter = Splitter()
        self.started = False
        self.segments = 0
        self._ts: deque[float] = deque(maxlen=8)  # source times of muxed packets not yet cut out

    def push(self, pkt: av.Packet, src_ts: float) -> None:
        if not self.started:
            if not pkt.is_keyframe:
                return  # a viewer's stream must start at a keyframe
            self.started = True
        pkt.stream = self.vout
        self.out.mux(pkt)
        self._ts.append(src_ts)
        for seg in self.splitter.feed(self.sink.take()):
            if seg.kind == "init":
                self.relay.init(seg.data, codec_string(seg.data), timescale(seg.data))
            else:
                ts = self._ts.popleft() if self._ts else src_ts
                self.relay.segment(seg.data, seg.key, ts, seg.decode_time)
                self.segments += 1

    def close(self) -> None:
        with contextlib.suppress(av.FFmpegError, OSError, ValueError):
            self.out.close()


def _is_url(source: str) -> bool:
    return "://" in source


class LiveSource(LatestFrameReader):
    thread_prefix = "live"
    join_timeout_s = READ_TIMEOUT_S + 2
    stats: LiveStats  # the reader's stats with the stream's fields

    def __init__(self, camera_id: str, source: str, *, relay: VideoRelay | None = None,
                 decode: bool = True, analytics_fps: float = 5.0, rtsp_transport: str = "udp",
                 loop: bool = True, realtime: bool = True, max_backoff_s: float = 30.0) -> None:
        super().__init__(camera_id, LiveStats())
        self.source = source
        self.is_file = not _is_url(source)
        self.relay = relay
        self.decode = decode
        self.period = 1.0 / analytics_fps if analytics_fps > 0 else 0.0
        self.rtsp_transport = rtsp_transport
        self.loop = loop
        self.realtime = realtime
        self.max_backoff_s = max_backoff_s
        self._window: deque[tuple[float, int]] = deque(maxlen=256)  # (monotonic, bytes) per packet
        self._next_frame = 0.0  # monotonic time the next frame is converted for the analytics

    # ---- consumer side: LatestFrameReader (start, stop, latest, ended) --------------------------
    def mark_taken(self, index: int) -> None:  # files are always paced here; nothing to do
        pass

    def health(self) -> dict:
        """The camera layer's stream fields (spine.layers.CameraProps)."""
        self._rates()
        st = self.stats
        return {"stream_fps": round(st.stream_fps, 1), "kbps": round(st.kbps, 1),
                "keyframe_at": int(st.keyframe_at * 1000) if st.keyframe_at else None,
                "stream_errors": st.stream_errors, "live": self.relay is not None}

    def _rates(self) -> None:
        now = time.monotonic()
        win = [(t, n) for t, n in list(self._window) if now - t <= 3.0]
        if len(win) < 2 or now - win[-1][0] > 2.0:
            self.stats.stream_fps = self.stats.kbps = 0.0
            return
        span = max(win[-1][0] - win[0][0], 1e-3)
        # Bounded as the camera layer's fields are (a connection's first burst can look very fast).
        self.stats.stream_fps = min((len(win) - 1) / span, 1000.0)
        self.stats.kbps = min(sum(n for _, n in win[1:]) * 8 / 1000 / span, 1e7)

    # ---- reader thread -------------------------------------------------------------------------
    def _open(self) -> av.container.InputContainer:
        options = {}
        if self.source.startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = self.rtsp_transport
        return av.open(self.source, options=options, timeout=(OPEN_TIMEOUT_S, READ_TIMEOUT_S))

    def _run(self) -> None:
        backoff = 1.0
        index = 0
        while not self._stop.is_set():
            good = 0
            try:
                inp = self._open()
            except (av.FFmpegError, OSError) as exc:
                self._failed(f"cannot open: {exc}", backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            try:
                vin = inp.streams.video[0]
                self.stats.codec = vin.codec_context.name
                remux = (Remuxer(vin, self.relay)
                         if self.relay is not None and vin.codec_context.name == "h264" else None)
                if self.relay is not None and remux is None:
                    log.warning("camera %s: %s is not H.264; no live restream (JPEG only)", self.camera_id,
                                vin.codec_context.name)
                self.stats.status = "online"
                log.info("camera %s: stream open (%s, %s)", self.camera_id, self.source, self.stats.codec)
                tb = float(vin.time_base) if vin.time_base else 0.0
                t_start = time.monotonic()
                pts0: float | None = None
                for pkt in inp.demux(vin):
                    if self._stop.is_set():
                        break
                    if pkt.dts is None or pkt.size == 0:
                        continue
                    if self.is_file and self.realtime and pkt.pts is not None and tb:
                        # Pace a file as a live camera: packet times against the wall clock.
                        t = pkt.pts * tb
                        pts0 = t if pts0 is None else pts0
                        delay = (t - pts0) - (time.monotonic() - t_start)
                        if delay > 0 and self._stop.wait(min(delay, 1.0)):
                            break
                    now = time.time()
                    good += 1
                    backoff = 1.0
                    self.stats.packets += 1
                    self._window.append((time.monotonic(), pkt.size))
                    if pkt.is_keyframe:
                        self.stats.keyframe_at = now
                    if remux is not None:
                        try:
                            remux.push(pkt, now)
                        except (av.FFmpegError, BoxError, ValueError) as exc:
                            self._error(f"remux: {exc}")
                    if self.decode:
                        index = self._decode(vin, pkt, now, index)
                if remux is not None:
                    remux.close()
            except (av.FFmpegError, OSError) as exc:
                self._error(str(exc))
            finally:
                inp.close()
            if self._stop.is_set():
                break
            if self.is_file and self.loop and good:
                continue  # a demo file: start again at once
            if self.is_file and not self.loop:
                self.stats.status = "ended"
                with self._cond:
                    self._cond.notify_all()
                return
            self._failed("stream stopped" if good else "no packets", backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    def _decode(self, vin: av.VideoStream, pkt: av.Packet, now: float, index: int) -> int:
        t0 = time.perf_counter()
        try:
            frames = vin.codec_context.decode(pkt)
        except av.FFmpegError as exc:
            self._error(f"decode: {exc}")
            return index
        for fr in frames:
            self.stats.frames += 1
            mono = time.monotonic()
            if mono < self._next_frame:
                continue  # decoded (the next P-frame needs it) but not converted: nobody analyses it
            # The analytics cadence, without catching up after a stall.
            self._next_frame = max(self._next_frame + self.period, mono - self.period / 2)
            img: np.ndarray = fr.to_ndarray(format="bgr24")
            if img.ndim != 3 or img.shape[0] < 16 or img.shape[1] < 16:
                self.stats.bad_frames += 1
                continue
            index += 1
            dt = (time.perf_counter() - t0) * 1000
            self.stats.decode_ms = dt if index == 1 else 0.9 * self.stats.decode_ms + 0.1 * dt
            self._offer(Frame(img, now, index))
        return index

    def _error(self, why: str) -> None:
        self.stats.stream_errors += 1
        self.stats.last_error = why[:200]
        if self.stats.stream_errors <= 3 or self.stats.stream_errors % 100 == 0:
            log.warning("camera %s: %s [%d errors]", self.camera_id, why, self.stats.stream_errors)

    def _failed(self, why: str, backoff: float) -> None:
        self.stats.reconnects += 1
        self.stats.status = "reconnecting"
        if self.stats.reconnects <= 3 or self.stats.reconnects % 20 == 0:
            log.warning("camera %s: %s; retry in %.0f s [%d reconnects]", self.camera_id, why, backoff,
                        self.stats.reconnects)
        self._stop.wait(backoff)
