"""Site coverage: "under 1 ms from key sites/access points to computing centres", per metro.

`evaluate` judges stored history under a `SiteCoveragePolicy`, from what the
warehouse already holds (no re-ingest):

1. `link_window FINAL` rows of a stored sample-share policy (`base_policy_id`)
   with the same field and threshold as the site policy (its `under_threshold`
   counts depend on both; anything else is refused), joined with each link's
   path in `link_paths` (latest non-null site and dc per link). Links without a
   known site or dc do not count for any site.
2. Per (metro, window, site, dc) the links' counts and histograms are merged
   exactly (`sumMap` in ClickHouse); a path meets the statistic per
   `SiteCoveragePolicy.compliant` (exact, on integer counts).
3. A site is covered iff its best path meets the statistic (best = meets, then
   highest share under, most samples, dc name). The metro window is compliant iff
   (weighted) covered sites / sites >= `site_share_bar`, exactly (weights are
   decimal fractions scaled to integers). Sites = sites seen in the window, plus
   the sites a weights file lists for the metro (without data: not covered).
4. Results land in `site_window` (one row per site and window, plus UTC-day rows
   with window_s = hop_s = 86400 built from the day's counts per path) and in
   `metro_window` under the site policy id: the base policy's metro rows (the
   exact merge of all the metro's links: counts, histograms, p-values) with
   `compliant` replaced by the site verdict. Then a `Lander` for the site policy
   recomputes `coverage_window`, `metro_daily`/`coverage_daily` (day verdicts
   from the site-day rows, via `SiteCoveragePolicy.daily_verdicts`) and the
   outlook tables, so every downstream table exists for the new policy id.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .coverage import Registry
from .errors import ConfigError
from .landing import DAY_S, Lander, new_version
from .policy import SampleSharePolicy, SiteCoveragePolicy, policy_from_dict
from .rows import RowSet
from .trajectory import TargetConfig
from .warehouse import Warehouse
from .warehouse.base import sql_int, sql_string
from .windows import WindowSpec

SITE_WINDOW_SCHEMA = pa.schema([
    pa.field("metro", pa.string()), pa.field("site", pa.string()),
    pa.field("window_start", pa.timestamp("s", tz="UTC")), pa.field("window_s", pa.uint32()),
    pa.field("hop_s", pa.uint32()), pa.field("policy", pa.string()), pa.field("best_dc", pa.string()),
    pa.field("paths", pa.uint32()), pa.field("samples", pa.uint64()),
    pa.field("under_threshold", pa.uint64()), pa.field("share_under", pa.float64()),
    pa.field("p99_us", pa.float64()), pa.field("covered", pa.uint8()), pa.field("weight", pa.float64()),
    pa.field("version", pa.uint64()),
])


@dataclass
class SiteCoverageResult:
    policy_id: str
    base_policy_id: str
    site_rows: pa.Table  # what was landed in site_window (windows and days)
    metro_rows: pa.Table  # what was landed in metro_window under the site policy id
    coverage_rows: int = 0
    daily_rows: int = 0


def base_policy(warehouse: Warehouse, policy: SiteCoveragePolicy, base_policy_id: str) -> SampleSharePolicy:
    """The stored sample-share policy whose link counts the site policy may reuse, or ConfigError."""
    rows = warehouse.query("SELECT definition FROM netready.policies "
                           f"WHERE id = {sql_string(base_policy_id)} LIMIT 1")
    if rows.num_rows == 0:
        raise ConfigError(f"base policy {base_policy_id!r} is not in netready.policies: "
                          "ingest with it first")
    base = policy_from_dict(json.loads(rows["definition"][0].as_py()))
    if not isinstance(base, SampleSharePolicy):
        raise ConfigError(f"base policy {base_policy_id!r} is not a sample-share policy")
    if base.field != policy.field or base.threshold_us != policy.threshold_us:
        raise ConfigError(
            f"base policy {base_policy_id!r} counts {base.field} < {base.threshold_us:g} µs, but the "
            f"site policy needs {policy.field} < {policy.threshold_us:g} µs: under_threshold depends "
            "on the field and the threshold, so these link windows cannot be reused; re-ingest "
            "(or recompute) with a sample-share policy of that field and threshold first")
    return base


def path_rows(warehouse: Warehouse, base_policy_id: str, spec: WindowSpec, first_s: int, last_s: int,
              by_day: bool = False) -> pa.Table:
    """Exact per-(metro, start_s, site, dc) merges of the base policy's link windows whose
    start is in [first_s, last_s]; `by_day` groups by UTC day instead of by window."""
    start = ("toInt64(intDiv(toUnixTimestamp(window_start), 86400) * 86400)" if by_day
             else "toInt64(toUnixTimestamp(window_start))")
    return warehouse.query(
        "SELECT metro, start_s, site, dc, sum(samples) AS samples, sum(under_threshold) AS under, "
        "min(min_us) AS min_us, max(max_us) AS max_us, sum(sum_us) AS sum_us, "
        "tupleElement(sumMap(hist_bucket, hist_count), 1) AS buckets, "
        "tupleElement(sumMap(hist_bucket, hist_count), 2) AS counts "
        "FROM (SELECT metro, router, link, "
        f"{start} AS start_s, samples, under_threshold, min_us, max_us, sum_us, hist_bucket, hist_count "
        "FROM netready.link_window FINAL "
        f"WHERE policy = {sql_string(base_policy_id)} AND window_s = {sql_int(spec.length_s)} "
        f"AND hop_s = {sql_int(spec.hop_s)} "
        f"AND window_start >= toDateTime({sql_int(first_s)}, 'UTC') "
        f"AND window_start <= toDateTime({sql_int(last_s)}, 'UTC')) AS w "
        "ALL INNER JOIN (SELECT metro, router, link, site, dc FROM ("
        "SELECT metro, router, link, argMax(site, version) AS site, argMax(dc, version) AS dc "
        "FROM netready.link_paths GROUP BY metro, router, link) "
        "WHERE isNotNull(site) AND isNotNull(dc)) AS p USING (metro, router, link) "
        "GROUP BY metro, start_s, site, dc ORDER BY metro, start_s, site, dc")


def _str(column) -> list:
    return pc.cast(column, pa.string()).to_pylist() if column.type != pa.string() else column.to_pylist()


@dataclass
class _Judged:
    """Sites per (metro, start_s) and each metro window's exact verdict."""

    sites: dict  # (metro, start_s) -> {site: (best_dc, paths, samples, under, p99, covered)}
    verdicts: dict  # (metro, start_s) -> bool


