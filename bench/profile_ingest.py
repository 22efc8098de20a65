"""Where `netready ingest` spends its time: cProfile of `ingest_paths` on one file.

    .venv/bin/python -m bench.profile_ingest [--samples N] [--format parquet] [--top 30] [FILE]

Without FILE it writes the bench scenario (`bench.e2e.scenario`) to a temporary
file first. Ingests into a fresh temporary chdb dir, as `netready ingest` does
(the CLI's own overhead, interpreter and imports excluded), and prints the
top functions by own time and by cumulative time. Writes the raw profile to
bench/results/ingest-<format>.prof (open it with snakeviz or pstats) and the printed text to
bench/results/profile-<format>.txt.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from pathlib import Path

from bench import e2e

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", type=Path)
    parser.add_argument("--samples", type=int, default=2_000_000)
    parser.add_argument("--format", default="parquet", choices=e2e.FORMATS)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()

    from pipeline.config import Settings
    from pipeline.ingest import ingest_paths
    from pipeline.warehouse import open_warehouse

    with tempfile.TemporaryDirectory(prefix="netready-profile-") as tmp:
        tmp = Path(tmp)
        path = args.file
        if path is None:
            path = e2e.write_inputs(args.samples, tmp / "in")[0][args.format]
        settings = Settings(reject_path=tmp / "rejects.jsonl")
        profiler = cProfile.Profile()
        with open_warehouse(f"chdb:{tmp / 'chdb'}") as warehouse:
            started = time.perf_counter()
            profiler.enable()
            summary = ingest_paths([path], warehouse, settings.ingest_config())
            profiler.disable()
            elapsed = time.perf_counter() - started
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ingest-{args.format}.prof"
    profiler.dump_stats(out)
    text = [f"{summary.samples_read:,} samples in {elapsed:.2f} s under cProfile "
            f"({summary.samples_read / elapsed:,.0f}/s; profiling adds overhead); profile: {out}"]
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).strip_dirs().sort_stats(key).print_stats(args.top)
        text.append(f"\n=== top {args.top} by {key} ===\n{buf.getvalue().strip()}")
    (RESULTS / f"profile-{args.format}.txt").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
