"""The worker's Prometheus endpoint and JSON logs, against the real broker and chdb."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from pipeline.kafka_config import KafkaSettings
from pipeline.produce import create_topics, produce
from pipeline.simulate import ScenarioConfig

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exposed")


def test_metrics_endpoint_and_json_logs(stack, tmp_path):
    topic, group = f"metrics-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(bootstrap_servers=stack["KAFKA_BOOTSTRAP"])
    create_topics(kafka, {topic: 2})
    scenario = ScenarioConfig(metros=3, routers_per_metro=1, links_per_router=2, duration_s=300,
                              late_share=0.0)
    produced = produce(kafka, topic, scenario, "json")
    for payload in (b"not json", b'{"metro": "x"}'):
        from confluent_kafka import Producer

        producer = Producer(kafka.producer_config())
        producer.produce(topic, payload, key=b"x")
        producer.flush(10)
    port = _free_port()
    env = {**os.environ, "NETREADY_KAFKA_BOOTSTRAP_SERVERS": stack["KAFKA_BOOTSTRAP"]}
    worker = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--clickhouse", f"chdb:{tmp_path / 'ch'}", "run",
         "--topic", topic, "--group", group, "--dlq-topic", f"{topic}.dlq", "--windows-topic", "",
         "--metrics-port", str(port), "--log-format", "json", "--checkpoint-interval-s", "1"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, text = time.monotonic() + 60, ""
        while time.monotonic() < deadline:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                if _metric(text, "netready_samples_total") >= produced.samples:
                    break
            except (OSError, AssertionError):
                pass
            time.sleep(0.5)
        assert _metric(text, "netready_samples_total") == produced.samples
        assert _metric(text, "netready_messages_total") == produced.messages + 2
        assert _metric(text, "netready_dlq_messages_total") == 2
        assert 'netready_rejects_total{reason="malformed_json"} 1.0' in text
        assert 'netready_rejects_total{reason="missing_field"} 1.0' in text
        assert "netready_window_emit_delay_seconds_bucket" in text
        assert "netready_consumption_paused 0.0" in text
    finally:
        worker.send_signal(signal.SIGTERM)
        _out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err[-2000:]
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines and all({"ts", "level", "logger", "msg"} <= set(entry) for entry in lines)
    assert any("assigned partitions" in entry["msg"] for entry in lines)
