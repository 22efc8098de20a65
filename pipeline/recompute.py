"""Recompute stored verdicts under a new policy, from the stored histograms (`netready recompute`).

The policy question is open (CONTEXT.md), so history must be re-judgeable without the raw
telemetry. Every `metro_window` row keeps its exact sample count, the exact count under the
threshold of the policy it was computed with (`u_T`) and its log-linear histogram. For a new
threshold `T'` on the same measured field:

- buckets entirely below `T'` (`high <= T'`) hold samples that are certainly under;
- buckets at or above `T'` (`low >= T'`) hold samples that are certainly not under;
- only the bucket with `low < T' < high` is ambiguous. When `T'` is a bucket boundary (1000.0 is
  one) there is no such bucket and the count is exact;
- `u_T` is exact, and the under count is monotonic in the threshold: it is a lower bound for
  `T' >= T` and an upper bound for `T' <= T`. With `T' == T` the count is `u_T` exactly.

Only counts produced by an ingest are exact: a policy whose rows were themselves recomputed
(recorded in `netready.ingest_runs` with command `recompute`) at a threshold that is not a
bucket boundary stores lower bounds, so its counts only ever raise the new lower bound.

The landed `under_threshold` is the lower bound (a sample whose side is unknown is not counted
as under: compliance must be demonstrated, not assumed); the true count lies in
`[under, under + ambiguous]`, so each window's share is low by at most `ambiguous / samples`.
The summary reports the largest `ambiguous` and the largest share error over all windows, and
how many verdicts the ambiguity could flip. Changing only `required_share` or `min_samples`
changes verdicts and nothing else.

A histogram of `rtt_us` says nothing about `one_way_us`: a policy on another field is refused.
Link windows are not recomputed; coverage, daily rows and the outlook are refreshed from the
new metro windows through `Lander`.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone

import numpy as np
import pyarrow as pa

from . import __version__, histogram
from .coverage import Registry
from .errors import NetreadyError
from .landing import DAY_S, Lander, new_version
from .policy import SampleSharePolicy
from .tabulate import LINK_WINDOW_SCHEMA, METRO_WINDOW_SCHEMA
from .trajectory import TargetConfig
from .warehouse import Warehouse
from .warehouse.base import sql_int, sql_string
from .warehouse.migrations import migrate
from .windows import WindowSpec

CHUNK_DAYS = 7  # stored rows are read and landed a week at a time, to bound memory


class RecomputeError(NetreadyError):
    """The stored data cannot answer the new policy (other field, nothing stored, ...)."""


@dataclass(frozen=True)
class UnderBounds:
    """Per-row bounds on the count strictly under a new threshold: `lower <= true <= upper`."""

    lower: np.ndarray  # int64
    upper: np.ndarray  # int64

    @property
    def ambiguous(self) -> np.ndarray:
        return self.upper - self.lower


def threshold_is_boundary(threshold_us: float) -> bool:
    """True iff `threshold_us` is the low edge of a histogram bucket (no ambiguous bucket)."""
    return histogram.bucket_bounds(histogram.bucket_of(threshold_us))[0] == threshold_us


def under_bounds(offsets: np.ndarray, buckets: np.ndarray, counts: np.ndarray,
                 stored_under: np.ndarray, stored_threshold_us: float,
                 new_threshold_us: float, stored_exact: bool = True) -> UnderBounds:
    """Bounds on each row's count under `new_threshold_us` from its CSR histogram
    (`buckets[offsets[i]:offsets[i + 1]]`) and its count under `stored_threshold_us`, which is
    exact if `stored_exact`, else a lower bound."""
    stored_under = np.asarray(stored_under, dtype=np.int64)
    if stored_exact and new_threshold_us == stored_threshold_us:
        return UnderBounds(stored_under.copy(), stored_under.copy())
    split = histogram.bucket_of(new_threshold_us)
    exact = threshold_is_boundary(new_threshold_us)
    counts = np.asarray(counts, dtype=np.int64)
    buckets = np.asarray(buckets, dtype=np.int64)
    below = _row_sums(offsets, np.where(buckets < split, counts, 0))
    straddling = np.zeros_like(below) if exact else _row_sums(offsets, np.where(buckets == split, counts, 0))
    lower, upper = below, below + straddling
    if new_threshold_us >= stored_threshold_us:
        lower = np.maximum(lower, stored_under)
    if stored_exact and new_threshold_us <= stored_threshold_us:
        upper = np.minimum(upper, stored_under)
    return UnderBounds(lower, upper)


def _row_sums(offsets: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Exact integer sum of each CSR row."""
    cum = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
    offsets = np.asarray(offsets, dtype=np.int64)
    return cum[offsets[1:]] - cum[offsets[:-1]]


