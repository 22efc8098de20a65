"""Telemetry with an incident, through Kafka, the worker and the alert service, end to end.

Raw samples (generated here) go to Kafka; `netready run --drain` aggregates them and publishes
its window verdicts; `netready alerts` turns those into alerts. 12 metros with 4 links each
report every second for 20 minutes. Metro 0 has 4 of its 240 samples per minute at 1500 µs in
minutes 6-11 (98.3 % under 1 ms: non-compliant) and none otherwise; the others never do.
Expected, from the rule definitions alone (3 bad windows to fire, 5 good ones to resolve):
exactly one alert, the regression of metro 0, firing when window 8 closes and resolved when
window 16 closes. Coverage (11/12) stays above the target and within 10 points of its median,
and the error-budget burn rates (1.7 %) stay below every threshold.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
import pytest

from test_alerts import REGRESSION, TopicReader, _ch_rows, _create_topic, _free_port, _iso, _start, _stop

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
N_METROS, LINKS, MINUTES = 12, 4, 20
BAD_MINUTES = range(6, 12)


def _telemetry(run: str, base_s: int) -> list[tuple[bytes, bytes]]:
    """(key, JSON record) in event-time order; slow samples are the first 4 of a bad minute."""
    messages = []
    for second in range(MINUTES * 60):
        minute = second // 60
        for metro_index in range(N_METROS):
            metro = f"it-{run}-m{metro_index:02d}"
            for link in range(LINKS):
                slow = metro_index == 0 and minute in BAD_MINUTES and second % 60 == 0
                record = {"ts": (base_s + second) * 1_000_000_000 + link * 1000, "metro": metro,
                          "router": f"r{link // 2}", "link": f"l{link}",
                          "rtt_us": 1500.0 if slow else 400.0 + link}
                messages.append((metro.encode(), orjson.dumps(record)))
    return messages


def test_incident_in_telemetry_fires_and_resolves_one_alert(stack, tmp_path):
    from confluent_kafka import Producer

    bootstrap = stack["KAFKA_BOOTSTRAP"]
    run = uuid.uuid4().hex[:10]
    telemetry, windows, alerts = (f"al-telemetry-{run}", f"al-windows-{run}", f"al-out-{run}")
    now = int(time.time())
    base_s = now - now % 60 - 40 * 60
    for topic in (telemetry, windows):
        _create_topic(bootstrap, topic, 1)  # one partition: window events in event-time order
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for key, value in _telemetry(run, base_s):
        while True:
            try:
                producer.produce(telemetry, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0

    env = {**os.environ, "NETREADY_KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    worker = subprocess.run(
        [sys.executable, "-m", "pipeline", "--clickhouse", stack["CLICKHOUSE_URL"], "run", "--topic",
         telemetry, "--group", f"al-{run}", "--windows-topic", windows, "--dlq-topic", f"{telemetry}.dlq",
         "--drain", "--json"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert worker.returncode == 0, worker.stderr[-3000:]
    summary = json.loads(worker.stdout)
    assert summary["samples"] == N_METROS * LINKS * MINUTES * 60 and summary["late"] == 0

    # What the worker said about metro 0, window by window, is what the rules will see.
    verdicts = _window_verdicts(bootstrap, windows, f"it-{run}-m00")
    assert [minute for minute, ok in verdicts if not ok] == list(BAD_MINUTES)

    reader = TopicReader(bootstrap, alerts)
    log_path = tmp_path / "alerts.log"
    service = _start(stack, ["--bootstrap", bootstrap, "--windows-topic", windows, "--alerts-topic", alerts,
                             "--app-id", f"al-{run}", "--alertmanager", stack["ALERTMANAGER_URL"],
                             "--web-port", str(_free_port()), "--label", f"run={run}"], log_path)
    try:
        got = reader.wait_for(2, 90, service)
        got = reader.settle(5)
    finally:
        reader.close()
        rc = _stop(service)
    assert rc == 0, log_path.read_text()[-4000:]
    metro0 = f"it-{run}-m00"
    assert [(m["alertname"], m["status"], m["labels"]["metro"]) for m in got] == [
        (REGRESSION, "firing", metro0), (REGRESSION, "resolved", metro0)], log_path.read_text()[-3000:]
    firing, resolved = got
    assert firing["starts_at"] == _iso(base_s + 6 * 60) and firing["event_time"] == _iso(base_s + 9 * 60)
    assert resolved["ends_at"] == _iso(base_s + 17 * 60)
    rows = _ch_rows(stack, run, lambda r: any(x[1] == "resolved" for x in r), 60)
    assert sorted(x[1] for x in rows) == ["firing", "resolved"]


def _window_verdicts(bootstrap: str, topic: str, metro: str) -> list[tuple[int, bool]]:
    """(minute index, compliant) of the metro's 60 s windows on the windows topic."""
    reader = TopicReader(bootstrap, topic)
    try:
        events = reader.settle(5)
    finally:
        reader.close()
    starts = sorted({(e["window_start"], e["compliant"]) for e in events
                     if e["metro"] == metro and e["window_s"] == 60 and e["hop_s"] == 60})
    first = min(s for s, _ in starts)
    to_s = lambda iso: int(np.datetime64(iso.rstrip("Z"), "s").astype(np.int64))  # noqa: E731
    return [((to_s(s) - to_s(first)) // 60, ok) for s, ok in starts]
