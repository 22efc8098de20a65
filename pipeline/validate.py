"""Range and name checks that turn decoded rows into CLEAN_SCHEMA rows.

ClickHouse stores NaN, negative latencies and absurd dates without complaint, so this is the
last gate before anything is counted. Vectorized; the first failing rule names a row's reason.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.decode.chunk import DecodedChunk, row_json
from pipeline.records import CLEAN_SCHEMA, Reject

_NS_PER_S = 1_000_000_000
_CONTROL = r"\p{Cc}"  # C0, DEL and C1 control characters


@dataclass(frozen=True)
class Limits:
    """Bounds a sample must meet. `max_future_s` is measured from the `now_ns` given to validate."""

    max_name_bytes: int = 256
    min_ts_ns: int = 946_684_800 * _NS_PER_S  # 2000-01-01T00:00:00Z
    max_future_s: int = 86_400
    max_latency_us: float = 10_000_000.0  # 10 s


def validate(chunk: DecodedChunk, limits: Limits, now_ns: int | None = None) -> tuple[pa.Table, list[Reject]]:
    """(valid rows as a CLEAN_SCHEMA table in original order, rejects for the others)."""
    clean, _positions, rejects = validate_with_positions(chunk, limits, now_ns)
    return clean, rejects


def validate_with_positions(chunk: DecodedChunk, limits: Limits, now_ns: int | None = None
                            ) -> tuple[pa.Table, np.ndarray, list[Reject]]:
    """Like `validate`, plus the source position of every valid row (for later rejects)."""
    table = chunk.table
    if now_ns is None:
        now_ns = time.time_ns()
    max_ts_ns = now_ns + limits.max_future_s * _NS_PER_S
    ts_ns = table.column("ts_ns")
    rules: list[tuple[str, pa.ChunkedArray | pa.Array, str]] = [
        ("bad_timestamp", pc.or_(pc.less(ts_ns, limits.min_ts_ns), pc.greater(ts_ns, max_ts_ns)),
         f"ts_ns outside [{limits.min_ts_ns}, now + {limits.max_future_s} s]"),
    ]
    for name in ("rtt_us", "one_way_us"):
        rules.append(("bad_latency", _bad_latency(table.column(name), limits.max_latency_us),
                      f"{name} is NaN, infinite, negative or above {limits.max_latency_us:g} µs"))
    for name in ("metro", "router", "link", "site", "dc"):
        rules.append(("bad_name", _bad_name(table.column(name), limits.max_name_bytes),
                      f"{name} is empty, longer than {limits.max_name_bytes} UTF-8 bytes "
                      f"or contains control characters"))

    bad = np.zeros(table.num_rows, dtype=bool)
    found: list[tuple[int, str, str]] = []
    for reason, mask, detail in rules:
        hits = pc.fill_null(mask, True if reason == "bad_timestamp" else False)
        hits = np.asarray(hits.to_numpy(zero_copy_only=False), dtype=bool) & ~bad
        found.extend((int(i), reason, detail) for i in np.flatnonzero(hits))
        bad |= hits
    clean = table if not bad.any() else table.filter(pa.array(~bad))
    rejects = [Reject(chunk.source, int(chunk.positions[i]), reason, detail, row_json(table, i))
               for i, reason, detail in sorted(found)]
    return clean.cast(CLEAN_SCHEMA), np.asarray(chunk.positions)[~bad], rejects


def _bad_latency(values: pa.ChunkedArray, max_us: float) -> pa.ChunkedArray:
    """True for NaN, ±inf, negative or above max; null stays null (an absent optional value)."""
    return pc.invert(pc.and_(pc.is_finite(values), pc.and_(pc.greater_equal(values, 0.0),
                                                          pc.less_equal(values, max_us))))


def _bad_name(names: pa.ChunkedArray, max_bytes: int) -> pa.ChunkedArray:
    """Checked once per distinct name (telemetry repeats a few thousand names millions of times)."""
    encoded = pc.dictionary_encode(names.combine_chunks() if isinstance(names, pa.ChunkedArray) else names)
    distinct = encoded.dictionary
    length = pc.binary_length(distinct)
    bad = pc.or_(pc.or_(pc.equal(length, 0), pc.greater(length, max_bytes)),
                 pc.match_substring_regex(distinct, _CONTROL))
    return pc.take(bad, encoded.indices)