@dataclass
class RecomputeSummary:
    source_policy: str
    target_policy: str
    field: str
    source_threshold_us: float
    target_threshold_us: float
    source_exact: bool  # the stored under counts are exact (not lower bounds from a recompute)
    threshold_exact: bool  # True: every recomputed under count is exact
    windows_recomputed: int = 0
    window_families: list[str] = field(default_factory=list)
    first_window: str | None = None
    last_window: str | None = None
    max_ambiguous_samples: int = 0  # per window, the most samples whose side of the threshold is unknown
    max_share_error: float = 0.0  # per window, the largest possible understatement of share_under
    verdicts_uncertain: int = 0  # windows whose verdict the ambiguity could flip
    compliant_before: int = 0
    compliant_after: int = 0
    coverage_window_rows: int = 0
    daily_rows: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self) -> str:
        bound = ("exact (the threshold is unchanged or a histogram bucket boundary)" if self.threshold_exact
                 else f"at most {self.max_ambiguous_samples:,} samples per window on an unknown side, "
                      f"share under threshold understated by at most {self.max_share_error:.4%}; "
                      f"{self.verdicts_uncertain:,} verdicts could flip")
        return "\n".join([
            f"recomputed {self.windows_recomputed:,} metro windows "
            f"({', '.join(self.window_families) or 'none'}; {self.first_window} .. {self.last_window})",
            f"  from {self.source_policy}",
            f"  to   {self.target_policy}",
            f"  compliant windows: {self.compliant_before:,} -> {self.compliant_after:,}",
            f"  under-threshold counts: {bound}",
            *([] if self.source_exact else
              ["  (the source's counts are lower bounds: it was itself recomputed off a bucket boundary)"]),
            f"  landed {self.coverage_window_rows:,} coverage windows, {self.daily_rows:,} metro days",
        ])


def read_policy_file(path) -> SampleSharePolicy:
    """The new policy from a JSON file; only sample-share policies can be re-judged from the
    stored metro histograms (other kinds need rows netready does not keep per metro window)."""
    try:
        kind = json.loads(open(path, encoding="utf-8").read()).get("kind", "sample-share")
    except (OSError, ValueError, AttributeError) as exc:
        raise RecomputeError(f"cannot read policy file {path}: {exc}") from exc
    if kind != "sample-share":
        raise RecomputeError(f"policy file {path} is of kind {kind!r}: recompute re-judges sample-share "
                             "policies only; re-ingest the telemetry for other kinds")
    return SampleSharePolicy.from_file(path)


def stored_policies(warehouse: Warehouse) -> list[str]:
    rows = warehouse.query("SELECT DISTINCT toString(policy) AS policy FROM netready.metro_window "
                           "ORDER BY policy")
    return rows["policy"].to_pylist()


def load_policy(warehouse: Warehouse, policy_id: str) -> SampleSharePolicy:
    """The definition of a stored policy, from `netready.policies`."""
    rows = warehouse.query(f"SELECT definition FROM netready.policies WHERE id = {sql_string(policy_id)} "
                           "LIMIT 1")
    if rows.num_rows == 0:
        raise RecomputeError(f"policy {policy_id!r} has no definition in netready.policies")
    data = json.loads(rows["definition"][0].as_py())
    if data.pop("kind", "sample-share") != "sample-share":
        raise RecomputeError(f"policy {policy_id!r} is not a sample-share policy")
    policy = SampleSharePolicy(**data)
    if policy.id != policy_id:
        raise RecomputeError(f"stored definition of {policy_id!r} has id {policy.id!r}")
    return policy


def choose_source(warehouse: Warehouse, target: SampleSharePolicy, preferred: str | None,
                  explicit: bool) -> str:
    """The stored policy to recompute from: the one asked for, else the configured one if stored,
    else the only stored policy besides the target."""
    stored = stored_policies(warehouse)
    if preferred is not None and (explicit or preferred in stored):
        if preferred not in stored:
            raise RecomputeError(f"no metro windows stored for policy {preferred!r}; stored: "
                                 f"{', '.join(stored) or 'none'}")
        return preferred
    others = [p for p in stored if p != target.id]
    if len(others) == 1:
        return others[0]
    if not others:
        raise RecomputeError("no stored metro windows to recompute from (ingest first)")
    raise RecomputeError("several stored policies; name one with --source-policy: " + ", ".join(others))


