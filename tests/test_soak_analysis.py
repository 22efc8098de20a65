"""The soak criteria fail on a leak, a growing lag, part build-up and a count mismatch."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import soak_analysis as sa  # noqa: E402

HOUR_S = 3600
RATE = 2000
GOOD_COUNTS = {"problems": [], "landed": 10, "delivered": 10, "late": 1, "windows": 2}


def series(rss_mb_per_h: float, *, lag=lambda t: 4000, parts=lambda t: 12, noise_mb: float = 3.0) -> list[dict]:
    """One sample every 10 s for an hour; RSS 200 MB plus a trend and a +-noise_mb sawtooth."""
    out = []
    for i in range(HOUR_S // 10 + 1):
        t = i * 10.0
        rss = 200 + rss_mb_per_h * t / HOUR_S + (noise_mb if i % 2 else -noise_mb)
        out.append({"t_s": t, "rss_mb": rss, "lag": lag(t), "parts_max_partition": parts(t),
                    "parts_total": parts(t) * 3, "loadavg_1m": 1.5})
    return out


def verdicts(samples, caught_up_s=2.0, counts=GOOD_COUNTS, parts_limit=150):
    fig = sa.figures(samples, [2.0, 3.0, 5.0], HOUR_S)
    return fig, {k: ok for k, (ok, _) in sa.criteria(fig, rate=RATE, caught_up_s=caught_up_s,
                                                      parts_limit=parts_limit, counts=counts).items()}


def test_slope_of_a_known_line():
    times = [0.0, 600.0, 1200.0, 1800.0]
    assert sa.slope_per_hour(times, [100 + 0.01 * t for t in times]) == pytest.approx(36.0)
    assert math.isnan(sa.slope_per_hour([1.0, 2.0], [1.0, 2.0]))


def test_quantiles():
    assert sa.quantile([4.0, 1.0, 3.0, 2.0], 0.5) == pytest.approx(2.5)
    assert sa.quantile(list(range(101)), 0.99) == pytest.approx(99.0)
    assert math.isnan(sa.quantile([], 0.5))


def test_slope_limit_is_an_absolute_drift_on_short_runs():
    assert sa.slope_limit_mb_per_h(HOUR_S) == sa.SLOPE_LIMIT_MB_PER_H
    assert sa.slope_limit_mb_per_h(300) == pytest.approx(20 / (150 / 3600))  # 480 MB/h


def test_healthy_run_passes():
    fig, ok = verdicts(series(0.0))
    assert all(ok.values()), ok
    assert abs(fig["rss_slope_mb_per_h"]) < 1.0
    assert fig["delay_p50_s"] == 3.0 and fig["lag_max"] == 4000


def test_leak_fails_memory_slope():
    _, ok = verdicts(series(30.0))  # 30 MB/h: 4 bytes per sample at 2 000 samples/s
    assert not ok["memory_slope"] and ok["lag_bounded"] and ok["counts_exact"]


def test_growing_lag_fails():
    _, ok = verdicts(series(0.0, lag=lambda t: int(20 * t)))  # 72 000 behind after an hour
    assert not ok["lag_bounded"]
    _, ok = verdicts(series(0.0), caught_up_s=None)
    assert not ok["lag_returns_to_zero"]


def test_part_build_up_fails():
    _, ok = verdicts(series(0.0, parts=lambda t: 10 + int(t / 20)))  # 190 parts at the end
    assert not ok["parts_bounded"]


def test_count_mismatch_fails():
    _, ok = verdicts(series(0.0), counts={**GOOD_COUNTS, "problems": ["landed 9, delivered 10"]})
    assert not ok["counts_exact"] and ok["memory_slope"]


def test_hour_runs_follow_a_leak_but_not_a_slow_wander():
    # A flat run whose RSS dips by 7 MB for ten minutes late in the second half (as measured):
    # a raw second-half fit reads that as a trend; the 10-minute-bin medians do not.
    wander = series(0.0)
    for s in wander:
        if 1800 <= s["t_s"] < 2400:
            s["rss_mb"] -= 7.0
    _, ok = verdicts(wander)
    assert ok["memory_slope"]
    second = [s for s in wander if s["t_s"] >= HOUR_S / 2]
    assert sa.slope_per_hour([s["t_s"] for s in second], [s["rss_mb"] for s in second]) > 10.0
    fig, ok = verdicts(series(25.0))
    assert not ok["memory_slope"] and fig["rss_slope_mb_per_h"] == pytest.approx(25.0, rel=0.05)
