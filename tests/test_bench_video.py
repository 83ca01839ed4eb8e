"""bench/video.py's own measuring parts: the in-page box reader that dates each presented frame by its
exact presentation time, and the camera-like clip without B-frames.

The reader (APPEND_HOOK_JS) wraps SourceBuffer.prototype.appendBuffer in real headless Chromium and is
fed a real fragmented MP4 of the set-up's High-profile clip (B-frames: presentation and decode order
differ), cut into init and media segments by vision/fmp4.py as the relay cuts them. For every frame
its composition offset (presentation - decode time) must be ffprobe's, and its decode time the
relay's `m`. A reader that took the decode time for the presentation time (what the page's own
figure does) fails here."""

from __future__ import annotations

import importlib.util
import itertools
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from config.settings import REPO_ROOT
from tests.webtools import CheckedBrowser, chromium
from vision.fmp4 import Splitter

pytestmark = pytest.mark.browser

RAW = REPO_ROOT / "data" / "media" / "vtest.avi"  # the set-up's source clip
FRAMES = 40


def bench_video():
    spec = importlib.util.spec_from_file_location("bench_video", REPO_ROOT / "bench" / "video.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def need_media() -> None:
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        pytest.skip("ffmpeg not installed (scripts/setup_vision.sh)")
    if not RAW.exists():
        pytest.fail(f"{RAW} missing: run scripts/setup_vision.sh")


def b_frame_clip(out: Path) -> Path:
    """A High-profile clip with B-frames (the set-up's clips have none, as most cameras; some send them)."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(RAW), "-an", "-t", "6",
                    "-vf", "scale=384:-2", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
                    "-bf", "2", "-pix_fmt", "yuv420p", "-g", "10", "-r", "10", str(out)],
                   check=True, timeout=120)
    return out


def probe_packets(path: Path) -> list[tuple[float, float]]:
    """(pts, dts) in seconds of the first FRAMES packets, in decode order."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=pts_time,dts_time", "-of", "json", str(path)],
                         capture_output=True, check=True, text=True).stdout
    return [(float(p["pts_time"]), float(p["dts_time"])) for p in json.loads(out)["packets"][:FRAMES]]


def fragments(src: Path, out: Path) -> tuple[bytes, list[bytes]]:
    """The clip remuxed (no re-encoding) as the relay's fMP4: one moof+mdat per frame."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), "-an", "-c", "copy",
                    "-frames:v", str(FRAMES), "-movflags", "empty_moov+default_base_moof+frag_every_frame",
                    "-f", "mp4", str(out)], check=True, timeout=60)
    segs = Splitter().feed(out.read_bytes())
    init = [s.data for s in segs if s.kind == "init"]
    media = [s.data for s in segs if s.kind == "media"]
    assert len(init) == 1 and len(media) == FRAMES
    return init[0], media


def read_in_page(browser: CheckedBrowser, init: bytes, media: list[bytes]) -> list[list[float]]:
    """What the wrapped appendBuffer records, [presentation s, decode s] per media segment."""
    page = browser.new_page()
    page.add_init_script(bench_video().APPEND_HOOK_JS)
    page.goto("about:blank")
    frames = page.evaluate("""(bufs) => {
        // A stand-in `this`: the reader keeps its state on it, then the real method refuses it.
        const sb = {};
        for (const b of bufs) {
          try { SourceBuffer.prototype.appendBuffer.call(sb, new Uint8Array(b)); } catch (e) { /* refused */ }
        }
        return sb.__bench ? sb.__bench.frames : null;
    }""", [list(init), *[list(m) for m in media]])
    page.close()
    return frames


def test_the_box_reader_gives_each_frame_its_presentation_time_with_b_frames(tmp_path: Path) -> None:
    need_media()
    init, media = fragments(b_frame_clip(tmp_path / "b.mp4"), tmp_path / "frag.mp4")
    expected = probe_packets(tmp_path / "frag.mp4")
    reorder = [round(p - d, 3) for p, d in expected]
    assert any(r != reorder[0] for r in reorder), "the clip should have B-frames"
    with chromium() as browser:
        frames = read_in_page(browser, init, media)
        browser.errors.assert_clean()
    assert frames is not None and len(frames) == FRAMES
    # Per frame: presentation - decode time as ffprobe reads it (the edit list's shift cancels out).
    assert [round(p - d, 3) for p, d in frames] == reorder
    # Decode times step by one frame (10 fps), as the relay's `m` (tfdt / timescale) does.
    steps = {round(b[1] - a[1], 3) for a, b in itertools.pairwise(frames)}
    assert steps == {0.1}


def test_the_walls_clip_has_no_b_frames_and_a_keyframe_a_second(tmp_path: Path) -> None:
    need_media()
    clip = bench_video().no_bframes_clip(tmp_path / "nob.mp4")
    info = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=codec_name,has_b_frames,width,r_frame_rate", "-of", "json", str(clip)],
        capture_output=True, check=True, text=True).stdout)["streams"][0]
    assert info == {"codec_name": "h264", "width": 384, "r_frame_rate": "10/1", "has_b_frames": 0}
    pkts = probe_packets(clip)
    assert all(abs(p - d) < 1e-6 for p, d in pkts)  # decode order is presentation order
    keys = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                           "packet=flags", "-of", "csv=p=0", "-read_intervals", "%+3", str(clip)],
                          capture_output=True, check=True, text=True).stdout.split()
    assert [i for i, f in enumerate(keys) if f.startswith("K")][:3] == [0, 10, 20]  # GOP 10 = 1 s