def site_weight(policy: SiteCoveragePolicy, weights: dict, metro: str, site: str) -> Fraction:
    """A site's weight: the file's weight for metros it lists (unlisted sites 0), else 1."""
    listed = weights.get(metro)
    if listed is None:
        return Fraction(1)
    return listed.get(site, Fraction(0))


def judge(policy: SiteCoveragePolicy, paths: pa.Table, reporting: set[tuple[str, int]]) -> _Judged:
    """Best path per site and the metro verdicts, for the metro windows in `reporting`
    (those with data under the base policy) and those with path rows."""
    weights = policy.weights
    sites: dict[tuple[str, int], dict[str, tuple]] = {}
    if paths.num_rows:
        rows = RowSet.from_sql(paths)
        meets = policy.compliant(rows.samples, rows.under)
        p99 = rows.quantiles_us([0.99])[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(rows.samples > 0, rows.under / np.maximum(rows.samples, 1), 0.0)
        metros = _str(paths["metro"])
        starts = paths["start_s"].to_pylist()
        site_names = _str(paths["site"])
        dcs = _str(paths["dc"])
        # best first within each (metro, start, site): meets, share, samples, then dc name
        dc_rank = np.unique(np.asarray(dcs, dtype=object), return_inverse=True)[1]
        group = np.unique(np.array([f"{m}\x1f{s}\x1f{x}" for m, s, x in zip(metros, starts, site_names)],
                                   dtype=object), return_inverse=True)[1]
        order = np.lexsort((dc_rank, -rows.samples, -share, ~meets, group))
        first = np.ones(len(order), dtype=bool)
        first[1:] = group[order][1:] != group[order][:-1]
        n_paths = np.bincount(group, minlength=group.max() + 1)
        for i in order[first].tolist():
            key = (metros[i], int(starts[i]))
            sites.setdefault(key, {})[site_names[i]] = (
                dcs[i], int(n_paths[group[i]]), int(rows.samples[i]), int(rows.under[i]),
                float(p99[i]), bool(meets[i]))
    verdicts = {}
    for key in set(sites) | set(reporting):
        metro = key[0]
        seen = sites.setdefault(key, {})
        for site in weights.get(metro, {}):
            seen.setdefault(site, ("", 0, 0, 0, math.nan, False))
        total = sum((site_weight(policy, weights, metro, s) for s in seen), Fraction(0))
        covered = sum((site_weight(policy, weights, metro, s) for s, row in seen.items() if row[5]),
                      Fraction(0))
        verdicts[key] = policy.metro_compliant(covered, total)
    return _Judged(sites, verdicts)


def _site_table(policy: SiteCoveragePolicy, judged: _Judged, spec: WindowSpec, version: int) -> pa.Table:
    weights = policy.weights
    cols: dict[str, list] = {f.name: [] for f in SITE_WINDOW_SCHEMA}
    for (metro, start), seen in sorted(judged.sites.items()):
        for site, (dc, n_paths, samples, under, p99, covered) in sorted(seen.items()):
            for name, value in (("metro", metro), ("site", site), ("window_start", start),
                                ("window_s", spec.length_s), ("hop_s", spec.hop_s),
                                ("policy", policy.id), ("best_dc", dc), ("paths", n_paths),
                                ("samples", samples), ("under_threshold", under),
                                ("share_under", under / samples if samples else math.nan),
                                ("p99_us", p99), ("covered", int(covered)),
                                ("weight", float(site_weight(policy, weights, metro, site))),
                                ("version", version)):
                cols[name].append(value)
    return pa.table({f.name: pa.array(cols[f.name], type=f.type) for f in SITE_WINDOW_SCHEMA},
                    schema=SITE_WINDOW_SCHEMA)


def _span(warehouse: Warehouse, base_policy_id: str, spec: WindowSpec) -> tuple[int, int] | None:
    rows = warehouse.query(
        "SELECT toInt64(toUnixTimestamp(min(window_start))) AS lo, "
        "toInt64(toUnixTimestamp(max(window_start))) AS hi, count() AS n FROM netready.link_window "
        f"WHERE policy = {sql_string(base_policy_id)} AND window_s = {sql_int(spec.length_s)} "
        f"AND hop_s = {sql_int(spec.hop_s)}")
    if rows.num_rows == 0 or rows["n"][0].as_py() == 0:
        return None
    return rows["lo"][0].as_py(), rows["hi"][0].as_py()


def _metro_rows(warehouse: Warehouse, base_policy_id: str, spec: WindowSpec, first_s: int,
                last_s: int) -> pa.Table:
    return warehouse.query(
        "SELECT metro, toInt64(toUnixTimestamp(window_start)) AS start_s, window_s, hop_s, samples, under_threshold, share_under, min_us, "
        "max_us, sum_us, mean_us, p50_us, p95_us, p99_us, hist_bucket, hist_count, links "
        "FROM netready.metro_window FINAL "
        f"WHERE policy = {sql_string(base_policy_id)} AND window_s = {sql_int(spec.length_s)} "
        f"AND hop_s = {sql_int(spec.hop_s)} "
        f"AND window_start >= toDateTime({sql_int(first_s)}, 'UTC') "
        f"AND window_start <= toDateTime({sql_int(last_s)}, 'UTC') ORDER BY metro, window_start")


def evaluate(warehouse: Warehouse, policy: SiteCoveragePolicy, base_policy_id: str, window_s: int = 60,
             hop_s: int = 60, first_s: int | None = None, last_s: int | None = None, *,
             registry: Registry = Registry(), target: TargetConfig | None = None,
             outlook: bool = True) -> SiteCoverageResult:
    """Judge the windows starting in [first_s, last_s] (default: all stored) under `policy` and land
    site_window, metro_window, coverage_window and (for a tumbling family that tiles a day) the
    daily and outlook tables under `policy.id`."""
    if not isinstance(policy, SiteCoveragePolicy):
        raise ConfigError("evaluate needs a SiteCoveragePolicy")
    spec = WindowSpec(int(window_s), int(hop_s))
    base_policy(warehouse, policy, base_policy_id)
    empty = SiteCoverageResult(policy.id, base_policy_id, SITE_WINDOW_SCHEMA.empty_table(),
                               pa.table({}))
    span = _span(warehouse, base_policy_id, spec)
    if span is None:
        return empty
    first_s = span[0] if first_s is None else int(first_s)
    last_s = span[1] if last_s is None else int(last_s)
    if first_s > last_s:
        return empty
    version = new_version()
    warehouse.insert("policies", pa.table({"id": [policy.id], "definition": [policy.to_json()]}))

    # Windows.
    metro_rows = _metro_rows(warehouse, base_policy_id, spec, first_s, last_s)
    metro_names = _str(metro_rows["metro"])
    starts = metro_rows["start_s"].to_pylist()
    judged = judge(policy, path_rows(warehouse, base_policy_id, spec, first_s, last_s),
                   set(zip(metro_names, starts)))
    sites = _site_table(policy, judged, spec, version)
    compliant = np.array([judged.verdicts[(m, s)] for m, s in zip(metro_names, starts)], dtype=np.uint8)
    n = metro_rows.num_rows
    landed = pa.table({
        "metro": pa.array(metro_names, type=pa.string()),
        "window_start": pa.array(starts, type=pa.int64()).cast(pa.timestamp("s", tz="UTC")),
        "window_s": pc.cast(metro_rows["window_s"], pa.uint32()),
        "hop_s": pc.cast(metro_rows["hop_s"], pa.uint32()),
        "policy": pa.array([policy.id] * n, type=pa.string()),
        **{c: metro_rows[c] for c in ("samples", "under_threshold", "share_under", "min_us", "max_us",
                                      "sum_us", "mean_us", "p50_us", "p95_us", "p99_us")},
        "compliant": pa.array(compliant, type=pa.uint8()),
        "hist_bucket": metro_rows["hist_bucket"], "hist_count": metro_rows["hist_count"],
        "links": pc.cast(metro_rows["links"], pa.uint32()),
        "version": pa.array(np.full(n, version, dtype=np.uint64)),
    })

    # UTC days, from the day's counts per path (only for a tumbling family that tiles a day).
    lander = Lander(warehouse, policy, (spec,), registry, target or TargetConfig())
    day_tables = []
    first_day, last_day = first_s - first_s % DAY_S, last_s - last_s % DAY_S
    if lander.daily_spec is not None:
        day_spec = WindowSpec(DAY_S, DAY_S)
        day_metros = warehouse.query(
            "SELECT DISTINCT metro, toInt64(intDiv(toUnixTimestamp(window_start), 86400) * 86400) AS d "
            f"FROM netready.metro_window FINAL WHERE policy = {sql_string(base_policy_id)} "
            f"AND window_s = {sql_int(spec.length_s)} AND hop_s = {sql_int(spec.hop_s)} "
            f"AND window_start >= toDateTime({sql_int(first_day)}, 'UTC') "
            f"AND window_start < toDateTime({sql_int(last_day + DAY_S)}, 'UTC')")
        days = judge(policy, path_rows(warehouse, base_policy_id, spec, first_day, last_day + DAY_S - 1,
                                       by_day=True),
                     set(zip(_str(day_metros["metro"]), day_metros["d"].to_pylist())))
        day_tables.append(_site_table(policy, days, day_spec, version))

    site_rows = pa.concat_tables([sites, *day_tables])
    warehouse.insert("site_window", site_rows)
    warehouse.insert("metro_window", landed)
    result = SiteCoverageResult(policy.id, base_policy_id, site_rows, landed)
    result.coverage_rows = lander.refresh_coverage(first_s, last_s)
    if lander.daily_spec is not None:
        result.daily_rows = lander.refresh_daily(first_day, last_day)
        if result.daily_rows and outlook:
            lander.refresh_outlook()
    return result


def daily_verdicts(warehouse: Warehouse, policy: SiteCoveragePolicy, metros: list[str],
                   day_s: list[int]) -> np.ndarray:
    """Metro-day verdicts from the policy's site-day rows (window_s = hop_s = 86400) in
    site_window: (weighted) covered sites / sites >= site_share_bar, the sites being those with
    day rows plus the weights file's sites of the metro. A metro-day without site-day rows (and
    no listed sites) is not compliant."""
    if not metros:
        return np.zeros(0, dtype=bool)
    lo, hi = min(day_s), max(day_s)
    rows = warehouse.query(
        "SELECT metro, toInt64(toUnixTimestamp(window_start)) AS d, site, covered "
        f"FROM netready.site_window FINAL WHERE policy = {sql_string(policy.id)} "
        f"AND window_s = {DAY_S} AND hop_s = {DAY_S} "
        f"AND window_start >= toDateTime({sql_int(lo)}, 'UTC') "
        f"AND window_start <= toDateTime({sql_int(hi)}, 'UTC')")
    by_key: dict[tuple[str, int], dict[str, bool]] = {}
    for metro, d, site, covered in zip(_str(rows["metro"]), rows["d"].to_pylist(), _str(rows["site"]),
                                       rows["covered"].to_pylist()):
        by_key.setdefault((metro, int(d)), {})[site] = bool(covered)
    weights = policy.weights
    out = np.zeros(len(metros), dtype=bool)
    for i, key in enumerate(zip(metros, (int(d) for d in day_s))):
        seen = dict.fromkeys(weights.get(key[0], {}), False) | by_key.get(key, {})
        total = sum((site_weight(policy, weights, key[0], s) for s in seen), Fraction(0))
        covered = sum((site_weight(policy, weights, key[0], s) for s, c in seen.items() if c), Fraction(0))
        out[i] = policy.metro_compliant(covered, total)
    return out
