"""Kernel window results to named Arrow tables: the row layout of the ClickHouse contract.

Quantiles are read from each row's histogram; verdicts come from the policy's
exact integer test on exact counts. Column names and order match
`schemas/clickhouse` so a table can be inserted as it is.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .index import NameIndex
from .policy import SampleSharePolicy
from .rows import RowSet, WindowResult
from .windows import NS_PER_S

MEASURE_FIELDS = [
    pa.field("samples", pa.uint64()),
    pa.field("under_threshold", pa.uint64()),
    pa.field("share_under", pa.float64()),
    pa.field("min_us", pa.float64()),
    pa.field("max_us", pa.float64()),
    pa.field("sum_us", pa.float64()),
    pa.field("mean_us", pa.float64()),
    pa.field("p50_us", pa.float64()),
    pa.field("p95_us", pa.float64()),
    pa.field("p99_us", pa.float64()),
    pa.field("compliant", pa.uint8()),
    pa.field("hist_bucket", pa.list_(pa.uint16())),
    pa.field("hist_count", pa.list_(pa.uint64())),
]
WINDOW_FIELDS = [
    pa.field("window_start", pa.timestamp("s", tz="UTC")),
    pa.field("window_s", pa.uint32()),
    pa.field("hop_s", pa.uint32()),
    pa.field("policy", pa.string()),
]
METRO_WINDOW_SCHEMA = pa.schema([pa.field("metro", pa.string()), *WINDOW_FIELDS, *MEASURE_FIELDS,
                                 pa.field("links", pa.uint32()), pa.field("version", pa.uint64())])
LINK_WINDOW_SCHEMA = pa.schema([pa.field("metro", pa.string()), pa.field("router", pa.string()),
                                pa.field("link", pa.string()), *WINDOW_FIELDS, *MEASURE_FIELDS,
                                pa.field("version", pa.uint64())])


def measures(rows: RowSet, policy: SampleSharePolicy) -> dict[str, pa.Array]:
    """Measure columns of a RowSet, in MEASURE_FIELDS order."""
    q = rows.quantiles_us()
    samples = rows.samples
    with np.errstate(invalid="ignore", divide="ignore"):
        share = rows.under / samples
        mean = rows.sum_us / samples
    counts = rows.hist_count.astype(np.uint64)
    offsets = rows.hist_offsets.astype(np.int32)
    return {
        "samples": pa.array(samples.astype(np.uint64)),
        "under_threshold": pa.array(rows.under.astype(np.uint64)),
        "share_under": pa.array(share),
        "min_us": pa.array(rows.min_us),
        "max_us": pa.array(rows.max_us),
        "sum_us": pa.array(rows.sum_us),
        "mean_us": pa.array(mean),
        "p50_us": pa.array(q[:, 0]),
        "p95_us": pa.array(q[:, 1]),
        "p99_us": pa.array(q[:, 2]),
        "compliant": pa.array(policy.compliant(samples, rows.under).astype(np.uint8)),
        "hist_bucket": pa.ListArray.from_arrays(pa.array(offsets), pa.array(rows.hist_bucket)),
        "hist_count": pa.ListArray.from_arrays(pa.array(offsets), pa.array(counts)),
    }


def _window_columns(result: WindowResult, n: int, policy_id: str) -> dict[str, pa.Array]:
    return {
        "window_start": pa.array(np.full(n, result.start_ns // NS_PER_S, dtype=np.int64),
                                 type=pa.timestamp("s", tz="UTC")),
        "window_s": pa.array(np.full(n, result.length_ns // NS_PER_S, dtype=np.uint32)),
        "hop_s": pa.array(np.full(n, result.hop_ns // NS_PER_S, dtype=np.uint32)),
        "policy": pa.array([policy_id] * n, type=pa.string()),
    }


def metro_window_table(results: list[WindowResult], index: NameIndex,
                       policy: SampleSharePolicy, version: int) -> pa.Table:
    parts = []
    link_metro = np.asarray(index.link_metro, dtype=np.int64)
    for result in results:
        rows = result.metros
        n = len(rows)
        links_per_metro = np.bincount(link_metro[result.links.key], minlength=len(index.metros))
        cols = {"metro": pa.array([index.metros[k] for k in rows.key.tolist()], type=pa.string()),
                **_window_columns(result, n, policy.id), **measures(rows, policy),
                "links": pa.array(links_per_metro[rows.key].astype(np.uint32)),
                "version": pa.array(np.full(n, version, dtype=np.uint64))}
        parts.append(pa.table(cols, schema=METRO_WINDOW_SCHEMA))
    return pa.concat_tables(parts) if parts else METRO_WINDOW_SCHEMA.empty_table()


def link_window_table(results: list[WindowResult], index: NameIndex,
                      policy: SampleSharePolicy, version: int) -> pa.Table:
    parts = []
    for result in results:
        rows = result.links
        n = len(rows)
        names = [index.links[k] for k in rows.key.tolist()]
        cols = {"metro": pa.array([m for m, _, _ in names], type=pa.string()),
                "router": pa.array([r for _, r, _ in names], type=pa.string()),
                "link": pa.array([lk for _, _, lk in names], type=pa.string()),
                **_window_columns(result, n, policy.id), **measures(rows, policy),
                "version": pa.array(np.full(n, version, dtype=np.uint64))}
        parts.append(pa.table(cols, schema=LINK_WINDOW_SCHEMA))
    return pa.concat_tables(parts) if parts else LINK_WINDOW_SCHEMA.empty_table()
