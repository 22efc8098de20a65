"""The streaming peers' verifier (bench/peers/pystream.verify) and one peer end to end.

The verifier decides whether a peer's speed is reported at all, so it must reject a
wrong count, a missing or invented window, a p99 off by more than 1 %, a window reported
twice and a peer that read the wrong number of samples. The integration test runs the
faust peer (it lives in netready's venv) over a tiny late-free topic and checks its
windows against the pure-Python reference kernel over the same generated samples.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # bench/ is not an installed package
    sys.path.insert(0, str(REPO))

from bench.peers import pystream, window_acc  # noqa: E402
from pipeline import histogram  # noqa: E402

REFERENCE = {("北京", 1795132800, 60): (120, 118, 1010.0),
             ("北京", 1795132560, 300): (120, 118, 1010.0),
             ("上海", 1795132800, 60): (80, 80, 640.0)}


def _write(path: Path, windows: dict, seen: int) -> Path:
    rows = [{"metro": m, "window_start": s, "window_s": w, "samples": n, "under_threshold": u,
             "p99_us": p} for (m, s, w), (n, u, p) in windows.items()]
    window_acc.write_rows(path, rows, seen)
    return path


def test_verifier_accepts_equal_windows(tmp_path):
    assert pystream.verify(_write(tmp_path / "ok.jsonl", REFERENCE, 200), REFERENCE, 200) == []


@pytest.mark.parametrize("change, expected", [
    (lambda w: w.update({("北京", 1795132800, 60): (121, 118, 1010.0)}), "samples/under_threshold"),
    (lambda w: w.update({("上海", 1795132800, 60): (80, 79, 640.0)}), "samples/under_threshold"),
    (lambda w: w.update({("北京", 1795132560, 300): (120, 118, 1010.0 * 1.011)}), "p99 off by more than 1 %"),
    (lambda w: w.pop(("上海", 1795132800, 60)), "missing"),
    (lambda w: w.update({("上海", 1795132860, 60): (1, 1, 500.0)}), "netready does not have"),
])
def test_verifier_rejects_a_wrong_result(tmp_path, change, expected):
    windows = dict(REFERENCE)
    change(windows)
    problems = pystream.verify(_write(tmp_path / "bad.jsonl", windows, 200), REFERENCE, 200)
    assert any(expected in p for p in problems), problems


def test_verifier_tolerates_p99_within_one_percent(tmp_path):
    windows = dict(REFERENCE)
    windows[("北京", 1795132560, 300)] = (120, 118, 1010.0 * 1.009)
    assert pystream.verify(_write(tmp_path / "near.jsonl", windows, 200), REFERENCE, 200) == []


def test_verifier_rejects_a_short_read_and_a_duplicate_window(tmp_path):
    short = pystream.verify(_write(tmp_path / "short.jsonl", REFERENCE, 199), REFERENCE, 200)
    assert any("read 199 samples" in p for p in short), short
    path = _write(tmp_path / "dup.jsonl", REFERENCE, 200)
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0], *lines]) + "\n", encoding="utf-8")
    assert any("reported twice" in p for p in pystream.verify(path, REFERENCE, 200))


def _reference_windows(table) -> dict:
    """(metro, window_start_s, window_s) -> (samples, under, p99) from pipeline.reference."""
    import numpy as np

    from pipeline.reference import ReferenceKernel

    names = sorted(set(table.column("metro").to_pylist()))
    metro_id = {m: i for i, m in enumerate(names)}
    links = {k: i for i, k in enumerate(sorted(set(zip(*(table.column(c).to_pylist()
                                                           for c in ("metro", "router", "link"))))))}
    ns = window_acc.NS_PER_S
    kernel = ReferenceKernel(60 * ns, 30 * ns, window_acc.THRESHOLD_US, [(60 * ns, 60 * ns), (300 * ns, 60 * ns)])
    metro, router, link = (table.column(c).to_pylist() for c in ("metro", "router", "link"))
    late = kernel.ingest(table.column("ts_ns").to_numpy(),
                         np.array([links[k] for k in zip(metro, router, link)], dtype=np.int32),
                         np.array([metro_id[m] for m in metro], dtype=np.int32),
                         table.column("rtt_us").to_numpy())
    assert not late.any()
    kernel.flush()
    out = {}
    for w in kernel.drain():
        rows = w.metros
        for i in range(len(rows)):
            buckets, counts = rows.hist_of(i)
            out[(names[rows.key[i]], w.start_ns // ns, w.length_ns // ns)] = (
                int(rows.samples[i]), int(rows.under[i]),
                histogram.quantile(buckets.tolist(), counts.tolist(), 0.99,
                                   float(rows.min_us[i]), float(rows.max_us[i])))
    return out


def _stack_bootstrap() -> str:
    proc = subprocess.run(["bash", str(REPO / "scripts" / "stack.sh"), "status"], capture_output=True,
                          text=True, timeout=60)
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    if values.get("KAFKA") != "up":
        if os.environ.get("NETREADY_REQUIRE_STACK") == "1":
            pytest.fail(f"Kafka is not up: {proc.stdout}{proc.stderr}")
        pytest.skip("Kafka is not up (scripts/stack.sh up)")
    return values["KAFKA_BOOTSTRAP"]


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_faust_peer_matches_the_reference_on_a_tiny_topic(tmp_path):
    from pipeline.kafka_config import KafkaSettings
    from pipeline.produce import create_topics, produce
    from pipeline.simulate import ScenarioConfig, generate

    bootstrap = _stack_bootstrap()
    scenario = ScenarioConfig(metros=3, routers_per_metro=1, links_per_router=2, duration_s=100,
                              seed=7, late_share=0.0)
    table = generate(scenario)
    want = _reference_windows(table)
    run = uuid.uuid4().hex[:8]
    topic, group = f"test.peers.{run}", f"test-peers-{run}"
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    create_topics(settings, {topic: 2})
    try:
        produce(settings, topic, scenario, "json")
        out = tmp_path / "faust.jsonl"
        cmd = [sys.executable, str(REPO / "bench" / "peers" / "faust_peer.py"), "--bootstrap", bootstrap,
               "--topic", topic, "--group", group, "--samples", str(table.num_rows), "--partitions", "2",
               "--out", str(out)]
        pystream.run_once(cmd, tmp_path, timeout_s=100)
        assert pystream.verify(out, want, table.num_rows) == []
        got, _ = window_acc.read_rows(out)
        assert sum(v[0] for k, v in got.items() if k[2] == 60) == table.num_rows
    finally:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(settings.client_config())
        names = [n for n in admin.list_topics(timeout=30).topics if run in n]  # with faust's own
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(30)
