"""Buses from GTFS-realtime (VehiclePosition + TripUpdate) and static GTFS (routes, shapes, stops)."""