def recompute(warehouse: Warehouse, target: SampleSharePolicy, source_policy: str | None = None, *,
              first_day: date | None = None, last_day: date | None = None,
              registry: Registry = Registry(), target_config: TargetConfig | None = None,
              explicit_source: bool = True, outlook: bool = True) -> RecomputeSummary:
    """Re-judge the stored metro windows of `source_policy` (days `first_day`..`last_day`, UTC,
    inclusive; default: all) under `target`, land them as `target.id` rows and refresh coverage,
    daily rows and (with `outlook`) the trajectory and readiness ranking of `target`."""
    migrate(warehouse)
    source_id = choose_source(warehouse, target, source_policy, explicit_source)
    source = load_policy(warehouse, source_id)
    if source.field != target.field:
        raise RecomputeError(
            f"stored windows of {source_id} measure {source.field}; policy {target.id} measures "
            f"{target.field}: their histograms cannot answer it, re-ingest the telemetry under the new policy")
    started = time.time()
    source_exact = threshold_is_boundary(source.threshold_us) or not _was_recomputed(warehouse, source_id)
    summary = RecomputeSummary(
        source_policy=source_id, target_policy=target.id, field=target.field,
        source_threshold_us=source.threshold_us, target_threshold_us=target.threshold_us,
        source_exact=source_exact,
        threshold_exact=(threshold_is_boundary(target.threshold_us)
                         or (source_exact and target.threshold_us == source.threshold_us)))
    span = _stored_span(warehouse, source_id, first_day, last_day)
    if span is None:
        return summary
    first_s, last_s, families = span
    specs = tuple(WindowSpec(length, hop) for length, hop in families)
    summary.window_families = [s.label for s in specs]
    lander = Lander(warehouse, target, specs, registry, target_config or TargetConfig())
    version = new_version()
    first_chunk = first_s - first_s % DAY_S
    for chunk_s in range(first_chunk, last_s + 1, CHUNK_DAYS * DAY_S):
        rows = _read(warehouse, source_id, max(chunk_s, first_s), min(chunk_s + CHUNK_DAYS * DAY_S - 1, last_s))
        if rows.num_rows:
            _land(lander, rows, source, target, version, summary)
    summary.first_window = _iso(first_s)
    summary.last_window = _iso(last_s)
    summary.coverage_window_rows = lander.refresh_coverage(first_s, last_s)
    summary.daily_rows = lander.refresh_daily(first_s - first_s % DAY_S, last_s - last_s % DAY_S)
    if outlook and summary.daily_rows:
        lander.refresh_outlook()
    _record_run(warehouse, summary, started)
    return summary


def _was_recomputed(warehouse: Warehouse, policy_id: str) -> bool:
    rows = warehouse.query("SELECT count() AS n FROM netready.ingest_runs "
                           f"WHERE command = 'recompute' AND policy = {sql_string(policy_id)}")
    return rows["n"][0].as_py() > 0


def _record_run(warehouse: Warehouse, summary: RecomputeSummary, started: float) -> None:
    """Audit trail (and provenance: rows of a recomputed policy may hold lower bounds)."""
    stamp = lambda s: pa.array([int(s)], type=pa.int64()).cast(pa.timestamp("s", tz="UTC"))  # noqa: E731
    zero = pa.array([0], type=pa.uint64())
    warehouse.insert("ingest_runs", pa.table({
        "run_id": [uuid.uuid4().hex], "started_at": stamp(started), "finished_at": stamp(time.time()),
        "command": ["recompute"], "sources": pa.array([[summary.source_policy]], type=pa.list_(pa.string())),
        "policy": [summary.target_policy], "windows": [",".join(summary.window_families)],
        "samples_read": zero, "samples_accepted": zero, "samples_late": zero, "samples_rejected": zero,
        "reject_reasons": pa.array([[]], type=pa.list_(pa.string())),
        "reject_counts": pa.array([[]], type=pa.list_(pa.uint64())),
        "netready_version": [__version__],
    }))


def _stored_span(warehouse: Warehouse, policy_id: str, first_day: date | None,
                 last_day: date | None) -> tuple[int, int, list[tuple[int, int]]] | None:
    where = _where(policy_id, _day_s(first_day) if first_day else None,
                   _day_s(last_day) + DAY_S - 1 if last_day else None)
    rows = warehouse.query(
        "SELECT window_s, hop_s, toUInt32(min(window_start)) AS first_s, toUInt32(max(window_start)) AS last_s "
        f"FROM netready.metro_window {where} GROUP BY window_s, hop_s ORDER BY window_s, hop_s")
    if rows.num_rows == 0:
        return None
    families = list(zip(rows["window_s"].to_pylist(), rows["hop_s"].to_pylist()))
    return min(rows["first_s"].to_pylist()), max(rows["last_s"].to_pylist()), families


