"""Where refused records go: a JSON Lines file for people to fix them, and counts for summaries."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Iterable

import orjson

from pipeline.records import Reject


class RejectCounter:
    """Counts rejects by reason code; no I/O."""

    def __init__(self) -> None:
        self.by_reason: Counter[str] = Counter()

    def add(self, rejects: Iterable[Reject]) -> None:
        self.by_reason.update(r.reason for r in rejects)

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


class RejectWriter:
    """Appends rejects as JSON Lines (source, position, reason, detail, raw), counting as it goes.

    Appending, not truncating, so a restarted run keeps what earlier runs refused.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.counter = RejectCounter()
        self._file: BinaryIO | None = None

    def __enter__(self) -> RejectWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")
        return self

    def write(self, rejects: Iterable[Reject]) -> None:
        if self._file is None:
            raise RuntimeError("RejectWriter used outside its with block")
        rejects = list(rejects)
        self._file.write(b"".join(orjson.dumps(r.to_json_dict()) + b"\n" for r in rejects))
        self.counter.add(rejects)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
