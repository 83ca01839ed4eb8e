"""Frigate NVR servers as a CCTV source: MQTT reviews/events -> camera events (see docs/feeds.md)."""
