"""Five-minute soak of `netready run` at twice the expected rate (the CI version of bench.soak).

The harness runs as a subprocess against the stack's Kafka and ClickHouse server with topics,
group and metro names unique to the run. Besides the harness's own verdict, this test reads
the landed windows itself: the 60 s metro windows of the run's metros must hold exactly the
samples the producer had delivered on time, and the late_samples table the ones sent late.
The hour-long version and its figures: RELIABILITY.md.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from test_worker import clickhouse, sql_str

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
RESULTS = REPO / "bench" / "results"  # ignored by git; the latest CI figures stay for RELIABILITY.md
DURATION_S = 300
RATE = 2000  # 2 x the expected 1 000 samples/s of one worker (1 000 links probed once a second)


@pytest.mark.timeout(DURATION_S + 240)
def test_soak_5_minutes(stack):
    report_path = RESULTS / "ci-soak.json"
    report_path.unlink(missing_ok=True)  # never judge a previous run's report
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--duration-s", str(DURATION_S), "--rate", str(RATE),
         "--name", "ci-soak", "--out-dir", str(RESULTS), "--bootstrap", stack["KAFKA_BOOTSTRAP"],
         "--clickhouse", stack["CLICKHOUSE_URL"], "--no-plot"],
        cwd=REPO, capture_output=True, text=True, timeout=DURATION_S + 200,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert report_path.exists(), f"no report (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    report = json.loads(report_path.read_text())
    fig, counts = report["figures"], report["counts"]
    notes = {k: fig[k] for k in ("rss_slope_mb_per_h", "lag_max", "caught_up_after_stop_s",
                                 "parts_max_partition", "delay_p50_s", "delay_p99_s", "loadavg_1m_mean")}
    print("\n[soak] " + json.dumps({**notes, "delivered": counts["delivered"], "late": counts["late"]}))
    report_file = os.environ.get("NETREADY_FAULT_REPORT")
    if report_file:
        with open(report_file, "a") as f:
            f.write(json.dumps({"test": "tests/integration/test_soak.py::test_soak_5_minutes",
                                "fault": "soak 5 min at 2 000 samples/s", "passed": report["passed"],
                                "max_lag": fig["lag_max"],
                                "samples_lost": counts["delivered"] - counts["landed"],
                                "duplicates": sum(counts["duplicates"].values()), **notes}) + "\n")

    # the criteria, each on its own so a failure names it
    assert report["samples"] and len(report["samples"]) >= DURATION_S // 10 - 1, "too few samples taken"
    assert fig["rss_slope_mb_per_h"] <= fig["rss_slope_limit_mb_per_h"], report["criteria"]["memory_slope"]
    assert fig["lag_max"] <= RATE * 30, report["criteria"]["lag_bounded"]
    assert fig["caught_up_after_stop_s"] is not None and fig["caught_up_after_stop_s"] <= 120
    assert fig["parts_max_partition"] < fig["parts_to_delay_insert"]
    assert fig["delay_windows"] > 0, "no window closed while the stream ran"
    assert counts["delivered"] >= RATE * DURATION_S * 0.5, "the producer fell far behind its rate"
    assert counts["late"] > 0, "the run sent no late samples: the late path was not exercised"
    assert not counts["problems"], counts["problems"]
    assert report["passed"], report["failures"]
    assert proc.returncode == 0, proc.stderr[-3000:]

    # independent read of what landed
    ours = f"startsWith(metro, {sql_str(report['metro_prefix'])})"
    landed = int(clickhouse(stack, "SELECT sum(samples) FROM netready.metro_window FINAL "
                                   f"WHERE window_s = 60 AND hop_s = 60 AND {ours}"))
    assert landed == counts["delivered"]
    late_rows = int(clickhouse(stack, f"SELECT count() FROM netready.late_samples FINAL WHERE {ours}"))
    assert late_rows == counts["late"]
    windows = int(clickhouse(stack, "SELECT count() FROM netready.metro_window "
                                    f"WHERE window_s = 60 AND hop_s = 60 AND {ours}"))
    distinct = int(clickhouse(stack, "SELECT uniqExact(metro, window_start) FROM netready.metro_window "
                                     f"WHERE window_s = 60 AND hop_s = 60 AND {ours}"))
    assert distinct == counts["windows"] and windows >= distinct

    # the harness's verification fails on a reference that lost, duplicated or invented a sample
    from bench.soak import clickhouse_client, verify

    client = clickhouse_client(stack["CLICKHOUSE_URL"])
    rows = client.execute("SELECT metro, toUInt32(window_start), samples, under_threshold FROM "
                          "netready.metro_window FINAL WHERE window_s = 60 AND hop_s = 60 "
                          "AND startsWith(metro, %(p)s)", {"p": report["metro_prefix"]})
    honest = Counter({(m, int(ws)): int(n) for m, ws, n, _ in rows})
    under = Counter({(m, int(ws)): int(u) for m, ws, _, u in rows})
    key = sorted(honest)[len(honest) // 2]

    def check(expected: Counter) -> dict:
        producer = SimpleNamespace(expected=expected, expected_under=under, delivered=sum(expected.values()),
                                   late_delivered=counts["late"], failed=0, error=None)
        return verify(client, report["metro_prefix"], producer, counts["late"], 0)

    def mismatch(result: dict) -> tuple:
        return (result["windows_missing"], result["windows_extra"], result["windows_differ"],
                result["landed"] == result["delivered"], bool(result["problems"]))

    assert mismatch(check(honest)) == (0, 0, 0, True, False)
    assert mismatch(check(honest + Counter({key: 1}))) == (0, 0, 1, False, True)  # a sample lost
    lost = honest.copy()
    lost[key] -= 1
    assert mismatch(check(lost)) == (0, 0, 1, False, True)  # a sample counted twice
    assert mismatch(check(honest + Counter({(key[0], 0): 5}))) == (1, 0, 0, False, True)  # never landed
    del lost[key]
    assert mismatch(check(lost))[1] == 1  # a window nobody sent
