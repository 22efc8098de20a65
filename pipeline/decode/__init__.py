"""Decoding: files and messages in any supported format to DecodedChunks of typed columns.

Decoders check shape and types only (is ts a time, is rtt_us a number); ranges and names are
judged by `pipeline.validate`, so every format gets the same rules.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Iterator

from pipeline.errors import DecodeError, NetreadyError

from .arrow import decode_ipc, decode_parquet
from .avro import decode_container
from .chunk import DecodedChunk
from .jsonl import decode_json_document, decode_json_lines
from .message import decode_message

__all__ = ["DecodedChunk", "FILE_FORMATS", "decode_message", "format_of", "read_path"]

FILE_FORMATS = ("jsonl", "json", "avro", "arrow", "parquet")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".avro": "avro",
               ".arrow": "arrow", ".arrows": "arrow", ".ipc": "arrow", ".feather": "arrow",
               ".parquet": "parquet"}


def format_of(path: str | Path) -> tuple[str, bool]:
    """(format, gzip-compressed) from the file name."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    if gzipped:
        suffixes.pop()
    fmt = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None or (gzipped and fmt not in ("jsonl", "json")):
        raise DecodeError(f"{path}: cannot tell the format from the name; pass fmt= one of {FILE_FORMATS}")
    return fmt, gzipped


def read_path(path: str | Path, *, fmt: str | None = None, chunk_rows: int = 65536) -> Iterator[DecodedChunk]:
    """Decode a file chunk by chunk (about `chunk_rows` rows each).

    Bad records come back as rejects in the chunks; a file that cannot be read at all (missing,
    corrupt, wrong format, unusable columns) raises DecodeError naming it.
    """
    source = str(path)
    if fmt is None:
        fmt, gzipped = format_of(path)
    else:
        gzipped = source.lower().endswith(".gz")
        if fmt not in FILE_FORMATS:
            raise DecodeError(f"{source}: unknown format {fmt!r}; expected one of {FILE_FORMATS}")
    try:
        if fmt == "arrow":
            yield from decode_ipc(source, source, chunk_rows)
        elif fmt == "parquet":
            yield from decode_parquet(source, source, chunk_rows)
        else:
            with (gzip.open(source, "rb") if gzipped else open(source, "rb")) as stream:
                if fmt == "jsonl":
                    yield from decode_json_lines(stream, source, chunk_rows)
                elif fmt == "json":
                    yield from decode_json_document(stream, source, chunk_rows)
                else:
                    yield from decode_container(stream, source, chunk_rows)
    except NetreadyError as exc:
        if source in str(exc):
            raise
        raise type(exc)(f"{source}: {exc}") from exc
    except Exception as exc:  # readers raise OSError, ArrowInvalid, ValueError, EOFError, ...
        raise DecodeError(f"{source}: cannot read as {fmt}{' (gzip)' if gzipped else ''}: "
                          f"{type(exc).__name__}: {exc}") from exc
