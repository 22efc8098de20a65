"""The compiled kernel against its executable spec (pipeline.reference) and against brute force.

Streams are generated like real probe telemetry: event times around a 2026 base
with disorder, gaps and occasional far-late samples; a few links on a few
metros; latencies including exactly 1000 µs, 0, sub-ns values, bucket edges and
values up to 10 s.
"""
from __future__ import annotations

import math
import pickle
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import histogram as h
from pipeline._kernel import Kernel, merge_rows
from pipeline.reference import ReferenceKernel

NS = 1_000_000_000
BASE_NS = 1_795_000_000 * NS
THRESHOLD_US = 1000.0
SPEC_SETS = [
    [(60, 60)],
    [(60, 60), (300, 60)],
    [(120, 60)],
    [(30, 30), (90, 30)],
]
LATENESS_S = [0, 10, 30, 120]
ROWSET_FIELDS = ("key", "samples", "under", "min_us", "max_us",
                 "hist_offsets", "hist_bucket", "hist_count")

# ---------------------------------------------------------------------------------- strategies

TINY = 2.0**h.MIN_EXP
_special = [0.0, 1000.0, math.nextafter(1000.0, 0.0), math.nextafter(1000.0, math.inf),
            TINY, math.nextafter(TINY, 0.0), 2.0**-12, 1.0, 512.0, 1024.0, 1e7]
_boundaries = st.integers(1, 1 + 33 * h.SUB_BUCKETS).map(lambda b: h.bucket_bounds(b)[0]).filter(
    lambda v: v <= 1e7)
latencies = st.one_of(
    st.sampled_from(_special),
    st.floats(0.0, TINY, exclude_max=True),
    _boundaries,
    st.floats(50.0, 3000.0),  # around the threshold
    st.floats(0.0, 1e7),
)

_disorder = st.one_of(
    st.just(0), st.just(0),
    st.integers(0, 90 * NS),  # ordinary disorder
    st.integers(200 * NS, 3600 * NS),  # far late
)
_step = st.one_of(
    st.integers(0, 5 * NS), st.integers(0, 20 * NS),
    st.integers(100 * NS, 1500 * NS),  # a gap in the data
)


@dataclass
class Stream:
    ts: np.ndarray
    link: np.ndarray
    metro: np.ndarray
    value: np.ndarray
    metro_of: dict[int, int]

    def __len__(self) -> int:
        return len(self.ts)

    def part(self, lo: int, hi: int):
        return (self.ts[lo:hi], self.link[lo:hi], self.metro[lo:hi], self.value[lo:hi])


@st.composite
def streams(draw, max_size: int = 120) -> Stream:
    links = draw(st.lists(st.integers(0, 3000), min_size=1, max_size=6, unique=True))
    metro_ids = draw(st.lists(st.integers(0, 40), min_size=1, max_size=3, unique=True))
    metro_of = {link: draw(st.sampled_from(metro_ids)) for link in links}
    size = draw(st.one_of(st.integers(0, 8), st.integers(8, max_size)))
    rows = draw(st.lists(st.tuples(_step, _disorder, st.booleans(), st.sampled_from(links), latencies),
                         min_size=size, max_size=size))
    clock = BASE_NS + draw(st.integers(0, 3600 * NS))
    ts, link, value = [], [], []
    for step, disorder, align, link_id, v in rows:
        clock += step
        t = clock - disorder
        if align:  # exactly on a 30 s boundary (pane and window edges)
            t -= t % (30 * NS)
        ts.append(t)
        link.append(link_id)
        value.append(v)
    return Stream(
        ts=np.array(ts, dtype=np.int64),
        link=np.array(link, dtype=np.int32),
        metro=np.array([metro_of[x] for x in link], dtype=np.int32),
        value=np.array(value, dtype=np.float64),
        metro_of=metro_of,
    )


@st.composite
def cuts(draw, n: int) -> list[tuple[int, int]]:
    """Arbitrary batch boundaries over `n` rows, empty and size-1 batches included."""
    points = sorted(draw(st.lists(st.integers(0, n), max_size=10)))
    edges = [0, *points, n]
    return list(zip(edges[:-1], edges[1:]))


