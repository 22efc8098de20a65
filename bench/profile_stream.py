"""cProfile of the streaming worker on single-record JSON (the `stream/json-1w` case).

    .venv/bin/python -m bench.profile_stream [--samples 1000000] [--format json] [--top 40]

Produces the samples to a fresh 4-partition topic (not profiled), then runs
`python -m cProfile -o bench/results/stream-<format>.prof -m pipeline --clickhouse chdb:TMP run
--drain ...` and writes the top functions by own time and by cumulative time to
bench/results/profile-stream-<format>.txt. The topics are deleted afterwards.
"""
from __future__ import annotations

import argparse
import io
import pstats
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import stream

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--format", default="json", choices=("json", "json-array", "arrow"))
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    rows = {"json": 1, "json-array": 1000, "arrow": 10_000}[args.format]
    work = Path(tempfile.mkdtemp(prefix="netready-profile-stream-"))
    topics = stream.Topics(f"prof-{args.format}")
    prof = RESULTS / f"stream-{args.format}.prof"
    txt = RESULTS / f"profile-stream-{args.format}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    try:
        produced = stream.produce_topic(topics, args.samples, args.format, rows)
        cmd = stream.worker_cmd(f"chdb:{work / 'chdb'}", topics, topics.group("prof"), 5.0, drain=True,
                                python_args=["-m", "cProfile", "-o", str(prof)])
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=work, capture_output=True)
        wall = time.perf_counter() - started
        if proc.returncode:
            raise SystemExit(proc.stderr.decode()[-3000:])
        out = io.StringIO()
        out.write(f"# {produced['samples']:,} samples ({args.format}), worker wall {wall:.2f} s under "
                  f"cProfile, summary {proc.stdout.decode().strip()}\n")
        stats = pstats.Stats(str(prof), stream=out)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        txt.write_text(out.getvalue())
        print(out.getvalue())
        print(f"profile: {prof}\ntext: {txt}")
    finally:
        topics.delete()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
