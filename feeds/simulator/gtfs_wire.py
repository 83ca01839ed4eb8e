"""The simulated fleet as a real GTFS feed: static GTFS (zip) and GTFS-realtime FeedMessages."""

from __future__ import annotations

import time

from google.transit import gtfs_realtime_pb2 as rt

from feeds.simulator.buses import Bus, BusFleet
from feeds.transit.static import write_static


def route_id(fleet: BusFleet, bus: Bus) -> str:
    return f"r{fleet.routes.index(bus.route):02d}"


def trip_id(bus: Bus) -> str:
    # One trip per vehicle and direction: delays are per vehicle, so trips must not be shared.
    return f"{bus.id}-d{0 if bus.direction > 0 else 1}"


def next_stop_index(bus: Bus) -> int:
    ahead = [i for i, s in enumerate(bus.route.stop_at) if (s - bus.d) * bus.direction > 0]
    return min(ahead, key=lambda i: abs(bus.route.stop_at[i] - bus.d)) if ahead else 0


def static_zip(fleet: BusFleet) -> bytes:
    routes, shapes, stops, trips = [], [], [], []
    for ri, route in enumerate(fleet.routes):
        rid = f"r{ri:02d}"
        routes.append({"route_id": rid, "agency_id": "sim", "route_short_name": route.id,
                       "route_long_name": f"{route.stops[0].name} - {route.stops[-1].name}",
                       "route_type": 3, "route_color": "2E7D32" if route.id.startswith("M") else "1565C0"})
        for k, (lat, lon) in enumerate(route.points):
            shapes.append({"shape_id": f"shp-{rid}", "shape_pt_lat": round(lat, 6),
                           "shape_pt_lon": round(lon, 6), "shape_pt_sequence": k})
        for k, stop in enumerate(route.stops):
            stops.append({"stop_id": f"s{rid}-{k}", "stop_name": stop.name, "stop_lat": round(stop.lat, 6),
                          "stop_lon": round(stop.lon, 6)})
    for bus in fleet.buses:
        rid = route_id(fleet, bus)
        for d in (0, 1):
            trips.append({"route_id": rid, "service_id": "daily", "trip_id": f"{bus.id}-d{d}",
                          "direction_id": d, "shape_id": f"shp-{rid}"})
    agency = [{"agency_id": "sim", "agency_name": "Incheon demo buses", "agency_url": "https://example.invalid",
               "agency_timezone": "Asia/Seoul"}]
    return write_static({"agency.txt": agency, "routes.txt": routes, "shapes.txt": shapes,
                         "stops.txt": stops, "trips.txt": trips})


def _header(msg: rt.FeedMessage) -> None:
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.incrementality = rt.FeedHeader.FULL_DATASET
    msg.header.timestamp = int(time.time())


def vehicle_positions(fleet: BusFleet, stamps: dict[str, int]) -> bytes:
    msg = rt.FeedMessage()
    _header(msg)
    route_ids = {id(r): f"r{i:02d}" for i, r in enumerate(fleet.routes)}
    now = int(time.time())
    for bus in fleet.buses:
        lat, lon, props = fleet.state(bus)
        ent = msg.entity.add()
        ent.id = bus.id
        v = ent.vehicle
        v.vehicle.id = bus.id
        v.vehicle.label = bus.route.id
        v.trip.trip_id = trip_id(bus)
        v.trip.route_id = route_ids[id(bus.route)]
        v.trip.direction_id = 0 if bus.direction > 0 else 1
        v.position.latitude = lat
        v.position.longitude = lon
        v.position.bearing = props["heading"]
        v.position.speed = 0.0 if bus.dwell_s > 0 else bus.speed_ms
        v.stop_id = f"s{route_ids[id(bus.route)]}-{next_stop_index(bus)}"
        v.current_status = (rt.VehiclePosition.STOPPED_AT if bus.dwell_s > 0
                            else rt.VehiclePosition.IN_TRANSIT_TO)
        v.occupancy_status = bus.occupancy
        v.timestamp = stamps.get(bus.id, now)
    return msg.SerializeToString()


def trip_updates(fleet: BusFleet) -> bytes:
    msg = rt.FeedMessage()
    _header(msg)
    route_ids = {id(r): f"r{i:02d}" for i, r in enumerate(fleet.routes)}
    for bus in fleet.buses:
        ent = msg.entity.add()
        ent.id = f"tu-{bus.id}"
        tu = ent.trip_update
        tu.trip.trip_id = trip_id(bus)
        tu.trip.route_id = route_ids[id(bus.route)]
        tu.vehicle.id = bus.id
        stu = tu.stop_time_update.add()
        stu.stop_sequence = next_stop_index(bus)
        stu.arrival.delay = round(bus.delay_s)
    return msg.SerializeToString()
