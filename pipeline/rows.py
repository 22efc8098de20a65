"""Columnar results of the kernel: one `RowSet` per key level, one `WindowResult` per window.

Histograms are stored sparse in CSR form: row `i` owns buckets
`hist_bucket[hist_offsets[i]:hist_offsets[i + 1]]` (ascending) with the
matching `hist_count`. Keys are link ids or metro ids from `pipeline.index`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import histogram


@dataclass
class RowSet:
    key: np.ndarray  # int32
    samples: np.ndarray  # int64
    under: np.ndarray  # int64
    min_us: np.ndarray  # float64
    max_us: np.ndarray  # float64
    sum_us: np.ndarray  # float64
    hist_offsets: np.ndarray  # int64, len(key) + 1
    hist_bucket: np.ndarray  # uint16
    hist_count: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.key)

    def hist_of(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.hist_offsets[row], self.hist_offsets[row + 1]
        return self.hist_bucket[lo:hi], self.hist_count[lo:hi]

    def quantiles_us(self, qs=histogram.QUANTILES) -> np.ndarray:
        """Matrix `[row, q]` of quantiles read from each row's histogram."""
        from .kernel import quantiles_csr

        return quantiles_csr(self.hist_offsets, self.hist_bucket, self.hist_count,
                             self.min_us, self.max_us, np.asarray(qs, dtype=np.float64))


@dataclass
class WindowResult:
    spec_index: int
    start_ns: int
    length_ns: int
    hop_ns: int
    links: RowSet
    metros: RowSet
