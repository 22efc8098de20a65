"""Pure-Python reference of the aggregation kernel: the executable specification.

Slow and simple on purpose. The compiled kernel (`ext/_kernel.pyx`) must give
identical results; parity tests compare the two on generated data.

Semantics:
- the watermark is the highest event time seen so far minus the allowed
  lateness; it only moves forward, sample by sample, so batch boundaries do
  not change any result;
- a sample is late iff its pane has already been closed, i.e. the pane end is
  at or before the watermark (including the sample itself); late samples are
  reported, never aggregated and never silently dropped;
- a window is emitted once the watermark reaches its end, and `flush()` emits
  every remaining window (end of a finite input).
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from . import histogram
from .rows import RowSet, WindowResult


@dataclass
class _Acc:
    samples: int = 0
    under: int = 0
    min_us: float = math.inf
    max_us: float = -math.inf
    sum_us: float = 0.0

    def __post_init__(self) -> None:
        self.hist: dict[int, int] = defaultdict(int)

    def add(self, value_us: float, threshold_us: float) -> None:
        self.samples += 1
        self.under += value_us < threshold_us
        self.min_us = min(self.min_us, value_us)
        self.max_us = max(self.max_us, value_us)
        self.sum_us += value_us
        self.hist[histogram.bucket_of(value_us)] += 1

    def merge(self, other: "_Acc") -> None:
        self.samples += other.samples
        self.under += other.under
        self.min_us = min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)
        self.sum_us += other.sum_us
        for bucket, count in other.hist.items():
            self.hist[bucket] += count


class ReferenceKernel:
    """Same constructor and methods as `pipeline._kernel.Kernel`."""

    def __init__(self, pane_ns: int, lateness_ns: int, threshold_us: float,
                 windows_ns: list[tuple[int, int]]):
        self.pane_ns = pane_ns
        self.lateness_ns = lateness_ns
        self.threshold_us = threshold_us
        self.windows_ns = [tuple(w) for w in windows_ns]
        self.max_ts_ns: int | None = None
        self.panes: dict[int, dict[int, _Acc]] = {}  # pane index -> link id -> acc
        self.link_metro: dict[int, int] = {}
        self.emitted: set[tuple[int, int]] = set()  # (spec index, window start)
        self.out: list[WindowResult] = []
        self.samples_in = 0
        self.samples_late = 0
        self._closed_wm: float = -math.inf

    @property
    def watermark_ns(self) -> float:
        return -math.inf if self.max_ts_ns is None else self.max_ts_ns - self.lateness_ns

    def ingest(self, ts_ns, link_id, metro_id, value_us) -> np.ndarray:
        n = len(ts_ns)
        if len(link_id) != n or len(metro_id) != n or len(value_us) != n:
            raise ValueError("ingest arrays must have equal lengths")
        late = np.zeros(n, dtype=bool)
        for i, (ts, link, metro, value) in enumerate(zip(ts_ns.tolist(), link_id.tolist(),
                                                        metro_id.tolist(), value_us.tolist())):
            if ts < 0:
                raise ValueError("event times must be non-negative")
            self.samples_in += 1
            if self.max_ts_ns is None or ts > self.max_ts_ns:
                self.max_ts_ns = ts
            pane = ts // self.pane_ns
            # after flush() every pane is closed: the closed watermark is +inf
            if (pane + 1) * self.pane_ns <= max(self.watermark_ns, self._closed_wm):
                late[i] = True
                self.samples_late += 1
                continue
            self.link_metro[link] = metro
            self.panes.setdefault(pane, {}).setdefault(link, _Acc()).add(value, self.threshold_us)
        self._emit_through(self.watermark_ns)
        return late

    def flush(self) -> None:
        self._emit_through(math.inf)

    def drain(self) -> list[WindowResult]:
        out, self.out = self.out, []
        return out

    def _emit_through(self, wm: float) -> None:
        due = []
        for pane in self.panes:
            for spec_index, (length_ns, hop_ns) in enumerate(self.windows_ns):
                last = (pane * self.pane_ns // hop_ns) * hop_ns
                for start in range(last - length_ns + hop_ns, last + 1, hop_ns):
                    if start + length_ns <= wm and (spec_index, start) not in self.emitted:
                        due.append((start + length_ns, spec_index, start))
        for _end, spec_index, start in sorted(set(due)):
            self.emitted.add((spec_index, start))
            self.out.append(self._window(spec_index, start))
        self._closed_wm = max(self._closed_wm, wm)  # never reopens what flush() closed

    def _window(self, spec_index: int, start_ns: int) -> WindowResult:
        length_ns, hop_ns = self.windows_ns[spec_index]
        links: dict[int, _Acc] = defaultdict(_Acc)
        for pane in range(start_ns // self.pane_ns, (start_ns + length_ns) // self.pane_ns):
            for link, acc in self.panes.get(pane, {}).items():
                links[link].merge(acc)
        metros: dict[int, _Acc] = defaultdict(_Acc)
        for link in sorted(links):
            metros[self.link_metro[link]].merge(links[link])
        return WindowResult(spec_index, start_ns, length_ns, hop_ns,
                            _rowset(links), _rowset(metros))


def _rowset(accs: dict[int, _Acc]) -> RowSet:
    keys = sorted(accs)
    offsets = [0]
    buckets: list[int] = []
    counts: list[int] = []
    for key in keys:
        hist = accs[key].hist
        for bucket in sorted(b for b, c in hist.items() if c):
            buckets.append(bucket)
            counts.append(hist[bucket])
        offsets.append(len(buckets))
    return RowSet(
        key=np.array(keys, dtype=np.int32),
        samples=np.array([accs[k].samples for k in keys], dtype=np.int64),
        under=np.array([accs[k].under for k in keys], dtype=np.int64),
        min_us=np.array([accs[k].min_us for k in keys], dtype=np.float64),
        max_us=np.array([accs[k].max_us for k in keys], dtype=np.float64),
        sum_us=np.array([accs[k].sum_us for k in keys], dtype=np.float64),
        hist_offsets=np.array(offsets, dtype=np.int64),
        hist_bucket=np.array(buckets, dtype=np.uint16),
        hist_count=np.array(counts, dtype=np.int64),
    )
