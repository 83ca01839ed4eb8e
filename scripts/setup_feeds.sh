#!/usr/bin/env bash
# Field-feed adapters: GTFS-realtime bindings, protobuf, paho-mqtt, pymavlink (requirements-feeds.txt).
# Idempotent and non-interactive; called by scripts/setup.sh after `pip install -r requirements.txt`,
# can also be run alone. The MQTT broker (Debian mosquitto) is installed by scripts/setup.sh; the
# adapters start a private one when none answers, so a missing binary only disables that fallback.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=".venv/bin/pip"
PY=".venv/bin/python"
if "$PY" - <<'PY' </dev/null 2>/dev/null; then
import importlib.metadata as m, re, sys
want = {}
for line in open("requirements-feeds.txt", encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    if line:
        name, ver = re.split(r"==", line)
        want[name.strip()] = ver.strip()
sys.exit(any(m.version(n) != v for n, v in want.items()))
PY
  echo "setup_feeds: feed packages already installed"
else
  echo "setup_feeds: installing feed packages (requirements-feeds.txt)"
  "$PIP" install -q -r requirements-feeds.txt </dev/null
fi
command -v mosquitto >/dev/null || command -v /usr/sbin/mosquitto >/dev/null || \
  echo "setup_feeds: no mosquitto binary: MQTT sensors need a broker at feeds.sensors.broker_url" >&2
echo "setup_feeds: done"
