"""Check the configuration without starting anything: `python -m config [--profile demo]`.

Exit status 0 and a summary when the whole root (every file, overlay, CC_* overrides, references
between files) is valid; 2 and one line per problem otherwise, as `app.py` would at start.
"""

from __future__ import annotations

import argparse
import os
import sys

from config.root import load_config
from config.settings import ConfigError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m config", description=__doc__.splitlines()[0])
    p.add_argument("--profile", help="overlay(s) to apply, as CC_PROFILE (comma-separated)")
    args = p.parse_args(argv)
    if args.profile is not None:
        os.environ["CC_PROFILE"] = args.profile
    try:
        root = load_config()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    s = root.settings
    print(f"configuration OK: profiles [{', '.join(root.profiles) or 'none'}], {len(s.walls)} walls, "
          f"{len(root.vision.cameras)} cameras, {len(root.feeds.sensors.sensors)} registered sensors, "
          f"simulator {'on' if s.simulator.enabled else 'off'}")
    for f in root.files:
        print(f"  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
