"""Conform an Arrow table with loosely typed telemetry columns to DECODED_SCHEMA, vectorized.

Used by Arrow IPC, Parquet, the pyarrow JSON fast path and Arrow messages. A column of a type
that cannot hold the field at all is a schema problem (SchemaMismatch); a value that cannot be
converted (null in a required column, unparseable time, non-numeric string) rejects its row.
"""
from __future__ import annotations

import re
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.errors import DecodeError
from pipeline.records import Reject

from .chunk import DECODED_SCHEMA, DecodedChunk, assemble
from .timestamps import parse_rfc3339

NAME_COLUMNS = ("metro", "router", "link", "site", "dc")
LATENCY_COLUMNS = ("rtt_us", "one_way_us")
NUMBER_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NUMBER_RE = re.compile(NUMBER_PATTERN, re.ASCII)
_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


class SchemaMismatch(DecodeError):
    """A whole column is missing or of a type that cannot carry its field."""

    def __init__(self, message: str, *, reason: str = "wrong_type"):
        super().__init__(message)
        self.reason = reason


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _ts_ns(col: pa.ChunkedArray) -> tuple[pa.Array, str]:
    """int64 ns (null where unusable) and the reject detail for those nulls."""
    t = col.type
    if pa.types.is_timestamp(t):
        # Arrow timestamps count from the epoch in UTC whatever their tz label; naive ones too.
        ticks = pc.cast(col, pa.int64()).combine_chunks()
        factor = _NS_PER_UNIT[t.unit]
        if factor == 1:
            return ticks, "ts is null"
        in_range = pc.less_equal(pc.abs(ticks), np.iinfo(np.int64).max // factor)
        return pc.multiply(pc.if_else(in_range, ticks, None), factor), "ts beyond int64 nanoseconds"
    if pa.types.is_integer(t):
        try:
            return pc.cast(col, pa.int64()).combine_chunks(), "ts is null"
        except pa.ArrowInvalid:
            raise SchemaMismatch("ts: unsigned values beyond int64 nanoseconds") from None
    if _is_string(t):
        return parse_rfc3339(col), "ts is not an RFC 3339 time with a zone (Z or +hh:mm)"
    raise SchemaMismatch(f"ts has type {t}; expected timestamp, integer ns or RFC 3339 string")


def _latency(col: pa.ChunkedArray, name: str) -> pa.Array:
    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        return pc.cast(col, pa.float64()).combine_chunks()
    if _is_string(t):
        strings = pc.cast(col, pa.string()).combine_chunks()
        numeric = pc.if_else(pc.match_substring_regex(strings, NUMBER_PATTERN), strings, None)
        try:
            return pc.cast(numeric, pa.float64())
        except pa.ArrowInvalid:
            return pa.array([number_from_string(s) for s in numeric.to_pylist()], pa.float64())
    if pa.types.is_null(t):
        return pa.nulls(len(col), pa.float64())
    raise SchemaMismatch(f"{name} has type {t}; expected a number")


def number_from_string(text: str | None) -> float | None:
    """A decimal string as gNMIc sends numbers; None if it is not one (NaN, 1_000, hex...)."""
    if text is None or _NUMBER_RE.fullmatch(text) is None:
        return None
    return float(text)


def _name(col: pa.ChunkedArray, name: str) -> pa.Array:
    if _is_string(col.type) or pa.types.is_null(col.type):
        return pc.cast(col, pa.string()).combine_chunks()
    raise SchemaMismatch(f"{name} has type {col.type}; expected a string")


def conform(
    table: pa.Table,
    positions: np.ndarray,
    *,
    source: str,
    raw_of: Callable[[int], bytes | None],
    rejects: list[Reject] | None = None,
) -> DecodedChunk:
    """Cast `table` (columns ts or ts_ns, names, latencies; extras ignored) to DECODED_SCHEMA."""
    names = set(table.column_names)
    ts_name = "ts_ns" if "ts_ns" in names else "ts"
    missing = [c for c in ("metro", "router", "link", "rtt_us") if c not in names]
    if ts_name not in names:
        missing.insert(0, "ts")
    if missing:
        raise SchemaMismatch(f"missing column(s) {', '.join(missing)}", reason="missing_field")
    n = table.num_rows
    ts_col = table.column(ts_name)
    ts_ns, ts_detail = _ts_ns(ts_col)
    arrays: dict[str, pa.Array] = {"ts_ns": ts_ns}
    for c in NAME_COLUMNS:
        arrays[c] = _name(table.column(c), c) if c in names else pa.nulls(n, pa.string())
    for c in LATENCY_COLUMNS:
        arrays[c] = _latency(table.column(c), c) if c in names else pa.nulls(n, pa.float64())
    out = pa.Table.from_arrays([arrays[f.name] for f in DECODED_SCHEMA], schema=DECODED_SCHEMA)

    failures = [("missing_field", _nulls(table.column(c)), f"{c} is missing or null")
                for c in (ts_name, "metro", "router", "link", "rtt_us") if table.column(c).null_count]
    if ts_ns.null_count > ts_col.null_count:
        failures.append(("bad_timestamp", _newly_null(ts_col, ts_ns), ts_detail))
    for c in LATENCY_COLUMNS:
        if c in names and arrays[c].null_count > table.column(c).null_count:
            failures.append(("wrong_type", _newly_null(table.column(c), arrays[c]), f"{c} is not a number"))
    return assemble(out, positions, failures, source=source, rejects=rejects or [], raw_of=raw_of)


def _nulls(col: pa.ChunkedArray) -> np.ndarray:
    return pc.is_null(col).to_numpy(zero_copy_only=False)


def _newly_null(before: pa.ChunkedArray, after: pa.Array) -> np.ndarray:
    return (pc.is_null(after).to_numpy(zero_copy_only=False)
            & pc.is_valid(before).to_numpy(zero_copy_only=False))
