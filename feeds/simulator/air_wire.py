"""The simulated air network as AirKorea real-time JSON (every value a string, "-" for no data)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from feeds.simulator.air import AirNetwork

KST_OFFSET = timedelta(hours=9)
HOURS_KEPT = 24


def _hour_floor(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def data_time(hour_utc: datetime) -> str:
    kst = hour_utc + KST_OFFSET
    return kst.strftime("%Y-%m-%d %H:00")


class AirKoreaWire:
    """Hourly rows per station, the last 24 hours, made on first need and then once an hour."""

    def __init__(self, network: AirNetwork, seed: int) -> None:
        self.network = network
        self.rng = random.Random(seed + 7)
        self.hours: dict[datetime, list[dict]] = {}

    def _item(self, hour: datetime, name: str, props: dict) -> dict:
        def s(v: float, fmt: str) -> str:
            return fmt.format(v)
        item = {"stationName": name, "mangName": props["kind"], "dataTime": data_time(hour),
                "pm10Value": s(props["pm10"], "{:.0f}"), "pm25Value": s(props["pm25"], "{:.0f}"),
                "o3Value": s(props["o3"], "{:.3f}"), "no2Value": s(props["no2"], "{:.3f}"),
                "so2Value": s(0.002 + self.rng.random() * 0.002, "{:.3f}"),
                "coValue": s(0.3 + self.rng.random() * 0.3, "{:.1f}"),
                "pm10Flag": None, "pm25Flag": None, "o3Flag": None, "no2Flag": None, "so2Flag": None,
                "coFlag": None}
        if self.rng.random() < 0.02:  # now and then a station is being serviced: no data, not zero
            item["pm25Value"], item["pm25Flag"] = "-", "점검및교정"
        return item

    def ensure(self, now: datetime | None = None) -> datetime:
        latest = _hour_floor(now or datetime.now(UTC))
        start = latest - timedelta(hours=HOURS_KEPT - 1)
        h = max(self.hours) + timedelta(hours=1) if self.hours else start
        while h <= latest:
            self.hours[h] = [self._item(h, name, props) for name, _, _, props in self.network.readings(h)]
            h += timedelta(hours=1)
        for old in [k for k in self.hours if k < start]:
            del self.hours[old]
        return latest

    def _wrap(self, items: list[dict]) -> bytes:
        body = {"response": {"header": {"resultCode": "00", "resultMsg": "NORMAL_CODE"},
                             "body": {"totalCount": len(items), "items": items, "pageNo": 1,
                                      "numOfRows": len(items)}}}
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def province(self) -> bytes:
        """getCtprvnRltmMesureDnsty?sidoName=인천: the latest row of every station."""
        return self._wrap(self.hours[self.ensure()])

    def station(self, name: str) -> bytes:
        """getMsrstnAcctoRltmMesureDnsty?stationName=..&dataTerm=DAILY: 24 rows, newest first,
        without stationName (as the real service answers)."""
        self.ensure()
        rows = []
        for h in sorted(self.hours, reverse=True):
            for item in self.hours[h]:
                if item["stationName"] == name:
                    rows.append({k: v for k, v in item.items() if k != "stationName"})
        return self._wrap(rows)
