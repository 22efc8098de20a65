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

    @classmethod
    def from_sql(cls, rows) -> "RowSet":
        """Rows read back from ClickHouse with columns samples, under, min_us, max_us, sum_us and
        the merged histogram as `buckets`/`counts` arrays (e.g. from sumMap); keys are row numbers."""
        buckets = rows["buckets"].to_pylist()
        counts = rows["counts"].to_pylist()
        lengths = np.array([len(b) for b in buckets], dtype=np.int64)
        column = lambda name, dtype: np.asarray(rows[name].to_pylist(), dtype=dtype)  # noqa: E731
        return cls(
            key=np.arange(rows.num_rows, dtype=np.int32),
            samples=column("samples", np.int64), under=column("under", np.int64),
            min_us=column("min_us", np.float64), max_us=column("max_us", np.float64),
            sum_us=column("sum_us", np.float64),
            hist_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            hist_bucket=np.asarray([b for bs in buckets for b in bs], dtype=np.uint16),
            hist_count=np.asarray([c for cs in counts for c in cs], dtype=np.int64),
        )

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
