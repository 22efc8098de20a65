"""`netready report`: per-metro compliance and national coverage over time, as text and a PNG.

Everything is read back from ClickHouse (FINAL), so the report shows what an
analyst's SQL would show, whichever process landed the data.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import readiness as ready
from . import trajectory as traj
from .coverage import Registry
from .policy import SampleSharePolicy
from .warehouse import Warehouse
from .warehouse.base import sql_int, sql_string
from .windows import WindowSpec

TARGET_COVERAGE = traj.TargetConfig().coverage
TOP_METROS = 10


@dataclass
class Report:
    policy_id: str
    window: WindowSpec
    coverage_window: pa.Table  # window_start (unix s), coverage, metros_compliant, metros_total
    coverage_daily: pa.Table  # day, coverage, metros_compliant, metros_total
    metros: pa.Table  # one row per metro, worst first
    heatmap: pa.Table  # metro, window_start, share_under, compliant
    target: traj.TargetConfig = traj.TargetConfig()
    path: traj.TargetPath | None = None
    trajectory: list[traj.TrajectoryRow] | None = None  # one row per day, oldest first
    readiness: ready.Readiness | None = None
    top: int = TOP_METROS

    def trajectory_dict(self) -> dict:
        rows = self.trajectory or []
        return {"target": {"coverage": self.target.coverage, "deadline": str(self.target.deadline),
                           "at_risk_points": self.target.at_risk_points,
                           "path": [{"day": str(date.fromordinal(t)), "coverage": c}
                                    for t, c in zip(self.path.days, self.path.values)] if self.path else []},
                "today": rows[-1].to_dict() if rows else None,
                "days": [r.to_dict() for r in rows]}

    def to_dict(self) -> dict:
        return {"policy": self.policy_id, "window": self.window.label,
                "trajectory": self.trajectory_dict(),
                "readiness": self.readiness.to_dict() if self.readiness else None,
                "coverage_daily": _records(self.coverage_daily),
                "metros": _records(self.metros),
                "coverage_window": {"first": _first(self.coverage_window),
                                    "last": _last(self.coverage_window),
                                    "count": self.coverage_window.num_rows}}


def build(warehouse: Warehouse, policy: SampleSharePolicy, window: WindowSpec,
          target: traj.TargetConfig = traj.TargetConfig(), registry: Registry = Registry(),
          top: int = TOP_METROS) -> Report:
    """Read everything back (FINAL); trajectory and readiness are recomputed with `target`, exactly
    as the landed `coverage_trajectory` / `metro_readiness` tables are."""
    pid = sql_string(policy.id)
    spec = f"window_s = {sql_int(window.length_s)} AND hop_s = {sql_int(window.hop_s)}"
    coverage_window = warehouse.query(
        "SELECT toUnixTimestamp(window_start) AS window_start, coverage, metros_compliant, "
        f"metros_total FROM netready.coverage_window FINAL WHERE policy = {pid} AND {spec} "
        "ORDER BY window_start")
    coverage_daily = warehouse.query(
        "SELECT toString(day) AS day, coverage, metros_compliant, metros_total, metros_reporting "
        f"FROM netready.coverage_daily FINAL WHERE policy = {pid} ORDER BY day")
    metros = warehouse.query(
        "SELECT metro, sum(d.samples) AS total_samples, sum(d.under_threshold) AS total_under, "
        "total_under / total_samples AS share, max(d.p99_us) AS worst_day_p99_us, "
        "sum(d.compliant) AS compliant_days, count() AS days, "
        "sum(d.compliant_windows) AS compliant_windows, sum(d.windows) AS windows "
        f"FROM netready.metro_daily AS d FINAL WHERE policy = {pid} "
        "GROUP BY metro ORDER BY compliant_windows / windows, share, metro")
    heatmap = warehouse.query(
        "SELECT metro, toUnixTimestamp(window_start) AS window_start, share_under, compliant "
        f"FROM netready.metro_window FINAL WHERE policy = {pid} AND {spec} "
        "ORDER BY metro, window_start")
    path, rows = traj.compute(warehouse, policy.id, target)
    # Worst links come from a tumbling link-window family: the charted one if tumbling, else 60 s.
    link_spec = window if window.length_s == window.hop_s else WindowSpec(60, 60)
    readiness = ready.compute(warehouse, policy, link_spec, registry)
    return Report(policy.id, window, coverage_window, coverage_daily, metros, heatmap, target, path, rows,
                  readiness, top)


def render_trajectory(report: Report) -> list[str]:
    rows = report.trajectory or []
    if not rows:
        return []
    t, today = report.target, rows[-1]
    fc = today.forecast_date
    if fc is None:
        forecast = "not reached on the current trend (flat or falling, or too few days)"
    elif fc == today.day:
        forecast = "target met today"
    else:
        high = today.forecast_high or "not bounded"
        forecast = f"{fc} ({t.confidence:.0%} band {today.forecast_low} .. {high})"
    lines = [f"Target {t.coverage:.0%} of metros by {t.deadline}; path "
             + " -> ".join(f"{date.fromordinal(d)} {c:.1%}" for d, c in zip(report.path.days, report.path.values)),
             f"Today {today.day}: coverage {today.coverage:.1%} vs path {today.target_path:.1%}: "
             f"{today.status.upper()}, slack {today.slack_days:+d} days",
             f"Forecast (Theil-Sen over the last {t.trend_days} days): target reached {forecast}", ""]
    recent = rows[-14:]
    lines.append(f"Trajectory, last {len(recent)} days")
    lines.append(_table(["day", "coverage", "path", "status", "slack d", "forecast", "band"], [
        [r.day, f"{r.coverage:6.1%}", f"{r.target_path:6.1%}", r.status, f"{r.slack_days:+d}",
         r.forecast_date or "-",
         f"{r.forecast_low} .. {r.forecast_high or 'open'}" if r.forecast_date else "-"] for r in recent]))
    return lines + [""]


def render_readiness(report: Report) -> list[str]:
    rd = report.readiness
    if rd is None or not rd.metros:
        return []
    shown = rd.metros[:report.top]

    def links(m: ready.MetroReadiness) -> str:
        return ", ".join(f"{lk.router} {lk.link} {lk.share_under:.1%}/{lk.p99_us:,.0f}" for lk in m.worst_links)

    def num(v, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    lines = [f"Readiness as of {rd.as_of} (last {rd.period_days} days), {len(shown)} furthest from 1 ms "
             f"of {len(rd.metros)}",
             _table(["#", "metro", "share < thr", "p99 µs", "gap µs", "trend pts/d", "ok days",
                     "worst links (share / p99 µs)"],
                    [[m.rank, m.metro, f"{m.share_under:.2%}", num(m.p99_us, ",.0f"), num(m.gap_us, "+,.0f"),
                      "-" if m.trend_share_per_day is None else f"{m.trend_share_per_day * 100:+.3f}",
                      f"{m.compliant_days_30}/{m.days}", links(m)] for m in shown])]
    return lines + [""]


def render_text(report: Report) -> str:
    lines = [f"policy {report.policy_id}   windows {report.window.label} s", ""]
    lines += render_trajectory(report)
    if report.coverage_daily.num_rows:
        lines.append("National coverage by UTC day (compliant metros / metros in registry)")
        lines.append(_table(["day", "coverage", "compliant", "total", "reporting"], [
            [d, f"{c:6.1%}", mc, mt, mr] for d, c, mc, mt, mr in
            zip(*(report.coverage_daily[k].to_pylist() for k in
                  ("day", "coverage", "metros_compliant", "metros_total", "metros_reporting")))]))
        lines.append("")
    cw = report.coverage_window
    if cw.num_rows:
        cov = np.asarray(cw["coverage"].to_pylist())
        lines.append(f"Coverage over {cw.num_rows} windows of {report.window.label} s: "
                     f"min {cov.min():.1%}, median {np.median(cov):.1%}, max {cov.max():.1%}, "
                     f"windows at or above {TARGET_COVERAGE:.0%}: {(cov >= TARGET_COVERAGE).mean():.1%}")
        lines.append("")
    lines += render_readiness(report)
    if report.metros.num_rows:
        lines.append("Metros, least compliant first")
        lines.append(_table(
            ["metro", "samples", "share < thr", "worst-day p99 µs", "compliant windows", "compliant days"],
            [[m, s, f"{sh:.3%}", f"{p99:,.0f}", f"{cw_}/{w}", f"{cd}/{d}"]
             for m, s, sh, p99, cw_, w, cd, d in zip(*(report.metros[k].to_pylist() for k in (
                 "metro", "total_samples", "share", "worst_day_p99_us", "compliant_windows",
                 "windows", "compliant_days", "days")))]))
    else:
        lines.append("No data for this policy yet: run `netready ingest` or `netready demo`.")
    return "\n".join(lines)


def render_png(report: Report, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import matplotlib.dates as mdates

    metros = sorted(set(report.heatmap["metro"].to_pylist()))
    fig = plt.figure(figsize=(12, 7.5 + 0.25 * max(len(metros), 8)))
    grid = fig.add_gridspec(3, 1, height_ratios=[1.2, 1, max(1.5, len(metros) / 10)])
    ax_traj = fig.add_subplot(grid[0])
    ax_cov = fig.add_subplot(grid[1])
    ax_map = fig.add_subplot(grid[2], sharex=ax_cov)
    _plot_trajectory(ax_traj, report)
    cw = report.coverage_window
    times = np.asarray(cw["window_start"].to_pylist(), dtype="datetime64[s]")
    ax_cov.plot(times, np.asarray(cw["coverage"].to_pylist()) * 100, drawstyle="steps-post",
                label="coverage")
    ax_cov.axhline(report.target.coverage * 100, color="tab:red", linestyle="--",
                   label=f"target {report.target.coverage:.0%} by {report.target.deadline}")
    ax_cov.set_ylabel("metros compliant (%)")
    ax_cov.set_ylim(0, 105)
    ax_cov.legend(loc="lower left")
    ax_cov.set_title(f"1 ms coverage ({report.policy_id}, {report.window.label} s windows)")
    if metros:
        starts = sorted(set(report.heatmap["window_start"].to_pylist()))
        col = {s: i for i, s in enumerate(starts)}
        row = {m: i for i, m in enumerate(metros)}
        grid = np.full((len(metros), len(starts)), np.nan)
        for m, s, share in zip(*(report.heatmap[k].to_pylist() for k in ("metro", "window_start", "share_under"))):
            grid[row[m], col[s]] = share * 100
        edges = np.asarray(starts + [starts[-1] + report.window.hop_s], dtype="datetime64[s]")
        mesh = ax_map.pcolormesh(edges, np.arange(len(metros) + 1), grid, cmap="RdYlGn",
                                 vmin=95, vmax=100, shading="flat")
        ax_map.set_yticks(np.arange(len(metros)) + 0.5, metros)
        ax_map.invert_yaxis()
        fig.colorbar(mesh, ax=ax_map, label="% samples under threshold", pad=0.01)
    ax_map.set_xlabel("window start (UTC)")
    locator = mdates.AutoDateLocator()
    ax_map.xaxis.set_major_locator(locator)
    ax_map.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax_cov.tick_params(labelbottom=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_trajectory(ax, report: Report) -> None:
    """Daily coverage against the target path, and the forecast line with its band."""
    import matplotlib.dates as mdates

    rows = report.trajectory or []
    ax.set_ylabel("metros compliant (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Daily coverage vs target path, with the trend forecast")
    if not rows:
        return
    days = np.asarray([r.day for r in rows], dtype="datetime64[D]")
    today = rows[-1]
    horizon = max([today.day + timedelta(days=14)] + [d for d in (today.forecast_date, today.forecast_low,
                                                                  today.forecast_high) if d])
    observed_days = (today.day - rows[0].day).days
    horizon = min(horizon, today.day + timedelta(days=max(30, 2 * observed_days)))  # keep the days readable
    span = np.arange(np.datetime64(rows[0].day, "D"), np.datetime64(horizon, "D") + 1)
    path = [report.path.value(int(d.astype("int64")) + date(1970, 1, 1).toordinal()) * 100 for d in span]
    ax.plot(span, path, color="tab:red", linestyle="--", label="target path")
    ax.axhline(report.target.coverage * 100, color="tab:red", linewidth=0.6, alpha=0.5)
    ax.plot(days, [r.coverage * 100 for r in rows], marker="o", markersize=3, drawstyle="steps-mid",
            label="daily coverage")
    colours = {traj.ON_TRACK: "tab:green", traj.AT_RISK: "tab:orange", traj.OFF_TRACK: "tab:red"}
    ax.scatter(days, [r.coverage * 100 for r in rows], c=[colours[r.status] for r in rows], s=18, zorder=3)
    if today.forecast_date and today.forecast_date > today.day:
        start = np.datetime64(today.day, "D")
        goal = report.target.coverage * 100
        ax.plot([start, np.datetime64(today.forecast_date, "D")], [today.coverage * 100, goal],
                color="tab:purple", label=f"forecast {today.forecast_date}")
        low = np.datetime64(today.forecast_low or today.forecast_date, "D")
        high = np.datetime64(today.forecast_high or horizon, "D")
        ax.fill_betweenx([today.coverage * 100, goal], [start, low], [start, high], color="tab:purple",
                         alpha=0.15, label=f"{report.target.confidence:.0%} band"
                         + ("" if today.forecast_high else " (open-ended)"))
    ax.set_xlim(span[0], span[-1])
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.text(0.99, 0.04, f"{today.day}: {today.status}, slack {today.slack_days:+d} d", transform=ax.transAxes,
            ha="right", va="bottom", fontsize=9)
    ax.legend(loc="lower left", fontsize=8)


def _table(header: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(header))]
    fmt = lambda r: "  ".join(c + " " * (w - _width(c)) for c, w in zip(r, widths))  # noqa: E731
    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths), *map(fmt, cells[1:])])


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _records(table: pa.Table) -> list[dict]:
    return table.to_pylist()


def _first(table: pa.Table) -> dict | None:
    return table.slice(0, 1).to_pylist()[0] if table.num_rows else None


def _last(table: pa.Table) -> dict | None:
    return table.slice(table.num_rows - 1, 1).to_pylist()[0] if table.num_rows else None
