"""Target path, status, slack and forecast maths on constructed series, and the chdb refresh."""
from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pytest

from pipeline import trajectory as tj
from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.trajectory import TargetConfig, TargetPath, theil_sen, trajectory
from pipeline.warehouse.migrations import migrate

D0 = date(2026, 1, 1)
DEADLINE = date(2028, 12, 31)
SPAN = (DEADLINE - D0).days  # 1095


def test_path_is_piecewise_linear_through_the_knots():
    cfg = TargetConfig(baseline_date=D0, baseline_coverage=0.5, milestones=((date(2027, 1, 1), 0.6),))
    path = TargetPath.build(cfg, {D0.toordinal(): 0.4})
    assert path.values == (0.5, 0.6, 0.75)
    mid = D0 + timedelta(days=100)
    assert path.value(mid.toordinal()) == pytest.approx(0.5 + 0.1 * 100 / 365)
    later = date(2027, 1, 1) + timedelta(days=73)
    assert path.value(later.toordinal()) == pytest.approx(0.6 + 0.15 * 73 / (DEADLINE - date(2027, 1, 1)).days)
    assert path.value((D0 - timedelta(days=5)).toordinal()) == 0.5  # flat before the baseline
    assert path.value((DEADLINE + timedelta(days=5)).toordinal()) == 0.75  # and after the deadline


def test_default_baseline_is_first_observed_day_capped_at_target():
    path = TargetPath.build(TargetConfig(), {D0.toordinal() + 3: 0.6, D0.toordinal(): 0.9})
    assert path.days == (D0.toordinal(), DEADLINE.toordinal()) and path.values == (0.75, 0.75)


def test_status_and_slack_on_a_straight_path():
    cfg = TargetConfig(baseline_date=D0, baseline_coverage=0.45, at_risk_points=5)
    slope = 0.30 / SPAN
    day = D0 + timedelta(days=200)
    p = 0.45 + slope * 200
    days, covs = [D0, day], [0.45, p + 0.02]  # two points: no forecast (min_trend_days 7)
    _, rows = trajectory(days, covs, cfg)
    ahead = rows[-1]
    assert ahead.status == tj.ON_TRACK and ahead.target_path == pytest.approx(p)
    assert ahead.slack_days == math.floor(0.02 / slope)  # the path reaches p + 0.02 that many days later
    _, rows = trajectory(days, [0.45, p - 0.03], cfg)
    assert rows[-1].status == tj.AT_RISK and rows[-1].slack_days == math.floor(-0.03 / slope)
    _, rows = trajectory(days, [0.45, p - 0.06], cfg)
    assert rows[-1].status == tj.OFF_TRACK and rows[-1].slack_days == math.floor(-0.06 / slope)
    # Below the baseline: the first segment extended backwards.
    _, rows = trajectory([D0], [0.40], cfg)
    assert rows[0].slack_days == math.floor(-0.05 / slope)
    # Above the target: the path peaks at the deadline.
    _, rows = trajectory([day], [0.8], cfg)
    assert rows[0].status == tj.ON_TRACK and rows[0].slack_days == (DEADLINE - day).days


def test_theil_sen_matches_a_brute_force_median_and_sen_interval():
    rng = np.random.default_rng(7)
    x = np.arange(20.0)
    y = 0.5 + 0.004 * x + rng.normal(0, 0.01, 20)
    fit = theil_sen(x, y, 0.9)
    slopes = sorted((y[j] - y[i]) / (x[j] - x[i]) for i in range(20) for j in range(i + 1, 20))
    assert fit.slope == pytest.approx(np.median(slopes))
    assert fit.intercept == pytest.approx(np.median(y - fit.slope * x))
    n, big_n = 20, len(slopes)
    c = 1.6448536269514722 * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    assert fit.slope_low == slopes[math.floor((big_n - c) / 2) - 1]
    assert fit.slope_high == slopes[math.ceil((big_n + c) / 2)]
    assert theil_sen([3, 3], [0.1, 0.2]) is None


def test_forecast_of_an_exact_line_and_of_a_flat_series():
    cfg = TargetConfig(baseline_date=D0, baseline_coverage=0.5)
    days = [D0 + timedelta(days=k) for k in range(10)]
    _, rows = trajectory(days, [0.5 + 0.01 * k for k in range(10)], cfg)
    last = rows[-1]
    # coverage(t) = 0.5 + 0.01 (t - t0) reaches 0.75 at t0 + 25.
    assert last.forecast_date == last.forecast_low == last.forecast_high == D0 + timedelta(days=25)
    assert all(r.forecast_date is None for r in rows[:6])  # fewer than min_trend_days
    _, rows = trajectory(days, [0.5] * 10, cfg)
    assert all(r.forecast_date is None and r.forecast_low is None for r in rows)
    _, rows = trajectory(days, [0.5] * 9 + [0.8], cfg)
    assert rows[-1].forecast_date == days[-1]  # already at the target


