"""Telegraf output (JSON serializer or influx line protocol) to telemetry rows.

JSON (`data_format = "json"`): one metric `{"name", "tags", "fields", "timestamp"}`, or the batch
form `{"metrics": [...]}` (`use_batch_format = true`); a bare array is taken too. The timestamp
counts `json_timestamp_units` (seconds by default, so set `timestamp_unit` to match), or is a
string when `json_timestamp_format` is set: then it must be RFC 3339 with a zone.

Influx line protocol (the Kafka output's default) is read when the message does not start with
`{` or `[`: one metric per line, `measurement,tag=v field=v,field2=1i timestamp_ns`; its
timestamps are always ns. A line that cannot be parsed is rejected as `malformed_line`.

As for gNMIc, a metric without the mapped RTT field is `unmapped`, good metrics of a batch
survive bad ones, rows and rejects carry `position`, rejects keep the whole message, and
nothing a producer sends makes this raise.
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import orjson

from pipeline.decode.chunk import DecodedChunk
from pipeline.decode.columns import number_from_string
from pipeline.decode.jsonl import json_error
from pipeline.decode.message import MAX_MESSAGE_BYTES
from pipeline.decode.rows import RowBuilder
from pipeline.decode.timestamps import parse_rfc3339_one

from .mapping import (NS_PER_TIMESTAMP_UNIT, AdapterMapping, int64_ns, json_type, oversized, build_record,
                      timestamp_unit_of, to_us, value_names)

Problem = tuple[str, str]
TELEGRAF_FORMATS = ("auto", "json", "influx")
_INFLUX_INT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_INFLUX_BOOLS = {"t": True, "T": True, "true": True, "True": True, "TRUE": True,
                 "f": False, "F": False, "false": False, "False": False, "FALSE": False}
_NAME_ESCAPES = re.compile(r"\\([,= \\])")
_STRING_ESCAPES = re.compile(r'\\(["\\])')


def decode_telegraf(payload: bytes, mapping: AdapterMapping, *, source: str, position: int,
                    timestamp_unit: str | None = None, fmt: str = "auto",
                    max_bytes: int = MAX_MESSAGE_BYTES) -> DecodedChunk:
    """Decode one Telegraf message. `timestamp_unit` ("s", "ms", "us", "ns" or Telegraf's "1ms")
    overrides `mapping.timestamp_unit` for JSON; `fmt` is "auto", "json" or "influx"."""
    if fmt not in TELEGRAF_FORMATS:
        raise ValueError(f"unknown Telegraf format {fmt!r}; expected one of {TELEGRAF_FORMATS}")
    ns_per_unit = mapping.timestamp_ns_per_unit
    if timestamp_unit is not None:  # a bad unit is a caller's error: ConfigError
        ns_per_unit = NS_PER_TIMESTAMP_UNIT[timestamp_unit_of(timestamp_unit)]
    rows = RowBuilder(source)
    payload = bytes(payload)
    too_large = oversized(payload, max_bytes, source, position)
    if too_large is not None:
        rows.rejects.append(too_large)
        return rows.finish()
    if fmt == "auto":
        fmt = "json" if payload.lstrip(b" \t\r\n")[:1] in (b"{", b"[", b"") else "influx"
    if fmt == "influx":
        _influx(payload, mapping, rows, position)
        return rows.finish()
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        rows.reject(position, *json_error(payload, exc), payload)
        return rows.finish()
    batch = True
    if type(obj) is dict and "metrics" in obj and "fields" not in obj:
        metrics = obj["metrics"]
        if type(metrics) is not list:
            rows.reject(position, "wrong_type", f"metrics must be an array, got {json_type(metrics)}", payload)
            return rows.finish()
    elif type(obj) is list:
        metrics = obj
    else:
        metrics, batch = [obj], False
    for index, metric in enumerate(metrics):
        result = metric_row(metric, mapping, ns_per_unit)
        if type(result) is dict:
            rows.add(result, position, payload)
        else:
            rows.reject(position, result[0], f"metric {index}: {result[1]}" if batch else result[1], payload)
    return rows.finish()


def metric_row(metric: Any, mapping: AdapterMapping, ns_per_unit: int) -> dict | Problem:
    """A RowBuilder record for one metric, or (reason, detail); `unmapped` is judged first."""
    if type(metric) is not dict:
        return "not_an_object", f"expected a metric object, got {json_type(metric)}"
    fields = metric.get("fields")
    if fields is None:
        return "missing_field", "fields is missing"
    if type(fields) is not dict:
        return "wrong_type", f"fields must be an object, got {json_type(fields)}"
    if mapping.rtt_key not in fields:
        name = metric.get("name")
        return "unmapped", (f"no field {mapping.rtt_key!r} in metric {name!r:.60}; "
                            f"fields: {value_names(fields)}")
    rtt = _latency(fields, mapping.rtt_key, mapping.unit)
    if type(rtt) is tuple:
        return rtt
    one_way = None
    if mapping.one_way_key is not None and mapping.one_way_key in fields:
        one_way = _latency(fields, mapping.one_way_key, mapping.unit)
        if type(one_way) is tuple:
            return one_way
    if metric.get("timestamp") is None:
        return "missing_field", "timestamp is missing"
    ts = _timestamp_ns(metric["timestamp"], ns_per_unit)
    if ts is None:
        raw = metric["timestamp"]
        return "bad_timestamp", (f"timestamp must be a number of {_unit_name(ns_per_unit)} since the epoch "
                                 f"or RFC 3339 with a zone, got {json_type(raw)} {raw!r:.40}")
    return build_record(metric.get("tags"), mapping, ts, rtt, one_way)


def _latency(fields: dict, key: str, unit: str) -> float | Problem:
    us = to_us(fields[key], unit)
    if us is None:
        return "wrong_type", f"field {key!r} must be a number or decimal string, got {json_type(fields[key])}"
    return us


def _timestamp_ns(value: Any, ns_per_unit: int) -> int | None:
    kind = type(value)
    if kind is int:
        return int64_ns(value * ns_per_unit)
    if kind is float:  # fractional seconds from hand-rolled producers; exact decimal scaling
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return int64_ns(int(Decimal(repr(value)) * ns_per_unit))
    if kind is str:
        return parse_rfc3339_one(value)
    return None


def _unit_name(ns_per_unit: int) -> str:
    return {v: k for k, v in NS_PER_TIMESTAMP_UNIT.items()}[ns_per_unit]


# --- influx line protocol -------------------------------------------------------------------

def _influx(payload: bytes, mapping: AdapterMapping, rows: RowBuilder, position: int) -> None:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        rows.reject(position, "invalid_utf8", f"invalid UTF-8 at byte {exc.start}", payload)
        return
    lines = [(n, line) for n, line in enumerate(text.split("\n"), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        rows.reject(position, "malformed_line", "no line protocol metric in the message", payload)
        return
    for number, line in lines:
        try:
            metric = parse_line(line.rstrip("\r"))
        except ValueError as exc:
            rows.reject(position, "malformed_line", f"line {number}: {exc}", payload)
            continue
        result = metric_row(metric, mapping, 1)
        if type(result) is dict:
            rows.add(result, position, payload)
        else:
            rows.reject(position, result[0], f"line {number}: {result[1]}", payload)


def parse_line(line: str) -> dict:
    """One line of influx line protocol as a Telegraf JSON-style metric (timestamp in ns, or
    None when the line has none). Raises ValueError with a short reason."""
    sections = [s for s in _split(line, " ", quoted=True) if s]
    if len(sections) not in (2, 3):
        raise ValueError(f"expected 'measurement[,tags] fields [timestamp]', got {len(sections)} sections")
    key, *tag_pairs = _split(sections[0], ",")
    if not key:
        raise ValueError("empty measurement name")
    tags = {}
    for pair in tag_pairs:
        parts = _split(pair, "=")
        if len(parts) != 2 or not parts[0]:
            raise ValueError(f"bad tag {pair!r:.60}")
        tags[_unescape(parts[0])] = _unescape(parts[1])
    fields = {}
    for pair in _split(sections[1], ",", quoted=True):
        parts = _split(pair, "=", quoted=True)
        if len(parts) != 2 or not parts[0]:
            raise ValueError(f"bad field {pair!r:.60}")
        fields[_unescape(parts[0])] = _field_value(parts[1])
    timestamp = None
    if len(sections) == 3:
        if _INFLUX_INT.fullmatch(sections[2]) is None:
            raise ValueError(f"timestamp {sections[2]!r:.40} is not an integer")
        timestamp = int(sections[2])
    return {"name": _unescape(key), "tags": tags, "fields": fields, "timestamp": timestamp}


def _field_value(text: str) -> Any:
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return _STRING_ESCAPES.sub(r"\1", text[1:-1])
    if text[-1:] in ("i", "u") and _INFLUX_INT.fullmatch(text[:-1]):
        return int(text[:-1])
    if text in _INFLUX_BOOLS:
        return _INFLUX_BOOLS[text]
    if number_from_string(text) is None:
        raise ValueError(f"bad field value {text!r:.40}")
    return float(text)


def _split(text: str, sep: str, quoted: bool = False) -> list[str]:
    """Split at `sep` unless backslash-escaped or (when `quoted`) inside a double-quoted string."""
    parts, start, i, n, in_string = [], 0, 0, len(text), False
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if quoted and ch == '"':
            in_string = not in_string
        elif ch == sep and not in_string:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if in_string:
        raise ValueError("unterminated string field")
    parts.append(text[start:])
    return parts


def _unescape(name: str) -> str:
    return _NAME_ESCAPES.sub(r"\1", name)
