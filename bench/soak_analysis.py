"""Figures and pass/fail criteria of a soak run, from its time series (no servers needed).

Criteria, and why these bounds:

- **Memory slope** (MB/hour) at most `max(SLOPE_LIMIT_MB_PER_H, DRIFT_LIMIT_MB / second-half
  hours)`. Runs of an hour or more: least squares over the medians of 10-minute bins after a
  10-minute warm-up (RSS samples 10 s apart are not independent: RSS wanders for tens of minutes,
  and a raw second-half fit of a flat one-hour run measured 20.03 MB/h; medians of long bins
  follow a leak and ignore the wander). Shorter runs: least squares over the second half. In steady state the worker's
  memory is bounded by design: open windows (a few panes per link), the name index (fixed set of
  links here) and librdkafka's queues (`queued.max.messages.kbytes`). What grows without bound is a
  leak, and leaks scale with traffic: at 2 000 samples/s, 3 bytes kept per sample is 21.6 MB/h, and
  at 6 000 landed link-window rows per minute, 60 bytes kept per row is 21.6 MB/h. RSS moves by
  +-8 MB from sample to sample (a consumed batch of up to 20 000 messages, the per-minute window
  emission) and also wanders by 5-10 MB over tens of minutes: in a one-hour run with flat
  10-minute medians (200-207 MB) the second-half slope came out at 20.0 MB/h, so over one hour this
  bound sits at the edge of the noise (RELIABILITY.md, "Soak"). Over the 150 s second half of a
  5-minute run the sample-to-sample noise alone is worth about 100 MB/h, so short runs are held to
  an absolute drift of at most 20 MB over their second half instead (480 MB/h for 5 minutes): they
  catch gross leaks only (about 70 bytes per sample at 2 000/s).
- **Lag bounded**: committed lag never above `LAG_LIMIT_S` seconds of traffic (rate x 30 s, the
  allowed lateness: a worker further behind than that is not keeping up), and back to 0 within
  `CATCH_UP_LIMIT_S` after the producer stops.
- **Parts bounded**: active parts of any (table, partition) of the `netready` database stay below
  the server's `parts_to_delay_insert` (150 by default), where ClickHouse starts throttling inserts.
- **Counts exact**: every 60 s metro window of the run holds exactly the samples (and the samples
  under threshold) the producer had delivered for it, none missing or extra; no duplicate keys in
  the final tables; late samples = those sent late on purpose; no rejects.
"""
from __future__ import annotations

import math

SLOPE_LIMIT_MB_PER_H = 20.0
DRIFT_LIMIT_MB = 20.0
LAG_LIMIT_S = 30.0
CATCH_UP_LIMIT_S = 120.0
WARM_UP_S = 600.0
BIN_S = 600.0


