"""Avro: object container files, Confluent wire-format messages and schemaless bodies.

Records come out of fastavro as dicts and go through the same per-record checks as JSON, so a
file written with a different (compatible) writer schema is still checked field by field.
"""
from __future__ import annotations

import io
import struct
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO, Iterator

import fastavro
import orjson

from .chunk import DecodedChunk
from .rows import RowBuilder

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "telemetry.avsc"
CONFLUENT_MAGIC = 0


@lru_cache(maxsize=1)
def telemetry_schema() -> dict:
    """schemas/telemetry.avsc, parsed once."""
    return fastavro.parse_schema(orjson.loads(SCHEMA_PATH.read_bytes()))


def decode_container(stream: BinaryIO, source: str, chunk_rows: int) -> Iterator[DecodedChunk]:
    """Positions are 0-based record indexes in the file."""
    rows = RowBuilder(source)
    for index, record in enumerate(fastavro.reader(stream)):
        rows.add(record, index)
        if (index + 1) % chunk_rows == 0:
            yield rows.finish()
            rows = RowBuilder(source)
    yield rows.finish()


def read_body(body: bytes, writer_schema: dict | None = None) -> dict:
    """One schemaless Avro record written with `writer_schema` (default telemetry.avsc) and read
    as telemetry.avsc; raises ValueError if it is not one."""
    stream = io.BytesIO(body)
    try:
        record = fastavro.schemaless_reader(stream, writer_schema or telemetry_schema(),
                                            telemetry_schema() if writer_schema else None)
    except Exception as exc:  # fastavro raises many types on garbage (EOFError, struct.error, ...)
        raise ValueError(f"not a telemetry Avro record: {type(exc).__name__}: {exc}") from None
    if stream.tell() != len(body):
        raise ValueError(f"{len(body) - stream.tell()} trailing bytes after the Avro record")
    return record


def read_confluent(payload: bytes, registry=None) -> tuple[int, dict]:
    """(schema id, record) from magic byte 0 + 4-byte big-endian schema id + Avro body.

    With a `SchemaRegistry`, the body is read with the writer schema registered under that id."""
    if len(payload) < 5 or payload[0] != CONFLUENT_MAGIC:
        raise ValueError("not Confluent wire format (magic byte 0 + 4-byte schema id)")
    (schema_id,) = struct.unpack_from(">I", payload, 1)
    writer = registry.writer_schema(schema_id) if registry is not None else None
    return schema_id, read_body(payload[5:], writer)
