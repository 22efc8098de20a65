"""JSON Lines and JSON documents.

Each block of up to `chunk_rows` lines first goes to pyarrow's C++ JSON reader with an explicit
schema, which is strict about types (a number where a string belongs fails the block). Any
failure, blank line or over-long line sends that block alone to the per-line orjson path, which
finds exactly which lines are bad and why.
"""
from __future__ import annotations

import io
from typing import BinaryIO, Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from .chunk import RAW_PREVIEW_BYTES, DecodedChunk
from .columns import conform
from .rows import RowBuilder

READ_BYTES = 16 << 20
MAX_LINE_BYTES = 1 << 20
# orjson refuses JSON nested deeper than this; pyarrow has no limit. A line with more opening
# brackets than this might be that deep, so its block takes the orjson path (same verdict).
MAX_DEPTH = 1024
_NEWLINE = 10
_OPENERS = (ord("["), ord("{"))
_BOM = b"\xef\xbb\xbf"  # pyarrow skips a UTF-8 BOM at the start of a block; RFC 8259 allows it
_FIELDS = [("metro", pa.string()), ("router", pa.string()), ("link", pa.string()),
           ("rtt_us", pa.float64()), ("one_way_us", pa.float64()), ("site", pa.string()),
           ("dc", pa.string()), ("probe", pa.string()), ("carrier", pa.string())]
# ts is an integer or a string per record; try the type that worked last first.
_TS_SCHEMAS = {t: pa.schema([("ts", t), *_FIELDS]) for t in (pa.int64(), pa.string())}


def line_blocks(stream: BinaryIO, chunk_rows: int) -> Iterator[tuple[int, bytes, np.ndarray]]:
    """(first line number, block of at most chunk_rows whole lines, offsets of its newlines)."""
    first_line = 1
    pending = b""
    while True:
        data = stream.read(READ_BYTES)
        at_eof = not data
        buf = pending + data
        if at_eof and buf and not buf.endswith(b"\n"):
            buf += b"\n"
        ends = np.flatnonzero(np.frombuffer(buf, np.uint8) == _NEWLINE)
        cuts = list(range(chunk_rows - 1, len(ends), chunk_rows))
        if at_eof and len(ends) % chunk_rows:
            cuts.append(len(ends) - 1)
        start, prev = 0, -1
        for k in cuts:
            end = int(ends[k]) + 1
            yield first_line, buf[start:end], ends[prev + 1:k + 1] - start
            first_line += k - prev
            start, prev = end, k
        if at_eof:
            return
        pending = buf[start:]


