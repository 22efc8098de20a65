"""Every decoder entry point as `bytes -> chunks`, and the invariants any input must keep.

Shared by the hypothesis property tests and the atheris harness (fuzz_decoders.py), so both
hold every decoder to the same contract:

- nothing escapes but the documented error: `DecodeError` for a file that cannot be read at all
  (Avro containers, Arrow IPC and Parquet files), nothing at all for JSON and single messages;
- every decoded row has the decoded schema and a position, every reject a reason code;
- validation never raises, and what it passes is a valid sample, checked here from first
  principles (range of ts and latency, name length and characters), not with its own code.
"""
from __future__ import annotations

import io
import os
import re
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from typing import Callable

import numpy as np

from pipeline.adapters import AdapterMapping, decode_gnmic, decode_telegraf
from pipeline.decode import decode_message, read_path
from pipeline.decode.chunk import DECODED_SCHEMA, DecodedChunk
from pipeline.decode.jsonl import decode_json_document, decode_json_lines
from pipeline.errors import DecodeError
from pipeline.records import CLEAN_SCHEMA, Reject
from pipeline.stream.messages import decode_batch
from pipeline.validate import Limits, validate_with_positions

SOURCE = "hostile"
POSITION = 77
MESSAGE_SEPARATOR = b"\x1e"  # the worker target splits its input into messages here
NS = 1_000_000_000
MIN_TS_NS = 946_684_800 * NS  # 2000-01-01T00:00:00Z
MAX_LATENCY_US = 10_000_000.0
MAX_NAME_BYTES = 256
REASON = re.compile(r"^[a-z][a-z0-9_]*$")

GNMIC = AdapterMapping(kind="gnmic", rtt_key="/delay/average", link_tags=("interface_name",),
                       metro_tag="metro", site_tag="site", dc_tag="dc")
TELEGRAF = AdapterMapping(kind="telegraf", rtt_key="rtt_us", link_tags=("link",), metro_tag="metro",
                          site_tag="site", dc_tag="dc", timestamp_unit="ns")


@dataclass(frozen=True)
class Target:
    name: str
    decode: Callable[[bytes], list[DecodedChunk]]
    may_raise: bool  # DecodeError is documented (whole file unreadable)
    message: bool  # rows and rejects all carry POSITION


_TMP = tempfile.mkdtemp(prefix="netready-fuzz-")


def _file(data: bytes, suffix: str) -> str:
    path = os.path.join(_TMP, f"input{suffix}")
    with open(path, "wb") as f:
        f.write(data)
    return path


def _message(fmt: str) -> Callable[[bytes], list[DecodedChunk]]:
    return lambda data: [decode_message(data, source=SOURCE, position=POSITION, fmt=fmt)]


def _worker(data: bytes) -> list[DecodedChunk]:
    payloads = data.split(MESSAGE_SEPARATOR)
    return [decode_batch(payloads, list(range(POSITION, POSITION + len(payloads))), SOURCE)]


TARGETS = {t.name: t for t in (
    Target("jsonl", lambda d: list(decode_json_lines(io.BytesIO(d), SOURCE, 3)), False, False),
    Target("json", lambda d: list(decode_json_document(io.BytesIO(d), SOURCE, 3)), False, False),
    Target("avro-container", lambda d: list(read_path(_file(d, ".avro"), chunk_rows=3)), True, False),
    Target("avro", _message("avro"), False, True),
    Target("confluent", _message("confluent"), False, True),
    Target("message", _message("auto"), False, True),
    Target("arrow-ipc", lambda d: list(read_path(_file(d, ".arrow"), chunk_rows=3)), True, False),
    Target("arrow-message", _message("arrow"), False, True),
    Target("parquet", lambda d: list(read_path(_file(d, ".parquet"), chunk_rows=3)), True, False),
    Target("gnmic", lambda d: [decode_gnmic(d, GNMIC, source=SOURCE, position=POSITION)], False, True),
    Target("telegraf", lambda d: [decode_telegraf(d, TELEGRAF, source=SOURCE, position=POSITION)], False,
           True),
    Target("worker", _worker, False, False),
)}


def run_target(name: str, data: bytes, now_ns: int | None = None) -> tuple[list[dict], list[Reject]]:
    """Decode and validate `data` with target `name`, asserting every invariant on the way;
    returns (accepted rows, rejects). A documented DecodeError returns ([], [])."""
    target = TARGETS[name]
    now_ns = time.time_ns() if now_ns is None else now_ns
    try:
        chunks = target.decode(data)
    except DecodeError as exc:
        assert target.may_raise, f"{name} raised {exc!r}"
        assert str(exc), "a DecodeError must say why"
        return [], []
    return check_chunks(chunks, target.message, now_ns)


def check_chunks(chunks: list[DecodedChunk], message: bool, now_ns: int) -> tuple[list[dict], list[Reject]]:
    """Validate decoded chunks as ingest and the worker do, checking every invariant."""
    rows: list[dict] = []
    rejects: list[Reject] = []
    for chunk in chunks:
        check_chunk(chunk, message)
        clean, positions, invalid = validate_with_positions(chunk, Limits(), now_ns)
        assert clean.schema == CLEAN_SCHEMA
        assert len(positions) == clean.num_rows
        for reject in chunk.rejects + invalid:
            check_reject(reject, message)
        for row in clean.to_pylist():
            check_valid_row(row, now_ns)
        rows += clean.to_pylist()
        rejects += chunk.rejects + invalid
    return rows, rejects


