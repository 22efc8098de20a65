"""Is national coverage on track for the target? Target path, daily status, slack and forecast.

Days are handled as proleptic ordinals (`date.toordinal()`), so every formula
below is plain arithmetic on whole days.

- **Target path.** Knots `(baseline_date, baseline_coverage)`, the user's
  milestones after the baseline, then `(deadline, target)`; the path is linear
  between knots, flat at the baseline value before it and flat at the target
  after the deadline. By default the baseline is the first observed day with its
  coverage (capped at the target, so the path never slopes down to it).
- **Status** of day `d` with coverage `c` and path value `p`: `on-track` iff
  `c >= p`; `at-risk` iff below the path but within `at_risk_points`
  percentage points of it, or the day's forecast reaches the target by the
  deadline; `off-track` otherwise.
- **Slack** `floor(t* - d)`, where `t*` is the first time the path reaches `c`
  (the first segment extended backwards when `c` is below the baseline): how many
  whole days later the path reaches today's coverage (>= 0 iff on track), or, when
  negative, how far behind. A coverage above every path value takes `t*` = the
  time the path peaks (the deadline), and slack is then never negative.
- **Forecast** as of day `d`: a Theil–Sen line (median pairwise slope, median
  intercept) through the observed `(day, coverage)` of the last `trend_days`
  calendar days up to `d`, needing at least `min_trend_days` observed days. The
  forecast date is the first whole day the line reaches the target (at least
  `d + 1`; `d` itself if `c` already meets the target), `None` when the slope is
  not positive. The band uses Sen's distribution-free confidence interval of the
  slope (`confidence`, default 90 %): the steeper bound gives `forecast_low`, the
  shallower one `forecast_high` (`None` if it is not positive: maybe never).
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist

import numpy as np
import pyarrow as pa

from .errors import ConfigError
from .warehouse import Warehouse
from .warehouse.base import sql_string

ON_TRACK, AT_RISK, OFF_TRACK = "on-track", "at-risk", "off-track"
_EPS = 1e-9  # coverages are ratios of small integers; keep float noise out of verdicts


def _as_date(value, what: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigError(f"{what} must be a date (YYYY-MM-DD), not {value!r}") from exc


def _as_share(value, what: str) -> float:
    try:
        share = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be a number in [0, 1], not {value!r}") from exc
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"{what} must be in [0, 1], not {value!r}")
    return share


@dataclass(frozen=True)
class TargetConfig:
    """The coverage target and how progress towards it is judged (`[target]` in the TOML)."""

    coverage: float = 0.75
    deadline: date = date(2028, 12, 31)
    baseline_date: date | None = None  # None: the first observed day
    baseline_coverage: float | None = None  # None: that day's coverage (capped at `coverage`)
    milestones: tuple[tuple[date, float], ...] = ()
    at_risk_points: float = 5.0  # percentage points below the path that still count as at risk
    trend_days: int = 90
    min_trend_days: int = 7
    confidence: float = 0.90

    def __post_init__(self) -> None:
        object.__setattr__(self, "coverage", _as_share(self.coverage, "target coverage"))
        object.__setattr__(self, "deadline", _as_date(self.deadline, "target deadline"))
        if self.baseline_date is not None:
            object.__setattr__(self, "baseline_date", _as_date(self.baseline_date, "baseline_date"))
            if self.baseline_date >= self.deadline:
                raise ConfigError("target baseline_date must be before the deadline")
        if self.baseline_coverage is not None:
            object.__setattr__(self, "baseline_coverage",
                               _as_share(self.baseline_coverage, "baseline_coverage"))
        stones = []
        for stone in self.milestones:
            if isinstance(stone, dict):
                stone = (stone.get("date"), stone.get("coverage"))
            if len(stone) != 2:
                raise ConfigError(f"a milestone is (date, coverage), not {stone!r}")
            stones.append((_as_date(stone[0], "milestone date"), _as_share(stone[1], "milestone coverage")))
        stones.sort()
        if len({d for d, _ in stones}) != len(stones) or any(d >= self.deadline for d, _ in stones):
            raise ConfigError("milestone dates must be distinct and before the deadline")
        object.__setattr__(self, "milestones", tuple(stones))
        if not self.at_risk_points >= 0:
            raise ConfigError("target at_risk_points must be >= 0")
        if int(self.trend_days) < 2 or int(self.min_trend_days) < 2:
            raise ConfigError("target trend_days and min_trend_days must be at least 2")
        if not 0.0 < self.confidence < 1.0:
            raise ConfigError("target confidence must be in (0, 1)")

    @classmethod
    def from_mapping(cls, data: dict) -> "TargetConfig":
        try:
            return cls(**{k: (tuple(v) if k == "milestones" else v) for k, v in data.items()})
        except TypeError as exc:  # unknown key
            raise ConfigError(f"bad [target]: {exc}") from exc

    def describe(self, path: "TargetPath") -> str:
        """What a verdict was judged against, stored with every trajectory row."""
        knots = ", ".join(f"{date.fromordinal(t)}:{c:g}" for t, c in zip(path.days, path.values))
        return (f"{self.coverage:g} by {self.deadline}; path {knots}; at-risk {self.at_risk_points:g} pts; "
                f"Theil-Sen {self.trend_days} d, {self.confidence:g} band")


@dataclass(frozen=True)
class TargetPath:
    """A piecewise-linear path through knots (ordinal day, coverage), days strictly increasing."""

    days: tuple[int, ...]
    values: tuple[float, ...]

    @classmethod
    def build(cls, target: TargetConfig, observed: dict[int, float]) -> "TargetPath":
        """Knots from the config; a missing baseline comes from `observed` {ordinal day: coverage}:
        the first observed day (or the first on/after a configured baseline date) and its
        coverage, capped at the target."""
        first = min(observed)
        start = target.baseline_date.toordinal() if target.baseline_date else first
        if target.baseline_coverage is not None:
            base = target.baseline_coverage
        else:
            on_or_after = [t for t in observed if t >= start]
            base = min(observed[min(on_or_after)] if on_or_after else observed[first], target.coverage)
        deadline = target.deadline.toordinal()
        if start >= deadline:  # data starts after the deadline: the path is the target
            return cls((deadline,), (target.coverage,))
        knots = [(start, base)]
        knots += [(d.toordinal(), c) for d, c in target.milestones if d.toordinal() > start]
        knots.append((deadline, target.coverage))
        return cls(tuple(t for t, _ in knots), tuple(c for _, c in knots))

    def value(self, day: int) -> float:
        """Path value on ordinal `day` (flat outside the knots)."""
        return float(np.interp(day, self.days, self.values))

    def first_reach(self, coverage: float) -> float:
        """The first (fractional) day the path is >= coverage; see the module docstring."""
        days, values = self.days, self.values
        if coverage <= values[0] + _EPS:
            if len(days) > 1 and values[1] > values[0]:  # extend the first segment backwards
                slope = (values[1] - values[0]) / (days[1] - days[0])
                return days[0] - (values[0] - coverage) / slope
            return float(days[0])
        for (t0, v0), (t1, v1) in zip(zip(days, values), zip(days[1:], values[1:])):
            if v1 >= coverage - _EPS and v1 > v0:
                return t0 + (coverage - v0) / (v1 - v0) * (t1 - t0) if coverage > v0 else float(t0)
        return float(days[int(np.argmax(values))])  # never reached: the path's peak

    def slack_days(self, day: int, coverage: float) -> int:
        """floor(t* - day), never negative on track and at most -1 behind it."""
        slack = math.floor(self.first_reach(coverage) - day + _EPS)
        return max(slack, 0) if coverage + _EPS >= self.value(day) else min(slack, -1)


@dataclass(frozen=True)
class Fit:
    slope: float  # coverage per day
    intercept: float  # coverage at ordinal day 0
    slope_low: float
    slope_high: float
    intercept_low: float
    intercept_high: float
    points: int


def theil_sen(days: Sequence[float], values: Sequence[float], confidence: float = 0.90) -> Fit | None:
    """Median pairwise slope with Sen's confidence interval; None with fewer than 2 distinct days.

    Interval: `N` pairwise slopes sorted ascending, `C = z * sqrt(n(n-1)(2n+5)/18)`,
    lower = slope number `floor((N - C) / 2)`, upper = number `ceil((N + C) / 2) + 1`
    (1-based, clamped to [1, N]). Each bound's intercept is `median(y - slope * x)`.
    """
    x = np.asarray(days, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    i, j = np.triu_indices(len(x), k=1)
    keep = x[j] != x[i]
    if not keep.any():
        return None
    slopes = np.sort((y[j] - y[i])[keep] / (x[j] - x[i])[keep])
    n, big_n = len(x), len(slopes)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    c = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    lo_rank = min(max(math.floor((big_n - c) / 2), 1), big_n)
    hi_rank = min(max(math.ceil((big_n + c) / 2) + 1, 1), big_n)
    slope = float(np.median(slopes))
    lo, hi = float(slopes[lo_rank - 1]), float(slopes[hi_rank - 1])
    icept = lambda s: float(np.median(y - s * x))  # noqa: E731
    return Fit(slope, icept(slope), lo, hi, icept(lo), icept(hi), n)


def _hit_day(slope: float, intercept: float, target: float, day: int) -> int | None:
    """First whole day after `day` on which the line reaches `target`; None if it never rises."""
    if not slope > 0:
        return None
    return max(day + 1, math.ceil((target - intercept) / slope - _EPS))


@dataclass(frozen=True)
class Forecast:
    date: int | None
    low: int | None
    high: int | None


def forecast(days: Sequence[int], values: Sequence[float], day: int, target: TargetConfig) -> Forecast:
    """The forecast as of ordinal `day`, from observations on days in (day - trend_days, day]."""
    x = np.asarray(days, dtype=np.int64)
    y = np.asarray(values, dtype=np.float64)
    use = (x <= day) & (x > day - int(target.trend_days))
    current = y[x == day]
    if current.size and current[-1] + _EPS >= target.coverage:
        return Forecast(day, day, day)
    if use.sum() < int(target.min_trend_days):
        return Forecast(None, None, None)
    fit = theil_sen(x[use], y[use], target.confidence)
    if fit is None:
        return Forecast(None, None, None)
    point = _hit_day(fit.slope, fit.intercept, target.coverage, day)
    if point is None:
        return Forecast(None, None, None)
    low = _hit_day(fit.slope_high, fit.intercept_high, target.coverage, day)
    high = _hit_day(fit.slope_low, fit.intercept_low, target.coverage, day)
    return Forecast(point, min(low, point) if low is not None else point,
                    max(high, point) if high is not None else None)


@dataclass(frozen=True)
class TrajectoryRow:
    day: date
    coverage: float
    target_path: float
    status: str
    slack_days: int
    forecast_date: date | None
    forecast_low: date | None
    forecast_high: date | None

    def to_dict(self) -> dict:
        return {k: (str(v) if isinstance(v, date) else v) for k, v in self.__dict__.items()}


def status_of(coverage: float, path_value: float, forecast_day: int | None, target: TargetConfig,
              deadline: int) -> str:
    if coverage + _EPS >= path_value:
        return ON_TRACK
    if path_value - coverage <= target.at_risk_points / 100 + _EPS:
        return AT_RISK
    if forecast_day is not None and forecast_day <= deadline:
        return AT_RISK
    return OFF_TRACK


def trajectory(days: Sequence[date], coverages: Sequence[float],
               target: TargetConfig = TargetConfig()) -> tuple[TargetPath | None, list[TrajectoryRow]]:
    """Path, status, slack and forecast for every observed day (sorted by day on output)."""
    if len(days) != len(coverages):
        raise ValueError("days and coverages differ in length")
    if not days:
        return None, []
    pairs = sorted(zip((d.toordinal() for d in days), map(float, coverages)))
    ords = [t for t, _ in pairs]
    vals = [c for _, c in pairs]
    path = TargetPath.build(target, dict(pairs))
    deadline = target.deadline.toordinal()
    out = []
    for t, c in pairs:
        fc = forecast(ords, vals, t, target)
        p = path.value(t)
        as_date = lambda o: None if o is None else date.fromordinal(o)  # noqa: E731
        out.append(TrajectoryRow(date.fromordinal(t), c, p, status_of(c, p, fc.date, target, deadline),
                                 path.slack_days(t, c), as_date(fc.date), as_date(fc.low), as_date(fc.high)))
    return path, out


def compute(warehouse: Warehouse, policy_id: str,
            target: TargetConfig = TargetConfig()) -> tuple[TargetPath | None, list[TrajectoryRow]]:
    """The trajectory of one policy from `coverage_daily FINAL`."""
    rows = warehouse.query("SELECT toString(day) AS day, coverage FROM netready.coverage_daily FINAL "
                           f"WHERE policy = {sql_string(policy_id)} ORDER BY day")
    days = [date.fromisoformat(d) for d in rows["day"].to_pylist()]
    return trajectory(days, rows["coverage"].to_pylist(), target)


def to_table(policy_id: str, path: TargetPath | None, rows: list[TrajectoryRow],
             target: TargetConfig, version: int) -> pa.Table:
    n = len(rows)
    dates = lambda k: pa.array([getattr(r, k) for r in rows], type=pa.date32())  # noqa: E731
    return pa.table({
        "day": dates("day"),
        "policy": pa.array([policy_id] * n, type=pa.string()),
        "coverage": pa.array([r.coverage for r in rows], type=pa.float64()),
        "target_path": pa.array([r.target_path for r in rows], type=pa.float64()),
        "status": pa.array([r.status for r in rows], type=pa.string()),
        "slack_days": pa.array([r.slack_days for r in rows], type=pa.int32()),
        "forecast_date": dates("forecast_date"),
        "forecast_low": dates("forecast_low"),
        "forecast_high": dates("forecast_high"),
        "target": pa.array([target.describe(path) if path else ""] * n, type=pa.string()),
        "version": pa.array([version] * n, type=pa.uint64()),
    })


def refresh(warehouse: Warehouse, policy_id: str, target: TargetConfig = TargetConfig()) -> int:
    """Recompute `coverage_trajectory` for every day of the policy (the baseline may move); rows written."""
    path, rows = compute(warehouse, policy_id, target)
    if rows:
        warehouse.insert("coverage_trajectory", to_table(policy_id, path, rows, target, time.time_ns()))
    return len(rows)
