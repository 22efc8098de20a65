"""gNMIc Kafka output with `format: event` to telemetry rows.

One message is one event object, or a JSON array of events when `split-events` is false:

    {"name": "sub1", "timestamp": 1780000000123456789,
     "tags": {"source": "pe1.bj:57400", "interface_name": "HundredGigE0/0/0/1"},
     "values": {"/interfaces/interface/state/delay/average": "812"}}

Each event becomes at most one row: the value `mapping.rtt_key` selects is the RTT (numbers may
arrive as strings), tags give metro, router and link. An event without that value (a counter from
the same subscription, a delete notification) is rejected as `unmapped`, not dropped, so a
mapping that matches nothing shows up in the reject counts at once. Good events of an array
survive bad ones. Every row and reject carries `position` (the Kafka offset); rejects keep the
whole message. Nothing a producer sends makes this raise.
"""
from __future__ import annotations

from typing import Any

import orjson

from pipeline.decode.chunk import DecodedChunk
from pipeline.decode.jsonl import json_error
from pipeline.decode.message import MAX_MESSAGE_BYTES
from pipeline.decode.rows import RowBuilder

from .mapping import AdapterMapping, find_value, int64_ns, json_type, oversized, build_record, to_us, value_names

Problem = tuple[str, str]


def decode_gnmic(payload: bytes, mapping: AdapterMapping, *, source: str, position: int,
                 max_bytes: int = MAX_MESSAGE_BYTES) -> DecodedChunk:
    """Decode one gNMIc event message (object or array of events) into a DecodedChunk."""
    rows = RowBuilder(source)
    payload = bytes(payload)
    too_large = oversized(payload, max_bytes, source, position)
    if too_large is not None:
        rows.rejects.append(too_large)
        return rows.finish()
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        rows.reject(position, *json_error(payload, exc), payload)
        return rows.finish()
    batch = type(obj) is list
    for index, event in enumerate(obj if batch else [obj]):
        result = event_row(event, mapping)
        if type(result) is dict:
            rows.add(result, position, payload)
        else:
            reason, detail = result
            rows.reject(position, reason, f"event {index}: {detail}" if batch else detail, payload)
    return rows.finish()


def event_row(event: Any, mapping: AdapterMapping) -> dict | Problem:
    """A RowBuilder record for one event, or (reason, detail). Checks run in the order that
    names the real trouble first: an event carrying no latency is `unmapped` whatever its tags."""
    if type(event) is not dict:
        return "not_an_object", f"expected an event object, got {json_type(event)}"
    values = event.get("values")
    if values is None:
        return "unmapped", "event has no values (a delete or sync notification?)"
    if type(values) is not dict:
        return "wrong_type", f"values must be an object, got {json_type(values)}"
    rtt = _latency(values, mapping.rtt_key, mapping.unit, "rtt_key")
    if type(rtt) is tuple:
        return rtt
    one_way = None
    if mapping.one_way_key is not None:
        one_way = _latency(values, mapping.one_way_key, mapping.unit, "one_way_key", optional=True)
        if type(one_way) is tuple:
            return one_way
    ts = event.get("timestamp")
    if ts is None:
        return "missing_field", "timestamp is missing"
    if type(ts) is not int or int64_ns(ts) is None:
        return "bad_timestamp", f"timestamp must be integer ns since the epoch, got {json_type(ts)} {ts!r:.40}"
    return build_record(event.get("tags"), mapping, ts, rtt, one_way)


def _latency(values: dict, key: str, unit: str, option: str, optional: bool = False
             ) -> float | None | Problem:
    hits, raw = find_value(values, key)
    if not hits:
        if optional:
            return None
        return "unmapped", f"no value matches {option} {key!r}; values: {value_names(values)}"
    if len(hits) > 1:
        return ("unmapped", f"{option} {key!r} matches {len(hits)} values ({value_names(dict.fromkeys(hits))}); "
                "configure a longer suffix or the full xpath")
    us = to_us(raw, unit)
    if us is None:
        return "wrong_type", f"{hits[0]} must be a number or decimal string, got {json_type(raw)}"
    return us