def check_chunk(chunk: DecodedChunk, message: bool) -> None:
    assert isinstance(chunk, DecodedChunk)
    assert chunk.table.schema.remove_metadata() == DECODED_SCHEMA.remove_metadata(), chunk.table.schema
    assert chunk.table.num_rows == len(chunk.positions)
    assert np.asarray(chunk.positions).dtype == np.int64
    if message:
        assert set(np.asarray(chunk.positions).tolist()) <= {POSITION}


def check_reject(reject: Reject, message: bool) -> None:
    assert isinstance(reject, Reject)
    assert isinstance(reject.reason, str) and REASON.match(reject.reason), reject
    assert reject.reason != "decoder_error", f"a decoder raised: {reject.detail}"  # the worker's safety net
    assert isinstance(reject.detail, str)
    assert reject.raw is None or isinstance(reject.raw, bytes)
    assert type(reject.position) is int
    if message:
        assert reject.position == POSITION, reject


def valid_name(value: object) -> bool:
    return (type(value) is str and 0 < len(value.encode("utf-8")) <= MAX_NAME_BYTES
            and not any(unicodedata.category(c) == "Cc" for c in value))


def check_valid_row(row: dict, now_ns: int) -> None:
    """A row validation let through is a real sample: stated independently of pipeline.validate."""
    assert type(row["ts_ns"]) is int and MIN_TS_NS <= row["ts_ns"] <= now_ns + 86_400 * NS, row
    for key in ("rtt_us", "one_way_us"):
        value = row[key]
        if key == "one_way_us" and value is None:
            continue
        assert type(value) is float and 0.0 <= value <= MAX_LATENCY_US, row  # NaN fails both
    for key in ("metro", "router", "link"):
        assert valid_name(row[key]), row
    for key in ("site", "dc"):
        assert row[key] is None or valid_name(row[key]), row


def seed_inputs(name: str, now_ns: int | None = None) -> list[bytes]:
    """Well-formed inputs for target `name`, built at run time: a fuzzer's starting corpus."""
    import json
    import struct

    import fastavro
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    from pipeline.decode.avro import telemetry_schema

    ts = (time.time_ns() if now_ns is None else now_ns) - 3600 * NS
    record = {"ts": ts, "metro": "北京", "router": "bj-pe1", "link": "et-0/0/1", "rtt_us": 412.5,
              "one_way_us": 200.0, "site": "s1", "dc": "dc1", "probe": "stamp", "carrier": None}
    second = {**record, "ts": "2026-05-28T00:00:00.5+08:00", "rtt_us": "812", "metro": "São Paulo"}
    line = json.dumps(record, ensure_ascii=False).encode()
    if name in ("jsonl", "json", "message"):
        return [line, line + b"\n" + json.dumps(second).encode() + b"\n", json.dumps([record, second]).encode()]
    if name == "worker":
        return [MESSAGE_SEPARATOR.join([line, json.dumps([record, second]).encode(), line])]
    body = io.BytesIO()
    fastavro.schemaless_writer(body, telemetry_schema(), record)
    if name == "avro":
        return [body.getvalue()]
    if name == "confluent":
        return [b"\x00" + struct.pack(">I", 7) + body.getvalue()]
    if name == "avro-container":
        out = io.BytesIO()
        fastavro.writer(out, telemetry_schema(), [record, second])
        return [out.getvalue()]
    table = pa.table({"ts": pa.array([ts, ts + NS], pa.int64()).cast(pa.timestamp("ns", "UTC")),
                      "metro": ["北京", "a"], "router": ["r", "r"], "link": ["l", "m"],
                      "rtt_us": [1.5, 2.5], "site": ["s", None]})
    if name in ("arrow-ipc", "arrow-message"):
        stream = io.BytesIO()
        with ipc.new_stream(stream, table.schema) as writer:
            writer.write_table(table)
        if name == "arrow-message":
            return [stream.getvalue()]
        file = io.BytesIO()
        with ipc.new_file(file, table.schema) as writer:
            writer.write_table(table)
        return [stream.getvalue(), file.getvalue()]
    if name == "parquet":
        out = io.BytesIO()
        pq.write_table(table, out)
        return [out.getvalue()]
    if name == "gnmic":
        event = {"name": "sub", "timestamp": ts, "tags": {"source": "pe1", "metro": "北京",
                                                          "interface_name": "et-0/0/1", "site": "s"},
                 "values": {"/oc-if:delay/average": "812"}}
        return [json.dumps(event).encode(), json.dumps([event, {**event, "values": {"/x": 1}}]).encode()]
    if name == "telegraf":
        metric = {"name": "twamp", "tags": {"host": "pe1", "metro": "北京", "link": "et-0/0/1"},
                  "fields": {"rtt_us": 812.5}, "timestamp": ts}
        return [json.dumps(metric).encode(), json.dumps({"metrics": [metric, metric]}).encode(),
                f"twamp,host=pe1,metro=bj,link=et-0/0/1 rtt_us=812.5 {ts}".encode()]
    raise KeyError(name)
