"""PyFlink peer cases (`peer/flink-p1`, `peer/flink-p2`): the Flink SQL job of flink_job.py, timed.

Each rep runs `python flink_job.py` in the PyFlink virtualenv with a fresh consumer group, from
process start to exit: interpreter, JVM and local mini-cluster start-up, job submission, reading
the topic to its end, both window families and the collect of the results (netready's rows
likewise include interpreter start, migrations and group join). CPU and peak RSS add up the
whole process tree (Python client, JVM, Python UDF workers). The job's own `job_s` (submission
to the last result) is kept in the JSON. The windows written by the job are verified against
netready's (windows_check.compare) before the speed is reported.

`peer/flink-p2-counts` runs the same job without the Python aggregate (p99 NULL, verified on
samples and under_threshold only): what Flink SQL itself costs, apart from the Python UDF bridge.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from bench import stream
from bench.peers import flink_env, windows_check

JOB = Path(__file__).resolve().parent / "flink_job.py"


def run_case(spec: dict, work: Path, topics: stream.Topics, samples: int, reference: dict) -> dict:
    flink, connector = flink_env.versions()
    info = {"case": spec["name"], "samples": samples, "apache_flink": flink,
            "flink_sql_connector_kafka": connector, "parallelism": spec["parallelism"],
            "p99": "none (counts only)" if spec.get("no_p99") else "Python UDAF over pipeline/histogram.py"}
    try:
        python, jar = flink_env.ensure(log=lambda m: print(m, file=sys.stderr, flush=True))
    except flink_env.FlinkUnavailable as exc:
        return {**info, "reps": [], "verified": False, "problems": [f"PyFlink unavailable: {exc}"]}
    env = {**os.environ, "PYTHONPATH": str(windows_check.REPO)}  # UDF workers import pipeline.histogram
    reps, problems = [], []
    for rep in range(spec["reps"]):
        rep_dir = work / f"rep{rep}"
        rep_dir.mkdir(parents=True, exist_ok=True)
        out = rep_dir / "windows.json"
        cmd = [str(python), str(JOB), "--bootstrap", stream.BOOTSTRAP, "--topic", topics.telemetry,
               "--group", topics.group(f"flink-p{spec['parallelism']}-{rep}"), "--jar", str(jar),
               "--parallelism", str(spec["parallelism"]), "--out", str(out)] + (["--no-p99"] if spec.get("no_p99") else [])
        try:
            usage = windows_check.run_tree(cmd, rep_dir, env)
        except RuntimeError as exc:
            return {**info, "reps": reps, "verified": False, "problems": [f"rep {rep}: {exc}"]}
        result = json.loads(out.read_text())
        got = {(r["metro"], r["window_start"], r["window_s"]): (r["samples"], r["under_threshold"], r["p99_us"])
               for r in result["rows"]}
        if len(got) != len(result["rows"]):
            problems.append(f"rep {rep}: {len(result['rows']) - len(got)} duplicate window rows")
        if spec.get("no_p99"):  # counts only: p99 is not computed, so it is not compared
            got = {k: (*v[:2], reference[k][2]) if k in reference else v for k, v in got.items()}
        problems += [f"rep {rep}: {p}" for p in windows_check.compare(got, reference)]
        reps.append({**usage, "job_s": result["job_s"], "setup_s": result["setup_s"],
                     "rows": len(result["rows"]), "p99_max_rel_error": windows_check.p99_error(got, reference)})
    return {**info, "reps": reps, "verified": not problems, "problems": problems,
            "inner": "wall from process start to exit (JVM and mini-cluster start included); job_s from submission"}
