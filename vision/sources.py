"""Frame sources through OpenCV: files, RTSP/HTTP streams, USB cameras, with reconnects.

A `FrameSource` reads in its own thread and keeps only the newest frame, because a live stream
must be drained continuously (or OpenCV's buffer lags seconds behind) while analytics run at a
lower rate. Files are played at their own frame rate when `realtime`, like a live camera, and
loop for the demo. Failures are counted and logged; the thread never dies of a bad frame.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    image: np.ndarray
    ts: float  # source time, epoch seconds
    index: int  # frames read since start (also counts frames nobody processed)


@dataclass
class SourceStats:
    frames: int = 0
    bad_frames: int = 0
    reconnects: int = 0
    status: str = "starting"  # starting, online, reconnecting, ended
    decode_ms: float = 0.0  # moving average


def open_capture(source: str | int) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(source)
    if isinstance(source, str) and "://" in source:
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep latency low on streams
    return cap


def valid_frame(img: np.ndarray | None) -> bool:
    return (img is not None and img.ndim == 3 and img.shape[2] == 3
            and img.shape[0] >= 16 and img.shape[1] >= 16)


class LatestFrameReader:
    """A camera reader thread that keeps only the newest frame: the consumer side every source
    shares (start, stop, latest). A subclass reads in `_run` and hands each frame to `_offer`."""

    thread_prefix = "src"
    join_timeout_s = 5.0  # how long stop() waits for a read in progress (a stalled RTSP read)

    def __init__(self, camera_id: str, stats: SourceStats) -> None:
        self.camera_id = camera_id
        self.stats = stats
        self._latest: Frame | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> LatestFrameReader:
        self._thread = threading.Thread(target=self._run, name=f"{self.thread_prefix}-{self.camera_id}",
                                        daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the reader to end without waiting for it (a stalled RTSP read can take seconds)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def stop(self) -> None:
        self.request_stop()
        if self._thread:
            self._thread.join(timeout=self.join_timeout_s)

    def latest(self, after_index: int = -1, timeout: float = 0.0) -> Frame | None:
        """The newest frame if it is newer than `after_index` (waiting up to `timeout`)."""
        with self._cond:
            if timeout and (self._latest is None or self._latest.index <= after_index):
                self._cond.wait(timeout)
            f = self._latest
        return f if f is not None and f.index > after_index else None

    @property
    def ended(self) -> bool:
        return self.stats.status == "ended"

    def _offer(self, frame: Frame) -> None:
        with self._cond:
            self._latest = frame
            self._cond.notify_all()


class FrameSource(LatestFrameReader):
    def __init__(self, camera_id: str, source: str | int, *, is_file: bool, loop: bool = True,
                 realtime: bool = True, max_backoff_s: float = 30.0) -> None:
        super().__init__(camera_id, SourceStats())
        self.source = source
        self.is_file = is_file
        self.loop = loop
        self.realtime = realtime
        self.max_backoff_s = max_backoff_s

    # ---- reader thread -------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = 1.0
        index = 0
        while not self._stop.is_set():
            cap = open_capture(self.source)
            if not cap.isOpened():
                self._failed(f"cannot open {self.source!r}", backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
            period = 1.0 / fps if self.is_file and self.realtime and 0 < fps <= 120 else 0.0
            self.stats.status = "online"
            log.info("camera %s: source open (%s, %.1f fps)", self.camera_id, self.source, fps)
            next_at = time.monotonic()
            bad_run = 0
            good_this_pass = 0
            while not self._stop.is_set():
                t0 = time.perf_counter()
                ok, img = cap.read()
                dt = (time.perf_counter() - t0) * 1000
                if not ok:
                    if self.is_file and bad_run == 0:
                        break  # end of file
                    bad_run += 1
                    self.stats.bad_frames += 1
                    if bad_run >= 25:
                        break  # a stream that keeps failing: reopen it
                    continue
                if not valid_frame(img):
                    self.stats.bad_frames += 1
                    bad_run += 1
                    if bad_run >= 25:
                        break
                    continue
                bad_run = 0
                good_this_pass += 1
                backoff = 1.0
                index += 1
                self.stats.frames += 1
                self.stats.decode_ms = dt if self.stats.frames == 1 else 0.9 * self.stats.decode_ms + 0.1 * dt
                self._offer(Frame(img, time.time(), index))
                if period:
                    next_at += period
                    delay = next_at - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)
                    else:
                        next_at = time.monotonic()  # fell behind: do not try to catch up
                elif self.is_file:
                    # Not realtime: let the consumer take each frame before reading on.
                    with self._cond:
                        while not self._stop.is_set() and self._latest is not None \
                                and self._latest.index == index and not self._taken(index):
                            self._cond.wait(0.5)
            cap.release()
            if self._stop.is_set():
                break
            if self.is_file and not self.loop:
                self.stats.status = "ended"
                with self._cond:
                    self._cond.notify_all()
                return
            if not self.is_file or good_this_pass == 0:
                # A stream that stopped, or a file without one good frame (empty, truncated,
                # corrupt): wait before reopening instead of spinning on it.
                self._failed(f"{'stream' if not self.is_file else 'file'} {self.source!r} gave no frames"
                             if good_this_pass == 0 else f"stream {self.source!r} stopped", backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
        self.stats.status = "ended" if self.stats.status != "reconnecting" else self.stats.status

    _taken_index = -1

    def _taken(self, index: int) -> bool:
        return self._taken_index >= index

    def mark_taken(self, index: int) -> None:
        """Non-realtime file playback: the consumer processed this frame, read the next."""
        with self._cond:
            self._taken_index = index
            self._cond.notify_all()

    def _failed(self, why: str, backoff: float) -> None:
        self.stats.reconnects += 1
        self.stats.status = "reconnecting"
        if self.stats.reconnects <= 3 or self.stats.reconnects % 20 == 0:
            log.warning("camera %s: %s; retry in %.0f s [%d reconnects]", self.camera_id, why, backoff,
                        self.stats.reconnects)
        self._stop.wait(backoff)
