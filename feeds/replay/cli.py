"""Command line of the replay tool (see feeds/replay/__init__.py)."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import msgspec

from feeds.replay.run import SOURCES, UsageError, read_files, replay

PROG = "python -m feeds replay"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one readable line, exit status 2
        sys.stderr.write(f"{PROG}: {message}\n")
        raise SystemExit(2)


def parse_area(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    if len(parts) != 4:
        raise UsageError(f"--area wants S,W,N,E (4 numbers), got {text!r}")
    try:
        s, w, n, e = (float(p) for p in parts)
    except ValueError:
        raise UsageError(f"--area wants S,W,N,E numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in (s, w, n, e)) or not (-90 <= s < n <= 90) \
            or not (-180 <= w < e <= 180):
        raise UsageError(f"--area {text}: needs -90 <= S < N <= 90 and -180 <= W < E <= 180")
    return s, w, n, e


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Feed captured files through the live adapters and print what the "
                "control room would show (one JSON line per entity update, then a summary). Publishes "
                "nothing.")
    p.add_argument("source", help="one of: " + ", ".join(SOURCES))
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--area", help="service area box S,W,N,E instead of the configured one")
    p.add_argument("--clock", choices=("feed", "now"), default="feed",
                   help="feed (default): the capture's own time; now: wall time")
    p.add_argument("--config-dir", type=Path, default=None, help="configuration root (default: config/)")
    p.add_argument("-v", "--verbose", action="store_true", help="log the adapters' warnings on stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.CRITICAL,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    out = sys.stdout.buffer

    def emit(line: dict[str, Any]) -> None:
        out.write(msgspec.json.encode(line) + b"\n")

    try:
        if args.source not in SOURCES:
            raise UsageError(f"unknown source {args.source!r}: one of {', '.join(SOURCES)}")
        if args.source == "frigate":
            from feeds.replay.frigate import available

            if not available():
                raise UsageError("frigate: not available yet (feeds/frigate/adapter.py is missing)")
        box = parse_area(args.area) if args.area else None
        files = read_files(args.source, args.files)
        cfg = _config(args.config_dir)
        area = _area(cfg, box)
        result = replay(args.source, files, cfg, area, args.clock, emit)
        emit(result)
        out.flush()
    except UsageError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 2
    except BrokenPipeError:  # `| head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    return 0


def _config(config_dir: Path | None) -> Any:
    from config.root import load_config

    try:
        return load_config(config_dir, check_references=False).feeds
    except SystemExit as exc:  # the loader printed its one line per problem
        raise UsageError("the configuration did not load (see above)") from exc
    except Exception as exc:
        raise UsageError(f"the configuration did not load: {type(exc).__name__}: {exc}") from exc


def _area(cfg: Any, box: tuple[float, float, float, float] | None) -> Any:
    from spine.geography import service_area

    sa = cfg.service_area
    try:
        if box is not None:
            return service_area(sa.buffer_deg, None, box)
        return service_area(sa.buffer_deg, sa.boundary_file, sa.box)
    except Exception as exc:
        raise UsageError(f"the service area did not load: {type(exc).__name__}: {exc}") from exc
