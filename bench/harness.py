"""Orchestrates the benchmark: prepares inputs, runs each case in its own process, prints and saves the table.

    bench/run                 full run (10 M-sample kernel cases, 2 M-sample end-to-end cases)
    bench/run --quick         small sizes, one or two reps (CI smoke)
    bench/run --only NAME     cases whose name equals NAME or starts with it (repeatable),
                              e.g. --only kernel/numpy, --only links, --only e2e/parquet, --only stream
                              (streaming cases need the local stack: scripts/stack.sh up; see bench/stream.py)

Rates are the median over reps of samples / wall seconds; CPU s per million
samples is the median CPU time (all threads) of the same reps; peak RSS is the
child's own VmHWM (bench/rss.py; kernel cases include their input arrays, shown
separately in the JSON as rss_input_mb).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from bench import data, e2e, rss, stream

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = REPO / ".venv" / "bin" / "python"
RESULTS = HERE / "results"

TARGETS = {  # samples/s from the project issue
    "kernel/netready": 100e6, "e2e/jsonl": 500e3, "e2e/arrow": 10e6, "e2e/parquet": 10e6,
    "stream/json-1w": 300e3, "stream/json-1w-server": 300e3, "stream/arrow-1w": 5e6,
}
LATENCY_TARGET_P99_S = 2.0


@dataclass(frozen=True)
class Sizes:
    kernel_samples: int
    kernel_reps: int
    slow_reps: int  # pandas, polars, the pure-Python reference
    link_counts: tuple[int, ...]
    c_link_counts: tuple[int, ...]  # the dense C loop needs 3 x links x 8.7 kB
    e2e_samples: int
    e2e_reps: int
    stream_json_samples: int = 1_000_000  # json-1w, json-1w-server, json-2w (one topic)
    stream_array_samples: int = 1_000_000  # json-array-1w, 1 000 records per message
    stream_arrow_samples: int = 5_000_000  # arrow-1w, 10 000 rows per message
    stream_reps: int = 1
    latency_rate: int = 20_000  # samples/s produced with event time = now
    latency_closes: int = 2  # 60 s window closes observed per latency run
    peer_samples: int = 200_000  # peer/*: one no-late JSON topic (PyFlink: ~1.5 k samples/s here)
    peer_reps: int = 1
    scale_quick: bool = False  # scale/*: bench/scaling.py sizes
    pypeer_samples: int = 20_000  # stream/{netready,faust,quix,bytewax}-*: one no-late topic per format
    pypeer_reps: int = 3
    pypeer_faust_reps: int = 1  # faust writes 6 changelog messages per sample: minutes per rep


FULL = Sizes(10_000_000, 5, 3, (100, 10_000, 100_000), (100, 10_000), 2_000_000, 3)
QUICK = Sizes(1_000_000, 2, 1, (100, 10_000), (100,), 200_000, 1,
              100_000, 100_000, 500_000, 1, 5_000, 1, peer_samples=100_000, scale_quick=True,
              pypeer_samples=5_000, pypeer_reps=1)

STREAM_CASES = (  # name, format, rows per message, workers, backend
    ("json-1w", "json", 1, 1, "chdb"),
    ("json-1w-server", "json", 1, 1, "server"),
    ("json-2w", "json", 1, 2, "server"),
    ("arrow-1w", "arrow", 10_000, 1, "chdb"),
    ("json-array-1w", "json-array", 1_000, 1, "chdb"),
)


def _label(links: int) -> str:
    return f"{links // 1000}k" if links >= 1000 else str(links)


def plan(sizes: Sizes) -> list[tuple[str, dict]]:
    """(name, spec) of every case, in run order; `netready` first in each data set (it writes ref.npz)."""
    cases = [(f"kernel/{c}", {"kind": "kernel", "case": c, "links": 1000,
                              "reps": sizes.slow_reps if c in ("pandas", "polars", "reference_py")
                              else sizes.kernel_reps})
             for c in ("netready", "c_loop", "numpy", "polars", "pandas", "reference_py")]
    for links in sizes.link_counts:
        cases.append((f"links/netready@{_label(links)}",
                      {"kind": "kernel", "case": "netready", "links": links, "reps": sizes.slow_reps}))
        if links in sizes.c_link_counts:
            cases.append((f"links/c_loop@{_label(links)}",
                          {"kind": "kernel", "case": "c_loop", "links": links, "reps": sizes.slow_reps}))
    cases += [(f"e2e/{fmt}", {"kind": "e2e", "format": fmt, "reps": sizes.e2e_reps})
              for fmt in e2e.FORMATS]
    for name, fmt, rows, workers, backend in STREAM_CASES:
        samples = {"json": sizes.stream_json_samples, "json-array": sizes.stream_array_samples,
                   "arrow": sizes.stream_arrow_samples}[fmt]
        cases.append((f"stream/{name}", {"kind": "stream", "name": f"stream/{name}", "format": fmt,
                                          "rows": rows, "workers": workers, "backend": backend,
                                          "samples": samples, "reps": sizes.stream_reps}))
    for interval in (5.0, 1.0):
        cases.append((f"stream/latency-ckpt{interval:g}",
                      {"kind": "latency", "name": f"stream/latency-ckpt{interval:g}", "interval_s": interval,
                       "rate": sizes.latency_rate, "closes": sizes.latency_closes}))
    cases += [(f"peer/{name}", {"kind": "peer", "name": f"peer/{name}", "peer": peer, "parallelism": par,
                                "reps": sizes.peer_reps, "no_p99": name.endswith("-counts")})
              for name, peer, par in (("netready-1w", "netready", 1), ("flink-p1", "flink", 1),
                                      ("flink-p2", "flink", 2), ("flink-p2-counts", "flink", 2),
                                      ("clickhouse-sql", "clickhouse", 1))]
    from bench import scaling

    cases += scaling.plan(sizes.scale_quick, sizes.latency_closes)
    from bench.peers import pystream

    cases += pystream.cases(sizes.pypeer_samples, sizes.pypeer_reps, sizes.pypeer_faust_reps)
    return cases


def baseline_of(name: str) -> str:
    from bench.peers import pystream

    if pystream.baseline(name):
        return pystream.baseline(name)
    if name.startswith("peer/"):
        return "peer/netready-1w"
    if name.startswith("scale/"):
        from bench import scaling

        return scaling.baseline_of(name)
    if name.startswith("stream/"):
        return "stream/json-1w"
    if name.startswith("e2e/"):
        return "e2e/jsonl"
    if name.startswith("links/c_loop@"):
        return "links/netready@" + name.split("@")[1]
    return "kernel/netready"


def run_worker(case: str, directory: Path, reps: int) -> dict:
    proc = rss.MeasuredPopen([str(PYTHON), "-m", "bench.worker", case, str(directory), str(reps)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()
    code, cpu_s, rss_mb = e2e.wait(proc)
    if code:
        raise RuntimeError(f"bench.worker {case} failed ({code}): {err.decode()[-3000:]}")
    result = json.loads(out)
    result["peak_rss_mb"] = round(rss_mb, 1)
    return result


def summarize(name: str, result: dict) -> dict:
    samples = result["samples"]
    if not result["reps"]:  # a peer that could not run: the row carries the reason
        return {"name": name, "samples": samples, "samples_per_s": float("nan"), "rates": [],
                "cpu_s_per_m": float("nan"), "peak_rss_mb": float("nan"), "verified": False,
                "detail": result}
    rates = [samples / r["wall_s"] for r in result["reps"]]
    cpu = statistics.median(r["cpu_s"] for r in result["reps"])
    rss = result.get("peak_rss_mb") or max(r["rss_mb"] for r in result["reps"])
    return {"name": name, "samples": samples, "samples_per_s": statistics.median(rates),
            "rates": [round(r) for r in rates], "cpu_s_per_m": cpu / samples * 1e6,
            "peak_rss_mb": round(rss, 1), "verified": result["verified"], "detail": result}


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    mem_kb = int(next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines()
                      if l.startswith("MemTotal")))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                                capture_output=True, text=True).stdout.strip())
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "commit": commit, "dirty": dirty,
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "load_avg_at_start": os.getloadavg()}


def _fmt_rate(rate: float) -> str:
    return f"{rate / 1e6:.2f} M" if rate >= 1e6 else f"{rate / 1e3:.0f} k"


def table(rows: list[dict]) -> str:
    by_name = {r["name"]: r for r in rows}
    head = ("case", "samples", "samples/s", "CPU s/M", "peak RSS MB", "ratio", "target")
    lines = []
    for r in rows:
        base = by_name.get(r["baseline"])
        ratio = f"{r['samples_per_s'] / base['samples_per_s']:.3g}x {r['baseline']}" if base else "-"
        target = TARGETS.get(r["name"])
        tgt = "-" if target is None else (
            f">= {_fmt_rate(target)}: {'MET' if r['samples_per_s'] >= target else 'not met'} "
            f"({r['samples_per_s'] / target:.2g}x)")
        name = r["name"] + ("" if r["verified"] else " (UNVERIFIED)")
        lines.append((name, f"{r['samples']:,}", _fmt_rate(r["samples_per_s"]),
                      f"{r['cpu_s_per_m']:.3f}", f"{r['peak_rss_mb']:.0f}", ratio, tgt))
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(fmt, lines)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes for a CI smoke run")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only cases named NAME or starting with NAME (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary inputs")
    parser.add_argument("--pypeer-samples", type=int, metavar="N",
                        help="samples per topic of the Python streaming peer cases (stream/faust-* ...)")
    parser.add_argument("--peer-samples", type=int, metavar="N",
                        help="samples of the peer/* topic (netready, PyFlink, ClickHouse SQL)")
    parser.add_argument("--peer-reps", type=int, metavar="N", help="reps of each peer/* case")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.peer_samples or args.peer_reps:
        sizes = replace(sizes, peer_samples=args.peer_samples or sizes.peer_samples,
                        peer_reps=args.peer_reps or sizes.peer_reps)
    if args.pypeer_samples:
        sizes = replace(sizes, pypeer_samples=args.pypeer_samples)
    wanted = {n for n, _ in plan(sizes)
              if not args.only or any(n == o or n.startswith(o) for o in args.only)}
    # kernel rows need their baseline for the ratio (and netready's output for verification)
    wanted |= {baseline_of(n) for n in wanted if not n.startswith(("e2e/", "stream/"))}
    from bench.peers import pystream

    wanted |= {pystream.baseline(n) for n in wanted if pystream.baseline(n)}  # the reference windows
    if "links/netready@1k" in wanted:
        wanted.add("kernel/netready")
    if args.quick and not any(o.startswith("stream/latency") for o in args.only):
        # each latency run waits for a window to close (15-75 s): only when named explicitly
        wanted = {n for n in wanted if not n.startswith("stream/latency")}
    selected = [(n, s) for n, s in plan(sizes) if n in wanted]
    if not selected:
        parser.error(f"no case matches {args.only}; cases: {', '.join(n for n, _ in plan(sizes))}")
    info = machine()
    print(f"# {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB, commit {info['commit']}"
          f"{' (dirty)' if info['dirty'] else ''}, load {info['load_avg_at_start'][0]:.2f}", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="netready-bench-"))
    rows: list[dict] = []
    latency: list[dict] = []
    topics: dict[tuple, tuple] = {}  # (format, rows, samples) -> (Topics, produce summary)
    from bench.peers.reference_topic import PeerTopic

    peer_topic = PeerTopic(sizes.peer_samples)
    py_peers = pystream.PeerTopics()
    server_box: list = []  # the private ClickHouse server, started on first use
    try:
        dirs: dict[int, Path] = {}
        e2e_inputs = None
        latency_specs = [s for _, s in selected if s["kind"] == "latency"]
        for name, spec in selected:
            if spec["kind"] == "latency":
                continue  # run together at the end
            print(f"# {name} ...", file=sys.stderr, flush=True)
            if spec["kind"] == "stream":
                result = _stream_case(spec, work, topics, server_box)
            elif spec["kind"] == "peer":
                from bench.peers import reference_topic

                run = reference_topic.run_netready if spec["peer"] == "netready" else reference_topic.run_peer
                result = run(spec, work / spec["name"].replace("/", "-"), peer_topic)
            elif spec["kind"] == "pypeer":
                result = pystream.run_case(spec, work / spec["name"].replace("/", "-"), py_peers)
            elif spec["kind"] == "scale":
                from bench import scaling

                result = scaling.run_case(spec, work / spec["name"].replace("/", "-").replace("@", "-"))
            elif spec["kind"] == "kernel":
                links = spec["links"]
                if links not in dirs:
                    dirs[links] = work / f"kernel-{links}"
                    data.save(data.make_columns(sizes.kernel_samples, links), dirs[links], links, 50)
                if spec["case"] != "netready" and not (dirs[links] / "ref.npz").exists() \
                        and spec["case"] != "reference_py":
                    run_worker("netready", dirs[links], 1)  # writes the reference output
                result = run_worker(spec["case"], dirs[links], spec["reps"])
            else:
                if e2e_inputs is None:
                    e2e_inputs = e2e.write_inputs(sizes.e2e_samples, work / "e2e")
                paths, n = e2e_inputs
                result = e2e.run_case(spec["format"], paths[spec["format"]], n, spec["reps"],
                                      work / f"e2e-{spec['format']}")
            row = summarize(name, result)
            row["baseline"] = baseline_of(name)
            row["target_samples_per_s"] = TARGETS.get(name)
            rows.append(row)
            status = "ok" if row["verified"] else f"VERIFY FAILED: {result['problems']}"
            print(f"#   {_fmt_rate(row['samples_per_s'])} samples/s, {status}", file=sys.stderr,
                  flush=True)
        if latency_specs:
            latency = _latency_cases(latency_specs, work, server_box)
    finally:
        for t, _ in topics.values():
            t.delete()
        peer_topic.delete()
        py_peers.delete()
        for server in server_box:
            server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"# inputs kept in {work}", file=sys.stderr)
    if rows:
        print(table(rows))
    if latency:
        print(("\n" if rows else "") + latency_table(latency))
    if any(r["name"].startswith("scale/") for r in rows):
        from bench import scaling

        print("\n" + scaling.report(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": info, "quick": args.quick, "only": args.only,
                                    "sizes": sizes.__dict__, "rows": rows, "latency": latency},
                                   indent=2, default=str))
    print(f"\nresults: {args.out}", file=sys.stderr)
    return 0 if all(r["verified"] for r in rows + latency) else 1


def _server(work: Path, server_box: list):
    if not server_box:
        from bench.chserver import PrivateServer

        print("#   starting a private clickhouse-server", file=sys.stderr, flush=True)
        server_box.append(PrivateServer(work / "clickhouse").start())
    return server_box[0]


def _stream_case(spec: dict, work: Path, topics: dict, server_box: list) -> dict:
    key = (spec["format"], spec["rows"], spec["samples"])
    if key not in topics:
        t = stream.Topics(spec["format"])
        print(f"#   producing {spec['samples']:,} samples ({spec['format']}) to {t.telemetry}",
              file=sys.stderr, flush=True)
        topics[key] = (t, stream.produce_topic(t, spec["samples"], spec["format"], spec["rows"]))
    t, produced = topics[key]
    server = _server(work, server_box) if spec["backend"] == "server" else None
    return stream.run_throughput(spec, work / spec["name"].replace("/", "-"), produced, t, server)


def _latency_cases(specs: list[dict], work: Path, server_box: list) -> list[dict]:
    """All latency cases at once (each its own topic, producer thread, worker process, poller)."""
    import threading

    server = _server(work, server_box)
    print(f"# {', '.join(s['name'] for s in specs)} (together, {specs[0]['closes']} window closes) ...",
          file=sys.stderr, flush=True)
    results: dict[str, dict] = {}

    def one(spec):
        try:
            results[spec["name"]] = stream.run_latency(spec, work / spec["name"].replace("/", "-"), server)
        except Exception as exc:  # reported as an unverified row
            results[spec["name"]] = {"case": spec["name"], "verified": False, "problems": [repr(exc)]}

    threads = [threading.Thread(target=one, args=(s,)) for s in specs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out = [{"name": s["name"], **results[s["name"]]} for s in specs]
    for r in out:
        status = "ok" if r["verified"] else f"FAILED: {r['problems']}"
        print(f"#   {r['name']}: p50 {r.get('delay_p50_s', float('nan')):.2f} s, "
              f"p99 {r.get('delay_p99_s', float('nan')):.2f} s, {status}", file=sys.stderr, flush=True)
    return out


def latency_table(rows: list[dict]) -> str:
    head = ("case", "checkpoint s", "rate/s", "windows x metros", "p50 s", "p99 s", "max s", "target")
    lines = []
    for r in rows:
        if not r.get("verified"):
            lines.append((r["name"] + " (FAILED)", "-", "-", "-", "-", "-", "-", "-"))
            continue
        p99 = r["delay_p99_s"]
        lines.append((r["name"], f"{r['interval_s']:g}", f"{r['rate']:,}",
                      f"{len(r['window_starts'])} x {r['rows'] // max(1, len(r['window_starts']))}",
                      f"{r['delay_p50_s']:.2f}", f"{p99:.2f}", f"{r['delay_max_s']:.2f}",
                      f"p99 <= {LATENCY_TARGET_P99_S:g} s: {'MET' if p99 <= LATENCY_TARGET_P99_S else 'not met'}"))
    widths = [max(len(x[i]) for x in [head, *lines]) for i in range(len(head))]
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, lines)])
