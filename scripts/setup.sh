#!/usr/bin/env bash
# Install what the control room needs: system packages it lacks, then the Python environment
# in .venv. Safe to run again; it skips what is already there. Runs without a terminal (CI).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
[ -d /usr/share/fonts/truetype/nanum ] || need_apt+=(fonts-nanum)  # Korean text on the wall
command -v mosquitto >/dev/null || need_apt+=(mosquitto)
if ((${#need_apt[@]})); then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing system packages: ${need_apt[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # Debian starts no services here (no systemd); the app starts its own Redis when needed.
  else
    echo "setup: please install these system packages: ${need_apt[*]} (continuing; the app falls back where it can)" >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.requirements.sha256
want=$(cat requirements*.txt scripts/setup*.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  for extra in scripts/setup_*.sh; do [ -e "$extra" ] && bash "$extra"; done
  echo "$want" > "$stamp"
fi
# The interface's message catalogues (.po -> .mo); the web process also compiles them at start.
scripts/i18n.sh compile >/dev/null
