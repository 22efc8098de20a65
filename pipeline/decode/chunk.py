"""What every decoder yields: typed columns, where each row came from, and what was refused."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import orjson
import pyarrow as pa

from pipeline.records import CLEAN_SCHEMA, Reject

# Decoded columns carry CLEAN_SCHEMA names and types; values are not range-checked yet.
DECODED_SCHEMA = CLEAN_SCHEMA
REQUIRED_COLUMNS = ("ts_ns", "metro", "router", "link", "rtt_us")
RAW_PREVIEW_BYTES = 4096


@dataclass
class DecodedChunk:
    """A batch of decoded rows: `positions[i]` locates row i in `source` (1-based line number
    for text, 0-based record index for binary formats and JSON arrays, or the message position)."""

    table: pa.Table
    positions: np.ndarray
    rejects: list[Reject] = field(default_factory=list)
    source: str = ""


def empty_chunk(source: str, rejects: list[Reject] | None = None) -> DecodedChunk:
    return DecodedChunk(DECODED_SCHEMA.empty_table(), np.empty(0, np.int64), rejects or [], source)


def row_json(table: pa.Table, index: int) -> bytes:
    """Rebuild a row as JSON when the original bytes are gone (binary formats, validation)."""
    row = table.slice(index, 1).to_pylist()[0]
    return orjson.dumps(row, default=str)


def assemble(
    table: pa.Table,
    positions: np.ndarray,
    failures: Sequence[tuple[str, np.ndarray, str]],
    *,
    source: str,
    rejects: list[Reject],
    raw_of: Callable[[int], bytes | None],
) -> DecodedChunk:
    """Drop failed rows, turning each into one Reject with its first failure reason.

    `failures` are (reason, boolean row mask, detail) in priority order; `raw_of(i)` gives the
    original bytes of row i. Row order of the survivors is kept.
    """
    bad = np.zeros(table.num_rows, dtype=bool)
    for reason, mask, detail in failures:
        new = mask & ~bad
        for i in np.flatnonzero(new):
            rejects.append(Reject(source, int(positions[i]), reason, detail, raw_of(int(i))))
        bad |= new
    if bad.any():
        keep = ~bad
        table = table.filter(pa.array(keep))
        positions = positions[keep]
    rejects.sort(key=lambda r: r.position)
    return DecodedChunk(table, positions, rejects, source)
