"""Which metros are furthest from the 1 ms circle, and which links hold them back.

As of the newest day in `metro_daily` (for one policy), over the `days` (30)
UTC days ending that day, per metro in the registry:

- `share_under` = sum(under_threshold) / sum(samples) of the metro's daily rows
  (exact counts), `samples` their sum;
- `p99_us` read (nearest rank, clamped to the exact min and max) from the exact
  merge of the daily histograms (`sumMap(hist_bucket, hist_count)`), and
  `gap_us = p99_us - threshold_us` (negative = headroom);
- `trend_share_per_day`: Theil–Sen slope of the daily share against the day
  (None with fewer than two days);
- `compliant_days_30`: days whose verdict was compliant;
- the `worst_links` (3): the metro's links with the lowest share under threshold
  over the same days, from the tumbling `link_window` rows (the family daily
  rollups use, 60 s by default), ties by router and link, with their share and p99.

Ranking, worst first: registered metros without data in the period, then by
share under threshold (ascending), p99 (descending), metro name.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import pyarrow as pa

from .coverage import Registry
from .histogram import quantile
from .policy import SampleSharePolicy
from .trajectory import theil_sen
from .warehouse import Warehouse
from .warehouse.base import sql_int, sql_string
from .windows import NS_PER_S, WindowSpec

DAY_S = 86_400
DEFAULT_DAYS = 30
DEFAULT_WORST_LINKS = 3


@dataclass(frozen=True)
class LinkShare:
    router: str
    link: str
    samples: int
    share_under: float
    p99_us: float


@dataclass
class MetroReadiness:
    metro: str
    days: int
    samples: int
    share_under: float
    p99_us: float | None
    gap_us: float | None
    trend_share_per_day: float | None
    compliant_days_30: int
    worst_links: list[LinkShare] = field(default_factory=list)
    rank: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Readiness:
    policy_id: str
    as_of: date | None
    period_days: int
    metros: list[MetroReadiness]

    def to_dict(self) -> dict:
        return {"as_of": str(self.as_of) if self.as_of else None, "period_days": self.period_days,
                "metros": [m.to_dict() for m in self.metros]}


def _first_seen(warehouse: Warehouse) -> dict[str, int]:
    rows = warehouse.query("SELECT metro, min(first_seen_ns) AS first_seen_ns FROM netready.metros GROUP BY metro")
    return dict(zip(rows["metro"].to_pylist(), rows["first_seen_ns"].to_pylist()))


def compute(warehouse: Warehouse, policy: SampleSharePolicy, spec: WindowSpec | None = WindowSpec(60, 60),
            registry: Registry = Registry(), days: int = DEFAULT_DAYS,
            worst_links: int = DEFAULT_WORST_LINKS) -> Readiness:
    """The ranking as of the newest day of data; `spec` is the tumbling link-window family to read."""
    pid = sql_string(policy.id)
    newest = warehouse.query("SELECT count() AS n, toString(max(day)) AS last FROM netready.metro_daily FINAL "
                             f"WHERE policy = {pid}")
    if not newest["n"][0].as_py():
        return Readiness(policy.id, None, days, [])
    as_of = date.fromisoformat(newest["last"][0].as_py())
    first = as_of - timedelta(days=days - 1)
    rows = warehouse.query(
        "SELECT metro, groupArray(toString(day)) AS day_list, groupArray(share_under) AS shares, "
        "sum(samples) AS samples, sum(under_threshold) AS under, sum(compliant) AS compliant_days, "
        "min(min_us) AS min_us, max(max_us) AS max_us, "
        "tupleElement(sumMap(hist_bucket, hist_count), 1) AS buckets, "
        "tupleElement(sumMap(hist_bucket, hist_count), 2) AS counts "
        f"FROM netready.metro_daily FINAL WHERE policy = {pid} "
        f"AND day >= toDate({sql_string(first.isoformat())}) AND day <= toDate({sql_string(as_of.isoformat())}) "
        "GROUP BY metro")
    end_s = (as_of.toordinal() - date(1970, 1, 1).toordinal() + 1) * DAY_S
    members = registry.members(_first_seen(warehouse), end_s * NS_PER_S)
    found: dict[str, MetroReadiness] = {}
    for r in rows.to_pylist():
        if r["metro"] not in members:
            continue
        p99 = quantile(r["buckets"], r["counts"], 0.99, r["min_us"], r["max_us"]) if r["samples"] else None
        fit = theil_sen([date.fromisoformat(d).toordinal() for d in r["day_list"]], r["shares"])
        found[r["metro"]] = MetroReadiness(
            metro=r["metro"], days=len(r["day_list"]), samples=r["samples"],
            share_under=r["under"] / r["samples"] if r["samples"] else 0.0,
            p99_us=p99, gap_us=None if p99 is None else p99 - policy.threshold_us,
            trend_share_per_day=fit.slope if fit else None, compliant_days_30=r["compliant_days"])
    for metro in members - found.keys():
        found[metro] = MetroReadiness(metro, 0, 0, 0.0, None, None, None, 0)
    if spec is not None and worst_links > 0:
        start_s = end_s - days * DAY_S
        for metro, links in _worst_links(warehouse, policy, spec, start_s, end_s, worst_links).items():
            if metro in found:
                found[metro].worst_links = links
    ranked = sorted(found.values(), key=lambda m: (m.samples > 0, m.share_under,
                                                   -(m.p99_us if m.p99_us is not None else math.inf),
                                                   m.metro))
    for i, m in enumerate(ranked):
        m.rank = i + 1
    return Readiness(policy.id, as_of, days, ranked)


def _worst_links(warehouse: Warehouse, policy: SampleSharePolicy, spec: WindowSpec, start_s: int, end_s: int,
                 per_metro: int) -> dict[str, list[LinkShare]]:
    """Per metro, the `per_metro` links with the lowest share under threshold in [start_s, end_s)."""
    where = (f"WHERE policy = {sql_string(policy.id)} AND window_s = {sql_int(spec.length_s)} "
             f"AND hop_s = {sql_int(spec.hop_s)} "
             f"AND window_start >= toDateTime({sql_int(start_s)}, 'UTC') "
             f"AND window_start < toDateTime({sql_int(end_s)}, 'UTC')")
    # Cheap pass over counts first; histograms are merged only for the links kept.
    counts = warehouse.query(
        "SELECT toString(metro) AS metro, toString(router) AS router, link, sum(samples) AS samples, "
        f"sum(under_threshold) AS under FROM netready.link_window FINAL {where} "
        "GROUP BY metro, router, link")
    by_metro: dict[str, list[tuple]] = {}
    for r in counts.to_pylist():
        if r["samples"]:
            by_metro.setdefault(r["metro"], []).append((r["under"] / r["samples"], r["router"], r["link"],
                                                        r["samples"]))
    chosen = {m: sorted(v)[:per_metro] for m, v in by_metro.items()}
    keys = [(m, router, link) for m, v in chosen.items() for _, router, link, _ in v]
    if not keys:
        return {}
    tuples = ", ".join(f"({sql_string(m)}, {sql_string(r)}, {sql_string(lk)})" for m, r, lk in keys)
    hist = warehouse.query(
        "SELECT toString(metro) AS metro, toString(router) AS router, link, min(min_us) AS min_us, "
        "max(max_us) AS max_us, tupleElement(sumMap(hist_bucket, hist_count), 1) AS buckets, "
        "tupleElement(sumMap(hist_bucket, hist_count), 2) AS counts "
        f"FROM netready.link_window FINAL {where} "
        f"AND (toString(metro), toString(router), link) IN ({tuples}) GROUP BY metro, router, link")
    p99 = {(r["metro"], r["router"], r["link"]): quantile(r["buckets"], r["counts"], 0.99, r["min_us"], r["max_us"])
           for r in hist.to_pylist()}
    return {m: [LinkShare(router, link, samples, share, p99[(m, router, link)])
                for share, router, link, samples in v] for m, v in chosen.items()}


def to_table(readiness: Readiness, version: int) -> pa.Table:
    ms = readiness.metros
    n = len(ms)
    col = lambda k: [getattr(m, k) for m in ms]  # noqa: E731
    links = lambda k: pa.array([[getattr(lk, k) for lk in m.worst_links] for m in ms],  # noqa: E731
                               type=pa.list_(pa.float64() if k in ("share_under", "p99_us") else pa.string()))
    return pa.table({
        "metro": pa.array(col("metro"), type=pa.string()),
        "policy": pa.array([readiness.policy_id] * n, type=pa.string()),
        "as_of": pa.array([readiness.as_of] * n, type=pa.date32()),
        "days": pa.array(col("days"), type=pa.uint32()),
        "samples": pa.array(col("samples"), type=pa.uint64()),
        "share_under": pa.array(col("share_under"), type=pa.float64()),
        "p99_us": pa.array(col("p99_us"), type=pa.float64()),
        "gap_us": pa.array(col("gap_us"), type=pa.float64()),
        "trend_share_per_day": pa.array(col("trend_share_per_day"), type=pa.float64()),
        "compliant_days_30": pa.array(col("compliant_days_30"), type=pa.uint32()),
        "worst_routers": links("router"),
        "worst_links": links("link"),
        "worst_links_share": links("share_under"),
        "worst_links_p99_us": links("p99_us"),
        "rank": pa.array(col("rank"), type=pa.uint32()),
        "version": pa.array([version] * n, type=pa.uint64()),
    })


def refresh(warehouse: Warehouse, policy: SampleSharePolicy, spec: WindowSpec | None,
            registry: Registry = Registry(), days: int = DEFAULT_DAYS) -> int:
    """Land the ranking as of the newest day into `metro_readiness`; returns rows written."""
    readiness = compute(warehouse, policy, spec, registry, days)
    if readiness.metros:
        warehouse.insert("metro_readiness", to_table(readiness, time.time_ns()))
    return len(readiness.metros)
