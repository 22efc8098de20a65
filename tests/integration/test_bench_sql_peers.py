"""The ClickHouse-SQL benchmark peer is checked against netready's windows, and the check can fail.

A tiny no-late topic on the shared Kafka (unique name, deleted afterwards): netready's worker
drains it into chdb (the reference), then the peer loads it into a private clickhouse-server and
aggregates with SQL; its per-(metro, window_start, window_s) samples, under_threshold and p99
must agree. The comparison itself is exercised on altered copies of the reference.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # bench/ is not an installed package
    sys.path.insert(0, str(REPO))

from bench import stream  # noqa: E402
from bench.peers import reference_topic, windows_check  # noqa: E402

REFERENCE = {("m1", 60, 60): (100, 90, 1000.0), ("m1", 0, 300): (150, 120, 1100.0),
             ("m2", 60, 60): (80, 80, 500.0)}


def test_compare_accepts_equal_and_p99_within_one_percent():
    got = dict(REFERENCE)
    got[("m2", 60, 60)] = (80, 80, 504.9)
    assert windows_check.compare(got, REFERENCE) == []


@pytest.mark.parametrize("change, expect", [
    (lambda g: g.pop(("m1", 0, 300)), "missing"),
    (lambda g: g.__setitem__(("m3", 60, 60), (1, 1, 1.0)), "does not have"),
    (lambda g: g.__setitem__(("m1", 60, 60), (101, 90, 1000.0)), "samples/under_threshold"),
    (lambda g: g.__setitem__(("m1", 60, 60), (100, 89, 1000.0)), "samples/under_threshold"),
    (lambda g: g.__setitem__(("m2", 60, 60), (80, 80, 505.1)), "p99"),
])
def test_compare_reports_each_kind_of_difference(change, expect):
    got = dict(REFERENCE)
    change(got)
    problems = windows_check.compare(got, REFERENCE)
    assert len(problems) == 1 and expect in problems[0]


def test_clickhouse_sql_peer_matches_netready(stack, tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "BOOTSTRAP", stack["KAFKA_BOOTSTRAP"])
    topic = reference_topic.PeerTopic(5_000)
    try:
        netready = reference_topic.run_netready({"name": "peer/netready-1w", "reps": 1}, tmp_path / "nr", topic)
        assert netready["verified"], netready["problems"]
        assert {w for (_, _, w) in topic.reference} == {60, 300}
        assert sum(v[0] for k, v in topic.reference.items() if k[2] == 60) == 5_000
        peer = reference_topic.run_peer({"name": "peer/clickhouse-sql", "peer": "clickhouse", "reps": 1},
                                        tmp_path / "ch", topic)
        assert peer["verified"], peer["problems"]
        assert peer["reps"][0]["p99_max_rel_error"] <= windows_check.P99_TOLERANCE
    finally:
        topic.delete()
