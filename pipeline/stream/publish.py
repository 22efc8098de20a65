"""Per-metro window verdicts as Kafka events on `netready.windows` (input of the alert service).

Payload: one JSON object per metro window (schemas/window_event.schema.json),
keyed by metro so one metro's verdicts stay in order on one partition.
"""
from __future__ import annotations

import datetime as dt

import orjson
import pyarrow as pa

EVENT_FIELDS = ("metro", "window_s", "hop_s", "policy", "samples", "under_threshold", "share_under",
                "p50_us", "p95_us", "p99_us", "min_us", "max_us", "compliant", "links", "version")


def window_events(metro_rows: pa.Table) -> list[tuple[bytes, bytes]]:
    """(key, value) per metro window row."""
    columns = {name: metro_rows[name].to_pylist() for name in EVENT_FIELDS}
    starts = metro_rows["window_start"].cast(pa.int64()).to_pylist()
    events = []
    for i, start_s in enumerate(starts):
        event = {name: columns[name][i] for name in EVENT_FIELDS}
        event["compliant"] = bool(event["compliant"])
        event["window_start"] = dt.datetime.fromtimestamp(start_s, dt.timezone.utc).isoformat().replace("+00:00", "Z")
        event["window_end"] = dt.datetime.fromtimestamp(start_s + event["window_s"], dt.timezone.utc
                                                        ).isoformat().replace("+00:00", "Z")
        events.append((event["metro"].encode(), orjson.dumps(event)))
    return events
