"""Authenticated, encrypted transport end to end, clear refusals, and secrets kept out of sight.

A private broker (secure_kafka.py) accepts clients only over SASL_SSL with SCRAM-SHA-512 and a
certificate from a CA generated for this module. Over it: `netready produce` (settings from
NETREADY_KAFKA_* variables, password from a variable) sends simulated telemetry for four metros
whose names carry a run tag; `netready run` (settings from a TOML [kafka] section, password
from a file) consumes half-way as a long-running worker, is stopped, and a second `run --drain`
finishes; results land in the shared ClickHouse server as the password-protected writer; the
alert service (faust) reads the window verdicts over SASL_SSL as well. Expected counts come
from the scenario's shape alone: 4 metros x 4 links x 600 one-second probes = 9 600 samples in
4 x 10 one-minute windows.

Wrong password, wrong CA and a plaintext client each end in a non-zero exit within seconds
with a message naming the cause. No password shows up in any output, metrics page, repr or
exception, and the HTTP endpoints listen on loopback only.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import traceback
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
from confluent_kafka import Consumer, TopicPartition

from pipeline.config import Settings
from pipeline.kafka_access import KafkaAccessError, check_access
from pipeline.kafka_config import KafkaSettings
from pipeline.produce import create_topics
from secure_kafka import USER, SecureKafka, free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NETREADY = REPO / ".venv" / "bin" / "netready"
WRITER_PASSWORD = "writer-secret"  # scripts/stack.sh users.xml
TAG = uuid.uuid4().hex[:8]
METROS = [f"sec-{TAG}-{name}" for name in ("北京", "上海", "Zürich", "Kraków")]
LINKS, DURATION_S = 4, 600
SAMPLES = len(METROS) * LINKS * DURATION_S
MINUTE_WINDOWS = len(METROS) * DURATION_S // 60
REFUSAL_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def broker(stack, tmp_path_factory):
    kafka = SecureKafka(tmp_path_factory.mktemp("secure-kafka")).start()
    yield kafka
    kafka.stop()


@pytest.fixture(scope="module")
def names():
    return {"topic": f"sec-telemetry-{TAG}", "windows": f"sec-windows-{TAG}", "dlq": f"sec-dlq-{TAG}",
            "group": f"sec-group-{TAG}", "alerts": f"sec-alerts-{TAG}", "app": f"sec-alerts-{TAG}"}


def settings_for(broker: SecureKafka, **changes) -> KafkaSettings:
    values = dict(bootstrap_servers=broker.bootstrap, security_protocol="SASL_SSL",
                  sasl_mechanism="SCRAM-SHA-512", sasl_username=USER, sasl_password=broker.password,
                  ssl_ca_location=str(broker.certs.ca))
    return KafkaSettings(**{**values, **changes})


def kafka_env(broker: SecureKafka, **changes: str) -> dict[str, str]:
    """A clean environment with the Kafka settings as NETREADY_KAFKA_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETREADY_")}
    values = {"BOOTSTRAP_SERVERS": broker.bootstrap, "SECURITY_PROTOCOL": "SASL_SSL",
              "SASL_MECHANISM": "SCRAM-SHA-512", "SASL_USERNAME": USER, "SASL_PASSWORD": broker.password,
              "SSL_CA_LOCATION": str(broker.certs.ca), **changes}
    env.update({f"NETREADY_KAFKA_{k}": v for k, v in values.items() if v})
    return env


