"""`python -m feeds replay SOURCE FILE...`: captured feed data through the live adapters, nothing published.

An integrator with a capture (GTFS-realtime `.pb` files, AirKorea JSON bodies, a MAVLink `.tlog` or raw
stream, a recorded MQTT log) sees what the control room would show: one JSON line per entity update the
adapter would publish, then a summary (accepted, rejected by reason, feed health, notes). The adapters
are the live ones, given a capturing publisher and a clock that runs on the capture's own time
(`--clock feed`, default) or on wall time (`--clock now`). See docs/feeds.md, "Replay captured feeds".
"""
