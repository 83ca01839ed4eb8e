"""The air-quality adapter: AirKorea JSON -> air layer with CAI, grades, alerts and a 24 h history."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
from pathlib import Path
from typing import Any

import redis

from feeds.adapter import Adapter, Clock, ServiceArea, fetch
from feeds.air import alert, aqi_us, cai, history, msrstn
from feeds.air.airkorea import POLLUTANTS, Row, page_url, parse_page, parse_response
from feeds.air.config import AirConfig
from feeds.air.stations import AirStation, air_stations
from spine.contract import now_ms
from spine.publisher import Publisher

HOUR_MS = 3_600_000
HISTORY_REFRESH_S = 300.0
BACKFILL_FIRST_RETRY_S = 5.0  # a history server that did not answer is asked again after this,
BACKFILL_MAX_RETRY_S = 1800.0  # doubling up to this


def _unreachable(exc: Exception) -> bool:
    """No answer at all (refused, timed out), as opposed to an answer without data for a station."""
    if isinstance(exc, urllib.error.HTTPError):
        return False
    return isinstance(exc, urllib.error.URLError | ConnectionError | TimeoutError)


class AirAdapter(Adapter):
    source = "airkorea"
    layer = "air"

    def __init__(self, client: redis.Redis, cfg: AirConfig, area: ServiceArea | None = None,
                 stations: tuple[AirStation, ...] | None = None, *, clock: Clock | None = None,
                 publisher: Publisher | None = None) -> None:
        super().__init__(client, cfg.contract_s, area, clock=clock, publisher=publisher)
        self.cfg = cfg
        self.url = cfg.url
        self.backfill_url = cfg.backfill_url
        self.stations = {s.name: s for s in (stations or air_stations())}
        self.series: dict[str, dict[int, Row]] = {}
        self._loaded = False
        self._backfilled = False
        self._backfill_done: set[str] = set()
        self._backfill_retry_at = 0.0
        self._backfill_wait = BACKFILL_FIRST_RETRY_S
        # What the history in Redis holds, per station and hour: written again by the Publisher
        # whenever Redis lost it (restart without its data) and every HISTORY_REFRESH_S.
        self.stored: dict[str, dict[int, dict]] = {}
        self.notes: list[str] = []  # what the last poll could not deliver (an incomplete response)
        self._registry_loaded = False
        self.publisher.retain("air:history", self._write_history, refresh_s=HISTORY_REFRESH_S)

    # --- transport ------------------------------------------------------------------------------
    def connect(self) -> None:
        if self.cfg.stations_url and not self._registry_loaded:
            self._load_registry(self.cfg.stations_url)
        if not self._loaded:
            self._load_history()
        self._maybe_backfill()

    def _maybe_backfill(self) -> None:
        """Best effort, once per station: a station whose history is unavailable must not block live
        data (nor re-fetch every station, spending an API key's daily quota, on each retry). But a
        server that does not answer at all (down, or started after us) is not "no history": the
        stations not yet fetched are asked again later, with back-off."""
        if not self.backfill_url or self._backfilled or time.monotonic() < self._backfill_retry_at:
            return
        missing = 0
        for name in self.stations:
            if name in self._backfill_done:
                continue
            quoted = urllib.parse.quote(name) if "://" in self.backfill_url else name
            try:
                self.ingest_rows(self.rows_of(self.backfill_url.replace("{station}", quoted), name))
            except Exception as exc:
                if _unreachable(exc):
                    self._backfill_retry_at = time.monotonic() + self._backfill_wait
                    self.log.warning("24 h history: no answer (%s); asking again in %.0f s", exc,
                                     self._backfill_wait)
                    self._backfill_wait = min(self._backfill_wait * 2, BACKFILL_MAX_RETRY_S)
                    break
                missing += 1
                self.log.debug("history of %s unavailable: %s", name, exc)
            self._backfill_done.add(name)
        else:
            self._backfilled = True
        if missing:
            self.log.warning("24 h history unavailable for %d of %d stations", missing, len(self.stations))
        self.flush()

    def run_once(self) -> None:
        self.notes = []
        self._maybe_backfill()
        if self.url:
            self.poll(self.url)
            self.flush()
        # Flush while waiting for the next poll: the Publisher notices a Redis that lost our stations
        # (and their history) within seconds, not at the next poll ten minutes later.
        deadline = time.monotonic() + self.cfg.period_s
        while not self._stop.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                break
            self._maybe_backfill()  # due only after a history server did not answer
            self.flush()

    def _load_history(self) -> None:
        since = now_ms() - self.cfg.history_hours * HOUR_MS
        for name in self.stations:
            for p in history.load(self.client, name, since):
                try:
                    vals = {k: (None if p.get(k) is None else float(p[k])) for k in POLLUTANTS}
                    self.series.setdefault(name, {})[int(p["t"])] = Row(name, int(p["t"]), vals, {})
                    self.stored.setdefault(name, {})[int(p["t"])] = p
                except (KeyError, TypeError, ValueError):
                    continue
        self._loaded = True

    def poll(self, url: str) -> int:
        """One poll of the measurements: every page (see `rows_of`), then validate and publish."""
        return self.ingest_rows(self.rows_of(url))

    def rows_of(self, url: str, station: str | None = None) -> list[Row]:
        """Every page of one query, up to its totalCount (the measurements of a province, or the 24 h
        of one `station`); a file is one saved response. What ends short of totalCount (a page that
        failed, came back empty, or past max_pages) is kept as far as it goes and noted: rejected as
        `incomplete_response` with how many rows are missing, and kept in `self.notes` (cleared at
        each poll) for whoever reports on it."""
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            return parse_response(fetch(url, timeout=20), self.reject, station)
        what = f"{station}: " if station else ""
        first = parse_page(fetch(page_url(url, 1, self.cfg.page_rows), timeout=20), self.reject, station)
        rows, received = list(first.rows), first.items
        total = first.total_count
        asked = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)).get("numOfRows")
        per_page = first.num_of_rows or (int(asked) if asked and asked.isdigit() and int(asked) > 0
                                         else self.cfg.page_rows)
        if first.ok and total is None:
            self._note("no_total_count", f"{what}the body gives no totalCount; one page read")
        why = ""
        if first.ok and total is not None and received < total:
            pages = math.ceil(total / per_page)
            for n in range(2, pages + 1):
                if n > self.cfg.max_pages:
                    why = f"stopped at max_pages={self.cfg.max_pages} of {pages}"
                    break
                try:
                    page = parse_page(fetch(page_url(url, n, per_page), timeout=20), self.reject, station)
                except Exception as exc:  # keep what earlier pages gave
                    why = f"page {n} failed: {type(exc).__name__}: {exc}"[:200]
                    break
                if not page.ok or page.items == 0:
                    why = f"page {n} {'empty' if page.ok else 'unusable'}"
                    break
                rows.extend(page.rows)
                received += page.items
                if received >= total:
                    break
        if first.ok and total is not None and received < total:
            self._note("incomplete_response", f"{what}{received} of totalCount {total} rows"
                       + (f" ({why})" if why else ""))
        return rows

    def _load_registry(self, url: str) -> None:
        """The stations from a getMsrstnList URL or file, every page up to its totalCount. An answer
        with no station keeps the registry we have (and raises, so the adapter retries)."""
        path = self.cfg.districts_file
        districts = json.loads(Path(path).read_text(encoding="utf-8") if path else
                               msrstn.INCHEON_DISTRICTS.read_text(encoding="utf-8"))["districts"]
        http = urllib.parse.urlsplit(url).scheme in ("http", "https")
        found: list[AirStation] = []
        received, total = 0, None
        for n in range(1, self.cfg.max_pages + 1):
            data = fetch(page_url(url, n, self.cfg.page_rows) if http else url, timeout=20)
            stations, items, page_total = msrstn.parse_msrstn_page(data, districts, self.reject)
            found.extend(stations)
            received += items
            total = page_total if total is None else total
            if not http or items == 0 or total is None or received >= total:
                break
        if total is not None and received < total:
            self._note("incomplete_registry", f"{received} of totalCount {total} stations")
        if not found:
            raise ValueError(f"{url}: no station in the registry")
        self.stations = {s.name: s for s in found}
        self._registry_loaded = True

    def _note(self, reason: str, detail: str) -> None:
        self.notes.append(f"{reason}: {detail}")
        self.reject(reason, detail)
        self.log.warning("%s: %s", reason, detail)

    # --- parse, validate, publish ------------------------------------------------------------------
    def ingest(self, raw: bytes, **context: str) -> int:
        return self.ingest_rows(parse_response(raw, self.reject, context.get("station")))

    def ingest_rows(self, rows: list[Row]) -> int:
        now = int(self.clock.time() * 1000)
        touched: dict[str, list[Row]] = {}
        for row in rows:
            st = self.stations.get(row.station)
            if st is None:
                self.reject("unknown_station", row.station)
                continue
            if row.hour_ms > now + 2 * HOUR_MS:
                self.reject("future_timestamp", f"{row.station} {row.hour_ms}")
                continue
            if row.hour_ms < now - self.cfg.history_hours * HOUR_MS:
                continue  # older than the window we keep: nothing to show
            if not self.in_area(st.lat, st.lon, row.station):
                continue
            self.series.setdefault(row.station, {})[row.hour_ms] = row
            touched.setdefault(row.station, []).append(row)
        if not touched:
            return 0
        with self._lock:
            for name, new_rows in touched.items():
                self._publish_station(self.stations[name], new_rows, now)
        count = sum(len(r) for r in touched.values())
        self.accepted(count, max(r.hour_ms for rs in touched.values() for r in rs))
        return count

    def _hourly(self, series: dict[int, Row], end: int, key: str, hours: int) -> list[float | None]:
        return [(series[t].values.get(key) if t in series else None)
                for t in range(end - (hours - 1) * HOUR_MS, end + 1, HOUR_MS)]

    def evaluate(self, name: str) -> dict:
        """The props for a station from its stored hourly series."""
        series = self.series[name]
        end = max(series)
        row = series[end]
        v = row.values
        pm_avg: dict[str, float | None] = {}
        basis: dict[str, str | None] = {}
        for p in ("pm10", "pm25"):
            est = cai.c24e(p, self._hourly(series, end, p, 12))
            if est is not None:
                pm_avg[p], basis[p] = est, "C24E"
            elif row.api24.get(p) is not None:
                pm_avg[p], basis[p] = row.api24[p], "airkorea_24h"
            else:
                pm_avg[p], basis[p] = v.get(p), ("1h" if v.get(p) is not None else None)
        subs = {p: cai.sub_index(p, pm_avg[p] if p in pm_avg else v.get(p)) for p in POLLUTANTS}
        total = cai.cai(subs)
        # The integrated grade is the CAI's, and only when the CAI exists (AirKorea's rule: PM10, PM2.5,
        # NO2 and O3 all valid; docs/feeds.md). A station with PM2.5 alone gets none, as AirKorea gives
        # khaiValue "-" there; its pollutant grades stay in cai_grades.
        grade = cai.grade_of(total)
        missing = [p for p in cai.REQUIRED if subs.get(p) is None]
        alerts = {p: alert.alert_state(p, self._hourly(series, end, p, 24)) for p in ("pm10", "pm25")}
        props: dict = {
            "data_time": end, "pm10": v["pm10"], "pm25": v["pm25"], "o3": v["o3"], "no2": v["no2"],
            "so2": v["so2"], "co": v["co"],
            "pm10_24h": None if pm_avg["pm10"] is None else round(pm_avg["pm10"], 1),
            "pm25_24h": None if pm_avg["pm25"] is None else round(pm_avg["pm25"], 1),
            "pm_basis": basis, "cai": total, "cai_scale": "KR CAI (통합대기환경지수)",
            "cai_sub": {p: s for p, s in subs.items() if s is not None},
            "cai_grades": {p: cai.grade_of(s) for p, s in subs.items() if s is not None},
            "grade": grade, "cai_missing": missing or None, "flags": dict(row.flags) or None,
            "alert": alerts, "alert_level": alert.worst(list(alerts.values())),
        }
        if self.cfg.us_aqi:
            props["aqi_us"] = aqi_us.aqi(pm_avg["pm25"], pm_avg["pm10"], v["no2"], v["so2"], v["o3"])
        return props

    def _publish_station(self, st: AirStation, new_rows: list[Row], now: int) -> None:
        props = {"station": st.name, "kind": st.kind, "district": st.district_ko, **self.evaluate(st.name)}
        self.publisher.update("air", f"air-{st.name}", st.lat, st.lon, props, ts=props["data_time"])
        points = [{"t": r.hour_ms, **r.values} for r in new_rows]
        latest = max(new_rows, key=lambda r: r.hour_ms)
        for p in points:
            if p["t"] == latest.hour_ms:
                p.update(cai=props["cai"], grade=props["grade"], alert=props["alert_level"],
                         pm10_24h=props["pm10_24h"], pm25_24h=props["pm25_24h"])
        cutoff = now - self.cfg.history_hours * HOUR_MS
        self.series[st.name] = {t: r for t, r in self.series[st.name].items() if t >= cutoff}
        kept = self.stored.setdefault(st.name, {})
        kept.update({p["t"]: p for p in points})
        self.stored[st.name] = {t: p for t, p in kept.items() if t >= cutoff}
        # Written with the layer at the next flush (and retried with it while Redis is away).
        self.publisher.retain("air:history", self._write_history, refresh_s=HISTORY_REFRESH_S)

    def _write_history(self, pipe: Any) -> None:
        for name, points in self.stored.items():
            history.replace(pipe, name, [points[t] for t in sorted(points)])
