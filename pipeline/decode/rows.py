"""Python objects (parsed JSON, Avro records) to a DecodedChunk, checking each record's shape.

The per-record loop does only what needs Python: presence and type checks. Columns are then
built with list comprehensions and pyarrow, and event times are parsed vectorized.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.records import Reject

from .chunk import DECODED_SCHEMA, DecodedChunk, assemble
from .columns import number_from_string
from .timestamps import parse_rfc3339

_REQUIRED = ("ts", "metro", "router", "link", "rtt_us")
_NAMES = ("metro", "router", "link")
_OPTIONAL_NAMES = ("site", "dc", "probe", "carrier")
_LATENCIES = ("rtt_us", "one_way_us")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class RowBuilder:
    """Collects records one by one, then `finish()` builds the chunk (once)."""

    def __init__(self, source: str):
        self.source = source
        self.rows: list[dict] = []
        self.positions: list[int] = []
        self.raws: list[bytes | None] = []
        self.rejects: list[Reject] = []

    def reject(self, position: int, reason: str, detail: str, raw: bytes | None) -> None:
        self.rejects.append(Reject(self.source, position, reason, detail, raw))

    def add(self, obj: Any, position: int, raw: bytes | None = None) -> None:
        """Accept `obj` as a row, or record why not. `raw` (the original bytes) is kept only for
        rejects; without it a reject carries the object re-encoded as JSON."""
        if type(obj) is not dict:
            self.reject(position, "not_an_object", f"expected an object, got {_json_type(obj)}",
                        raw if raw is not None else _dumps(obj))
            return
        problem = _check(obj)
        if problem is None:
            self.rows.append(obj)
            self.positions.append(position)
            self.raws.append(raw)
        else:
            self.reject(position, problem[0], problem[1], raw if raw is not None else _dumps(obj))

    def _raw(self, index: int) -> bytes:
        raw = self.raws[index]
        return raw if raw is not None else _dumps(self.rows[index])

    def finish(self) -> DecodedChunk:
        rows = self.rows
        positions = np.array(self.positions, dtype=np.int64)
        ts_ns, ts_bad = _timestamps([r["ts"] for r in rows])
        arrays = {
            "ts_ns": ts_ns,
            "metro": pa.array([r["metro"] for r in rows], pa.string()),
            "router": pa.array([r["router"] for r in rows], pa.string()),
            "link": pa.array([r["link"] for r in rows], pa.string()),
            "rtt_us": _floats([r["rtt_us"] for r in rows]),
            "one_way_us": _floats([r.get("one_way_us") for r in rows]),
            "site": pa.array([r.get("site") for r in rows], pa.string()),
            "dc": pa.array([r.get("dc") for r in rows], pa.string()),
        }
        table = pa.Table.from_arrays([arrays[f.name] for f in DECODED_SCHEMA], schema=DECODED_SCHEMA)
        failures = []
        if ts_bad is not None:
            failures.append(("bad_timestamp", ts_bad,
                             "ts must be integer ns since the epoch or RFC 3339 with a zone"))
        return assemble(table, positions, failures, source=self.source, rejects=self.rejects,
                        raw_of=self._raw)


def _check(obj: dict) -> tuple[str, str] | None:
    """(reason, detail) if the record cannot become a row, else None. The common, well-typed
    record is accepted by one compound test; anything else gets the full diagnosis."""
    get = obj.get
    ts, rtt, one_way = get("ts"), get("rtt_us"), get("one_way_us")
    site, dc, probe, carrier = get("site"), get("dc"), get("probe"), get("carrier")
    if ((type(ts) is int or type(ts) is str) and type(get("metro")) is str
            and type(get("router")) is str and type(get("link")) is str
            and (type(rtt) is float or type(rtt) is int)
            and (one_way is None or type(one_way) is float or type(one_way) is int)
            and (site is None or type(site) is str) and (dc is None or type(dc) is str)
            and (probe is None or type(probe) is str) and (carrier is None or type(carrier) is str)):
        return None
    return _diagnose(obj)


def _diagnose(obj: dict) -> tuple[str, str] | None:
    """The first problem of a record in a stable order; numeric strings are converted in place."""
    for key in _REQUIRED:
        if obj.get(key) is None:
            return "missing_field", f"{key} is missing or null"
    ts = obj["ts"]
    if type(ts) is not int and type(ts) is not str:
        return "wrong_type", f"ts must be an integer (ns) or a string, got {_json_type(ts)}"
    for key in _NAMES:
        if type(obj[key]) is not str:
            return "wrong_type", f"{key} must be a string, got {_json_type(obj[key])}"
    for key in _OPTIONAL_NAMES:
        value = obj.get(key)
        if value is not None and type(value) is not str:
            return "wrong_type", f"{key} must be a string, got {_json_type(value)}"
    for key in _LATENCIES:
        value = obj.get(key)
        kind = type(value)
        if kind is float or kind is int or value is None:
            continue
        number = number_from_string(value) if kind is str else None
        if number is None:
            return "wrong_type", f"{key} must be a number or decimal string, got {_json_type(value)}"
        obj[key] = number
    return None


def _timestamps(values: list) -> tuple[pa.Array, np.ndarray | None]:
    """int64 ns per value (ints pass through, strings are RFC 3339) and the mask of failures."""
    try:
        return pa.array(values, pa.int64()), None
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    ints = [v if type(v) is int and _INT64_MIN <= v <= _INT64_MAX else None for v in values]
    strings = pa.array([v if type(v) is str else None for v in values], pa.string())
    ts_ns = pc.coalesce(pa.array(ints, pa.int64()), parse_rfc3339(strings))
    return ts_ns, pc.is_null(ts_ns).to_numpy(zero_copy_only=False)


def _floats(values: list) -> pa.Array:
    try:
        return pa.array(values, pa.float64())
    except (pa.ArrowInvalid, OverflowError):  # an integer too large for a double
        return pa.array([None if v is None else _big_float(v) for v in values], pa.float64())


def _big_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=repr)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object", bytes: "bytes"}.get(type(value), type(value).__name__)
