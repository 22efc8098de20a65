"""Mergeable log-linear latency histogram: the bucket maths shared by every implementation.

A latency `v` (µs) falls into bucket 0 if `v < 2**MIN_EXP` (sub-nanosecond, in
practice only 0), otherwise into `1 + (e - MIN_EXP) * SUB_BUCKETS + s` where
`v = 2**e * (1 + m)`, `0 <= m < 1`, and `s = floor(m * SUB_BUCKETS)`, i.e. the
octave and the top SUB_BITS mantissa bits of the IEEE-754 double. Each bucket
spans `[L, L * (1 + 1/64))` at most, so its midpoint is within 1/128 (0.79 %)
of any value inside it: percentiles read from the histogram carry a relative
error below 1 %. Buckets are identical everywhere, so histograms merge exactly
by adding counts (across links, metros and time), and `sumMap` merges them in
ClickHouse SQL. Values at or above `2**MAX_EXP` µs (16.8 s) share the last
bucket; validation rejects latencies that large anyway.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

SUB_BITS = 6
SUB_BUCKETS = 1 << SUB_BITS
MIN_EXP = -10  # 2**-10 µs ≈ 1 ns
MAX_EXP = 24  # 2**24 µs ≈ 16.8 s
OCTAVES = MAX_EXP - MIN_EXP
N_BUCKETS = 1 + OCTAVES * SUB_BUCKETS
RELATIVE_ERROR = 1.0 / (2 * SUB_BUCKETS)
QUANTILES = (0.5, 0.95, 0.99)


def bucket_of(value_us: float) -> int:
    """Bucket index of one non-negative latency."""
    if value_us < 2.0**MIN_EXP:
        return 0
    mantissa, exp = math.frexp(value_us)  # value = mantissa * 2**exp, 0.5 <= mantissa < 1
    octave = exp - 1 - MIN_EXP
    if octave >= OCTAVES:
        return N_BUCKETS - 1
    sub = int(mantissa * 2 * SUB_BUCKETS) - SUB_BUCKETS
    return 1 + octave * SUB_BUCKETS + sub


def bucket_bounds(bucket: int) -> tuple[float, float]:
    """Half-open value range `[low, high)` of a bucket, in µs."""
    if bucket == 0:
        return 0.0, 2.0**MIN_EXP
    octave, sub = divmod(bucket - 1, SUB_BUCKETS)
    scale = 2.0 ** (octave + MIN_EXP)
    return scale * (1 + sub / SUB_BUCKETS), scale * (1 + (sub + 1) / SUB_BUCKETS)


def representative(bucket: int) -> float:
    """The value reported for a bucket: its midpoint (0 for the zero bucket)."""
    if bucket == 0:
        return 0.0
    octave, sub = divmod(bucket - 1, SUB_BUCKETS)
    return math.ldexp(1 + (sub + 0.5) / SUB_BUCKETS, octave + MIN_EXP)


def quantile(buckets: Sequence[int], counts: Sequence[int], q: float,
             min_us: float, max_us: float) -> float:
    """Nearest-rank quantile read from sparse, bucket-sorted counts.

    The sample of rank `ceil(q * n)` lies in the returned bucket, so the answer
    is within RELATIVE_ERROR of the exact nearest-rank quantile; clamping to the
    exact min and max only moves it closer.
    """
    total = sum(counts)
    if total == 0:
        return math.nan
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket, count in zip(buckets, counts):
        seen += count
        if seen >= rank:
            return min(max(representative(bucket), min_us), max_us)
    return max_us


def merge(histograms: Iterable[tuple[Sequence[int], Sequence[int]]]) -> tuple[list[int], list[int]]:
    """Exact merge of sparse histograms: counts of equal buckets add up."""
    acc: dict[int, int] = {}
    for buckets, counts in histograms:
        for bucket, count in zip(buckets, counts):
            acc[bucket] = acc.get(bucket, 0) + int(count)
    ordered = sorted(b for b, c in acc.items() if c)
    return ordered, [acc[b] for b in ordered]
