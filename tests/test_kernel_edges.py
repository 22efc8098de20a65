"""Edge cases of the compiled kernel (and of its reference where the API is shared)."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline._kernel import Kernel
from pipeline.reference import ReferenceKernel

NS = 1_000_000_000
MIN = 60 * NS
DAY = 86_400 * NS
T0 = 29_916_667 * MIN  # 1_795_000_020 s: a minute boundary near the project's base time
KERNELS = [Kernel, ReferenceKernel]


def make(cls=Kernel, lateness_s=30, windows_s=((60, 60),), threshold_us=1000.0):
    pane = np.gcd.reduce([hop for _, hop in windows_s]) * NS
    return cls(int(pane), lateness_s * NS, threshold_us,
               [(length * NS, hop * NS) for length, hop in windows_s])


def batch(ts, links=None, metros=None, values=None):
    n = len(ts)
    return (np.asarray(ts, dtype=np.int64),
            np.asarray(links if links is not None else [1] * n, dtype=np.int32),
            np.asarray(metros if metros is not None else [0] * n, dtype=np.int32),
            np.asarray(values if values is not None else [500.0] * n, dtype=np.float64))


def summary(windows):
    """[(spec, start offset from T0 in s, {metro: samples}, {metro: under})] in emission order."""
    return [(w.spec_index, (w.start_ns - T0) // NS,
             dict(zip(w.metros.key.tolist(), w.metros.samples.tolist())),
             dict(zip(w.metros.key.tolist(), w.metros.under.tolist()))) for w in windows]


# ------------------------------------------------------------------------------------- late rule

@pytest.mark.parametrize("cls", KERNELS)
def test_late_rule_pane_end_at_or_before_watermark(cls):
    k = make(cls, lateness_s=30)
    # first sample at T0+90 s: watermark T0+60 s, so pane [T0, T0+60) is closed
    assert k.ingest(*batch([T0 + 90 * NS])).tolist() == [False]
    assert k.watermark_ns == T0 + 60 * NS
    late = k.ingest(*batch([T0 + 59 * NS, T0 + 30 * NS, T0, T0 + 60 * NS, T0 - 1],
                           values=[1.0, 2.0, 3.0, 4.0, 5.0]))
    # pane end == watermark is late; the pane starting at the watermark is not
    assert late.tolist() == [True, True, True, False, True]
    assert k.samples_late == 4 and k.samples_in == 6
    # a sample that raises the watermark makes itself and later ones late against the new value
    late = k.ingest(*batch([T0 + 150 * NS, T0 + 119 * NS, T0 + 120 * NS], values=[6.0, 7.0, 8.0]))
    assert late.tolist() == [False, True, False]  # watermark T0+120 s closes pane [T0+60, T0+120)
    k.flush()
    got = {(w.start_ns - T0) // NS: (w.links.samples.tolist(), w.links.min_us.tolist(),
                                     w.links.max_us.tolist()) for w in k.drain()}
    # late samples are not aggregated anywhere
    assert got == {60: ([2], [4.0], [500.0]), 120: ([2], [6.0], [8.0])}


@pytest.mark.parametrize("cls", KERNELS)
def test_zero_lateness_sample_never_late_by_itself(cls):
    k = make(cls, lateness_s=0)
    assert k.ingest(*batch([T0 + 59 * NS, T0 + 60 * NS, T0 + 59 * NS, T0 + 60 * NS])).tolist() == \
        [False, False, True, False]
    assert [(w.start_ns - T0) // NS for w in k.drain()] == [0]  # emitted as soon as wm hits its end


@pytest.mark.parametrize("cls", KERNELS)
def test_after_flush_every_sample_is_late(cls):
    k = make(cls, lateness_s=120)
    assert not k.ingest(*batch([T0, T0 + 10 * NS])).any()
    k.flush()
    assert len(k.drain()) == 1
    late = k.ingest(*batch([T0, T0 + 10 * NS, T0 + 61 * NS, T0 + DAY, T0 + 2 * DAY]))
    assert late.tolist() == [True] * 5
    k.flush()
    assert k.drain() == []
    # still closed on the next batch (the watermark after flush never moves back)
    assert k.ingest(*batch([T0 + 3 * DAY, T0 + 4 * DAY])).tolist() == [True, True]
    k.flush()
    assert k.drain() == []
    assert k.samples_in == 9 and k.samples_late == 7


# ------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("cls", KERNELS)
def test_negative_event_time_raises(cls):
    k = make(cls)
    with pytest.raises(ValueError):
        k.ingest(*batch([T0, -1]))


@pytest.mark.parametrize("cls", KERNELS)
@pytest.mark.parametrize("short", [1, 2, 3])
def test_mismatched_lengths_raise(cls, short):
    arrays = list(batch([T0, T0 + NS, T0 + 2 * NS]))
    arrays[short] = arrays[short][:2]
    k = make(cls)
    with pytest.raises(ValueError):
        k.ingest(*arrays)
    k.flush()
    assert k.drain() == []  # nothing was aggregated from the refused batch


def test_compiled_rejects_wrong_dtypes():
    ts, links, metros, values = batch([T0])
    k = make()
    with pytest.raises((ValueError, TypeError)):
        k.ingest(ts.astype(np.int32), links, metros, values)
    with pytest.raises((ValueError, TypeError)):
        k.ingest(ts, links, metros, values.astype(np.float32))


@pytest.mark.parametrize("windows_ns, pane_ns", [
    ([(90 * NS, 90 * NS)], MIN),  # hop not a multiple of the pane
    ([(150 * NS, 60 * NS)], MIN),  # length not a multiple of the hop
    ([(60 * NS, 45 * NS)], 15 * NS),  # sliding window that does not tile
    ([(60 * NS, 60 * NS), (300 * NS, 90 * NS)], MIN),
])
def test_kernel_rejects_window_spec_not_made_of_panes(windows_ns, pane_ns):
    with pytest.raises(ValueError):
        Kernel(pane_ns, 0, 1000.0, windows_ns)


def test_kernel_rejects_bad_pane_or_lateness():
    with pytest.raises(ValueError):
        Kernel(0, 0, 1000.0, [(MIN, MIN)])
    with pytest.raises(ValueError):
        Kernel(MIN, -1, 1000.0, [(MIN, MIN)])
    Kernel(30 * NS, 0, 1000.0, [(MIN, MIN), (300 * NS, 30 * NS)])  # finer panes are fine


# ------------------------------------------------------------------------------------- scale

@pytest.mark.parametrize("cls", KERNELS)
def test_link_ids_far_beyond_initial_capacity(cls):
    k = make(cls, lateness_s=60)
    links = [3, 5_000_000, 1025, 5_000_000, 2_000_000]
    metros = [1, 2, 1, 2, 3]
    late = k.ingest(*batch([T0, T0 + NS, T0 + 2 * NS, T0 + 3 * NS, T0 + 70 * NS],
                           links=links, metros=metros, values=[1.0, 2000.0, 3.0, 4.0, 5.0]))
    assert not late.any()
    k.flush()
    first, second = k.drain()
    assert first.links.key.tolist() == [3, 1025, 5_000_000]
    assert first.links.samples.tolist() == [1, 1, 2]
    assert first.links.under.tolist() == [1, 1, 1]
    assert first.metros.key.tolist() == [1, 2]
    assert first.metros.samples.tolist() == [2, 2]
    assert second.links.key.tolist() == [2_000_000] and second.metros.key.tolist() == [3]


@pytest.mark.parametrize("cls", KERNELS)
def test_gap_of_days_emits_earlier_windows(cls):
    k = make(cls, lateness_s=30, windows_s=((60, 60), (300, 60)))
    k.ingest(*batch([T0 + 5 * NS, T0 + 65 * NS, T0 + 70 * NS], metros=[4, 4, 4],
                    values=[100.0, 1000.0, 999.0]))
    assert summary(k.drain()) == []  # watermark T0+40 s: nothing due yet
    k.ingest(*batch([T0 + 3 * DAY + 1], metros=[4], values=[1.0]))
    early = summary(k.drain())  # every window of the first burst is due, none of the later one
    assert early == [
        (0, 0, {4: 1}, {4: 1}),
        (1, -240, {4: 1}, {4: 1}),  # same end as (0, 0): spec index breaks the tie
        (0, 60, {4: 2}, {4: 1}),
        (1, -180, {4: 3}, {4: 2}),
        (1, -120, {4: 3}, {4: 2}),
        (1, -60, {4: 3}, {4: 2}),
        (1, 0, {4: 3}, {4: 2}),
        (1, 60, {4: 2}, {4: 1}),
    ]
    # and the kernel keeps working on the far side of the gap
    assert k.ingest(*batch([T0 + 3 * DAY + 2 * NS, T0 + 2 * NS])).tolist() == [False, True]
    k.flush()
    late_windows = summary(k.drain())
    assert len(late_windows) == 1 + 5
    assert all(s == {0: 2} for _, _, s, _ in late_windows)


# ------------------------------------------------------------------------------------- emission

@pytest.mark.parametrize("cls", KERNELS)
def test_windows_without_samples_are_never_emitted(cls):
    k = make(cls, lateness_s=0, windows_s=((60, 60), (120, 60)))
    k.ingest(*batch([T0 + 1 * NS, T0 + 600 * NS + 1, T0 + 1200 * NS]))
    k.flush()
    got = [(s, start) for s, start, _, _ in summary(k.drain())]
    assert sorted(got) == sorted([(0, 0), (0, 600), (0, 1200),
                                  (1, -60), (1, 0), (1, 540), (1, 600), (1, 1140), (1, 1200)])
    k2 = make(cls)
    k2.flush()
    assert k2.drain() == []
    k3 = make(cls)
    k3.ingest(*batch([]))
    k3.flush()
    assert k3.drain() == []


@pytest.mark.parametrize("cls", KERNELS)
def test_emission_order_is_by_window_end(cls):
    k = make(cls, lateness_s=0, windows_s=((300, 60), (60, 60), (120, 60)))
    k.ingest(*batch([T0 + i * 20 * NS for i in range(40)][::-1] + [T0 + 800 * NS]))
    k.ingest(*batch([T0 + i * 20 * NS for i in range(40, 60)]))
    out = k.drain()
    k.flush()
    out += k.drain()
    ends = [w.start_ns + w.length_ns for w in out]
    assert ends == sorted(ends)
    assert len(out) == len({(w.spec_index, w.start_ns) for w in out})
    # equal ends come out by spec index, and every family is represented
    keyed = [(w.start_ns + w.length_ns, w.spec_index) for w in out]
    assert keyed == sorted(keyed)
    assert {w.spec_index for w in out} == {0, 1, 2}


def test_threshold_is_strict():
    k = make(threshold_us=1000.0)
    k.ingest(*batch([T0, T0 + 1, T0 + 2, T0 + 3],
                    values=[1000.0, np.nextafter(1000.0, 0.0), 1000.0000000000001, 0.0]))
    k.flush()
    (w,) = k.drain()
    assert w.metros.samples.tolist() == [4] and w.metros.under.tolist() == [2]
    assert w.metros.min_us.tolist() == [0.0] and w.metros.max_us.tolist() == [1000.0000000000001]


def test_snapshot_is_plain_data_and_round_trips():
    import pickle

    k = make(lateness_s=120, windows_s=((60, 60), (300, 60)))
    k.ingest(*batch([T0 + i * 7 * NS for i in range(50)], links=[i % 3 for i in range(50)],
                    metros=[i % 3 // 2 for i in range(50)]))
    emitted = k.drain()
    state = pickle.loads(pickle.dumps(k.snapshot()))
    r = Kernel.restore(state)
    assert (r.samples_in, r.samples_late, r.watermark_ns) == (k.samples_in, k.samples_late,
                                                              k.watermark_ns)
    for kern in (k, r):
        kern.flush()
    a, b = k.drain(), r.drain()
    assert summary(a) == summary(b) and len(a) > 0
    assert sum(w.links.samples.sum() for w in emitted + a if w.spec_index == 0) == 50


# ------------------------------------------------------------------------------------- build guard

def test_pipeline_kernel_is_the_compiled_extension():
    import pipeline._kernel
    import pipeline.kernel

    assert pipeline._kernel.__file__.endswith(".so"), pipeline._kernel.__file__
    assert pipeline.kernel.Kernel is pipeline._kernel.Kernel
    assert pipeline.kernel.Kernel is not ReferenceKernel
    assert type(pipeline.kernel.bucket_of_array).__name__ in ("cython_function_or_method",
                                                             "builtin_function_or_method")