def test_forecast_rescues_at_risk_and_uses_only_the_trend_window():
    cfg = TargetConfig(baseline_date=D0, baseline_coverage=0.6, at_risk_points=1, trend_days=5,
                       min_trend_days=5, deadline=date(2026, 12, 31))
    days = [D0 + timedelta(days=k) for k in range(40)]
    covs = [0.9 - 0.01 * k for k in range(30)] + [0.45 + 0.01 * k for k in range(10)]
    _, rows = trajectory(days, covs, cfg)
    last = rows[-1]  # the last 5 days rise 0.01/day from 0.50 on day 35: 0.75 on day 60
    assert last.forecast_date == D0 + timedelta(days=60)
    assert last.status == tj.AT_RISK  # 0.54 is far below the path, but the trend arrives in time
    assert rows[30].forecast_date is None and rows[30].status == tj.OFF_TRACK  # falling, far below


def test_target_config_from_toml(tmp_path):
    cfg = tmp_path / "n.toml"
    cfg.write_text("[target]\ncoverage = 0.8\ndeadline = 2028-06-30\nbaseline_date = 2026-06-10\n"
                   "baseline_coverage = 0.4\nmilestones = [[2027-06-30, 0.55], [\"2027-12-31\", 0.65]]\n")
    t = Settings.load(cfg).target
    assert (t.coverage, t.deadline, t.baseline_date, t.baseline_coverage) == (
        0.8, date(2028, 6, 30), date(2026, 6, 10), 0.4)
    assert t.milestones == ((date(2027, 6, 30), 0.55), (date(2027, 12, 31), 0.65))
    cfg.write_text("[target]\ncoverage = 1.5\n")
    with pytest.raises(ConfigError):
        Settings.load(cfg)
    with pytest.raises(ConfigError):
        TargetConfig(milestones=((date(2029, 1, 1), 0.5),))


def test_refresh_lands_the_trajectory_in_chdb(warehouse):
    migrate(warehouse)
    days = [D0 + timedelta(days=k) for k in range(12)]
    covs = [0.5, 0.5, 0.55, 0.55, 0.6, 0.6, 0.6, 0.65, 0.65, 0.7, 0.7, 0.7]
    policy = "test-policy"
    rows = pa.table({"day": pa.array(days, pa.date32()), "policy": [policy] * 12,
                     "metros_total": pa.array([20] * 12, pa.uint32()),
                     "metros_compliant": pa.array([round(c * 20) for c in covs], pa.uint32()),
                     "metros_reporting": pa.array([20] * 12, pa.uint32()),
                     "coverage": pa.array(covs, pa.float64()), "registry": ["seen"] * 12,
                     "version": pa.array([1] * 12, pa.uint64())})
    warehouse.insert("coverage_daily", rows)
    assert tj.refresh(warehouse, policy) == 12
    assert tj.refresh(warehouse, policy) == 12  # re-landing replaces, FINAL shows each day once
    got = warehouse.query("SELECT * FROM netready.coverage_trajectory FINAL ORDER BY day").to_pylist()
    _, expected = trajectory(days, covs, TargetConfig())
    assert len(got) == 12
    for g, e in zip(got, expected):
        assert (g["day"], g["status"], g["slack_days"], g["forecast_date"], g["forecast_low"],
                g["forecast_high"]) == (e.day, e.status, e.slack_days, e.forecast_date, e.forecast_low,
                                        e.forecast_high)
        assert g["coverage"] == e.coverage and g["target_path"] == pytest.approx(e.target_path)
    assert got[-1]["forecast_date"] is not None and got[0]["forecast_date"] is None
    assert got[0]["target"].startswith("0.75 by 2028-12-31")


def test_simulator_trend_per_day_scales_medians_and_defaults_to_no_change():
    from pipeline.simulate import ScenarioConfig, generate

    base = dict(metros=2, routers_per_metro=1, links_per_router=2, duration_s=2 * 86_400, probe_interval_s=600,
                incidents=(), spike_share=0.0, exact_threshold_share=0.0, diurnal_amplitude=0.0)
    assert generate(ScenarioConfig(**base)).equals(generate(ScenarioConfig(**base, trend_per_day=0.0)))
    flat = generate(ScenarioConfig(**base)).sort_by("ts_ns")
    trend = generate(ScenarioConfig(**base, trend_per_day=-0.1)).sort_by("ts_ns")
    from pipeline.simulate import DEFAULT_START_NS

    since_start = np.asarray(flat["ts_ns"]) - DEFAULT_START_NS
    round_ns = since_start // 600_000_000_000 * 600_000_000_000  # the factor is per probe round
    ratio = np.asarray(trend["rtt_us"]) / np.asarray(flat["rtt_us"])
    assert np.allclose(ratio, 0.9 ** (round_ns / 86_400e9), rtol=2e-5)  # up to the 3-decimal rounding
    with pytest.raises(ConfigError):
        ScenarioConfig(**base, trend_per_day=-1.0)
