"""Single Kafka-style messages: JSON, Avro (Confluent wire format or schemaless), Arrow IPC.

A message that cannot be decoded becomes a Reject holding the whole payload (ready for a
dead-letter topic); nothing a producer sends can make this raise.
"""
from __future__ import annotations

import numpy as np
import orjson

from pipeline.records import Reject

from .arrow import decode_table, read_ipc_stream
from .avro import read_body, read_confluent
from .chunk import RAW_PREVIEW_BYTES, DecodedChunk, empty_chunk
from .columns import SchemaMismatch
from .jsonl import json_error
from .registry import UnknownSchemaError
from .rows import RowBuilder

MESSAGE_FORMATS = ("auto", "json", "confluent", "avro", "arrow")
MAX_MESSAGE_BYTES = 16 << 20
_ARROW_CONTINUATION = b"\xff\xff\xff\xff"


def sniff(payload: bytes) -> str:
    """Guess a message format. Schemaless Avro cannot be told from Confluent (a record whose ts is
    a long starts with byte 0 too), so it is never guessed: ask for fmt="avro"."""
    head = payload.lstrip(b" \t\r\n")[:1]
    if head in (b"{", b"["):
        return "json"
    if payload.startswith(_ARROW_CONTINUATION):
        return "arrow"
    if payload[:1] == b"\x00":
        return "confluent"
    return "json"


def decode_message(payload: bytes, *, source: str, position: int, fmt: str = "auto",
                   max_bytes: int = MAX_MESSAGE_BYTES, registry=None) -> DecodedChunk:
    """Decode one message; every row and reject gets `position` (e.g. the Kafka offset).

    `registry` (a `SchemaRegistry`) makes Confluent wire-format messages read with their
    registered writer schema; an unknown id is a `unknown_schema` reject, an unreachable
    registry raises DecodeError (nothing is rejected for an outage)."""
    if fmt not in MESSAGE_FORMATS:
        raise ValueError(f"unknown message format {fmt!r}; expected one of {MESSAGE_FORMATS}")
    if len(payload) > max_bytes:
        return empty_chunk(source, [Reject(source, position, "too_large",
                                           f"message of {len(payload)} bytes exceeds {max_bytes}; raw truncated",
                                           payload[:RAW_PREVIEW_BYTES])])
    if fmt == "auto":
        fmt = sniff(payload)
    if fmt == "arrow":
        return _arrow(payload, source, position)
    rows = RowBuilder(source)
    if fmt == "json":
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            rows.reject(position, *json_error(payload, exc), payload)
            return rows.finish()
        for item in obj if type(obj) is list else [obj]:
            rows.add(item, position, payload)
        return rows.finish()
    try:
        record = read_confluent(payload, registry)[1] if fmt == "confluent" else read_body(payload)
    except UnknownSchemaError as exc:
        rows.reject(position, "unknown_schema", str(exc), payload)
        return rows.finish()
    except ValueError as exc:
        rows.reject(position, "malformed_avro", str(exc), payload)
        return rows.finish()
    rows.add(record, position, payload)
    return rows.finish()


def _arrow(payload: bytes, source: str, position: int) -> DecodedChunk:
    def refuse(reason: str, detail: str) -> DecodedChunk:
        return empty_chunk(source, [Reject(source, position, reason, detail, payload)])

    try:
        table = read_ipc_stream(payload)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... on garbage
        return refuse("malformed_arrow", f"not an Arrow IPC stream: {exc}")
    try:
        chunk = decode_table(table, 0, source)
    except SchemaMismatch as exc:
        return refuse(exc.reason, str(exc))
    chunk.positions = np.full(len(chunk.positions), position, dtype=np.int64)
    chunk.rejects = [Reject(r.source, position, r.reason, r.detail, r.raw) for r in chunk.rejects]
    return chunk
