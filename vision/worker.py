"""Vision worker: several cameras per process, one inference thread, more processes for more cores.

Frigate's shape: a reader thread per camera keeps the newest frame; the single analytics loop
visits the cameras whose frame-rate cap allows a new frame, so a busy camera cannot starve the
others and a still one costs only its motion check. `main()` splits the configured cameras over
`vision.workers` processes.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from spine.publisher import Publisher, connect
from vision.config import Camera, VisionConfig, load_vision_config
from vision.frames import FrameSink
from vision.live import LiveSource
from vision.liveout import LiveOutputs
from vision.pipeline import CameraPipeline
from vision.relay import VideoRelay
from vision.snapshots import SnapshotStore
from vision.sources import FrameSource

log = logging.getLogger(__name__)


@dataclass
class CameraRunner:
    camera: Camera
    source: FrameSource | LiveSource
    pipeline: CameraPipeline
    period: float
    relays: list[LiveSource] = field(default_factory=list)  # restream-only (main stream)
    next_due: float = 0.0
    last_index: int = -1
    last_status: str = ""
    status_at: float = 0.0


def build_runners(cfg: VisionConfig, cameras: list[Camera], redis_url: str | None) -> tuple[
        list[CameraRunner], Publisher | None]:
    from vision.detectors import detector_from_config

    vs = cfg.vision
    detector = detector_from_config(vs)  # one model per process, shared by its cameras
    client = connect(redis_url) if redis_url else None
    publisher = Publisher(client, src=f"vision-{mp.current_process().pid}") if client else None
    sink = FrameSink(client) if client else None
    snapshots = SnapshotStore(vs.snapshots_path(), vs.snapshot_max_files, vs.snapshot_max_days)
    runners = []
    for cam in cameras:
        pipe = CameraPipeline(cam, vs, detector, publisher, sink, snapshots)
        relays: list[LiveSource] = []
        src: FrameSource | LiveSource
        live = cam.live_streams()
        if live:
            # One PyAV connection per stream: the substream feeds both analytics and its restream.
            # A privacy camera's raw stream is never relayed: its masked re-encode (liveout) is.
            raw_ok = client is not None and not cam.privacy.enabled
            transport = cam.streams.rtsp_transport if cam.streams else "udp"
            src = LiveSource(cam.id, live["sub"], relay=VideoRelay(client, cam.id, "sub") if raw_ok else None,
                             analytics_fps=cam.fps, rtsp_transport=transport, loop=cam.loop,
                             realtime=cam.realtime)
            if "main" in live and raw_ok:
                relays.append(LiveSource(cam.id, live["main"], relay=VideoRelay(client, cam.id, "main"),
                                         decode=False, rtsp_transport=transport, loop=cam.loop,
                                         realtime=cam.realtime))
            health = src.health
            pipe.stream_health = (lambda h=health: {**h(), "live": True}) if client is not None else health
            if client is not None:
                pipe.live = LiveOutputs(client, cam, vs.frame_max_width)
        else:
            src = FrameSource(cam.id, cam.resolved_source(), is_file=cam.is_file, loop=cam.loop,
                              realtime=cam.realtime)
        runners.append(CameraRunner(cam, src, pipe, 1.0 / cam.fps, relays))
    return runners, publisher


def run_group(redis_url: str | None, camera_ids: list[str] | None = None, stop: threading.Event | None = None,
              progress: Callable[[list[CameraRunner]], None] | None = None, max_frames: int | None = None,
              cfg: VisionConfig | None = None) -> list[CameraRunner]:
    """Run some cameras until `stop` is set (or each processed `max_frames`); returns the runners."""
    cfg = cfg or load_vision_config()
    cams = [c for c in cfg.cameras if c.enabled and (camera_ids is None or c.id in camera_ids)]
    stop = stop or threading.Event()
    runners, publisher = build_runners(cfg, cams, redis_url)
    # Retention holds even for a quiet camera: prune at start and hourly, not only on new snapshots.
    stores = list({id(r.pipeline.snapshots): r.pipeline.snapshots for r in runners
                   if r.pipeline.snapshots is not None}.values())
    for store in stores:
        store.prune()
    pruned_at = time.monotonic()
    for r in runners:
        r.source.start()
        for relay in r.relays:
            relay.start()
        r.pipeline.publish_status("starting")
    last_progress = 0.0
    try:
        while not stop.is_set():
            now = time.monotonic()
            busy = False
            for r in runners:
                st = r.source.stats.status
                if st != r.last_status or (st != "online" and now - r.status_at > 5):
                    r.last_status, r.status_at = st, now
                    r.pipeline.publish_status("offline" if st == "reconnecting" else st)
                if now < r.next_due:
                    continue
                frame = r.source.latest(r.last_index)
                if frame is None:
                    continue
                r.last_index = frame.index
                r.next_due = max(r.next_due + r.period, now)  # the per-camera frame-rate cap
                r.pipeline.process(frame.image, frame.ts)
                if not r.camera.realtime:
                    r.source.mark_taken(frame.index)
                busy = True
            if publisher is not None:
                publisher.flush()
            if progress and now - last_progress >= 1.0:
                last_progress = now
                progress(runners)
            if max_frames and all(r.pipeline.processed >= max_frames or r.source.ended
                                  or r.source.stats.status == "reconnecting" for r in runners):
                break  # bounded runs (CLI --frames, tests): a dead source does not hold them up
            if all(r.source.ended for r in runners):
                break
            if now - pruned_at > 3600:
                pruned_at = now
                for store in stores:
                    store.prune()
            if not busy:
                wait = min((r.next_due for r in runners), default=now + 0.05) - time.monotonic()
                stop.wait(min(0.05, max(0.005, wait)))
    finally:
        # Tell every camera "offline" before waiting on any reader, so a slow one cannot make the
        # parent kill this process before the status is out.
        for r in runners:
            r.source.request_stop()
            for relay in r.relays:
                relay.request_stop()
            r.pipeline.publish_status("offline")
        if publisher is not None:
            publisher.flush()
        for r in runners:
            r.source.stop()
            for relay in r.relays:
                relay.stop()
    return runners


def _child(redis_url: str, camera_ids: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(processName)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_group(redis_url, camera_ids, stop)


def split(cameras: list[Camera], workers: int) -> list[list[str]]:
    groups: list[list[str]] = [[] for _ in range(max(1, min(workers, len(cameras))))]
    for i, cam in enumerate(cameras):
        groups[i % len(groups)].append(cam.id)
    return groups


def main(redis_url: str) -> None:
    """Run every enabled camera of config/cameras.yaml until SIGTERM or Ctrl-C."""
    cfg = load_vision_config()
    cams = [c for c in cfg.cameras if c.enabled]
    if not cams:
        log.warning("vision: no enabled cameras in the configuration; nothing to do")
        return
    demo = None
    if cfg.vision.demo_rtsp is not None and cfg.vision.demo_rtsp.clips:
        from pathlib import Path

        from vision.config import resolve_path
        from vision.rtsp_demo import DemoRtspServer

        d = cfg.vision.demo_rtsp
        try:
            demo = DemoRtspServer({n: Path(resolve_path(f)) for n, f in d.clips.items()}, d.client_port,
                                  d.source_port, d.rtp_start_port).start()
        except (RuntimeError, OSError) as exc:
            log.error("vision: demo RTSP server not started (%s); its cameras stay offline", exc)
    try:
        _main(redis_url, cfg, cams)
    finally:
        if demo is not None:
            demo.stop()


def _main(redis_url: str, cfg: VisionConfig, cams: list[Camera]) -> None:
    groups = split(cams, cfg.vision.workers)
    log.info("vision: %d cameras in %d worker process(es), backend %s, imgsz %d", len(cams), len(groups),
             cfg.vision.backend, cfg.vision.imgsz)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if len(groups) == 1:
        try:
            run_group(redis_url, groups[0], stop, cfg=cfg)
        except KeyboardInterrupt:
            stop.set()
        return
    ctx = mp.get_context("spawn")  # fresh interpreters: torch and threads do not survive fork well
    procs = [ctx.Process(target=_child, args=(redis_url, g), name=f"vision-{i}", daemon=False)
             for i, g in enumerate(groups)]
    for p in procs:
        p.start()
    try:
        while not stop.is_set() and any(p.is_alive() for p in procs):
            stop.wait(1.0)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0")