def config_env(broker: SecureKafka, tmp: Path) -> tuple[Path, dict[str, str]]:
    """A TOML config with a [kafka] section (password from a file) and an environment that
    holds no secret, only the path of the ClickHouse writer's password file."""
    config = tmp / "netready.toml"
    config.write_text(f"""\
[kafka]
bootstrap_servers = "{broker.bootstrap}"
security_protocol = "SASL_SSL"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "{USER}"
sasl_password_file = "{broker.password_file}"
ssl_ca_location = "{broker.certs.ca}"
client_id = "netready-security-test"
""")
    password_file = tmp / "clickhouse.password"
    password_file.write_text(WRITER_PASSWORD + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETREADY_")}
    env["NETREADY_CLICKHOUSE_PASSWORD_FILE"] = str(password_file)
    env["PYTHONUNBUFFERED"] = "1"
    return config, env


def writer_url(stack) -> str:
    host = urlparse(stack["CLICKHOUSE_URL"])
    return f"clickhouse://netready_writer@{host.hostname}:{host.port}/netready"


def clickhouse(stack, query: str) -> str:
    host = urlparse(stack["CLICKHOUSE_URL"])
    proc = subprocess.run(["clickhouse-client", "--host", host.hostname, "--port", str(host.port),
                           "--user", "analyst", "--password", "analyst-secret", "--query", query],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def assert_no_secret(text: str, broker: SecureKafka, where: str) -> None:
    for secret in (broker.password, WRITER_PASSWORD):
        assert secret not in text, f"a password appears in {where}"


def listening_addresses(pid: int) -> set[str]:
    """host:port of every TCP socket the process listens on (from /proc, no extra tools)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A = LISTEN
                continue
            address, port = fields[1].split(":")
            if width == 8:
                host = ".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0))
            else:
                host = "::1" if address == "0" * 24 + "01000000" else address
            found.add(f"{host}:{int(port, 16)}")
    return found


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


def wait_until(predicate, timeout_s: float, proc: subprocess.Popen, log: Path, what: str):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = predicate()
            if value:
                return value
        except OSError:
            pass  # endpoint not up yet
        assert proc.poll() is None, f"exited ({proc.returncode}) waiting for {what}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} after {timeout_s} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def stop(proc: subprocess.Popen, timeout_s: float = 45) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            pytest.fail(f"still running {timeout_s} s after SIGTERM")
    return proc.returncode


# ----------------------------------------------------------------------------- end to end

@pytest.mark.timeout(240)
def test_sasl_ssl_end_to_end_with_exact_counts(stack, broker, names, tmp_path):
    assert check_access(settings_for(broker))
    # One windows partition: the alert service then sees each metro's windows in order.
    create_topics(settings_for(broker), {names["topic"]: 2, names["windows"]: 1, names["dlq"]: 1})
    produced = subprocess.run(
        [str(NETREADY), "produce", "--topic", names["topic"], "--partitions", "2", "--routers", "1",
         "--links", str(LINKS), "--duration-s", str(DURATION_S), "--interval-s", "1", "--late-share", "0",
         "--json", *[arg for metro in METROS for arg in ("--metro-name", metro)]],
        env=kafka_env(broker), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert produced.returncode == 0, produced.stderr[-3000:]
    assert json.loads(produced.stdout)["samples"] == SAMPLES
    assert_no_secret(produced.stdout + produced.stderr, broker, "netready produce output")

    config, env = config_env(broker, tmp_path)
    assert_no_secret(repr(Settings.load(config)), broker, "repr(Settings)")
    env["NETREADY_KAFKA_X_DEBUG"] = "security,broker,conf"  # librdkafka's own debug lines on stderr
    run = [str(NETREADY), "--config", str(config), "--clickhouse", writer_url(stack), "run",
           "--topic", names["topic"], "--group", names["group"], "--windows-topic", names["windows"],
           "--dlq-topic", names["dlq"], "--checkpoint-interval-s", "1", "--log-level", "debug", "--json"]

    # 1. A long-running worker with its Prometheus endpoint: reads everything, then is stopped.
    metrics_port = free_port()
    log1 = tmp_path / "worker1.err"
    with open(log1, "wb") as err:
        worker = subprocess.Popen(run + ["--metrics-port", str(metrics_port)], env=env, cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
    try:
        text = wait_until(lambda: (lambda t: t if metric(t, "netready_samples_total") == SAMPLES else None)(
            scrape(metrics_port)), 90, worker, log1, "all samples in the worker's metrics")
        assert listening_addresses(worker.pid) == {f"127.0.0.1:{metrics_port}"}
        assert_no_secret(text, broker, "the worker's /metrics")
    finally:
        assert stop(worker) == 0, log1.read_text()[-3000:]
    first = json.loads(worker.stdout.read())
    assert first["samples"] == SAMPLES and first["rejects"] == {}

    # 2. A draining worker restores the stopped one's checkpoints and closes every window.
    log2 = tmp_path / "worker2.err"
    with open(log2, "wb") as err:
        drained = subprocess.run(run + ["--drain"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                 stderr=err, timeout=120)
    assert drained.returncode == 0, log2.read_text()[-3000:]
    assert json.loads(drained.stdout)["samples"] == 0  # nothing left to read, only windows to close
    for log in (log1, log2):
        text = log.read_text(errors="replace")
        assert " DEBUG " in text and "SASL" in text, "debug logging (ours and librdkafka's) was not on"
        assert_no_secret(text, broker, f"worker stderr at debug level ({log.name})")

    ours = "metro IN (" + ", ".join(f"'{m}'" for m in METROS) + ")"
    rows = clickhouse(stack, "SELECT count(), sum(samples) FROM netready.metro_window FINAL "
                             f"WHERE window_s = 60 AND hop_s = 60 AND {ours}").split()
    assert [int(x) for x in rows] == [MINUTE_WINDOWS, SAMPLES]
    links = clickhouse(stack, "SELECT uniqExact(metro, router, link), sum(samples) FROM netready.link_window "
                              f"FINAL WHERE window_s = 60 AND hop_s = 60 AND {ours}").split()
    assert [int(x) for x in links] == [len(METROS) * LINKS, SAMPLES]

    # 3. The alert service reads the window verdicts over SASL_SSL and evaluates each minute once.
    consumer = Consumer(settings_for(broker).consumer_config(f"sec-count-{TAG}"))
    try:
        published = consumer.get_watermark_offsets(TopicPartition(names["windows"], 0), timeout=30)[1]
    finally:
        consumer.close()
    web_port = free_port()
    alert_log = tmp_path / "alerts.log"
    with open(alert_log, "wb") as out:
        service = subprocess.Popen(
            [str(NETREADY), "--config", str(config), "alerts", "--windows-topic",
             names["windows"], "--alerts-topic", names["alerts"], "--app-id", names["app"], "--no-clickhouse",
             "--web-port", str(web_port), "--log-level", "debug"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def all_read():
            text = scrape(web_port)
            return text if metric(text, "netready_alert_window_events_total") >= published else None

        text = wait_until(all_read, 90, service, alert_log, "every window event in the alert metrics")
        assert metric(text, "netready_alert_window_events_total") == published
        assert metric(text, "netready_alert_window_events_total", outcome="evaluated") == MINUTE_WINDOWS
        assert listening_addresses(service.pid) == {f"127.0.0.1:{web_port}"}
        assert_no_secret(text, broker, "the alert service's /metrics")
    finally:
        assert stop(service) == 0, alert_log.read_text()[-3000:]
    assert_no_secret(alert_log.read_text(errors="replace"), broker, "the alert service's log")


# ----------------------------------------------------------------------------- refusals

def _refusal_cases(broker: SecureKafka, names: dict, tmp: Path):
    wrong_password = "Wrong-" + uuid.uuid4().hex
    return {
        "wrong password": ([str(NETREADY), "run", "--topic", names["topic"], "--group", f"sec-bad-{TAG}",
                            "--drain"], kafka_env(broker, SASL_PASSWORD=wrong_password),
                           r"authentication failed", wrong_password),
        "wrong CA": ([str(NETREADY), "produce", "--topic", names["topic"], "--duration-s", "1"],
                     kafka_env(broker, SSL_CA_LOCATION=str(broker.certs.wrong_ca)), r"certificate", broker.password),
        "plaintext to TLS": ([str(NETREADY), "alerts", "--app-id", f"sec-bad-{TAG}",
                              "--no-clickhouse", "--web-port", str(free_port())],
                             kafka_env(broker, SECURITY_PROTOCOL="PLAINTEXT", SASL_MECHANISM="", SASL_USERNAME="",
                                       SASL_PASSWORD="", SSL_CA_LOCATION=""), r"SSL handshake", broker.password),
    }


@pytest.mark.parametrize("case", ["wrong password", "wrong CA", "plaintext to TLS"])
@pytest.mark.timeout(60)
def test_refusal_is_quick_clear_and_quiet(broker, names, tmp_path, case):
    cmd, env, cause, secret = _refusal_cases(broker, names, tmp_path)[case]
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=REFUSAL_TIMEOUT_S, cwd=tmp_path)
    elapsed = time.monotonic() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("netready: error:")]
    assert len(errors) == 1 and re.search(cause, errors[0], re.IGNORECASE), output[-3000:]
    assert secret not in output and broker.password not in output
    print(f"{case}: exit {proc.returncode} after {elapsed:.1f} s: {errors[0][:160]}")


def test_refusal_exception_and_settings_hide_the_password(broker):
    wrong = "Wrong-" + uuid.uuid4().hex
    settings = settings_for(broker, sasl_password=wrong)
    with pytest.raises(KafkaAccessError) as info:
        check_access(settings, wait_s=REFUSAL_TIMEOUT_S)
    for text in ("".join(traceback.format_exception(info.value)), repr(info.value), repr(settings), str(settings)):
        assert wrong not in text and broker.password not in text
    assert "authentication" in str(info.value).lower()
