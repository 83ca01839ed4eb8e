"""`python -m feeds replay ...`: the integrators' replay tool (feeds/replay). The live feeds run as
`python app.py --only feeds` (README.md)."""

from __future__ import annotations

import sys

USAGE = "usage: python -m feeds replay SOURCE FILE... [--area S,W,N,E] [--clock feed|now]\n"


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "replay":
        sys.stderr.write(USAGE)
        return 2
    from feeds.replay.cli import main as replay_main

    return replay_main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
