"""Scaling curves (`scale/...` cases): how netready's throughput and memory move with the key space.

- `scale/kernel-links@N`: the compiled kernel (bench.worker `netready`, 60 s tumbling windows,
  link and metro levels) over the same number of samples spread over 1 k .. 1 M links (50 metros);
- `scale/kernel-metros@N`: 100 k links spread over 10 .. 10 k metros;
- `scale/ingest-links@N`: `netready ingest` of a simulated Arrow file (50 metros, 1 k .. 100 k
  links, the same samples, 20 min of event time) into a fresh chdb directory;
- `scale/latency@R`: window close -> queryable delay (bench.stream.run_latency: one worker,
  5 s checkpoints, single-record JSON with event time = now) at R samples/s offered.

Each point is verified (every sample lands in the 60 s metro windows, nothing late). Rates are
samples / wall s; peak RSS is the child's (kernel points include their input arrays, given
apart as rss_input_mb). `report(rows)` prints one table per curve and writes a PNG chart of each
into bench/results/ (ignored by git).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

LINKS = (1_000, 10_000, 100_000, 1_000_000)
METROS = (10, 100, 1_000, 10_000)
INGEST_LINKS = (1_000, 10_000, 100_000)
RATES = (10_000, 50_000, 100_000)
METRO_CURVE_LINKS = 100_000
CURVES = {  # prefix -> (x label, title)
    "scale/kernel-links": ("links", "compiled kernel vs links (50 metros)"),
    "scale/kernel-metros": ("metros", f"compiled kernel vs metros ({METRO_CURVE_LINKS:,} links)"),
    "scale/ingest-links": ("links", "netready ingest (Arrow file -> chdb) vs links"),
    "scale/latency": ("offered samples/s", "window close -> queryable delay vs load"),
}


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k" if n >= 1000 else str(n)


def plan(quick: bool, closes: int = 2) -> list[tuple[str, dict]]:
    samples = 1_000_000 if quick else 10_000_000
    ingest_samples = 200_000 if quick else 2_000_000
    reps = 1 if quick else 3
    cases = [(f"scale/kernel-links@{_label(n)}", {"kind": "scale", "what": "kernel", "links": n,
                                                   "metros": 50, "samples": samples, "reps": reps, "x": n})
             for n in LINKS]
    cases += [(f"scale/kernel-metros@{_label(m)}",
               {"kind": "scale", "what": "kernel", "links": METRO_CURVE_LINKS, "metros": m,
                "samples": samples, "reps": reps, "x": m}) for m in METROS]
    cases += [(f"scale/ingest-links@{_label(n)}", {"kind": "scale", "what": "ingest", "links": n,
                                                    "samples": ingest_samples, "reps": reps, "x": n})
              for n in INGEST_LINKS]
    if not quick:  # each point waits for window closes (2-3 min)
        cases += [(f"scale/latency@{_label(r)}", {"kind": "scale", "what": "latency", "rate": r,
                                                   "closes": closes, "interval_s": 5.0, "x": r})
                  for r in RATES]
    return [(n, {**s, "name": n}) for n, s in cases]


def baseline_of(name: str) -> str:
    """The first point of the same curve."""
    prefix = name.split("@")[0]
    return next(n for n, _ in plan(False) if n.startswith(prefix + "@"))


def run_case(spec: dict, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    return {"kernel": _kernel, "ingest": _ingest, "latency": _latency}[spec["what"]](spec, work)


def _kernel(spec: dict, work: Path) -> dict:
    from bench import data
    from bench.harness import run_worker

    data.save(data.make_columns(spec["samples"], spec["links"], spec["metros"]), work,
              spec["links"], spec["metros"])
    result = run_worker("netready", work, spec["reps"])
    with np.load(work / "ref.npz") as ref:
        landed = int(ref["m_samples"].sum())
        metros = len(np.unique(ref["m_key"] % spec["metros"]))
    problems = [] if landed == spec["samples"] else [f"{landed} of {spec['samples']} samples in metro windows"]
    return {**result, "links": spec["links"], "metros": spec["metros"], "metros_seen": metros,
            "verified": result["verified"] and not problems, "problems": result["problems"] + problems}


def _ingest(spec: dict, work: Path) -> dict:
    from bench import e2e
    from pipeline.simulate import ScenarioConfig, generate
    from pipeline.writers import write_table

    links, duration_s = spec["links"], 1200.0
    routers = 4 if links <= 1000 else 20 if links <= 10_000 else 50
    config = ScenarioConfig(metros=50, routers_per_metro=routers, links_per_router=links // (50 * routers),
                            duration_s=duration_s, probe_interval_s=duration_s * links / spec["samples"],
                            seed=0, late_share=0.0)
    table = generate(config)
    path = write_table(table, work / "scenario.arrow", "arrow")
    result = e2e.run_case("arrow", path, table.num_rows, spec["reps"], work / "run")
    result["case"] = spec["name"]
    return {**result, "links": links, "file_mb": round(path.stat().st_size / 2**20, 1)}


def _latency(spec: dict, work: Path) -> dict:
    from bench import stream
    from bench.chserver import PrivateServer

    server = PrivateServer(work / "clickhouse").start()
    try:
        result = stream.run_latency({**spec, "name": spec["name"].replace("@", "-")}, work, server)
    finally:
        server.stop()
    result["achieved_rate"] = round(result["samples"] / result["duration_s"])
    return result


# ---------------------------------------------------------------- tables and charts

def report(rows: list[dict], out_dir: Path = RESULTS) -> str:
    """One table per curve (printed) and one PNG per curve (written)."""
    texts = []
    for prefix, (xlabel, title) in CURVES.items():
        points = [r for r in rows if r["name"].startswith(prefix + "@") and r["verified"]]
        if not points:
            continue
        points.sort(key=lambda r: r["detail"].get("links") if "links" in prefix else
                    r["detail"].get("metros") if "metros" in prefix else r["detail"].get("rate"))
        xs = [_x(r, prefix) for r in points]
        if prefix == "scale/latency":
            lines = [f"{prefix}: {title}", "| offered/s | achieved/s | windows | delay p50 s | p99 s | max s | worker RSS MB |",
                     "|---|---|---|---|---|---|---|"]
            for x, r in zip(xs, points):
                d = r["detail"]
                lines.append(f"| {x:,} | {d['achieved_rate']:,} | {d['rows']} | {d['delay_p50_s']:.2f} | "
                             f"{d['delay_p99_s']:.2f} | {d['delay_max_s']:.2f} | {d['worker_rss_mb']:.0f} |")
            ys = {"delay p50 s": [r["detail"]["delay_p50_s"] for r in points],
                  "delay p99 s": [r["detail"]["delay_p99_s"] for r in points]}
            y2 = None
        else:
            lines = [f"{prefix}: {title}", f"| {xlabel} | samples | samples/s | CPU s/M | peak RSS MB | input MB |",
                     "|---|---|---|---|---|---|"]
            for x, r in zip(xs, points):
                lines.append(f"| {x:,} | {r['samples']:,} | {r['samples_per_s'] / 1e6:.2f} M | "
                             f"{r['cpu_s_per_m']:.3f} | {r['peak_rss_mb']:.0f} | "
                             f"{r['detail'].get('rss_input_mb', '-')} |")
            ys = {"samples/s (M)": [r["samples_per_s"] / 1e6 for r in points]}
            y2 = ("peak RSS MB", [r["peak_rss_mb"] for r in points])
        chart = out_dir / f"{prefix.replace('/', '-')}.png"
        _chart(chart, title, xlabel, xs, ys, y2)
        lines.append(f"chart: {chart.relative_to(HERE.parent) if chart.is_relative_to(HERE.parent) else chart}")
        texts.append("\n".join(lines))
    return "\n\n".join(texts)


def _x(row: dict, prefix: str) -> int:
    d = row["detail"]
    return d["links"] if "links" in prefix else d["metros"] if "metros" in prefix else d["rate"]


def _chart(path: Path, title: str, xlabel: str, xs: list, ys: dict, y2) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values in ys.items():
        ax.plot(xs, values, marker="o", label=label)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    if y2:
        ax2 = ax.twinx()
        ax2.plot(xs, y2[1], marker="s", linestyle="--", color="tab:red", label=y2[0])
        ax2.set_ylabel(y2[0])
        ax2.set_ylim(bottom=0)
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="best")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
