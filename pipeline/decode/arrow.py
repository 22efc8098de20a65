"""Arrow IPC (file or stream, detected by magic) and Parquet, converted batch by batch.

No per-row Python on the good path: batches are cast column-wise by `conform`; only rejected
rows are turned back into JSON for their `raw`.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from .chunk import DecodedChunk, row_json
from .columns import LATENCY_COLUMNS, NAME_COLUMNS, conform

ARROW_FILE_MAGIC = b"ARROW1"
_WANTED = {"ts", "ts_ns", *NAME_COLUMNS, *LATENCY_COLUMNS}


def decode_table(table: pa.Table, first_index: int, source: str) -> DecodedChunk:
    """Positions are record indexes counted from `first_index`."""
    table = table.select([c for c in table.column_names if c in _WANTED])
    positions = np.arange(first_index, first_index + table.num_rows, dtype=np.int64)
    return conform(table, positions, source=source, raw_of=lambda i: row_json(table, i))


def _batches(batches: Iterator[pa.RecordBatch], source: str, chunk_rows: int) -> Iterator[DecodedChunk]:
    index = 0
    for batch in batches:
        batch.validate(full=True)  # corrupt buffers or invalid UTF-8 fail here, not deep in a cast
        for start in range(0, batch.num_rows, chunk_rows):
            piece = pa.Table.from_batches([batch.slice(start, chunk_rows)])
            yield decode_table(piece, index, source)
            index += piece.num_rows


def decode_ipc(path: str, source: str, chunk_rows: int) -> Iterator[DecodedChunk]:
    with pa.memory_map(path) as mapped:
        is_file = mapped.read(len(ARROW_FILE_MAGIC)) == ARROW_FILE_MAGIC
        mapped.seek(0)
        if is_file:
            reader = ipc.open_file(mapped)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        else:
            batches = iter(ipc.open_stream(mapped))
        yield from _batches(batches, source, chunk_rows)


def decode_parquet(path: str, source: str, chunk_rows: int) -> Iterator[DecodedChunk]:
    parquet = pq.ParquetFile(path)
    columns = [name for name in parquet.schema_arrow.names if name in _WANTED]
    yield from _batches(parquet.iter_batches(batch_size=chunk_rows, columns=columns), source, chunk_rows)


def read_ipc_stream(payload: bytes) -> pa.Table:
    """The whole stream, fully validated: the reader checks only the message framing, and a
    corrupt buffer offset or invalid UTF-8 would otherwise break (or crash) a later cast."""
    table = ipc.open_stream(pa.py_buffer(payload)).read_all()
    table.validate(full=True)
    return table
