"""A batch of Kafka messages from one partition to one DecodedChunk, positioned by offset.

Single-record JSON messages (the common, slow case) are joined into one JSON
Lines block and parsed in one go; everything else goes through
`decode_message` one by one. Rows keep offset order, which is arrival order.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

from ..decode.chunk import DecodedChunk, empty_chunk
from ..decode.jsonl import JsonLinesDecoder
from ..decode.message import decode_message
from ..errors import DecodeError
from ..records import CLEAN_SCHEMA, Reject

log = logging.getLogger("netready.worker")
MessageDecoder = Callable[[bytes, str, int], DecodedChunk]
_NEWLINE, _OPEN_BRACE = ord("\n"), ord("{")


def decode_batch(payloads: Sequence[bytes], offsets: Sequence[int], source: str,
                 fmt: str = "auto", custom: MessageDecoder | None = None, registry=None) -> DecodedChunk:
    """Decode messages in offset order; `custom` (an adapter) replaces the built-in formats."""
    if not payloads:
        return empty_chunk(source)
    offsets = np.asarray(offsets, dtype=np.int64)
    if custom is not None:
        return _concat([_guarded(custom, p, source, int(o)) for p, o in zip(payloads, offsets)], source)
    if fmt in ("auto", "json"):
        block = b"\n".join(payloads) + b"\n"
        data = np.frombuffer(block, dtype=np.uint8)
        ends = np.flatnonzero(data == _NEWLINE)
        if len(ends) == len(payloads) and (fmt == "json" or _all_objects(data, ends)):
            # The common case in one go: every message is one line of JSON.
            return _reposition(JsonLinesDecoder(source).decode(0, block, ends), offsets)
    lines = [i for i, p in enumerate(payloads)
             if fmt in ("auto", "json") and p[:1] == b"{" and b"\n" not in p]
    chunks = []
    if lines:
        block = b"\n".join(payloads[i] for i in lines) + b"\n"
        ends = np.cumsum([len(payloads[i]) + 1 for i in lines]) - 1
        chunk = JsonLinesDecoder(source).decode(0, block, ends)
        chunks.append(_reposition(chunk, offsets[np.asarray(lines)]))
    done = set(lines)
    for i, payload in enumerate(payloads):
        if i not in done:
            chunks.append(_guarded(lambda p, s, o: decode_message(p, source=s, position=o, fmt=fmt,
                                                                  registry=registry),
                                   payload, source, int(offsets[i])))
    return _concat(chunks, source)


def _guarded(decode: MessageDecoder, payload: bytes, source: str, offset: int) -> DecodedChunk:
    """One message that breaks a decoder is dead-lettered (`decoder_error`), not a crash loop:
    the worker would replay it forever. DecodeError (e.g. a registry outage) still propagates."""
    try:
        return decode(payload, source, offset)
    except DecodeError:
        raise
    except Exception as exc:
        log.error("decoder failed on %s offset %d: %s: %s", source, offset, type(exc).__name__, exc)
        return empty_chunk(source, [Reject(source, offset, "decoder_error", f"{type(exc).__name__}: {exc}",
                                           payload)])


def _all_objects(data: np.ndarray, ends: np.ndarray) -> bool:
    """Every line of the joined block starts with `{`. In auto mode only JSON objects may take
    the bulk path (Avro and Arrow bytes must not)."""
    starts = np.concatenate(([0], ends[:-1] + 1))
    return bool((data[starts] == _OPEN_BRACE).all())


def _reposition(chunk: DecodedChunk, offsets: np.ndarray) -> DecodedChunk:
    """Line indexes (0-based) of a joined block back to Kafka offsets."""
    positions = offsets[chunk.positions] if len(chunk.positions) else chunk.positions
    rejects = [dataclasses.replace(r, position=int(offsets[r.position])) for r in chunk.rejects]
    return DecodedChunk(chunk.table, positions, rejects, chunk.source)


def _concat(chunks: list[DecodedChunk], source: str) -> DecodedChunk:
    chunks = [c for c in chunks if c.table.num_rows or c.rejects]
    if not chunks:
        return empty_chunk(source)
    if len(chunks) == 1:
        return chunks[0]
    table = pa.concat_tables([c.table.cast(CLEAN_SCHEMA) for c in chunks])
    positions = np.concatenate([c.positions for c in chunks])
    order = np.argsort(positions, kind="stable")
    rejects = sorted((r for c in chunks for r in c.rejects), key=lambda r: r.position)
    return DecodedChunk(table.take(pa.array(order)), positions[order], rejects, source)
