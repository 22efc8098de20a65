"""The log-linear histogram: Python bucket maths == compiled bucket maths, error bounds, exact merges."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import histogram as h
from pipeline.kernel import bucket_of_array, merge_rows, quantiles_csr
from pipeline.rows import RowSet

TOP_US = 2.0**h.MAX_EXP  # values at or above share the last bucket (clamped), see histogram.py
TINY = 2.0**h.MIN_EXP


# --- value strategies -------------------------------------------------------------------------

def _bucket_low(bucket: int) -> float:
    return h.bucket_bounds(bucket)[0]


SPECIAL_VALUES = [
    0.0, -0.0, 1000.0, math.nextafter(1000.0, 0.0), math.nextafter(1000.0, math.inf),
    TINY, math.nextafter(TINY, 0.0), math.nextafter(TINY, 1.0), 2.0**-11, 5e-324, 1e-300,
    1.0, 2.0, 0.5, 999.0, 1024.0, 1e7, 10_000_000.0, math.nextafter(TOP_US, 0.0),
]

boundary_values = st.integers(1, h.N_BUCKETS - 1).flatmap(
    lambda b: st.sampled_from([
        _bucket_low(b),
        math.nextafter(_bucket_low(b), 0.0),
        math.nextafter(_bucket_low(b), math.inf),
    ]))

#: Realistic latency mix (µs): exact threshold, zeros, sub-ns values, bucket edges, up to 1e7.
latencies = st.one_of(
    st.sampled_from(SPECIAL_VALUES),
    st.floats(0.0, TINY, exclude_max=True),
    boundary_values.filter(lambda v: v < 1e7),
    st.floats(50.0, 3000.0),
    st.floats(0.0, 1e7),
)


def _all_boundaries() -> np.ndarray:
    vals = list(SPECIAL_VALUES)
    for b in range(1, h.N_BUCKETS):
        lo, hi = h.bucket_bounds(b)
        vals += [lo, math.nextafter(lo, 0.0), math.nextafter(lo, math.inf), (lo + hi) / 2,
                 math.nextafter(hi, 0.0)]
    for e in range(h.MIN_EXP - 3, h.MAX_EXP + 4):
        p = 2.0**e
        vals += [p, math.nextafter(p, 0.0), math.nextafter(p, math.inf)]
    vals += [TOP_US, 2 * TOP_US, 1e30]  # clamped into the last bucket by both implementations
    return np.array(vals, dtype=np.float64)


# --- bucket_of ---------------------------------------------------------------------------------

def test_bucket_of_python_equals_compiled_on_every_boundary():
    values = _all_boundaries()
    compiled = bucket_of_array(values)
    assert compiled.dtype == np.uint16
    python = np.array([h.bucket_of(v) for v in values.tolist()])
    mismatch = np.flatnonzero(python != compiled)
    assert not len(mismatch), [(values[i], python[i], compiled[i]) for i in mismatch[:5]]


def test_bucket_of_known_values():
    # 1000 = 2**9 * 1.953125: octave 9 - (-10) = 19, sub floor(0.953125 * 64) = 61
    assert h.bucket_of(1000.0) == 1 + 19 * 64 + 61
    assert h.bucket_of(0.0) == 0
    assert h.bucket_of(math.nextafter(TINY, 0.0)) == 0
    assert h.bucket_of(TINY) == 1
    assert h.bucket_of(1.0) == 1 + 10 * 64
    assert h.bucket_of(math.nextafter(1.0, 0.0)) == 10 * 64
    assert h.bucket_of(TOP_US) == h.N_BUCKETS - 1
    assert h.bucket_bounds(h.bucket_of(1000.0)) == (1000.0, 1008.0)
    assert list(bucket_of_array(np.array([0.0, TINY, 1.0, 1000.0]))) == [0, 1, 641, 1278]


def test_buckets_tile_the_range_without_gaps():
    previous_high = TINY
    for b in range(1, h.N_BUCKETS):
        lo, hi = h.bucket_bounds(b)
        assert lo == previous_high and hi > lo
        assert (hi - lo) / lo <= 1 / h.SUB_BUCKETS
        previous_high = hi
    assert previous_high == TOP_US


@settings(deadline=None, max_examples=300)
@given(st.lists(latencies, min_size=1, max_size=50))
def test_bucket_of_python_equals_compiled(values):
    arr = np.array(values, dtype=np.float64)
    assert bucket_of_array(arr).tolist() == [h.bucket_of(v) for v in values]


@settings(deadline=None, max_examples=400)
@given(st.one_of(latencies, st.floats(0.0, TOP_US, exclude_max=True)))
def test_value_lies_in_its_bucket_and_representative_is_close(value):
    b = h.bucket_of(value)
    lo, hi = h.bucket_bounds(b)
    assert lo <= value < hi
    rep = h.representative(b)
    assert lo <= rep < hi
    if b == 0:
        assert rep == 0.0 and value < TINY
    else:
        assert abs(rep - value) <= h.RELATIVE_ERROR * value
        assert h.RELATIVE_ERROR * 100 < 1.0


@pytest.mark.parametrize("bucket", [1, 2, 63, 64, 65, 641, 1278, h.N_BUCKETS - 1])
def test_representative_within_error_at_both_ends_of_bucket(bucket):
    lo, hi = h.bucket_bounds(bucket)
    rep = h.representative(bucket)
    for v in (lo, math.nextafter(hi, 0.0)):
        assert h.bucket_of(v) == bucket
        assert abs(rep - v) <= h.RELATIVE_ERROR * v


# --- quantiles ---------------------------------------------------------------------------------

def _sparse(values) -> tuple[list[int], list[int]]:
    counts: dict[int, int] = {}
    for v in values:
        b = h.bucket_of(v)
        counts[b] = counts.get(b, 0) + 1
    keys = sorted(counts)
    return keys, [counts[k] for k in keys]


def _rowset(groups: list[list[float]], keys=None) -> RowSet:
    """A RowSet built from raw samples without the kernel (test-side construction)."""
    offsets, buckets, counts = [0], [], []
    for values in groups:
        b, c = _sparse(values)
        buckets += b
        counts += c
        offsets.append(len(buckets))
    n = len(groups)
    return RowSet(
        key=np.asarray(keys if keys is not None else range(n), dtype=np.int32),
        samples=np.array([len(g) for g in groups], dtype=np.int64),
        under=np.array([sum(v < 1000.0 for v in g) for g in groups], dtype=np.int64),
        min_us=np.array([min(g) if g else math.inf for g in groups], dtype=np.float64),
        max_us=np.array([max(g) if g else -math.inf for g in groups], dtype=np.float64),
        sum_us=np.array([math.fsum(g) for g in groups], dtype=np.float64),
        hist_offsets=np.array(offsets, dtype=np.int64),
        hist_bucket=np.array(buckets, dtype=np.uint16),
        hist_count=np.array(counts, dtype=np.int64),
    )


def _exact_nearest_rank(x: np.ndarray, q: float) -> float:
    return float(np.sort(x)[math.ceil(q * len(x)) - 1])


@settings(deadline=None, max_examples=150)
@given(st.lists(latencies, min_size=1, max_size=400))
def test_histogram_quantiles_within_one_percent_of_exact(values):
    x = np.array(values, dtype=np.float64)
    buckets, counts = _sparse(values)
    for q in h.QUANTILES:
        exact = _exact_nearest_rank(x, q)
        est = h.quantile(buckets, counts, q, float(x.min()), float(x.max()))
        if exact < TINY:  # the zero bucket: only an absolute bound (below 1 ns) exists
            assert 0.0 <= est <= exact
        else:
            assert abs(est - exact) <= h.RELATIVE_ERROR * exact, (q, exact, est)
            assert abs(est - exact) <= 0.01 * exact


@settings(deadline=None, max_examples=80)
@given(st.lists(st.lists(latencies, min_size=0, max_size=120), min_size=1, max_size=6),
       st.lists(st.floats(0.0, 1.0), min_size=0, max_size=4))
def test_python_quantile_equals_compiled_quantiles_csr(groups, extra_qs):
    rows = _rowset(groups)
    qs = np.array(list(h.QUANTILES) + [0.0, 1.0] + extra_qs, dtype=np.float64)
    compiled = quantiles_csr(rows.hist_offsets, rows.hist_bucket, rows.hist_count,
                             rows.min_us, rows.max_us, qs)
    assert compiled.shape == (len(groups), len(qs))
    for i in range(len(groups)):
        b, c = rows.hist_of(i)
        for j, q in enumerate(qs.tolist()):
            expected = h.quantile(b.tolist(), c.tolist(), q, rows.min_us[i], rows.max_us[i])
            got = compiled[i, j]
            if math.isnan(expected):
                assert not groups[i] and math.isnan(got)
            else:
                assert got == expected, (i, q, got, expected)
    # RowSet.quantiles_us is the same reading
    np.testing.assert_array_equal(rows.quantiles_us(), compiled[:, :3])


def test_quantile_examples():
    # 100 samples: 99 fast, one slow; p99 is rank 99 (fast), p100 is the slow one
    values = [100.0] * 99 + [5000.0]
    b, c = _sparse(values)
    # 100.0 lies in bucket [100, 101): the midpoint is reported
    assert h.bucket_bounds(b[0]) == (100.0, 101.0)
    assert h.quantile(b, c, 0.99, 100.0, 5000.0) == 100.5
    assert h.quantile(b, c, 0.999, 100.0, 5000.0) == 5000.0  # rank 100, clamped to exact max
    assert h.quantile(b, c, 0.99, 100.0, 100.25) == 100.25  # clamped to the max given
    b1, c1 = _sparse([100.0] * 10)
    assert h.quantile(b1, c1, 0.5, 100.0, 100.0) == 100.0  # constant series is exact
    assert math.isnan(h.quantile([], [], 0.5, math.inf, -math.inf))


# --- merge ---------------------------------------------------------------------------------------

sample_lists = st.lists(latencies, min_size=0, max_size=60)


@settings(deadline=None, max_examples=150)
@given(sample_lists, sample_lists, sample_lists)
def test_merge_associative_commutative_and_equal_to_concatenation(a, b, c):
    ha, hb, hc = _sparse(a), _sparse(b), _sparse(c)
    ab_c = h.merge([h.merge([ha, hb]), hc])
    a_bc = h.merge([ha, h.merge([hb, hc])])
    flat = h.merge([ha, hb, hc])
    assert ab_c == a_bc == flat
    assert h.merge([hb, ha]) == h.merge([ha, hb])
    assert h.merge([hc, ha, hb]) == flat
    assert flat == _sparse(a + b + c)
    assert sum(flat[1]) == len(a) + len(b) + len(c)
    assert flat[0] == sorted(set(flat[0]))


@settings(deadline=None, max_examples=100)
@given(st.lists(sample_lists, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_compiled_merge_rows_equals_histogram_of_concatenation(groups, rnd):
    keys = [rnd.randrange(3) for _ in groups]
    merged = merge_rows(_rowset(groups, keys), np.asarray(keys, dtype=np.int32))
    assert merged.key.tolist() == sorted(set(keys))
    for row, key in enumerate(merged.key.tolist()):
        pooled = [v for g, k in zip(groups, keys) if k == key for v in g]
        b, c = merged.hist_of(row)
        assert (b.tolist(), c.tolist()) == _sparse(pooled)
        assert merged.samples[row] == len(pooled)
        assert merged.under[row] == sum(v < 1000.0 for v in pooled)
        if pooled:
            assert merged.min_us[row] == min(pooled) and merged.max_us[row] == max(pooled)
            assert merged.sum_us[row] == pytest.approx(math.fsum(pooled), rel=1e-9, abs=1e-12)


def test_merge_drops_zero_counts_and_sorts():
    assert h.merge([([5, 2], [1, 0]), ([2, 1], [3, 0])]) == ([2, 5], [3, 1])
    assert h.merge([]) == ([], [])

