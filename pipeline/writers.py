"""Write CLEAN_SCHEMA tables in the formats producers send: JSON Lines, JSON, Arrow, Parquet, Avro.

JSON is built column-wise with Arrow string kernels rather than row by row:
names are escaped once per distinct value (by orjson), timestamps are
formatted once per distinct second plus a nanosecond suffix, and each slice of
rows becomes one Arrow string array whose data buffer is already the file
content. Numbers keep a '.0' as orjson would write them, so a row's line
parses back to the same values as `orjson.dumps` of that row.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import fastavro
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from pipeline.records import CLEAN_SCHEMA

TsStyle = Literal["rfc3339", "ns"]
EXTENSIONS = {"jsonl": "jsonl", "json": "json", "arrow": "arrow", "parquet": "parquet", "avro": "avro"}
_FORMAT_OF_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".arrow": "arrow",
                     ".ipc": "arrow", ".feather": "arrow", ".parquet": "parquet", ".pq": "parquet",
                     ".avro": "avro"}
AVRO_SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "telemetry.avsc"
_SLICE_ROWS = 1 << 18  # keeps each JSON string array far below Arrow's 2 GiB offset limit
_NS_PER_S = 1_000_000_000


def write_table(table: pa.Table, path: str | Path, fmt: str | None = None, *,
                ts_style: TsStyle | None = None) -> Path:
    """Write `table` to `path`; `fmt` defaults from the suffix. `ts_style` None: rfc3339 for JSON, ns for Avro."""
    path = Path(path)
    fmt = fmt or _FORMAT_OF_SUFFIX.get(path.suffix.lower())
    if fmt == "jsonl":
        write_jsonl(table, path, ts_style=ts_style or "rfc3339")
    elif fmt == "json":
        write_json(table, path, ts_style=ts_style or "rfc3339")
    elif fmt == "arrow":
        write_arrow(table, path)
    elif fmt == "parquet":
        write_parquet(table, path)
    elif fmt == "avro":
        write_avro(table, path, ts_style=ts_style or "ns")
    else:
        raise ValueError(f"cannot tell the format of {path}; pass fmt= one of {sorted(EXTENSIONS)}")
    return path


def write_jsonl(table: pa.Table, path: str | Path, *, ts_style: TsStyle = "rfc3339") -> None:
    """One JSON object per line; null optional fields are left out."""
    with open(path, "wb") as out:
        for lines in _json_slices(_clean(table), ts_style, "\n"):
            out.write(_string_data(lines))


def write_json(table: pa.Table, path: str | Path, *, ts_style: TsStyle = "rfc3339") -> None:
    """One JSON array of objects, one object per line for readable diffs."""
    with open(path, "wb") as out:
        out.write(b"[\n")
        previous: pa.Buffer | None = None
        for records in _json_slices(_clean(table), ts_style, ",\n"):
            if previous is not None:
                out.write(previous)
            previous = _string_data(records)
        if previous is not None:
            out.write(previous[: previous.size - 2])  # no comma after the last object
        out.write(b"\n]\n")


def encode_records_jsonl(table: pa.Table, *, ts_style: TsStyle = "rfc3339") -> list[bytes]:
    """One JSON message per row, without newlines, e.g. as Kafka record values."""
    messages: list[bytes] = []
    for records in _json_slices(_clean(table), ts_style, ""):
        messages.extend(records.cast(pa.binary()).to_pylist())
    return messages


def write_arrow(table: pa.Table, path: str | Path) -> None:
    """Arrow IPC file format (random access), not the stream format."""
    table = _clean(table)
    with ipc.new_file(str(path), CLEAN_SCHEMA) as writer:
        writer.write_table(table)


def write_parquet(table: pa.Table, path: str | Path) -> None:
    pq.write_table(_clean(table), str(path), compression="zstd")


def write_avro(table: pa.Table, path: str | Path, *, ts_style: TsStyle = "ns",
               codec: str = "null", schema_path: Path | None = None) -> None:
    """Avro object container file in the shared record schema, read at call time so edits take effect."""
    with open(schema_path or AVRO_SCHEMA_PATH, "rb") as f:
        schema = fastavro.parse_schema(json.load(f))
    with open(path, "wb") as out:
        fastavro.writer(out, schema, _avro_records(_clean(table), ts_style), codec=codec)


def _clean(table: pa.Table | pa.RecordBatch) -> pa.Table:
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    return table.select(CLEAN_SCHEMA.names).cast(CLEAN_SCHEMA)


def _avro_records(table: pa.Table, ts_style: TsStyle) -> Iterator[dict]:
    names = CLEAN_SCHEMA.names[1:]
    for start in range(0, table.num_rows, _SLICE_ROWS):
        part = table.slice(start, _SLICE_ROWS)
        ts = part.column("ts_ns") if ts_style == "ns" else _rfc3339(part.column("ts_ns"))
        columns = [ts.to_pylist()] + [part.column(n).to_pylist() for n in names]
        for row in zip(*columns):
            yield dict(zip(("ts", *names), row))


def _json_slices(table: pa.Table, ts_style: TsStyle, suffix: str) -> Iterator[pa.StringArray]:
    """Each slice of rows as a string array of JSON objects, each followed by `suffix`."""
    for name in ("rtt_us", "one_way_us"):
        finite = pc.is_finite(table.column(name))
        if not pc.all(pc.or_kleene(finite, pc.is_null(table.column(name))), min_count=0).as_py():
            raise ValueError(f"{name} holds NaN or infinity, which JSON cannot carry")
    for start in range(0, table.num_rows, _SLICE_ROWS):
        part = table.slice(start, _SLICE_ROWS).combine_chunks()
        ts_ns = part.column("ts_ns").chunk(0) if part.num_rows else pa.array([], pa.int64())
        ts = ts_ns.cast(pa.string()) if ts_style == "ns" else _rfc3339(ts_ns, quoted=True)
        pieces = ['{"ts":', ts,
                  ',"metro":', _json_strings(part.column("metro")),
                  ',"router":', _json_strings(part.column("router")),
                  ',"link":', _json_strings(part.column("link")),
                  ',"rtt_us":', _json_floats(part.column("rtt_us"))]
        for name, render in (("one_way_us", _json_floats), ("site", _json_strings),
                             ("dc", _json_strings)):
            field = pc.binary_join_element_wise(f',"{name}":', render(part.column(name)), "")
            pieces.append(pc.fill_null(field, ""))
        pieces.append("}" + suffix)
        yield pc.binary_join_element_wise(*pieces, "")


def _rfc3339(ts_ns: pa.Array | pa.ChunkedArray, *, quoted: bool = False) -> pa.Array:
    """'YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ', formatting each distinct second only once."""
    ns = np.asarray(ts_ns.to_numpy(), dtype=np.int64)
    if not len(ns):
        return pa.array([], pa.string())
    seconds, frac_ns = np.divmod(ns, _NS_PER_S)
    low, high = int(seconds.min()), int(seconds.max())
    if high - low <= len(ns):
        distinct, index = np.arange(low, high + 1), seconds - low
    else:
        distinct, index = np.unique(seconds, return_inverse=True)
    q = '"' if quoted else ""
    heads = pa.array([q + s + "." for s in np.datetime_as_string(distinct.astype("datetime64[s]"))])
    # 10**9 + frac has ten digits; dropping the leading 1 zero-pads frac to nine.
    tails = pc.utf8_slice_codeunits(pa.array(frac_ns + _NS_PER_S).cast(pa.string()), 1)
    return pc.binary_join_element_wise(heads.take(pa.array(index)), tails, "Z" + q, "")


def _json_strings(column: pa.ChunkedArray) -> pa.Array:
    """JSON string literals, escaped by orjson once per distinct value."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    literals = pa.array([orjson.dumps(s).decode() for s in encoded.dictionary.to_pylist()],
                        pa.string())
    return literals.take(encoded.indices)


def _json_floats(column: pa.ChunkedArray) -> pa.Array:
    """Shortest round-trip decimal, with '.0' added to integral values as orjson writes them."""
    text = pc.cast(column, pa.string()).combine_chunks()
    values = column.to_numpy()  # nulls become NaN, which is never integral
    if not (values == np.floor(values)).any():
        return text
    # Integral values print as bare digits unless Arrow chose an exponent.
    bare = pc.invert(pc.or_(pc.match_substring(text, "."), pc.match_substring(text, "e")))
    return pc.if_else(bare, pc.binary_join_element_wise(text, ".0", ""), text)


def _string_data(lines: pa.StringArray) -> pa.Buffer:
    """The concatenated characters of a string array, without copying."""
    if not len(lines):
        return pa.py_buffer(b"")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return lines.buffers()[2][first:last]
