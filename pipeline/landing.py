"""Landing results in ClickHouse, idempotently.

Window rows are inserted with a version; ReplacingMergeTree keeps the latest
row per key, so landing the same input twice leaves every `FINAL` result
unchanged. Coverage and daily tables are then recomputed from what is stored
(not from this run's memory), so several workers, restarts and re-runs all
converge on the same answer.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .coverage import Registry, coverage_of
from .policy import SampleSharePolicy
from .tabulate import link_window_table, measures, metro_window_table
from .trajectory import TargetConfig
from .rows import RowSet
from .warehouse import Warehouse
from .warehouse.base import sql_int, sql_string
from .windows import NS_PER_S, WindowSpec

DAY_S = 86_400


def new_version() -> int:
    """Row versions grow with wall time, so a later landing of a window wins."""
    return time.time_ns()


@dataclass
class Lander:
    warehouse: Warehouse
    policy: SampleSharePolicy
    windows: tuple[WindowSpec, ...]
    registry: Registry = Registry()
    target: TargetConfig = field(default_factory=TargetConfig)
    outlook_interval_s: float = 0.0  # the worker throttles the 30-day outlook refresh
    _span_s: tuple[int, int] | None = field(default=None, init=False, repr=False)
    _outlook_at: float = field(default=-1e18, init=False, repr=False)

    @property
    def daily_spec(self) -> WindowSpec | None:
        """The finest tumbling window that tiles a UTC day: the input of daily rollups."""
        tumbling = [w for w in self.windows if w.length_s == w.hop_s and DAY_S % w.length_s == 0]
        return min(tumbling, key=lambda w: w.length_s) if tumbling else None

    def land_windows(self, metro_rows: pa.Table, link_rows: pa.Table,
                     first_seen_ns: dict[str, int]) -> None:
        self.warehouse.insert("policies", pa.table({"id": [self.policy.id],
                                                    "definition": [self.policy.to_json()]}))
        if first_seen_ns:
            self.warehouse.insert("metros", pa.table({
                "metro": pa.array(list(first_seen_ns), type=pa.string()),
                "first_seen_ns": pa.array(list(first_seen_ns.values()), type=pa.int64())}))
        self.warehouse.insert("link_window", link_rows)
        self.warehouse.insert("metro_window", metro_rows)

    def land_results(self, results: list, index, first_seen_ns: dict[str, int]
                     ) -> tuple[pa.Table, pa.Table]:
        """Tabulate emitted windows and land them; `refresh()` later updates what they affect."""
        version = new_version()
        metro_rows = metro_window_table(results, index, self.policy, version)
        link_rows = link_window_table(results, index, self.policy, version)
        self.land_windows(metro_rows, link_rows, first_seen_ns)
        self.land_paths(index.take_new_paths(), version)
        starts = [w.start_ns // NS_PER_S for w in results]
        if self._span_s is not None:
            starts += list(self._span_s)
        self._span_s = (min(starts), max(starts))
        return metro_rows, link_rows

    def refresh(self) -> tuple[int, int]:
        """Recompute coverage and daily rows for every window landed since the last refresh;
        returns (coverage rows, daily rows) written."""
        if self._span_s is None:
            return 0, 0
        first, last = self._span_s
        self._span_s = None
        written = (self.refresh_coverage(first, last),
                   self.refresh_daily(first - first % DAY_S, last - last % DAY_S))
        if written[1] and time.monotonic() - self._outlook_at >= self.outlook_interval_s:
            self.refresh_outlook()
            self._outlook_at = time.monotonic()
        return written

    def land_paths(self, paths: list[tuple], version: int | None = None) -> int:
        """Land (metro, router, link, site, dc) rows in `netready.link_paths`; returns rows."""
        if not paths:
            return 0
        cols = list(zip(*paths))
        self.warehouse.insert("link_paths", pa.table({
            name: pa.array(list(values), type=pa.string())
            for name, values in zip(("metro", "router", "link", "site", "dc"), cols)} | {
            "version": pa.array([version or new_version()] * len(paths), type=pa.uint64())}))
        return len(paths)

    def land_late(self, batches: list[tuple[pa.Table, int | None, str]]) -> None:
        """Land late samples, given as (rows, watermark_ns when they arrived, source) per batch,
        in one insert: one insert per consumed batch cost more than the rows themselves."""
        tables = [self._late_table(rows, watermark_ns, source) for rows, watermark_ns, source in batches
                  if rows.num_rows]
        if tables:
            self.warehouse.insert("late_samples", pa.concat_tables(tables))

    @staticmethod
    def _late_table(late: pa.Table, watermark_ns: int | None, source: str) -> pa.Table:
        n = late.num_rows
        return pa.table({
            "ts_ns": late["ts_ns"],
            "event_time": pc.cast(pc.divide(late["ts_ns"], NS_PER_S), pa.int64()).cast(
                pa.timestamp("s", tz="UTC")),
            "metro": late["metro"], "router": late["router"], "link": late["link"],
            "rtt_us": late["rtt_us"], "one_way_us": late["one_way_us"],
            "watermark_ns": pa.array([watermark_ns or 0] * n, type=pa.int64()),
            "reason": pa.array(["late: window already emitted"] * n, type=pa.string()),
            "source": pa.array([source] * n, type=pa.string()),
        })

    def first_seen(self) -> dict[str, int]:
        rows = self.warehouse.query("SELECT metro, min(first_seen_ns) AS first_seen_ns "
                                    "FROM netready.metros GROUP BY metro")
        return dict(zip(rows["metro"].to_pylist(), rows["first_seen_ns"].to_pylist()))

    def refresh_coverage(self, start_s: int, end_s: int) -> int:
        """Recompute coverage_window for windows starting in [start_s, end_s]; returns rows written."""
        rows = self.warehouse.query(
            "SELECT toUnixTimestamp(window_start) AS start_s, window_s, hop_s, "
            "groupArray(metro) AS metros, groupArray(compliant) AS verdicts "
            "FROM netready.metro_window FINAL "
            f"WHERE policy = {sql_string(self.policy.id)} "
            f"AND window_start >= toDateTime({sql_int(start_s)}, 'UTC') "
            f"AND window_start <= toDateTime({sql_int(end_s)}, 'UTC') "
            "GROUP BY start_s, window_s, hop_s ORDER BY start_s, window_s, hop_s")
        first_seen = self.first_seen()
        out = {k: [] for k in ("window_start", "window_s", "hop_s", "metros_total",
                               "metros_compliant", "metros_reporting", "coverage")}
        for start, length, hop, metros, verdicts in zip(*(rows[c].to_pylist() for c in rows.column_names)):
            members = self.registry.members(first_seen, (start + length) * NS_PER_S)
            cov = coverage_of(members, {m: bool(v) for m, v in zip(metros, verdicts)})
            for key, value in (("window_start", start), ("window_s", length), ("hop_s", hop),
                               ("metros_total", cov.metros_total),
                               ("metros_compliant", cov.metros_compliant),
                               ("metros_reporting", cov.metros_reporting),
                               ("coverage", cov.coverage)):
                out[key].append(value)
        n = len(out["window_start"])
        self.warehouse.insert("coverage_window", pa.table({
            "window_start": pa.array(out["window_start"], type=pa.int64()).cast(pa.timestamp("s", tz="UTC")),
            "window_s": pa.array(out["window_s"], type=pa.uint32()),
            "hop_s": pa.array(out["hop_s"], type=pa.uint32()),
            "policy": pa.array([self.policy.id] * n, type=pa.string()),
            "metros_total": pa.array(out["metros_total"], type=pa.uint32()),
            "metros_compliant": pa.array(out["metros_compliant"], type=pa.uint32()),
            "metros_reporting": pa.array(out["metros_reporting"], type=pa.uint32()),
            "coverage": pa.array(out["coverage"], type=pa.float64()),
            "registry": pa.array([self.registry.name] * n, type=pa.string()),
            "version": pa.array([new_version()] * n, type=pa.uint64()),
        }))
        return n

    def refresh_daily(self, first_day_s: int, last_day_s: int) -> int:
        """Recompute metro_daily and coverage_daily for UTC days in [first, last] by exact merges."""
        spec = self.daily_spec
        if spec is None:
            return 0
        rows = self.warehouse.query(
            "SELECT metro, toUInt32(toStartOfDay(window_start)) AS day_s, "
            "sum(samples) AS samples, sum(under_threshold) AS under, min(min_us) AS min_us, "
            "max(max_us) AS max_us, sum(sum_us) AS sum_us, count() AS windows, "
            "sum(compliant) AS compliant_windows, "
            "tupleElement(sumMap(hist_bucket, hist_count), 1) AS buckets, "
            "tupleElement(sumMap(hist_bucket, hist_count), 2) AS counts "
            "FROM netready.metro_window FINAL "
            f"WHERE policy = {sql_string(self.policy.id)} AND window_s = {sql_int(spec.length_s)} "
            f"AND hop_s = {sql_int(spec.hop_s)} "
            f"AND window_start >= toDateTime({sql_int(first_day_s)}, 'UTC') "
            f"AND window_start < toDateTime({sql_int(last_day_s + DAY_S)}, 'UTC') "
            "GROUP BY metro, day_s ORDER BY day_s, metro")
        if rows.num_rows == 0:
            return 0
        merged = RowSet.from_sql(rows)
        version = new_version()
        n = rows.num_rows
        daily = {"metro": rows["metro"].cast(pa.string()),
                 "day": pa.array(np.asarray(rows["day_s"].to_pylist(), dtype=np.int64) // DAY_S,
                                 type=pa.int32()).cast(pa.date32()),
                 "policy": pa.array([self.policy.id] * n, type=pa.string()),
                 **measures(merged, self.policy),
                 "windows": pa.array(rows["windows"].to_pylist(), type=pa.uint32()),
                 "compliant_windows": pa.array(rows["compliant_windows"].to_pylist(), type=pa.uint32()),
                 "version": pa.array([version] * n, type=pa.uint64())}
        site_verdicts = getattr(self.policy, "daily_verdicts", None)
        if site_verdicts is not None:  # a site-coverage policy judges days from its site rows
            day_s = np.asarray(rows["day_s"].to_pylist(), dtype=np.int64)
            verdicts = site_verdicts(self.warehouse, rows["metro"].to_pylist(), day_s.tolist())
            daily["compliant"] = pa.array(np.asarray(verdicts, dtype=np.uint8))
        daily_table = pa.table(daily)
        self.warehouse.insert("metro_daily", daily_table)
        self._coverage_daily(daily_table, version)
        return n

    def refresh_outlook(self) -> None:
        """Recompute coverage_trajectory and metro_readiness from the daily tables just written."""
        from . import readiness, trajectory

        trajectory.refresh(self.warehouse, self.policy.id, self.target)
        readiness.refresh(self.warehouse, self.policy, self.daily_spec, self.registry)

    def _coverage_daily(self, daily: pa.Table, version: int) -> None:
        first_seen = self.first_seen()
        by_day: dict[int, dict[str, bool]] = {}
        days = pc.cast(daily["day"], pa.int32()).to_pylist()
        for day, metro, verdict in zip(days, daily["metro"].to_pylist(), daily["compliant"].to_pylist()):
            by_day.setdefault(day, {})[metro] = bool(verdict)
        cols = {k: [] for k in ("day", "metros_total", "metros_compliant", "metros_reporting", "coverage")}
        for day, verdicts in sorted(by_day.items()):
            members = self.registry.members(first_seen, (day + 1) * DAY_S * NS_PER_S)
            cov = coverage_of(members, verdicts)
            for key, value in (("day", day), ("metros_total", cov.metros_total),
                               ("metros_compliant", cov.metros_compliant),
                               ("metros_reporting", cov.metros_reporting), ("coverage", cov.coverage)):
                cols[key].append(value)
        n = len(cols["day"])
        self.warehouse.insert("coverage_daily", pa.table({
            "day": pa.array(cols["day"], type=pa.int32()).cast(pa.date32()),
            "policy": pa.array([self.policy.id] * n, type=pa.string()),
            "metros_total": pa.array(cols["metros_total"], type=pa.uint32()),
            "metros_compliant": pa.array(cols["metros_compliant"], type=pa.uint32()),
            "metros_reporting": pa.array(cols["metros_reporting"], type=pa.uint32()),
            "coverage": pa.array(cols["coverage"], type=pa.float64()),
            "registry": pa.array([self.registry.name] * n, type=pa.string()),
            "version": pa.array([version] * n, type=pa.uint64()),
        }))
