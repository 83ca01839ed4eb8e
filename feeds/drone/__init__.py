"""Drones: MAVLink 2 telemetry over UDP (pymavlink) with the camera's ground footprint."""
