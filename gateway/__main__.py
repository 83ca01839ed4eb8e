"""`python -m gateway`: the gateway part alone, wired exactly as `python app.py --only gateway`."""

from __future__ import annotations

import sys


def _run() -> int:
    import app

    return app.main(["--only", "gateway", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(_run())