def slope_per_hour(times_s: list[float], values: list[float]) -> float:
    """Least-squares slope of values against time, per hour (nan with fewer than 3 points)."""
    n = len(times_s)
    if n < 3:
        return math.nan
    mean_t = sum(times_s) / n
    mean_v = sum(values) / n
    var = sum((t - mean_t) ** 2 for t in times_s)
    if var == 0:
        return math.nan
    cov = sum((t - mean_t) * (v - mean_v) for t, v in zip(times_s, values))
    return cov / var * 3600.0


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile (nan when empty)."""
    s = sorted(values)
    if not s:
        return math.nan
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def slope_limit_mb_per_h(duration_s: float) -> float:
    """SLOPE_LIMIT_MB_PER_H for runs of an hour or more; DRIFT_LIMIT_MB over the second half below."""
    if duration_s >= 3600:
        return SLOPE_LIMIT_MB_PER_H
    half_h = duration_s / 2 / 3600.0
    return max(SLOPE_LIMIT_MB_PER_H, DRIFT_LIMIT_MB / half_h) if half_h > 0 else math.inf


def rss_slope_mb_per_h(samples: list[dict], duration_s: float) -> float:
    """The memory slope the criterion uses (see the module docstring)."""
    if duration_s >= 3600:
        bins: dict[int, list[float]] = {}
        for s in samples:
            if s["t_s"] >= WARM_UP_S:
                bins.setdefault(int((s["t_s"] - WARM_UP_S) // BIN_S), []).append(s["rss_mb"])
        full = sorted(k for k, v in bins.items() if len(v) >= 3)
        return slope_per_hour([WARM_UP_S + (k + 0.5) * BIN_S for k in full],
                              [quantile(bins[k], 0.5) for k in full])
    second = [s for s in samples if s["t_s"] >= duration_s / 2]
    return slope_per_hour([s["t_s"] for s in second], [s["rss_mb"] for s in second])


def figures(samples: list[dict], delays_s: list[float], duration_s: float) -> dict:
    """Summary figures of the sampled series (see bench.soak for the sample fields)."""
    lags = [s["lag"] for s in samples if s["lag"] is not None]
    parts = [s["parts_max_partition"] for s in samples if s["parts_max_partition"] is not None]
    loads = [s["loadavg_1m"] for s in samples]
    return {
        "rss_mb_first": samples[0]["rss_mb"] if samples else math.nan,
        "rss_mb_max": max((s["rss_mb"] for s in samples), default=math.nan),
        "rss_mb_final": samples[-1]["rss_mb"] if samples else math.nan,
        "rss_slope_mb_per_h": rss_slope_mb_per_h(samples, duration_s),
        "rss_slope_limit_mb_per_h": slope_limit_mb_per_h(duration_s),
        "lag_max": max(lags, default=None),
        "lag_final": lags[-1] if lags else None,
        "parts_max_partition": max(parts, default=None),
        "parts_total_max": max((s["parts_total"] for s in samples if s["parts_total"] is not None),
                               default=None),
        "delay_windows": len(delays_s),
        "delay_p50_s": quantile(delays_s, 0.5),
        "delay_p99_s": quantile(delays_s, 0.99),
        "delay_max_s": max(delays_s, default=math.nan),
        "loadavg_1m_mean": sum(loads) / len(loads) if loads else math.nan,
        "loadavg_1m_max": max(loads, default=math.nan),
    }


def criteria(fig: dict, *, rate: float, caught_up_s: float | None, parts_limit: int,
             counts: dict) -> dict[str, tuple[bool, str]]:
    """name -> (passed, explanation)."""
    lag_limit = rate * LAG_LIMIT_S
    slope, slope_limit = fig["rss_slope_mb_per_h"], fig["rss_slope_limit_mb_per_h"]
    out = {
        "memory_slope": (not math.isnan(slope) and slope <= slope_limit,
                         f"RSS slope {slope:.2f} MB/h, limit {slope_limit:.1f}"),
        "lag_bounded": (fig["lag_max"] is not None and fig["lag_max"] <= lag_limit,
                        f"max committed lag {fig['lag_max']} messages, limit {lag_limit:.0f} "
                        f"({LAG_LIMIT_S:.0f} s of traffic)"),
        "lag_returns_to_zero": (caught_up_s is not None and caught_up_s <= CATCH_UP_LIMIT_S,
                                f"lag 0 {caught_up_s} s after the producer stopped, "
                                f"limit {CATCH_UP_LIMIT_S:.0f} s"),
        "parts_bounded": (fig["parts_max_partition"] is not None and fig["parts_max_partition"] < parts_limit,
                          f"max active parts in one partition {fig['parts_max_partition']}, "
                          f"below parts_to_delay_insert {parts_limit}"),
    }
    problems = counts.get("problems", ["not verified"])
    out["counts_exact"] = (not problems, "; ".join(problems) or
                           f"{counts['landed']} landed = {counts['delivered']} delivered - {counts['late']} late, "
                           f"{counts['windows']} windows equal, no duplicates")
    return out
