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

    def add(self, table: pa.Table) -> Outcome:
        """Aggregate a CLEAN_SCHEMA table; rows stay in arrival order."""
        encoded = self.index.encode(table)
        values = table[self.config.policy.field]
        reasons = encoded.refused
        missing = pc.is_null(values).to_numpy(zero_copy_only=False)
        if missing.any():
            reasons = [r or ("missing_field" if m else None) for r, m in zip(reasons, missing)]
        refused_mask = np.array([r is not None for r in reasons], dtype=bool)
        keep = ~refused_mask
        ts_ns = table["ts_ns"].to_numpy()[keep]
        metro_id = encoded.metro_id[keep]
        link_id = encoded.link_id[keep]
        value_us = pc.fill_null(values, 0.0).to_numpy()[keep]
        late = self.kernel.ingest(np.ascontiguousarray(ts_ns), np.ascontiguousarray(link_id),
                                  np.ascontiguousarray(metro_id), np.ascontiguousarray(value_us))
        self._note_first_seen(metro_id[~late], ts_ns[~late])
        kept_rows = table.filter(pa.array(keep))
        refused = table.filter(pa.array(refused_mask))
        refused = refused.append_column("reason", pa.array([r for r in reasons if r is not None],
                                                           type=pa.string()))
        return Outcome(late=kept_rows.filter(pa.array(late)), refused=refused,
                       watermark_ns=self.kernel.watermark_ns, accepted=int((~late).sum()))

    def finish(self) -> None:
        """End of a finite input: every remaining window is emitted."""
        self.kernel.flush()

    def take_windows(self) -> list[WindowResult]:
        return self.kernel.drain()

    def _note_first_seen(self, metro_id: np.ndarray, ts_ns: np.ndarray) -> None:
        if not len(metro_id):
            return
        order = np.lexsort((ts_ns, metro_id))
        ids, first = np.unique(metro_id[order], return_index=True)
        for metro, ts in zip(ids.tolist(), ts_ns[order][first].tolist()):
            known = self.metro_first_seen_ns.get(metro)
            if known is None or ts < known:
                self.metro_first_seen_ns[metro] = ts

    def metro_first_seen(self) -> dict[str, int]:
        return {self.index.metros[m]: ts for m, ts in self.metro_first_seen_ns.items()}
