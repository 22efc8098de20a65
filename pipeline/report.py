"""`netready report`: per-metro compliance and national coverage over time, as text and a PNG.

Everything is read back from ClickHouse (FINAL), so the report shows what an
analyst's SQL would show, whichever process landed the data.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from .policy import SampleSharePolicy
from .warehouse import Warehouse
from .warehouse.base import sql_int, sql_string
from .windows import WindowSpec

TARGET_COVERAGE = 0.75


@dataclass
class Report:
    policy_id: str
    window: WindowSpec
    coverage_window: pa.Table  # window_start (unix s), coverage, metros_compliant, metros_total
    coverage_daily: pa.Table  # day, coverage, metros_compliant, metros_total
    metros: pa.Table  # one row per metro, worst first
    heatmap: pa.Table  # metro, window_start, share_under, compliant

    def to_dict(self) -> dict:
        return {"policy": self.policy_id, "window": self.window.label,
                "coverage_daily": _records(self.coverage_daily),
                "metros": _records(self.metros),
                "coverage_window": {"first": _first(self.coverage_window),
                                    "last": _last(self.coverage_window),
                                    "count": self.coverage_window.num_rows}}


def build(warehouse: Warehouse, policy: SampleSharePolicy, window: WindowSpec) -> Report:
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
    return Report(policy.id, window, coverage_window, coverage_daily, metros, heatmap)


def render_text(report: Report) -> str:
    lines = [f"policy {report.policy_id}   windows {report.window.label} s", ""]
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
    metros = sorted(set(report.heatmap["metro"].to_pylist()))
    fig, (ax_cov, ax_map) = plt.subplots(
        2, 1, figsize=(12, 4 + 0.25 * max(len(metros), 8)), sharex=True,
        gridspec_kw={"height_ratios": [1, max(1.5, len(metros) / 10)]})
    cw = report.coverage_window
    times = np.asarray(cw["window_start"].to_pylist(), dtype="datetime64[s]")
    ax_cov.plot(times, np.asarray(cw["coverage"].to_pylist()) * 100, drawstyle="steps-post",
                label="coverage")
    ax_cov.axhline(TARGET_COVERAGE * 100, color="tab:red", linestyle="--", label="2028 target 75 %")
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
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


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