class JsonLinesDecoder:
    """Decodes blocks of JSON Lines from one source, remembering which ts type parses fast."""

    def __init__(self, source: str, *, fast: bool = True, max_line_bytes: int = MAX_LINE_BYTES):
        self.source = source
        self.fast = fast
        self.max_line_bytes = max_line_bytes
        self._ts_types = [pa.int64(), pa.string()]

    def decode(self, first_line: int, block: bytes, ends: np.ndarray) -> DecodedChunk:
        """Decode `block` (whole lines; `ends` are its newline offsets) starting at `first_line`."""
        chunk = self._fast(first_line, block, ends) if self.fast else None
        return chunk if chunk is not None else self.slow(first_line, block)

    def _fast(self, first_line: int, block: bytes, ends: np.ndarray) -> DecodedChunk | None:
        if len(ends) == 0:
            return None
        lengths = np.diff(ends, prepend=-1)
        if (lengths.max() > self.max_line_bytes or _maybe_too_deep(block, ends, lengths)
                or not _is_utf8(block)):
            return None
        for ts_type in self._ts_types:
            try:
                table = pj.read_json(
                    pa.BufferReader(block),
                    read_options=pj.ReadOptions(use_threads=True, block_size=max(1 << 20, len(block) // 4 + 1)),
                    parse_options=pj.ParseOptions(explicit_schema=_TS_SCHEMAS[ts_type],
                                                  unexpected_field_behavior="ignore"),
                )
            except (pa.ArrowException, UnicodeDecodeError):
                continue
            if table.num_rows != len(ends):  # blank lines were skipped: positions would shift
                return None
            if not _finite(table):  # NaN/Infinity literals are not JSON: let the reference path say so
                return None
            if ts_type != self._ts_types[0]:
                self._ts_types.reverse()
            positions = np.arange(first_line, first_line + len(ends), dtype=np.int64)
            lines = _LazyLines(block)
            return conform(table, positions, source=self.source, raw_of=lines.get)
        return None

    def slow(self, first_line: int, block: bytes) -> DecodedChunk:
        """Per-line orjson: exact rejects for every bad line; also the reference for the fast path."""
        rows = RowBuilder(self.source)
        loads, decode_error, add = orjson.loads, orjson.JSONDecodeError, rows.add
        lines = block.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        for position, line in enumerate(lines, first_line):
            if len(line) > self.max_line_bytes:
                rows.reject(position, "too_large", f"line of {len(line)} bytes exceeds "
                            f"{self.max_line_bytes}; raw truncated", line[:RAW_PREVIEW_BYTES])
                continue
            try:
                obj = loads(line[3:] if line.startswith(_BOM) else line)
            except decode_error as exc:
                if not line.strip():
                    continue
                rows.reject(position, *json_error(line, exc), line)
                continue
            if type(obj) is list:
                for item in obj:
                    add(item, position, line)
            else:
                add(obj, position, line)
        return rows.finish()


def _is_utf8(block: bytes) -> bool:
    """pyarrow's reader copies invalid UTF-8 into string columns (orjson refuses the line)."""
    try:
        pc.cast(pa.array([block], pa.binary()), pa.string())
    except pa.ArrowInvalid:
        return False
    return True


def _maybe_too_deep(block: bytes, ends: np.ndarray, lengths: np.ndarray) -> bool:
    """True if some line has more than MAX_DEPTH opening brackets (only long lines can)."""
    for i in np.flatnonzero(lengths > 2 * MAX_DEPTH):
        start = int(ends[i]) - int(lengths[i]) + 1
        line = np.frombuffer(block, np.uint8, count=int(lengths[i]) - 1, offset=start)
        if np.count_nonzero((line == _OPENERS[0]) | (line == _OPENERS[1])) > MAX_DEPTH:
            return True
    return False


def json_error(raw: bytes, exc: Exception) -> tuple[str, str]:
    """(reason, detail) for bytes orjson refused."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return "invalid_utf8", f"invalid UTF-8 at byte {bad.start}"
    if "surrogate" in str(exc):
        return "invalid_utf8", str(exc)
    return "malformed_json", str(exc)


def _finite(table: pa.Table) -> bool:
    """No NaN or infinite latency: pyarrow's reader accepts the NaN/Infinity literals orjson refuses."""
    return not any(pc.any(pc.invert(pc.is_finite(table.column(name)))).as_py()
                   for name in ("rtt_us", "one_way_us"))


class _LazyLines:
    """Line i of a block, split only if some row is rejected."""

    def __init__(self, block: bytes):
        self.block = block
        self.lines: list[bytes] | None = None

    def get(self, index: int) -> bytes:
        if self.lines is None:
            self.lines = self.block.split(b"\n")
        return self.lines[index]


def decode_json_lines(stream: BinaryIO, source: str, chunk_rows: int) -> Iterator[DecodedChunk]:
    decoder = JsonLinesDecoder(source)
    for first_line, block, ends in line_blocks(stream, chunk_rows):
        yield decoder.decode(first_line, block, ends)


def decode_json_document(stream: BinaryIO, source: str, chunk_rows: int) -> Iterator[DecodedChunk]:
    """A .json file: one array of records (positions are 0-based indexes) or one object (position
    0); anything that is not a single JSON value is read as JSON Lines."""
    data = stream.read()
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        yield from decode_json_lines(io.BytesIO(data), source, chunk_rows)
        return
    items = doc if type(doc) is list else [doc]
    for start in range(0, max(len(items), 1), chunk_rows):
        rows = RowBuilder(source)
        for index in range(start, min(start + chunk_rows, len(items))):
            rows.add(items[index], index)
        yield rows.finish()
