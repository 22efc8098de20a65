"""Single messages: JSON, Confluent Avro, schemaless Avro, Arrow IPC; garbage never raises."""
from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import fastavro
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.decode import decode_message
from pipeline.decode.chunk import DecodedChunk
from pipeline.errors import DecodeError

SCHEMA = fastavro.parse_schema(json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "telemetry.avsc").read_text()))
RECORD = {"ts": 1_780_000_000_000_000_001, "metro": "São Paulo", "router": "r1", "link": "l1",
          "rtt_us": 999.5, "one_way_us": None, "site": None, "dc": "dc1", "probe": "stamp",
          "carrier": None}
ROW = {"ts_ns": RECORD["ts"], "metro": "São Paulo", "router": "r1", "link": "l1", "rtt_us": 999.5,
       "one_way_us": None, "site": None, "dc": "dc1"}


def avro_body(record: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, SCHEMA, record)
    return out.getvalue()


def confluent(record: dict, schema_id: int = 42) -> bytes:
    return b"\x00" + struct.pack(">I", schema_id) + avro_body(record)


def decode(payload: bytes, fmt: str = "auto") -> DecodedChunk:
    return decode_message(payload, source="topic[3]", position=1234, fmt=fmt)


def test_json_object_and_array() -> None:
    chunk = decode(orjson.dumps(RECORD))
    assert chunk.table.to_pylist() == [ROW] and chunk.positions.tolist() == [1234]
    chunk = decode(orjson.dumps([RECORD, {"metro": "x"}, RECORD]))
    assert chunk.table.num_rows == 2 and chunk.positions.tolist() == [1234, 1234]
    assert [(r.position, r.reason, r.source) for r in chunk.rejects] == [(1234, "missing_field", "topic[3]")]


def test_confluent_wire_format() -> None:
    chunk = decode(confluent(RECORD))
    assert chunk.table.to_pylist() == [ROW] and chunk.rejects == []
    chunk = decode(confluent({**RECORD, "ts": "2026-05-28T00:00:00Z", "rtt_us": "12.5"}), "confluent")
    assert chunk.table.to_pylist()[0]["ts_ns"] == 1_779_926_400_000_000_000
    assert chunk.table.to_pylist()[0]["rtt_us"] == 12.5


def test_confluent_bad_body_and_magic() -> None:
    for payload in (confluent(RECORD)[:-3], confluent(RECORD) + b"\x00", b"\x01" + confluent(RECORD)[1:]):
        chunk = decode(payload, "confluent")
        assert chunk.table.num_rows == 0
        assert [(r.reason, r.raw) for r in chunk.rejects] == [("malformed_avro", payload)]


def test_schemaless_avro() -> None:
    chunk = decode(avro_body(RECORD), "avro")
    assert chunk.table.to_pylist() == [ROW]


def test_arrow_stream_message() -> None:
    table = pa.table({"ts": pa.array([RECORD["ts"], None], pa.int64()).cast(pa.timestamp("ns", "UTC")),
                      "metro": ["São Paulo", "b"], "router": ["r1", "r"], "link": ["l1", "l"],
                      "rtt_us": [999.5, 1.0], "dc": ["dc1", None]})
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    chunk = decode(sink.getvalue())
    assert chunk.table.to_pylist() == [ROW] and chunk.positions.tolist() == [1234]
    assert [(r.position, r.reason) for r in chunk.rejects] == [(1234, "missing_field")]
    missing = decode(sink.getvalue().replace(b"metro", b"metrx"), "arrow")
    assert [r.reason for r in missing.rejects] == ["missing_field"]


def test_too_large_message() -> None:
    chunk = decode_message(b"{" + b" " * 100 + b"}", source="t", position=1, fmt="json", max_bytes=50)
    assert [r.reason for r in chunk.rejects] == ["too_large"]


def test_malformed_and_invalid_utf8_json() -> None:
    assert [r.reason for r in decode(b'{"ts":').rejects] == ["malformed_json"]
    assert [r.reason for r in decode(b'{"metro":"\xc3"}').rejects] == ["invalid_utf8"]
    assert [r.reason for r in decode(b"42").rejects] == ["not_an_object"]


@settings(max_examples=400, deadline=None)
@given(payload=st.one_of(st.binary(max_size=200),
                         st.binary(max_size=60).map(lambda b: b"\x00\x00\x00\x00\x2a" + b),
                         st.binary(max_size=60).map(lambda b: b"\xff\xff\xff\xff" + b),
                         st.binary(max_size=60).map(lambda b: confluent(RECORD)[:20] + b)),
       fmt=st.sampled_from(["auto", "json", "confluent", "avro", "arrow"]))
def test_arbitrary_bytes_never_raise_other_errors(payload: bytes, fmt: str) -> None:
    try:
        chunk = decode(payload, fmt)
    except DecodeError:
        return
    assert chunk.table.num_rows == len(chunk.positions)
    assert all(r.position == 1234 and r.raw is not None for r in chunk.rejects)
