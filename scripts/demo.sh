#!/usr/bin/env bash
# The first command: install what is missing, then start the whole demo (Ctrl-C stops it). --demo is
# the demo profile: config/overlays/demo.yaml points the field adapters at the simulated city.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python app.py --demo "$@"
