"""Sources that give nothing usable back off instead of spinning."""

from __future__ import annotations

import time

from vision.sources import FrameSource


def test_a_file_without_a_single_good_frame_backs_off(tmp_path) -> None:
    broken = tmp_path / "truncated.avi"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00AVI garbage" * 10)
    src = FrameSource("cam-broken", str(broken), is_file=True, loop=True, max_backoff_s=2).start()
    time.sleep(2.0)
    src.stop()
    # Opened a handful of times with backoff (1 s, 2 s, ...), not thousands of times a second.
    assert 1 <= src.stats.reconnects <= 4
    assert src.stats.frames == 0


def test_a_missing_file_is_reported_not_fatal(tmp_path) -> None:
    src = FrameSource("cam-missing", str(tmp_path / "nope.avi"), is_file=True, max_backoff_s=1).start()
    time.sleep(1.5)
    src.stop()
    assert src.stats.reconnects >= 1 and src.stats.status in ("reconnecting", "ended")
