"""Run one kernel case in its own process: `python -m bench.worker CASE DATA_DIR REPS`.

Prints one JSON object: per-rep wall and CPU seconds (CPU counts every thread
of the process), the RSS after loading the input, and the verification
against DATA_DIR/ref.npz (written by the `netready` case; the pure-Python
reference is checked against netready on its own subset). The parent reads
this process's peak RSS (its VmHWM, bench/rss.py).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from bench import cases, data


def _rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str]) -> int:
    case, directory, reps = argv[0], Path(argv[1]), int(argv[2])
    run, to_canon = cases.CASES[case]
    cols, meta = data.load(directory)
    if case == "reference_py":
        cols = cases.subset(cols)
    rss_input_mb = _rss_mb()
    if case == "c_loop":
        from bench import ckernel

        ckernel.build()  # compile outside the timed region
    timings = []
    raw = None
    for _ in range(reps):
        raw = None  # free the previous rep's output first
        wall, cpu = time.perf_counter(), time.process_time()
        raw = run(cols, meta)
        timings.append({"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu})
    got = to_canon(raw, meta)
    ref_path = directory / "ref.npz"
    if case == "netready":
        np.savez(ref_path, **got)
        problems = []
    elif case == "reference_py":
        problems = data.verify(got, cases.canon_netready(cases.run_netready(cols, meta), meta))
    else:
        with np.load(ref_path) as ref:
            problems = data.verify(got, dict(ref))
    json.dump({"case": case, "samples": len(cols["ts_ns"]), "reps": timings,
               "rss_input_mb": round(rss_input_mb, 1), "verified": not problems,
               "problems": problems, "metro_windows": int(len(got["m_key"])),
               "link_windows": int(len(got["l_key"]))}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
