"""Smoke tests for the local server stack started by ``scripts/stack.sh up``.

These tests do not start anything themselves: the runner is expected to have run
``scripts/stack.sh up`` first. If the stack is down they are skipped, unless
``NETREADY_REQUIRE_STACK=1`` (CI), in which case they fail.

Endpoints are taken from ``scripts/stack.sh status`` so port overrides
(NETREADY_KAFKA_PORT, ...) are honoured automatically.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.integration

# Must match NETREADY_ALERT_WEBHOOK_URL used by `stack.sh up` (same default).
WEBHOOK_URL = os.environ.get("NETREADY_ALERT_WEBHOOK_URL", "http://127.0.0.1:19099/hook")


def _run(cmd: list[str], *, input: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)


def _clickhouse(stack: dict[str, str], query: str, *, user: str = "default",
                password: str | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    url = urlparse(stack["CLICKHOUSE_URL"])
    cmd = ["clickhouse-client", "--host", url.hostname, "--port", str(url.port), "--user", user]
    if password is not None:
        cmd += ["--password", password]
    cmd += ["--query", query]
    return _run(cmd, input=input)


# ----------------------------------------------------------------------- kafka

def test_kafka_produce_consume_roundtrip(stack):
    bootstrap = stack["KAFKA_BOOTSTRAP"]
    topic = f"it-stack-{uuid.uuid4().hex[:12]}"  # fresh topic, auto-created
    messages = [f"msg-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]

    produced = _run(
        ["kcat", "-b", bootstrap, "-P", "-t", topic, "-X", "acks=all"],
        input="\n".join(messages) + "\n",
    )
    assert produced.returncode == 0, produced.stderr

    # -e: exit at end of partitions; -c 3: stop after 3. The topic has 4
    # partitions, so order across partitions is not defined -> compare as sets.
    consumed = _run(
        ["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-c", "3", "-q"],
        timeout=60,
    )
    assert consumed.returncode == 0, consumed.stderr
    assert sorted(consumed.stdout.split()) == sorted(messages)


def test_kafka_auto_created_topic_has_four_partitions(stack):
    bootstrap = stack["KAFKA_BOOTSTRAP"]
    topic = f"it-parts-{uuid.uuid4().hex[:12]}"
    assert _run(["kcat", "-b", bootstrap, "-P", "-t", topic], input="x\n").returncode == 0
    meta = _run(["kcat", "-b", bootstrap, "-L", "-t", topic, "-J"])
    assert meta.returncode == 0, meta.stderr
    topics = json.loads(meta.stdout)["topics"]
    assert len(topics) == 1 and len(topics[0]["partitions"]) == 4


# ------------------------------------------------------------------ clickhouse

def test_clickhouse_create_insert_select(stack):
    table = f"netready.it_stack_{uuid.uuid4().hex[:12]}"
    # ClickHouse 18.16: classic MergeTree syntax with ORDER BY is supported.
    r = _clickhouse(stack, f"CREATE TABLE {table} (ts DateTime, device String, value Float64) "
                           "ENGINE = MergeTree ORDER BY (device, ts)",
                    user="netready_writer", password="writer-secret")
    assert r.returncode == 0, r.stderr
    try:
        rows = "2024-01-01 00:00:00\tr1\t1.5\n2024-01-01 00:00:01\tr1\t2.5\n2024-01-01 00:00:00\tr2\t4\n"
        r = _clickhouse(stack, f"INSERT INTO {table} FORMAT TabSeparated", input=rows,
                        user="netready_writer", password="writer-secret")
        assert r.returncode == 0, r.stderr
        r = _clickhouse(stack, f"SELECT device, count(), sum(value) FROM {table} "
                               "GROUP BY device ORDER BY device FORMAT TabSeparated")
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == ["r1\t2\t4", "r2\t1\t4"]

        # The read-only analyst can read ...
        r = _clickhouse(stack, f"SELECT count() FROM {table}", user="analyst", password="analyst-secret")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "3"
    finally:
        _clickhouse(stack, f"DROP TABLE IF EXISTS {table}")


def test_clickhouse_analyst_cannot_write(stack):
    table = f"netready.it_ro_{uuid.uuid4().hex[:12]}"
    r = _clickhouse(stack, f"CREATE TABLE {table} (x UInt32) ENGINE = MergeTree ORDER BY x")
    assert r.returncode == 0, r.stderr
    try:
        r = _clickhouse(stack, f"INSERT INTO {table} VALUES (1)", user="analyst", password="analyst-secret")
        assert r.returncode != 0
        # Code 164 = READONLY ("Cannot execute query in readonly mode")
        assert "readonly" in r.stderr.lower(), r.stderr
        r = _clickhouse(stack, f"DROP TABLE {table}", user="analyst", password="analyst-secret")
        assert r.returncode != 0 and "readonly" in r.stderr.lower(), r.stderr
        r = _clickhouse(stack, f"SELECT count() FROM {table}")
        assert r.stdout.strip() == "0"
    finally:
        _clickhouse(stack, f"DROP TABLE IF EXISTS {table}")


def test_clickhouse_rejects_wrong_password(stack):
    r = _clickhouse(stack, "SELECT 1", user="analyst", password="wrong")
    assert r.returncode != 0
    assert "password" in r.stderr.lower() or "authentication" in r.stderr.lower(), r.stderr


def test_clickhouse_http_ping(stack):
    with urllib.request.urlopen(stack["CLICKHOUSE_HTTP"] + "/ping", timeout=5) as resp:
        assert resp.read().strip() == b"Ok."


# ---------------------------------------------------------------- alertmanager

class _HookHandler(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server API)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            type(self).received.append(json.loads(body))
        finally:
            self.send_response(200)
            self.end_headers()

    def log_message(self, *args):  # keep pytest output clean
        pass


def _post_alert(am_url: str, alertname: str) -> None:
    alert = [{
        "labels": {"alertname": alertname, "severity": "warning", "source": "netready-it"},
        "annotations": {"summary": "integration test alert"},
        "generatorURL": "http://127.0.0.1/netready-it",
    }]
    req = urllib.request.Request(
        am_url + "/api/v2/alerts", data=json.dumps(alert).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def test_alertmanager_accepts_and_lists_alert(stack):
    am = stack["ALERTMANAGER_URL"]
    alertname = f"NetreadyIT_{uuid.uuid4().hex[:10]}"
    _post_alert(am, alertname)
    deadline = time.monotonic() + 10
    names: list[str] = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{am}/api/v2/alerts?filter=alertname%3D%22{alertname}%22", timeout=5) as resp:
            alerts = json.load(resp)
        names = [a["labels"]["alertname"] for a in alerts]
        if alertname in names:
            break
        time.sleep(0.2)
    assert alertname in names


def test_alertmanager_notifies_webhook(stack):
    hook = urlparse(WEBHOOK_URL)
    _HookHandler.received = []
    try:
        server = http.server.ThreadingHTTPServer((hook.hostname, hook.port), _HookHandler)
    except OSError as exc:
        pytest.fail(f"cannot listen on webhook address {WEBHOOK_URL}: {exc}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        alertname = f"NetreadyHook_{uuid.uuid4().hex[:10]}"
        _post_alert(stack["ALERTMANAGER_URL"], alertname)
        # group_wait is 1s in the stack config; allow generous slack.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if any(p.get("groupLabels", {}).get("alertname") == alertname for p in _HookHandler.received):
                break
            time.sleep(0.2)
        payloads = [p for p in _HookHandler.received if p.get("groupLabels", {}).get("alertname") == alertname]
        assert payloads, f"no webhook notification for {alertname} (got {len(_HookHandler.received)} other payloads)"
        assert payloads[0]["status"] == "firing"
        assert payloads[0]["alerts"][0]["labels"]["alertname"] == alertname
    finally:
        server.shutdown()
        server.server_close()


def test_required_cli_tools_present(stack):
    for tool in ("kcat", "clickhouse-client"):
        assert shutil.which(tool), f"{tool} not on PATH"
