"""A bounded atheris run of every decoder harness: any crash or broken invariant fails the test.

Short on purpose (CI); long runs are described in README.md ("Hostile input"). The crashing
input is saved under the test's tmp dir and its path is shown in the failure.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from decoder_targets import TARGETS

HARNESS = Path(__file__).resolve().parent / "fuzz_decoders.py"
RUNS = int(os.environ.get("NETREADY_FUZZ_RUNS", "120"))
# libFuzzer times inputs with SIGALRM every timeout/2 s; a long timeout keeps that alarm from
# landing in interpreter shutdown (exit -14). Hangs are bounded by the subprocess timeout.
PARALLEL = 2

pytest.importorskip("atheris")


def fuzz(target: str, workdir: Path, runs: int) -> subprocess.CompletedProcess:
    corpus = workdir / target
    corpus.mkdir(parents=True)
    return subprocess.run(
        [sys.executable, str(HARNESS), target, str(corpus), f"-atheris_runs={runs}", "-max_len=4096",
         "-timeout=600", "-rss_limit_mb=4096", "-seed=1", f"-artifact_prefix={workdir}/crash-{target}-"],
        capture_output=True, text=True, timeout=300, cwd=workdir)


@pytest.mark.timeout(600)
def test_every_decoder_survives_a_bounded_fuzz_run(tmp_path):
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = dict(zip(TARGETS, pool.map(lambda t: fuzz(t, tmp_path, RUNS), TARGETS)))
    failed = {t: r for t, r in results.items() if r.returncode != 0}
    assert not failed, "\n\n".join(
        f"{t}: exit {r.returncode}, artifacts {sorted(p.name for p in tmp_path.glob(f'crash-{t}-*'))}\n"
        f"{r.stderr[-3000:]}" for t, r in failed.items())
    for target, result in results.items():
        done = re.search(r"Done (\d+) in", result.stderr)
        assert done and int(done.group(1)) >= RUNS, f"{target} did not run {RUNS} inputs:\n{result.stderr[-2000:]}"


def test_a_crashing_input_fails_the_harness(tmp_path):
    """The harness reports an escaped exception: an Arrow file target given to the JSON Lines
    invariants must not look like success (a file-format DecodeError is not allowed there)."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys; sys.path.insert(0, %r)\n"
        "import decoder_targets as d\n"
        "d.TARGETS['jsonl'] = d.Target('jsonl', d.TARGETS['parquet'].decode, False, False)\n"
        "sys.argv = [%r, 'jsonl', *sys.argv[1:]]\n"
        "import runpy; runpy.run_path(%r, run_name='__main__')\n"
        % (str(HARNESS.parent), str(HARNESS), str(HARNESS)))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    result = subprocess.run([sys.executable, str(probe), str(corpus), "-atheris_runs=50",
                             f"-artifact_prefix={tmp_path}/crash-"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode != 0, result.stderr[-2000:]
    assert "jsonl raised DecodeError" in result.stderr, result.stderr[-2000:]