@dataclass
class Config:
    windows_s: list[tuple[int, int]]
    lateness_s: int
    threshold_us: float = THRESHOLD_US

    @property
    def pane_ns(self) -> int:
        return math.gcd(*(hop for _, hop in self.windows_s)) * NS

    @property
    def windows_ns(self) -> list[tuple[int, int]]:
        return [(length * NS, hop * NS) for length, hop in self.windows_s]

    def make(self, cls):
        return cls(self.pane_ns, self.lateness_s * NS, self.threshold_us, self.windows_ns)


configs = st.builds(Config, st.sampled_from(SPEC_SETS), st.sampled_from(LATENESS_S))

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------------------------- helpers


def run(kernel, stream: Stream, batches, drain_each: bool = True, flush_before: int | None = None):
    """Feed `batches` (row ranges), then flush; returns (late mask, emitted windows in order).

    With `flush_before`, the kernel is also flushed before that batch (an input that goes on
    after its declared end: everything from then on must be late).
    """
    masks, out = [np.zeros(0, dtype=bool)], []
    for i, (lo, hi) in enumerate(batches):
        if i == flush_before:
            kernel.flush()
        mask = kernel.ingest(*stream.part(lo, hi))
        assert mask.dtype == np.bool_ and len(mask) == hi - lo
        masks.append(mask)
        if drain_each:
            out += kernel.drain()
    kernel.flush()
    out += kernel.drain()
    return np.concatenate(masks), out


def assert_rowsets_equal(a, b, where):
    for name in ROWSET_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, (where, name, x.dtype, y.dtype)
        np.testing.assert_array_equal(x, y, err_msg=f"{where}: {name}")
    np.testing.assert_allclose(a.sum_us, b.sum_us, rtol=1e-9, atol=0, err_msg=f"{where}: sum_us")


def by_window(windows) -> dict:
    keyed = {(w.spec_index, w.start_ns): w for w in windows}
    assert len(keyed) == len(windows), "a window was emitted twice"
    return keyed


def assert_windows_equal(got, want):
    g, w = by_window(got), by_window(want)
    assert sorted(g) == sorted(w)
    for key in w:
        assert (g[key].length_ns, g[key].hop_ns) == (w[key].length_ns, w[key].hop_ns)
        assert_rowsets_equal(g[key].links, w[key].links, f"{key} links")
        assert_rowsets_equal(g[key].metros, w[key].metros, f"{key} metros")


def assert_ordered_by_end(windows):
    ends = [w.start_ns + w.length_ns for w in windows]
    assert ends == sorted(ends)


