"""`netready alerts` against the real Kafka, Alertmanager and ClickHouse, across a restart.

Scenario (generated here): 12 metros report one 60 s window each; metro 0 is compliant for
windows 0-5, non-compliant for 6-11, compliant for 12-19; the others are always compliant.
Expected: exactly one alert, NetreadyMetroComplianceRegression for metro 0, firing when
window 8 arrives (3rd bad window) and resolved when window 16 arrives (5th good window); national
coverage stays at 11/12 (above target, less than 10 points down) and the burn rates stay low
(1.5 % errors in bad windows). The service is stopped (SIGTERM) after the firing and restarted
before the rest is produced, so it restarts on a backlog: no second firing, no lost resolve, no
window skipped (a skipped window would delay the resolve or finalise a coverage window early).
Every name carries a fresh run id (Alertmanager keeps alerts between tests; the `run`
label keeps this test's alerts apart).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REGRESSION = "NetreadyMetroComplianceRegression"
N_METROS = 12
FIRST_PHASE = 10  # windows 0..9 before the restart, 10..19 after


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _scenario(run: str, base_s: int) -> tuple[list[str], list[list[tuple[bytes, bytes]]]]:
    metros = [f"it-{run}-m{k:02d}" for k in range(N_METROS)]
    windows = []
    for i in range(20):
        start = base_s + 60 * i
        batch = []
        for k, metro in enumerate(metros):
            bad = k == 0 and 6 <= i <= 11
            under = 985 if bad else 1000
            event = {"metro": metro, "window_start": _iso(start), "window_end": _iso(start + 60), "window_s": 60,
                     "hop_s": 60, "policy": "p99-rtt-1ms", "samples": 1000, "under_threshold": under,
                     "share_under": under / 1000, "p50_us": 400.0, "p95_us": 700.0,
                     "p99_us": 1400.0 if bad else 900.0, "compliant": not bad, "version": 1}
            batch.append((metro.encode(), json.dumps(event).encode()))
        # a sliding-window event too: another family, which the service must ignore
        batch.append((metros[0].encode(), json.dumps({**json.loads(batch[0][1]), "window_s": 300,
                                                      "window_end": _iso(start + 300), "compliant": False,
                                                      "under_threshold": 10}).encode()))
        windows.append(batch)
    return metros, windows


def _produce(bootstrap: str, topic: str, batches) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for batch in batches:
        for key, value in batch:
            producer.produce(topic, value=value, key=key)
    assert producer.flush(30) == 0


def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


class TopicReader:
    def __init__(self, bootstrap: str, topic: str):
        from confluent_kafka import Consumer

        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"it-reader-{uuid.uuid4().hex}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.consumer.subscribe([topic])
        self.messages: list[dict] = []

    def wait_for(self, count: int, timeout_s: float, proc=None) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < count and time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                break
            msg = self.consumer.poll(0.5)
            if msg is not None and not msg.error():
                self.messages.append(json.loads(msg.value()))
        return self.messages

    def settle(self, seconds: float) -> list[dict]:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            msg = self.consumer.poll(0.5)
            if msg is not None and not msg.error():
                self.messages.append(json.loads(msg.value()))
        return self.messages

    def close(self) -> None:
        self.consumer.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(stack, args: list[str], log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipeline", "--clickhouse", stack["CLICKHOUSE_URL"], "alerts", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # faust keeps `<app id>-data/` in the working directory: the test's own directory
    return subprocess.Popen(cmd, cwd=log_path.parent, stdout=log_path.open("ab"), stderr=subprocess.STDOUT,
                            env=env)


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(45)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            pytest.fail("alert service did not stop within 45 s of SIGTERM")
    return proc.returncode


def _am_alerts(am_url: str, run: str) -> list[dict]:
    query = urllib.parse.urlencode({"filter": f'run="{run}"'})
    with urllib.request.urlopen(f"{am_url}/api/v2/alerts?{query}", timeout=5) as resp:
        return json.load(resp)


def _wait_am(am_url: str, run: str, predicate, timeout_s: float) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    alerts = _am_alerts(am_url, run)
    while not predicate(alerts) and time.monotonic() < deadline:
        time.sleep(0.5)
        alerts = _am_alerts(am_url, run)
    return alerts


def _ch_rows(stack, run: str, predicate, timeout_s: float) -> list[tuple]:
    """This run's rows of netready.alerts once `predicate(rows)` holds (or at the timeout);
    tolerates ClickHouse being briefly down or the table not (re)created yet."""
    from pipeline.errors import NetreadyError
    from pipeline.warehouse import open_warehouse

    deadline = time.monotonic() + timeout_s
    rows: list[tuple] = []
    while True:
        try:
            with open_warehouse(stack["CLICKHOUSE_URL"]) as warehouse:
                rows = [(r["alertname"], r["status"], r["metro"], r["t"]) for r in warehouse.query(
                    "SELECT alertname, status, metro, toUnixTimestamp(event_time) AS t FROM netready.alerts "
                    f"WHERE metro LIKE 'it-{run}-%' ORDER BY t, status").to_pylist()]
        except NetreadyError:
            pass
        if predicate(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def _forwarded_windows(bootstrap: str, app_id: str, metro: str) -> list[str]:
    """Window starts of `metro` on the service's internal by-policy topic, in order (for
    failure messages: a hole here is an event the service skipped)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"it-diag-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(f"{app_id}-windows-by-policy", 0, 0)])
    starts = []
    while (msg := consumer.poll(3)) is not None:
        if not msg.error() and (event := json.loads(msg.value()))["metro"] == metro:
            starts.append(event["window_start"][11:16])
    consumer.close()
    return starts


