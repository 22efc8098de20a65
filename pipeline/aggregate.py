"""Validated samples in, emitted windows out: the stage shared by `ingest` and the streaming worker.

It owns the name index and the compiled kernel. Late samples and samples
refused by the caps come back to the caller with their reason, so nothing is
dropped silently.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .index import NameIndex
from .kernel import Kernel
from .policy import DEFAULT_POLICY, SampleSharePolicy
from .rows import WindowResult
from .windows import DEFAULT_WINDOWS, NS_PER_S, WindowSpec, pane_s


@dataclass(frozen=True)
class AggregatorConfig:
    windows: tuple[WindowSpec, ...] = DEFAULT_WINDOWS
    lateness_s: int = 30
    policy: SampleSharePolicy = DEFAULT_POLICY
    max_metros: int = 10_000
    max_links: int = 1_000_000

    @property
    def windows_ns(self) -> list[tuple[int, int]]:
        return [(w.length_s * NS_PER_S, w.hop_s * NS_PER_S) for w in self.windows]

    @property
    def pane_ns(self) -> int:
        return pane_s(self.windows) * NS_PER_S


@dataclass
class Outcome:
    """What happened to the rows of one `add` call besides being aggregated."""

    late: pa.Table  # CLEAN_SCHEMA rows whose window had already been emitted
    refused: pa.Table  # CLEAN_SCHEMA rows refused, with a `reason` column
    late_positions: np.ndarray  # source positions of the late rows
    refused_positions: np.ndarray  # source positions of the refused rows
    watermark_ns: int | None = None
    accepted: int = 0


@dataclass
class WindowAggregator:
    config: AggregatorConfig = field(default_factory=AggregatorConfig)

    def __post_init__(self) -> None:
        cfg = self.config
        self.index = NameIndex(cfg.max_metros, cfg.max_links)
        self.kernel = Kernel(cfg.pane_ns, cfg.lateness_s * NS_PER_S, cfg.policy.threshold_us,
                             cfg.windows_ns)
        self.metro_first_seen_ns: dict[int, int] = {}

    def add(self, table: pa.Table, positions: np.ndarray | None = None) -> Outcome:
        """Aggregate a CLEAN_SCHEMA table; rows stay in arrival order.

        `positions` (line numbers, offsets) travel with the rows so that late and
        refused rows can be reported where they came from.
        """
        if positions is None:
            positions = np.full(table.num_rows, -1, dtype=np.int64)
        encoded = self.index.encode(table)
        values = table[self.config.policy.field]
        refused = encoded.metro_id < 0
        missing = pc.is_null(values).to_numpy(zero_copy_only=False)
        refused_any = refused | missing
        if refused_any.any():
            keep = ~refused_any
            reasons = np.where(refused, encoded.refused, "missing_field")[refused_any]
            refused_rows = table.filter(pa.array(refused_any)).append_column(
                "reason", pa.array(reasons.tolist(), type=pa.string()))
            refused_positions = positions[refused_any]
            table = table.filter(pa.array(keep))
            positions = positions[keep]
            metro_id, link_id = encoded.metro_id[keep], encoded.link_id[keep]
            values = table[self.config.policy.field]
        else:
            refused_rows = table.schema.append(pa.field("reason", pa.string())).empty_table()
            refused_positions = positions[:0]
            metro_id, link_id = encoded.metro_id, encoded.link_id
        ts_ns = _numpy(table["ts_ns"], np.int64)
        late = self.kernel.ingest(ts_ns, np.ascontiguousarray(link_id), np.ascontiguousarray(metro_id),
                                  _numpy(values, np.float64))
        on_time = ~late
        self._note_first_seen(metro_id[on_time], ts_ns[on_time])
        late_rows = table.filter(pa.array(late)) if late.any() else table.schema.empty_table()
        return Outcome(late=late_rows, refused=refused_rows, late_positions=positions[late],
                       refused_positions=refused_positions, watermark_ns=self.kernel.watermark_ns,
                       accepted=int(on_time.sum()))

    def finish(self) -> None:
        """End of a finite input: every remaining window is emitted."""
        self.kernel.flush()

    def take_windows(self) -> list[WindowResult]:
        return self.kernel.drain()

    def _note_first_seen(self, metro_id: np.ndarray, ts_ns: np.ndarray) -> None:
        if not len(metro_id):
            return
        n = len(self.index.metros)
        first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, metro_id, ts_ns)
        for metro in np.flatnonzero(first < np.iinfo(np.int64).max).tolist():
            known = self.metro_first_seen_ns.get(metro)
            if known is None or first[metro] < known:
                self.metro_first_seen_ns[metro] = int(first[metro])

    def metro_first_seen(self) -> dict[str, int]:
        return {self.index.metros[m]: ts for m, ts in self.metro_first_seen_ns.items()}


def _numpy(column: pa.ChunkedArray, dtype) -> np.ndarray:
    """A contiguous numpy copy-free view where Arrow allows it."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return np.ascontiguousarray(array.to_numpy(zero_copy_only=False), dtype=dtype)
