"""Replay files through the streaming aggregator and land the results (`netready ingest`).

The same `WindowAggregator` and `Lander` serve the Kafka worker; here the input
is finite, so every window is closed at the end. Rejected, refused and late
records are written to the reject file with their reason and counted.
"""
from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from . import __version__
from .aggregate import AggregatorConfig, WindowAggregator
from .coverage import Registry
from .decode import read_path
from .decode.chunk import row_json
from .landing import Lander
from .records import Reject
from .rejects import RejectCounter, RejectWriter
from .trajectory import TargetConfig
from .validate import Limits, validate_with_positions
from .warehouse import Warehouse
from .warehouse.migrations import migrate

LAND_EVERY_LINK_ROWS = 200_000
CHUNK_ROWS = 262_144


@dataclass(frozen=True)
class IngestConfig:
    aggregator: AggregatorConfig = field(default_factory=AggregatorConfig)
    limits: Limits = field(default_factory=Limits)
    registry: Registry = field(default_factory=Registry)
    target: TargetConfig = field(default_factory=TargetConfig)
    reject_path: Path | None = None
    now_ns: int | None = None  # the "now" for future-timestamp checks; None = wall clock


@dataclass
class IngestSummary:
    run_id: str
    sources: list[str]
    samples_read: int = 0
    samples_accepted: int = 0
    samples_late: int = 0
    rejects_by_reason: Counter = field(default_factory=Counter)
    windows_emitted: int = 0
    metro_rows: int = 0
    link_rows: int = 0
    coverage_rows: int = 0
    daily_rows: int = 0
    elapsed_s: float = 0.0

    @property
    def samples_rejected(self) -> int:
        return sum(n for reason, n in self.rejects_by_reason.items() if reason != "late")

    def to_dict(self) -> dict:
        rate = self.samples_read / self.elapsed_s if self.elapsed_s else 0.0
        return {"run_id": self.run_id, "sources": self.sources, "samples_read": self.samples_read,
                "samples_accepted": self.samples_accepted, "samples_late": self.samples_late,
                "samples_rejected": self.samples_rejected,
                "rejects_by_reason": dict(sorted(self.rejects_by_reason.items())),
                "windows_emitted": self.windows_emitted, "metro_window_rows": self.metro_rows,
                "link_window_rows": self.link_rows, "coverage_window_rows": self.coverage_rows,
                "daily_rows": self.daily_rows, "elapsed_s": round(self.elapsed_s, 3),
                "samples_per_s": round(rate)}


class _Rejects:
    """Reject file (optional) plus counts; late rows are written here too, reason `late`."""

    def __init__(self, path: Path | None):
        self.writer = RejectWriter(path) if path else None
        self.counter = self.writer.counter if self.writer else RejectCounter()

    def __enter__(self) -> "_Rejects":
        if self.writer:
            self.writer.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.writer:
            self.writer.__exit__(*exc)

    def add(self, rejects: list[Reject]) -> None:
        if self.writer:
            self.writer.write(rejects)
        else:
            self.counter.add(rejects)

    def add_rows(self, rows: pa.Table, positions, source: str, reason: str | list[str],
                 detail: str) -> None:
        reasons = reason if isinstance(reason, list) else [reason] * rows.num_rows
        self.add([Reject(source, int(positions[i]), r, detail, row_json(rows, i))
                  for i, r in enumerate(reasons)])


def ingest_paths(paths: Iterable[str | Path], warehouse: Warehouse, config: IngestConfig,
                 progress: Callable[[int], None] | None = None) -> IngestSummary:
    """Aggregate every file in order and land the results; returns the run's summary."""
    started = time.time()
    paths = [Path(p) for p in paths]
    summary = IngestSummary(run_id=uuid.uuid4().hex, sources=[str(p) for p in paths])
    migrate(warehouse)
    aggregator = WindowAggregator(config.aggregator)
    lander = Lander(warehouse, config.aggregator.policy, config.aggregator.windows, config.registry,
                    config.target)
    pending: list = []
    late_rows: list = []

    def land(force: bool) -> None:
        pending.extend(aggregator.take_windows())
        if not force and sum(len(w.links) for w in pending) < LAND_EVERY_LINK_ROWS:
            return
        lander.land_late(late_rows)
        late_rows.clear()
        if not pending:
            return
        metro_rows, link_rows = lander.land_results(pending, aggregator.index,
                                                    aggregator.metro_first_seen())
        summary.windows_emitted += len(pending)
        summary.metro_rows += metro_rows.num_rows
        summary.link_rows += link_rows.num_rows
        pending.clear()

    with _Rejects(config.reject_path) as rejects:
        for path in paths:
            source = str(path)
            for chunk in read_path(path, chunk_rows=CHUNK_ROWS):
                read = chunk.table.num_rows + len(chunk.rejects)
                summary.samples_read += read
                rejects.add(chunk.rejects)
                clean, positions, invalid = validate_with_positions(chunk, config.limits, config.now_ns)
                rejects.add(invalid)
                outcome = aggregator.add(clean, positions)
                summary.samples_accepted += outcome.accepted
                if outcome.refused.num_rows:
                    rejects.add_rows(outcome.refused.drop_columns(["reason"]), outcome.refused_positions, source,
                                     outcome.refused["reason"].to_pylist(),
                                     "refused by the metro/link caps or the policy's field")
                if outcome.late.num_rows:
                    summary.samples_late += outcome.late.num_rows
                    rejects.add_rows(outcome.late, outcome.late_positions, source, "late",
                                     f"window already emitted (watermark {outcome.watermark_ns} ns)")
                    late_rows.append((outcome.late, outcome.watermark_ns, source))
                land(force=False)
                if progress:
                    progress(read)
        aggregator.finish()
        land(force=True)
        summary.rejects_by_reason = Counter(rejects.counter.by_reason)

    summary.coverage_rows, summary.daily_rows = lander.refresh()
    summary.elapsed_s = time.time() - started
    _record_run(warehouse, summary, config, started)
    return summary


def _record_run(warehouse: Warehouse, summary: IngestSummary, config: IngestConfig, started: float) -> None:
    reasons = sorted(summary.rejects_by_reason)
    warehouse.insert("ingest_runs", pa.table({
        "run_id": [summary.run_id],
        "started_at": pa.array([int(started)], type=pa.int64()).cast(pa.timestamp("s", tz="UTC")),
        "finished_at": pa.array([int(time.time())], type=pa.int64()).cast(pa.timestamp("s", tz="UTC")),
        "command": ["ingest"],
        "sources": pa.array([summary.sources], type=pa.list_(pa.string())),
        "policy": [config.aggregator.policy.id],
        "windows": [",".join(w.label for w in config.aggregator.windows)],
        "samples_read": pa.array([summary.samples_read], type=pa.uint64()),
        "samples_accepted": pa.array([summary.samples_accepted], type=pa.uint64()),
        "samples_late": pa.array([summary.samples_late], type=pa.uint64()),
        "samples_rejected": pa.array([summary.samples_rejected], type=pa.uint64()),
        "reject_reasons": pa.array([reasons], type=pa.list_(pa.string())),
        "reject_counts": pa.array([[summary.rejects_by_reason[r] for r in reasons]],
                                  type=pa.list_(pa.uint64())),
        "netready_version": [__version__],
    }))