def expected_late(stream: Stream, cfg: Config) -> np.ndarray:
    """The late rule computed from scratch: pane end <= running max(ts) - lateness."""
    if not len(stream):
        return np.zeros(0, dtype=bool)
    watermark = np.maximum.accumulate(stream.ts) - cfg.lateness_s * NS
    pane_end = (stream.ts // cfg.pane_ns + 1) * cfg.pane_ns
    return pane_end <= watermark


# ---------------------------------------------------------------------------------- (a) parity


@settings(max_examples=120, **SETTINGS)
@given(st.data(), streams(), configs, st.sampled_from([THRESHOLD_US, THRESHOLD_US, 150.0]))
def test_compiled_equals_reference(data, stream, cfg, threshold):
    cfg.threshold_us = threshold
    batches = data.draw(cuts(len(stream)))
    flush_before = data.draw(st.one_of(st.none(), st.integers(0, len(batches) - 1)))
    compiled, reference = cfg.make(Kernel), cfg.make(ReferenceKernel)
    c_late, c_out = run(compiled, stream, batches, flush_before=flush_before)
    r_late, r_out = run(reference, stream, batches, flush_before=flush_before)
    if flush_before is not None:
        assert c_late[batches[flush_before][0]:].all()
    np.testing.assert_array_equal(c_late, r_late)
    assert_windows_equal(c_out, r_out)
    assert_ordered_by_end(c_out)
    assert_ordered_by_end(r_out)
    assert compiled.samples_in == reference.samples_in == len(stream)
    assert compiled.samples_late == reference.samples_late == int(c_late.sum())
    if len(stream):
        assert compiled.watermark_ns == reference.watermark_ns == int(stream.ts.max()) - cfg.lateness_s * NS


# ---------------------------------------------------------------------------------- (b) batching


@settings(max_examples=60, **SETTINGS)
@given(st.data(), streams(), configs)
def test_batch_boundaries_change_nothing(data, stream, cfg):
    n = len(stream)
    whole = [(0, n)]
    singles = [(i, i + 1) for i in range(n)]
    random_cuts = data.draw(cuts(n))
    for cls in (Kernel, ReferenceKernel):
        base_late, base_out = run(cfg.make(cls), stream, whole)
        for batches, drain_each in ((singles, True), (random_cuts, True), (random_cuts, False)):
            late, out = run(cfg.make(cls), stream, batches, drain_each)
            np.testing.assert_array_equal(late, base_late, err_msg=cls.__name__)
            assert_windows_equal(out, base_out)
            assert [(w.spec_index, w.start_ns) for w in out] == \
                [(w.spec_index, w.start_ns) for w in base_out], cls.__name__


# ---------------------------------------------------------------------------------- (c) snapshots


def _same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if key == "link_metro":  # capacity may differ; known mappings must not
            n = min(len(a[key]), len(b[key]))
            np.testing.assert_array_equal(a[key][:n], b[key][:n])
            assert (a[key][n:] == -1).all() and (b[key][n:] == -1).all()
        elif key in ("open", "closed"):
            assert [i for i, _ in a[key]] == [i for i, _ in b[key]], key
            for (i, x), (_, y) in zip(a[key], b[key]):
                order_x, order_y = np.argsort(x.key), np.argsort(y.key)
                assert x.key[order_x].tolist() == y.key[order_y].tolist()
                assert x.samples[order_x].tolist() == y.samples[order_y].tolist()
        else:
            assert a[key] == b[key], key


@settings(max_examples=70, **SETTINGS)
@given(st.data(), streams(), configs)
def test_snapshot_restore_continues_identically(data, stream, cfg):
    n = len(stream)
    split = data.draw(st.integers(0, n))
    head = data.draw(cuts(split))
    tail = [(lo + split, hi + split) for lo, hi in data.draw(cuts(n - split))]
    want_late, want_out = run(cfg.make(Kernel), stream, head + tail)

    first = cfg.make(Kernel)
    head_masks = [first.ingest(*stream.part(lo, hi)) for lo, hi in head]
    before = first.drain()  # windows emitted before the snapshot are the caller's to keep
    state = first.snapshot()
    blob = pickle.dumps(state)

    restored = Kernel.restore(pickle.loads(blob))
    _same_state(restored.snapshot(), state)
    assert restored.samples_in == first.samples_in and restored.samples_late == first.samples_late
    assert restored.watermark_ns == first.watermark_ns
    tail_late, after = run(restored, stream, tail)

    late = np.concatenate([np.zeros(0, dtype=bool), *head_masks, tail_late])
    np.testing.assert_array_equal(late, want_late)
    assert_windows_equal(before + after, want_out)
    assert [(w.spec_index, w.start_ns) for w in before + after] == \
        [(w.spec_index, w.start_ns) for w in want_out]
    assert restored.samples_in == n and restored.samples_late == int(want_late.sum())

    # restoring the same state twice (and the original carrying on) gives the same result again:
    # the restored kernel must not have mutated what the snapshot holds
    again_late, again = run(Kernel.restore(pickle.loads(blob)), stream, tail)
    np.testing.assert_array_equal(again_late, tail_late)
    assert_windows_equal(again, after)
    orig_late, orig_after = run(first, stream, tail)
    np.testing.assert_array_equal(orig_late, tail_late)
    assert_windows_equal(orig_after, after)
    assert pickle.dumps(state) == blob


# ---------------------------------------------------------------------------------- (d) merges


@settings(max_examples=70, **SETTINGS)
@given(st.data(), streams(), configs)
def test_merges_are_exact(data, stream, cfg):
    late, out = run(cfg.make(Kernel), stream, data.draw(cuts(len(stream))))
    accepted = int((~late).sum())
    per_spec = [0] * len(cfg.windows_s)
    for w in out:
        links, metros = w.links, w.metros
        assert len(links) > 0 and len(metros) > 0, "an empty window was emitted"
        metro_of_link = np.array([stream.metro_of[k] for k in links.key.tolist()], dtype=np.int32)
        assert_rowsets_equal(merge_rows(links, metro_of_link), metros, f"window {w.start_ns}")
        assert links.samples.sum() == metros.samples.sum()
        assert links.under.sum() == metros.under.sum()
        assert links.hist_count.sum() == links.samples.sum() == metros.hist_count.sum()
        for rs in (links, metros):
            assert (np.diff(rs.key) > 0).all(), "keys must be unique and sorted"
            assert (rs.samples > 0).all() and (rs.under <= rs.samples).all()
            assert (rs.min_us <= rs.max_us).all()
            for row in range(len(rs)):
                b, c = rs.hist_of(row)
                assert (np.diff(b.astype(np.int64)) > 0).all() and (c > 0).all()
                assert c.sum() == rs.samples[row]
                assert b[0] == h.bucket_of(rs.min_us[row]) and b[-1] == h.bucket_of(rs.max_us[row])
        per_spec[w.spec_index] += int(links.samples.sum())
    for spec_index, (length, hop) in enumerate(cfg.windows_s):
        # every accepted sample lies in exactly length/hop windows of each family
        assert per_spec[spec_index] == accepted * (length // hop)
    if (60, 60) in cfg.windows_s:
        assert per_spec[cfg.windows_s.index((60, 60))] == accepted


# ---------------------------------------------------------------------------------- (e) brute force


@settings(max_examples=100, **SETTINGS)
@given(st.data(), streams(), configs)
def test_against_brute_force(data, stream, cfg):
    late, out = run(cfg.make(Kernel), stream, data.draw(cuts(len(stream))))
    want_late = expected_late(stream, cfg)
    np.testing.assert_array_equal(late, want_late)
    ok = ~want_late
    ts, metro, link, value = stream.ts[ok], stream.metro[ok], stream.link[ok], stream.value[ok]

    # every window holding at least one accepted sample is emitted, and no other
    want_windows = set()
    for spec_index, (length_s, hop_s) in enumerate(cfg.windows_s):
        length, hop = length_s * NS, hop_s * NS
        for t in ts.tolist():
            last = t - t % hop
            want_windows |= {(spec_index, last - k * hop) for k in range(length // hop)}
    emitted = by_window(out)
    assert set(emitted) == want_windows

    for (spec_index, start), w in emitted.items():
        length = cfg.windows_s[spec_index][0] * NS
        assert w.length_ns == length and w.hop_ns == cfg.windows_s[spec_index][1] * NS
        inside = (ts >= start) & (ts < start + length)
        for rs, keys in ((w.metros, metro), (w.links, link)):
            want_keys = sorted(set(keys[inside].tolist()))
            assert rs.key.tolist() == want_keys
            for row, key in enumerate(want_keys):
                sel = inside & (keys == key)
                v = value[sel]
                assert rs.samples[row] == sel.sum()
                assert rs.under[row] == int((v < THRESHOLD_US).sum())  # strict: 1000.0 is not under
                assert rs.min_us[row] == v.min() and rs.max_us[row] == v.max()
                assert rs.sum_us[row] == pytest.approx(math.fsum(v.tolist()), rel=1e-9, abs=1e-9)


def test_brute_force_checks_can_fail():
    """The exact threshold: 1000.0 counts as a sample but not as under; 999.99... counts as under."""
    cfg = Config([(60, 60)], 0)
    stream = Stream(
        ts=np.array([BASE_NS + 1, BASE_NS + 2, BASE_NS + 3], dtype=np.int64),
        link=np.array([1, 1, 2], dtype=np.int32),
        metro=np.array([7, 7, 7], dtype=np.int32),
        value=np.array([1000.0, math.nextafter(1000.0, 0.0), 0.0]),
        metro_of={1: 7, 2: 7},
    )
    _late, out = run(cfg.make(Kernel), stream, [(0, 3)])
    (w,) = out
    assert w.start_ns == BASE_NS - 40 * NS  # 1_795_000_000 s is 40 s past a minute
    assert w.metros.key.tolist() == [7]
    assert w.metros.samples.tolist() == [3] and w.metros.under.tolist() == [2]
    assert w.links.key.tolist() == [1, 2] and w.links.under.tolist() == [1, 1]
