#!/usr/bin/env bash
# Field-feed adapters: GTFS-realtime bindings, protobuf, paho-mqtt, pymavlink (requirements-feeds.txt).
# Idempotent and non-interactive; called by scripts/setup.sh after `pip install -r requirements.txt`,
# can also be run alone. The MQTT broker (Debian mosquitto) is installed by scripts/setup.sh; the
# adapters start a private one when none answers, so a missing binary only disables that fallback.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=".venv/bin/pip"
# setup.sh runs this only when a requirements file changed; pip skips what is already there.
echo "setup_feeds: installing feed packages (requirements-feeds.txt)"
"$PIP" install -q -r requirements-feeds.txt </dev/null
command -v mosquitto >/dev/null || command -v /usr/sbin/mosquitto >/dev/null || \
  echo "setup_feeds: no mosquitto binary: MQTT sensors need a broker at feeds.sensors.broker_url" >&2
echo "setup_feeds: done"