def _where(policy_id: str, first_s: int | None, last_s: int | None) -> str:
    where = f"WHERE policy = {sql_string(policy_id)}"
    if first_s is not None:
        where += f" AND window_start >= toDateTime({sql_int(first_s)}, 'UTC')"
    if last_s is not None:
        where += f" AND window_start <= toDateTime({sql_int(last_s)}, 'UTC')"
    return where


def _read(warehouse: Warehouse, policy_id: str, first_s: int, last_s: int) -> pa.Table:
    return warehouse.query(
        "SELECT toString(metro) AS metro, toUInt32(window_start) AS start_s, window_s, hop_s, samples, "
        "under_threshold, min_us, max_us, sum_us, mean_us, p50_us, p95_us, p99_us, compliant, "
        "hist_bucket, hist_count, links "
        f"FROM netready.metro_window FINAL {_where(policy_id, first_s, last_s)} "
        "ORDER BY window_s, hop_s, start_s, metro")


def _land(lander: Lander, rows: pa.Table, source: SampleSharePolicy, target: SampleSharePolicy,
          version: int, summary: RecomputeSummary) -> None:
    offsets, buckets = _csr(rows["hist_bucket"])
    _, counts = _csr(rows["hist_count"])
    samples = _ints(rows["samples"])
    stored_under = _ints(rows["under_threshold"])
    bounds = under_bounds(offsets, buckets, counts, stored_under, source.threshold_us, target.threshold_us,
                          summary.source_exact)
    verdicts = target.compliant(samples, bounds.lower)
    could_be = target.compliant(samples, bounds.upper)
    ambiguous = bounds.ambiguous
    n = rows.num_rows
    with np.errstate(invalid="ignore", divide="ignore"):
        share = bounds.lower / samples
        share_error = np.where(samples > 0, ambiguous / np.maximum(samples, 1), 0.0)
    summary.windows_recomputed += n
    summary.max_ambiguous_samples = max(summary.max_ambiguous_samples, int(ambiguous.max(initial=0)))
    summary.max_share_error = max(summary.max_share_error, float(share_error.max(initial=0.0)))
    summary.verdicts_uncertain += int((verdicts != could_be).sum())
    summary.compliant_before += int(np.count_nonzero(_ints(rows["compliant"])))
    summary.compliant_after += int(verdicts.sum())
    column = lambda name: rows[name].combine_chunks()  # noqa: E731
    table = pa.table({
        "metro": column("metro").cast(pa.string()),
        "window_start": pa.array(_ints(rows["start_s"]), type=pa.int64()).cast(pa.timestamp("s", tz="UTC")),
        "window_s": column("window_s").cast(pa.uint32()),
        "hop_s": column("hop_s").cast(pa.uint32()),
        "policy": pa.array([target.id] * n, type=pa.string()),
        "samples": pa.array(samples.astype(np.uint64)),
        "under_threshold": pa.array(bounds.lower.astype(np.uint64)),
        "share_under": pa.array(share),
        **{name: column(name).cast(pa.float64())
           for name in ("min_us", "max_us", "sum_us", "mean_us", "p50_us", "p95_us", "p99_us")},
        "compliant": pa.array(verdicts.astype(np.uint8)),
        "hist_bucket": pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)),
                                                pa.array(buckets.astype(np.uint16))),
        "hist_count": pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)),
                                               pa.array(counts.astype(np.uint64))),
        "links": column("links").cast(pa.uint32()),
        "version": pa.array(np.full(n, version, dtype=np.uint64)),
    }, schema=METRO_WINDOW_SCHEMA)
    lander.land_windows(table, LINK_WINDOW_SCHEMA.empty_table(), {})


def _csr(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets from 0, flat values) of a list column, whatever the backend's list type."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = np.asarray(arr.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    values = np.asarray(arr.flatten().to_numpy(zero_copy_only=False), dtype=np.int64)
    return offsets - offsets[0], values


def _ints(column) -> np.ndarray:
    return np.asarray(column.to_numpy() if hasattr(column, "to_numpy") else column, dtype=np.int64)


def _day_s(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def _iso(ts_s: int) -> str:
    return datetime.fromtimestamp(ts_s, timezone.utc).isoformat().replace("+00:00", "Z")
