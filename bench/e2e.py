"""End-to-end cases: `netready ingest FILE --clickhouse chdb:DIR` as a subprocess, one fresh chdb dir per rep."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from .rss import MeasuredPopen

REPO = Path(__file__).resolve().parent.parent
NETREADY = REPO / ".venv" / "bin" / "netready"
FORMATS = ("jsonl", "arrow", "parquet")


def scenario(samples: int):
    """1 000 links (50 metros x 4 routers x 5 links) probed every second: `samples` / 1000 seconds."""
    from pipeline.simulate import ScenarioConfig

    return ScenarioConfig(metros=50, routers_per_metro=4, links_per_router=5,
                          duration_s=max(60, samples // 1000), probe_interval_s=1.0, seed=0)


def write_inputs(samples: int, directory: Path) -> tuple[dict[str, Path], int]:
    from pipeline.simulate import generate
    from pipeline.writers import write_table

    directory.mkdir(parents=True, exist_ok=True)
    table = generate(scenario(samples))
    paths = {fmt: write_table(table, directory / f"scenario.{fmt}", fmt) for fmt in FORMATS}
    return paths, table.num_rows


def wait(proc: MeasuredPopen) -> tuple[int, float, float]:
    """Exit code, CPU seconds (wait4, this child only, not the cumulative RUSAGE_CHILDREN) and
    peak RSS in MB (the child's own VmHWM: see bench/rss.py; NaN if it exited before the first
    reading)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    peak_mb = proc.high_water.stop()
    return proc.returncode, usage.ru_utime + usage.ru_stime, float("nan") if peak_mb is None else peak_mb


def ingest_once(path: Path, work: Path) -> dict:
    chdb_dir = work / "chdb"
    subprocess.run(["rm", "-rf", str(chdb_dir)], check=True)
    cmd = [str(NETREADY), "--clickhouse", f"chdb:{chdb_dir}", "ingest", str(path), "--json",
           "--reject-file", str(work / "rejects.jsonl")]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    started = time.perf_counter()
    proc = MeasuredPopen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = proc.stdout.read(), proc.stderr.read()
    code, cpu_s, rss_mb = wait(proc)
    wall_s = time.perf_counter() - started
    if code:
        raise RuntimeError(f"netready ingest {path} failed ({code}): {err.decode()[-2000:]}")
    return {"wall_s": wall_s, "cpu_s": cpu_s, "rss_mb": rss_mb, "summary": json.loads(out)}


def landed_samples(work: Path) -> int:
    """Samples in the 60 s tumbling metro windows landed in the last rep's chdb dir."""
    query = ("SELECT sum(samples) AS samples FROM netready.metro_window FINAL "
             "WHERE window_s = 60 AND hop_s = 60")
    out = subprocess.run([str(NETREADY), "--clickhouse", f"chdb:{work / 'chdb'}", "sql", query,
                          "--format", "json"], cwd=work, capture_output=True, check=True).stdout
    return int(json.loads(out)[0]["samples"])


def run_case(fmt: str, path: Path, samples: int, reps: int, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    runs = [ingest_once(path, work) for _ in range(reps)]
    summary = runs[-1]["summary"]
    landed = landed_samples(work)
    expected = samples - summary["samples_late"] - summary["samples_rejected"]
    problems = []
    if summary["samples_read"] != samples:
        problems.append(f"read {summary['samples_read']} of {samples} samples")
    if summary["samples_rejected"]:
        problems.append(f"{summary['samples_rejected']} samples rejected")
    if landed != expected:
        problems.append(f"landed {landed} samples in 60 s metro windows, expected {expected}")
    return {"case": f"e2e/{fmt}", "samples": samples, "file_mb": round(path.stat().st_size / 2**20, 1),
            "reps": [{k: r[k] for k in ("wall_s", "cpu_s", "rss_mb")} for r in runs],
            "inner_samples_per_s": [r["summary"]["samples_per_s"] for r in runs],
            "samples_late": summary["samples_late"], "landed_samples": landed,
            "verified": not problems, "problems": problems}
