"""validate: range and name rules, exact boundary values, unicode names, order kept."""
from __future__ import annotations

import math

import numpy as np
import orjson
import pyarrow as pa

from pipeline.decode.chunk import DecodedChunk
from pipeline.records import CLEAN_SCHEMA
from pipeline.validate import Limits, validate

NOW_NS = 1_780_000_000_000_000_000
BASE = {"ts_ns": NOW_NS - 10**9, "metro": "beijing", "router": "r1", "link": "l1", "rtt_us": 500.0,
        "one_way_us": None, "site": None, "dc": None}


def chunk_of(rows: list[dict]) -> DecodedChunk:
    table = pa.Table.from_pylist([{**BASE, **r} for r in rows], schema=CLEAN_SCHEMA)
    return DecodedChunk(table, np.arange(100, 100 + len(rows), dtype=np.int64), [], "src")


CASES = [
    ({}, None),
    ({"rtt_us": 1000.0}, None),
    ({"metro": "北京"}, None),
    ({"metro": "São Paulo", "site": "接入点-1", "dc": "dc"}, None),
    ({"rtt_us": 0.0, "one_way_us": 0.0}, None),
    ({"rtt_us": 10_000_000.0}, None),
    ({"metro": "x" * 256}, None),
    ({"metro": "北" * 85}, None),          # 255 bytes
    ({"rtt_us": math.nan}, "bad_latency"),
    ({"rtt_us": math.inf}, "bad_latency"),
    ({"rtt_us": -math.inf}, "bad_latency"),
    ({"rtt_us": -0.5}, "bad_latency"),
    ({"rtt_us": 1e12}, "bad_latency"),
    ({"one_way_us": math.nan}, "bad_latency"),
    ({"one_way_us": -1.0}, "bad_latency"),
    ({"ts_ns": 915_148_800 * 10**9}, "bad_timestamp"),         # 1999-01-01
    ({"ts_ns": NOW_NS + 2 * 86_400 * 10**9}, "bad_timestamp"),  # two days ahead
    ({"ts_ns": 0}, "bad_timestamp"),
    ({"metro": ""}, "bad_name"),
    ({"metro": "x" * 257}, "bad_name"),
    ({"metro": "北" * 86}, "bad_name"),   # 258 bytes
    ({"router": "r\n1"}, "bad_name"),
    ({"link": "l\x00"}, "bad_name"),
    ({"metro": "a\x7f"}, "bad_name"),
    ({"metro": "a\u0085"}, "bad_name"),   # C1 control
    ({"site": ""}, "bad_name"),
    ({"dc": "d\t"}, "bad_name"),
]


def test_rules() -> None:
    chunk = chunk_of([changes for changes, _ in CASES])
    clean, rejects = validate(chunk, Limits(), now_ns=NOW_NS)
    assert clean.schema == CLEAN_SCHEMA
    want_ok = [100 + i for i, (_, reason) in enumerate(CASES) if reason is None]
    got = {r.position: r.reason for r in rejects}
    assert got == {100 + i: reason for i, (_, reason) in enumerate(CASES) if reason is not None}
    assert len(clean) == len(want_ok)
    kept = clean.to_pylist()
    assert [row["metro"] for row in kept[:4]] == ["beijing", "beijing", "北京", "São Paulo"]
    assert kept[1]["rtt_us"] == 1000.0


def test_reject_raw_is_the_row_as_json() -> None:
    _, (reject,) = validate(chunk_of([{"rtt_us": -2.0, "metro": "北京"}]), Limits(), now_ns=NOW_NS)
    assert reject.source == "src" and reject.position == 100
    assert orjson.loads(reject.raw)["metro"] == "北京" and orjson.loads(reject.raw)["rtt_us"] == -2.0


def test_first_rule_wins_and_limits_apply() -> None:
    chunk = chunk_of([{"ts_ns": 0, "rtt_us": -1.0, "metro": ""}, {"rtt_us": 20.0}])
    clean, rejects = validate(chunk, Limits(max_latency_us=10.0), now_ns=NOW_NS)
    assert [(r.position, r.reason) for r in rejects] == [(100, "bad_timestamp"), (101, "bad_latency")]
    assert clean.num_rows == 0


def test_empty_chunk() -> None:
    clean, rejects = validate(chunk_of([]), Limits(), now_ns=NOW_NS)
    assert clean.num_rows == 0 and rejects == [] and clean.schema == CLEAN_SCHEMA