def _active(alerts: list[dict]) -> list[dict]:
    return [a for a in alerts if a["status"]["state"] == "active"]


def test_regression_fires_and_resolves_once_across_a_restart(stack, tmp_path):
    bootstrap, am_url = stack["KAFKA_BOOTSTRAP"], stack["ALERTMANAGER_URL"]
    run = uuid.uuid4().hex[:10]
    windows_topic, alerts_topic, app_id = f"it-alerts-windows-{run}", f"it-alerts-out-{run}", f"it-alerts-{run}"
    now = int(time.time())
    base_s = now - now % 60 - 30 * 60  # windows 30..10 minutes ago: real-time enough for Alertmanager
    metros, windows = _scenario(run, base_s)
    incident = metros[0]
    _create_topic(bootstrap, windows_topic, 1)
    _produce(bootstrap, windows_topic, windows[:FIRST_PHASE])
    web_port = _free_port()
    args = ["--bootstrap", bootstrap, "--windows-topic", windows_topic, "--alerts-topic", alerts_topic,
            "--app-id", app_id, "--alertmanager", am_url, "--resend-interval-s", "2",
            "--web-port", str(web_port), "--label", f"run={run}"]
    log_path = tmp_path / "alerts.log"
    reader = TopicReader(bootstrap, alerts_topic)
    proc = _start(stack, args, log_path)
    try:
        # ---- phase 1: fires on window 8, once
        got = reader.wait_for(1, 60, proc)
        assert got, f"no alert on {alerts_topic}; service log:\n{log_path.read_text()[-4000:]}"
        fired = got[0]
        assert (fired["alertname"], fired["status"], fired["labels"]["metro"]) == (REGRESSION, "firing", incident)
        assert fired["starts_at"] == _iso(base_s + 6 * 60) and fired["event_time"] == _iso(base_s + 9 * 60)
        assert fired["labels"]["run"] == run and fired["ends_at"] is None
        active = _wait_am(am_url, run, lambda a: len(_active(a)) >= 1, 20)
        assert [(a["labels"]["alertname"], a["labels"]["metro"]) for a in _active(active)] == [(REGRESSION, incident)]
        assert _active(active)[0]["startsAt"].startswith(_iso(base_s + 6 * 60)[:19])
        if shutil.which("amtool"):
            out = subprocess.run(["amtool", "alert", "query", f"--alertmanager.url={am_url}", f"run={run}"],
                                 capture_output=True, text=True, timeout=20)
            assert REGRESSION in out.stdout, out.stdout + out.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/alerts", timeout=5) as resp:
            assert [a["fingerprint"] for a in json.load(resp)] == [fired["fingerprint"]]
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        assert f'netready_alert_transitions_total{{alertname="{REGRESSION}",status="firing"}} 1.0' in metrics
        rows = _ch_rows(stack, run, lambda r: len(r) >= 1, 60)
        assert rows == [(REGRESSION, "firing", incident, base_s + 9 * 60)]
        time.sleep(3)  # let the first instance record its state and commit (and re-send once)
        assert _stop(proc) == 0, log_path.read_text()[-4000:]

        # ---- phase 2: the rest of the incident, then a restart on restored state
        _produce(bootstrap, windows_topic, windows[FIRST_PHASE:])
        proc = _start(stack, args, log_path)
        got = reader.wait_for(2, 60, proc)
        assert len(got) >= 2, (f"no resolve on {alerts_topic}; windows forwarded for {incident}: "
                               f"{_forwarded_windows(bootstrap, app_id, incident)}\n"
                               f"service log:\n{log_path.read_text()[-4000:]}")
        got = reader.settle(4)  # anything more (a duplicate firing) would arrive by now

        def explain() -> str:
            return (json.dumps(got, indent=1) + f"\nwindows forwarded for {incident}: "
                    f"{_forwarded_windows(bootstrap, app_id, incident)}\nservice log:\n{log_path.read_text()[-6000:]}")

        assert [(m["alertname"], m["status"], m["labels"].get("metro")) for m in got] == [
            (REGRESSION, "firing", incident), (REGRESSION, "resolved", incident)], explain()
        resolved = got[1]
        assert resolved["event_time"] == resolved["ends_at"] == _iso(base_s + 17 * 60), explain()
        every_window = {_iso(base_s + 60 * i)[11:16] for i in range(len(windows))}
        assert set(_forwarded_windows(bootstrap, app_id, incident)) == every_window, explain()
        assert resolved["fingerprint"] == fired["fingerprint"] and resolved["starts_at"] == fired["starts_at"]
        remaining = _wait_am(am_url, run, lambda a: not _active(a), 20)
        assert _active(remaining) == [], remaining

        # ---- ClickHouse history: the resolve, and never a second firing row. (Other suites drop the
        # netready database and stop ClickHouse concurrently; the phase-1 check above saw the firing.)
        rows = _ch_rows(stack, run, lambda r: any(x[1] == "resolved" for x in r), 60)
        assert [x for x in rows if x[1] == "resolved"] == [(REGRESSION, "resolved", incident, base_s + 17 * 60)]
        assert [x for x in rows if x[1] == "firing"] in ([], [(REGRESSION, "firing", incident, base_s + 9 * 60)])
    finally:
        reader.close()
        rc = _stop(proc)
    assert rc == 0, log_path.read_text()[-4000:]
