"""Fault matrix, part B: the network between the worker and its servers, ClickHouse answering
errors, and ClickHouse's disk filling up, against the real servers.

Each test streams the scenario of test_worker.py through a live worker, injects its fault, lets the
worker recover (or restarts it after an operator's fix), then checks what every fault test checks:
no sample lost, no duplicate row in the final tables, every metro window equal to the independent
numpy reference. While the fault lasts it also checks that no offset was committed past what had
landed: every window the committed messages closed is in ClickHouse and equal to the reference.
Recovery time and maximum lag are printed and, when NETREADY_FAULT_REPORT names a file, appended
to it as one JSON line per test.

- The network faults go through `faultproxy.FaultProxy`: between the worker and ClickHouse (the
  worker's ClickHouse URL points at the proxy), and between every Kafka client and a private
  broker (`proxied_kafka.ProxiedKafka` listens on one port and advertises the proxy's, so
  bootstrap, fetch, produce, the group coordinator and commits all cross the proxy).
- ClickHouse errors and the full disk use a private ClickHouse server started with
  scripts/stack.sh in its own directory and ports, with its data directory on a small tmpfs
  (mounted here: the tests run as root, as CI does) and merge-tree settings under `config.d/` that
  make "too many parts" reachable in seconds once merges are stopped.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
from confluent_kafka import Consumer, TopicPartition

from faultproxy import FaultProxy
from proxied_kafka import ProxiedKafka
from test_worker import (METROS, NETREADY, PARTITIONS, STACK_SH, Ctx, LagSampler, PacedProducer,  # noqa: F401
                         WorkerProc, check_final_tables, check_logs, clickhouse, clickhouse_json, ctx, drain,
                         expected, fresh_ctx, messages, read_topic, rows, sql_str, workers)

pytestmark = pytest.mark.integration

LATENESS_S = 30  # the worker's default allowed lateness: a window is emitted once max_ts - 30 s >= its end
NS = 1_000_000_000
TMPFS_SIZE = "256m"
# Merge-tree settings of the private server: "too many parts" after 6 unmerged parts in a partition
# (reached within seconds once merges are stopped), and merged-away parts freed after 10 s, not 8 min.
MERGE_TREE_XML = """<?xml version="1.0"?>
<yandex><merge_tree>
    <parts_to_delay_insert>5</parts_to_delay_insert>
    <parts_to_throw_insert>6</parts_to_throw_insert>
    <old_parts_lifetime>10</old_parts_lifetime>
</merge_tree></yandex>
"""


# --------------------------------------------------------------------------- helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def report(ctx: Ctx, test: str, recovery_key: str) -> None:
    """Print the figures, and append them as one JSON line to $NETREADY_FAULT_REPORT
    (`recovery_s` repeats the figure named by `recovery_key`; lost and duplicates were checked 0)."""
    ctx.notes.update(recovery_s=ctx.notes[recovery_key], samples_lost=0, duplicates=0)
    line = json.dumps({"test": test, **ctx.notes}, ensure_ascii=False)
    print(f"\n[fault] {line}")
    path = os.environ.get("NETREADY_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


class MetricsWorker(WorkerProc):
    """A WorkerProc with its Prometheus endpoint on and its own ClickHouse URL (e.g. the proxy's)."""

    def __init__(self, ctx: Ctx, name: str, clickhouse_url: str, *, batch_size: int = 500):
        self.metrics_port = free_port()
        self.ctx, self.name = ctx, name
        self.out_path, self.err_path = ctx.tmp / f"{name}.out", ctx.tmp / f"{name}.err"
        cmd = [str(NETREADY), "--clickhouse", clickhouse_url,
               "run", "--topic", ctx.topic, "--group", ctx.group, "--checkpoint-interval-s", "1",
               "--batch-size", str(batch_size), "--dlq-topic", ctx.dlq, "--windows-topic", ctx.windows,
               "--max-backoff-s", "4", "--metrics-port", str(self.metrics_port), "--json"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("NETREADY_")}
        env["NETREADY_KAFKA_BOOTSTRAP_SERVERS"] = ctx.bootstrap
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ctx.tmp,
                                         stdin=subprocess.DEVNULL)
        self.started = time.monotonic()

    def metric(self, name: str, labels: str = "") -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith(f"{name}{labels} "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.stderr()))

    def wait_count(self, pattern: str, at_least: int, timeout_s: float) -> float:
        """Seconds since start when `pattern` has appeared `at_least` times in stderr."""
        deadline = time.monotonic() + timeout_s
        while self.count(pattern) < at_least:
            assert self.proc.poll() is None, f"worker {self.name} exited:\n{self.stderr()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"{pattern!r} fewer than {at_least} times in {self.name}'s log:\n{self.stderr()[-3000:]}")
            time.sleep(0.1)
        return time.monotonic() - self.started


def committed_offsets(ctx: Ctx) -> dict[int, int]:
    consumer = Consumer(ctx.settings.consumer_config(ctx.group))  # never subscribes
    try:
        found = consumer.committed([TopicPartition(ctx.topic, p) for p in range(PARTITIONS)], timeout=10)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def check_committed_landed(ctx: Ctx, expected: dict) -> int:
    """Nothing committed that did not land: every window closed by the messages below each
    partition's committed offset is in metro_window and equals the reference. Offsets are read
    before the table (the worker lands before it commits). Returns how many windows were checked."""
    committed = committed_offsets(ctx)
    got = {}
    for r in clickhouse_json(ctx.stack, "SELECT metro, toUInt32(window_start) AS start, window_s, hop_s, samples, "
                                        "under_threshold, compliant, p99_us FROM netready.metro_window FINAL "
                                        f"WHERE metro IN ({', '.join(sql_str(m) for m in METROS)})"):
        got[(r["metro"], int(r["start"]), int(r["window_s"]), int(r["hop_s"]))] = (
            int(r["samples"]), int(r["under_threshold"]), float(r["p99_us"]), int(r["compliant"]))
    max_ts: dict[int, int] = {}
    metros: dict[int, set] = {}
    for m in read_topic(ctx, ctx.topic):
        if m.offset() < committed.get(m.partition(), -1):
            record = json.loads(m.value())
            max_ts[m.partition()] = max(max_ts.get(m.partition(), 0), record["ts"])
            metros.setdefault(m.partition(), set()).add(record["metro"])
    checked, wrong = 0, []
    for (metro, start_s, window_s, hop_s), (samples, under, p99, compliant) in expected.items():
        partition = next((p for p, names in metros.items() if metro in names), None)
        if partition is None or (start_s + window_s) * NS > max_ts[partition] - LATENESS_S * NS:
            continue  # not closed by what was committed
        checked += 1
        g = got.get((metro, start_s, window_s, hop_s))
        if g is None or (g[0], g[1], g[3]) != (samples, under, compliant) or abs(g[2] - p99) > 0.01 * p99:
            wrong.append(((metro, start_s, window_s, hop_s), g))
    assert not wrong, f"committed past {len(wrong)} windows not landed as the reference: {wrong[:3]}"
    return checked


def sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


def finish(ctx: Ctx, worker: WorkerProc, producer: PacedProducer, workers: list, expected: dict, rows,
           lag: LagSampler) -> dict:
    """Everything produced lands and is committed; stop; drain; the end-of-test checks."""
    producer.finish()
    ctx.wait_caught_up(120, worker)
    worker.kill(signal.SIGTERM)
    stopped = worker.wait_ok(60)
    summary, drained_s = drain(ctx, workers)
    ctx.notes.update(drain_s=round(drained_s, 1), max_lag=lag.stop(), sink_retries=stopped["sink_retries"])
    assert summary["late"] == 0 and summary["rejects"] == {}
    check_logs(workers)
    check_final_tables(ctx, expected, rows.num_rows)
    return stopped


# --------------------------------------------------------------------------- 1. network faults

@pytest.mark.timeout(300)
def test_delay_blackhole_and_resets_between_worker_and_clickhouse(ctx, workers, rows, messages, expected):
    url = urlparse(ctx.stack["CLICKHOUSE_URL"])
    with FaultProxy(url.hostname, url.port) as proxy:
        # timeout_s=5: a blackholed call fails after 5 s, well inside the 20 s blackhole
        proxied = f"clickhouse://{url.username or 'default'}@127.0.0.1:{proxy.port}/netready?timeout_s=5"
        producer = PacedProducer(ctx, messages, duration_s=30)
        lag = LagSampler(ctx)
        producer.start()
        lag.start()
        worker = MetricsWorker(ctx, "worker", proxied)
        workers.append(worker)
        ctx.wait_checkpoints(1, 60, worker)

        # 300 ms each way on every packet: a checkpoint's dozen queries take tens of seconds (43 s
        # measured), but everything arrives: the worker keeps talking to ClickHouse, without an error.
        proxy.forward(delay_s=0.3)
        forwarded = proxy.forwarded_bytes
        time.sleep(10)
        assert proxy.forwarded_bytes > forwarded
        assert worker.count(r"landing failed") == 0, worker.stderr()[-3000:]

        proxy.blackhole()
        blackhole_at = time.monotonic()
        worker.wait_count(r"landing failed .*consumption paused", 1, 20)
        detected_s = time.monotonic() - blackhole_at
        assert worker.metric("netready_consumption_paused") == 1
        assert worker.metric("netready_sink_errors_total", '{kind="retryable"}') >= 1
        ctx.notes["windows_checked_during_blackhole"] = check_committed_landed(ctx, expected)
        sleep_until(blackhole_at + 20)

        failures_before_resets = worker.count(r"landing failed")
        proxy.reset()
        resets_at = time.monotonic()
        worker.wait_count(r"landing failed", failures_before_resets + 1, 10)
        assert proxy.resets >= 1
        sleep_until(resets_at + 10)
        assert worker.count(r"consumption resumed") == 0, "resumed while ClickHouse was unreachable"
        assert worker.proc.poll() is None, worker.stderr()[-3000:]

        proxy.forward()
        healed_at = time.monotonic()
        worker.wait_count(r"landing works again; consumption resumed", 1, 60)
        ctx.notes.update(blackhole_detected_after_s=round(detected_s, 1),
                         recovered_after_heal_s=round(time.monotonic() - healed_at, 1),
                         proxy_resets=proxy.resets)
        assert worker.metric("netready_consumption_paused") == 0
        retries = worker.metric("netready_sink_retries_total")
        assert retries >= 3
        stopped = finish(ctx, worker, producer, workers, expected, rows, lag)
    assert stopped["sink_retries"] >= retries
    report(ctx, "network_delay_blackhole_resets", "recovered_after_heal_s")


@pytest.mark.timeout(300)
def test_delay_blackhole_and_resets_between_clients_and_kafka(stack, tmp_path, workers, rows, messages, expected):
    """Every Kafka connection of the worker and of the producer crosses the proxy (a private
    broker advertises the proxy's port): 300 ms delay, a 15 s blackhole, 8 s of resets. The
    idempotent producer and the worker's consumer, fencing commit and offset commits retry; the
    worker never lands a window twice nor commits past what landed; final tables exact."""
    broker_port = free_port()
    with FaultProxy("127.0.0.1", broker_port) as proxy:
        kafka = ProxiedKafka(tmp_path / "kafka", proxy.port, broker_port)
        try:
            kafka.start()
            with fresh_ctx({**stack, "KAFKA_BOOTSTRAP": kafka.bootstrap}, tmp_path, "it-kafka-faults") as ctx:
                producer = PacedProducer(ctx, messages, duration_s=30)
                lag = LagSampler(ctx)
                producer.start()
                lag.start()
                worker = WorkerProc(ctx, "worker", drain=False, batch_size=500)
                workers.append(worker)
                ctx.wait_checkpoints(1, 60, worker)

                proxy.forward(delay_s=0.3)
                time.sleep(8)
                proxy.blackhole()
                blackhole_at = time.monotonic()
                sleep_until(blackhole_at + 15)
                proxy.reset()
                sleep_until(blackhole_at + 23)
                assert worker.proc.poll() is None, worker.stderr()[-3000:]
                assert proxy.resets >= 1  # the clients kept trying through the faults
                rounds = ctx.checkpoint_rounds()
                proxy.forward()
                healed_at = time.monotonic()
                ctx.wait_checkpoints(rounds + 1, 90, worker)
                ctx.notes.update(checkpoint_after_heal_s=round(time.monotonic() - healed_at, 1),
                                 proxy_resets=proxy.resets)
                finish(ctx, worker, producer, workers, expected, rows, lag)
                report(ctx, "kafka_network_delay_blackhole_resets", "checkpoint_after_heal_s")
        finally:
            kafka.stop()


# --------------------------------------------------------------------------- private ClickHouse

def _stack_env(home: Path, port: int, http_port: int) -> dict[str, str]:
    return {**os.environ, "NETREADY_STACK_DIR": str(home), "NETREADY_CLICKHOUSE_PORT": str(port),
            "NETREADY_CLICKHOUSE_HTTP_PORT": str(http_port)}


@pytest.fixture(scope="module")
def private_clickhouse(stack):
    """A ClickHouse server of our own: data on a tmpfs of TMPFS_SIZE, tight merge-tree settings."""
    home = Path(f"/tmp/nr-faults-{uuid.uuid4().hex[:8]}")
    data = home / "clickhouse" / "data"
    data.mkdir(parents=True)
    (home / "clickhouse" / "config.d").mkdir()
    (home / "clickhouse" / "config.d" / "merge_tree.xml").write_text(MERGE_TREE_XML)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(data)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        reason = f"cannot mount a tmpfs for ClickHouse's data (needs root/CAP_SYS_ADMIN): {mounted.stderr}"
        if os.environ.get("NETREADY_REQUIRE_STACK") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    port, http_port = free_port(), free_port()
    env = _stack_env(home, port, http_port)
    try:
        up = subprocess.run(["bash", str(STACK_SH), "up", "clickhouse"], env=env, capture_output=True,
                            text=True, timeout=120)
        assert up.returncode == 0, up.stderr
        yield {**stack, "CLICKHOUSE_URL": f"clickhouse://default@127.0.0.1:{port}/netready",
               "DATA_DIR": str(data)}
    finally:
        subprocess.run(["bash", str(STACK_SH), "down", "clickhouse"], env=env, capture_output=True, timeout=120)
        subprocess.run(["umount", str(data)], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def private_ctx(private_clickhouse, tmp_path):
    """Like test_worker's ctx, with the private ClickHouse (fresh `netready` database)."""
    clickhouse(private_clickhouse, "SYSTEM START MERGES")
    with fresh_ctx(private_clickhouse, tmp_path, "it-faults") as c:
        yield c


# --------------------------------------------------------------------------- 2. ClickHouse errors

@pytest.mark.timeout(240)
def test_too_many_parts_backs_off_and_lands_later(private_ctx, workers, rows, messages, expected):
    ctx = private_ctx
    producer = PacedProducer(ctx, messages, duration_s=15)
    lag = LagSampler(ctx)
    producer.start()
    lag.start()
    worker = MetricsWorker(ctx, "worker", ctx.stack["CLICKHOUSE_URL"])
    workers.append(worker)
    ctx.wait_checkpoints(1, 60, worker)
    # With merges still running the tight settings may already refuse an insert now and then
    # (and pass it a moment later): count refusals and resumes from here on.
    refused_before = worker.count(r"landing failed \(ClickHouse error 252")
    clickhouse(ctx.stack, "SYSTEM STOP MERGES")
    stopped_at = time.monotonic()
    resumed_before = worker.count(r"consumption resumed")
    try:
        worker.wait_count(r"landing failed \(ClickHouse error 252", refused_before + 1, 60)
        detected_s = time.monotonic() - stopped_at
        worker.wait_count(r"landing failed \(ClickHouse error 252", refused_before + 3, 30)  # it keeps backing off
        assert worker.metric("netready_sink_errors_total", '{kind="retryable"}') >= 3
        assert worker.metric("netready_consumption_paused") == 1
        ctx.notes["windows_checked_while_refused"] = check_committed_landed(ctx, expected)
        assert worker.count(r"consumption resumed") == resumed_before
    finally:
        clickhouse(ctx.stack, "SYSTEM START MERGES")
    merging_at = time.monotonic()
    worker.wait_count(r"landing works again; consumption resumed", resumed_before + 1, 60)
    ctx.notes.update(refused_after_merges_stopped_s=round(detected_s, 1),
                     recovered_after_merges_started_s=round(time.monotonic() - merging_at, 1))
    finish(ctx, worker, producer, workers, expected, rows, lag)
    report(ctx, "clickhouse_too_many_parts", "recovered_after_merges_started_s")


@pytest.mark.timeout(240)
def test_schema_mismatch_stops_the_worker_and_a_restart_after_the_fix_lands_exactly(
        private_ctx, workers, rows, messages, expected):
    ctx = private_ctx
    producer = PacedProducer(ctx, messages, duration_s=15)
    lag = LagSampler(ctx)
    producer.start()
    lag.start()
    worker = MetricsWorker(ctx, "broken", ctx.stack["CLICKHOUSE_URL"])
    workers.append(worker)
    ctx.wait_checkpoints(2, 60, worker)
    # An operator changes a column the worker writes to another type: the worker's UInt32
    # values no longer fit, and no amount of retrying can change that.
    clickhouse(ctx.stack, "ALTER TABLE netready.metro_window MODIFY COLUMN links String")
    broken_at = time.monotonic()
    rc = worker.wait(60)
    stopped_s = time.monotonic() - broken_at
    log = worker.stderr()
    assert rc != 0, log[-3000:]
    assert re.search(r"CRITICAL netready\.worker fatal sink error, stopping.*Type mismatch.*links", log), log[-3000:]
    assert "netready: error: ClickHouse client error 53" in log
    assert "consumption paused" not in log, "a fatal error was retried"
    ctx.notes["windows_checked_after_fatal_stop"] = check_committed_landed(ctx, expected)
    frozen = committed_offsets(ctx)

    clickhouse(ctx.stack, "ALTER TABLE netready.metro_window MODIFY COLUMN links UInt32")  # the fix
    producer.finish()
    assert committed_offsets(ctx) == frozen  # nobody committed while the worker was down
    summary, drained_s = drain(ctx, workers, "after-fix")
    ctx.notes.update(stopped_after_break_s=round(stopped_s, 1), exit_code=rc,
                     drain_after_fix_s=round(drained_s, 1), max_lag=lag.stop())
    assert summary["late"] == 0 and summary["rejects"] == {}
    check_logs(workers[1:])
    check_final_tables(ctx, expected, rows.num_rows)
    report(ctx, "clickhouse_schema_mismatch", "drain_after_fix_s")


# --------------------------------------------------------------------------- 3. disk full

def fill(path: Path) -> int:
    """Write zeros into `path` until the filesystem is full; returns the bytes written."""
    written, chunk = 0, b"\0" * (1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while True:
            try:
                written += os.write(fd, chunk)  # short writes near the end, then ENOSPC
            except OSError:
                return written
    finally:
        os.close(fd)


@pytest.mark.timeout(240)
def test_disk_full_then_space_returns(private_ctx, workers, rows, messages, expected):
    ctx = private_ctx
    filler = Path(ctx.stack["DATA_DIR"]) / "filler"
    producer = PacedProducer(ctx, messages, duration_s=15)
    lag = LagSampler(ctx)
    producer.start()
    lag.start()
    worker = MetricsWorker(ctx, "worker", ctx.stack["CLICKHOUSE_URL"])
    workers.append(worker)
    ctx.wait_checkpoints(2, 60, worker)
    # The private server's tight merge settings may refuse an insert with "too many parts" and
    # let it through a moment later before the disk fills: count resumes from the fill on.
    resumed_before = worker.count(r"consumption resumed")
    try:
        filled = fill(filler)
        full_at = time.monotonic()
        assert os.statvfs(filler.parent).f_bavail == 0
        worker.wait_count(r"landing failed \(ClickHouse error \d+: .*No space left on device.*consumption paused",
                          1, 60)
        detected_s = time.monotonic() - full_at
        worker.wait_count(r"No space left on device", 3, 30)
        assert worker.metric("netready_consumption_paused") == 1
        ctx.notes["windows_checked_while_full"] = check_committed_landed(ctx, expected)
        assert worker.count(r"consumption resumed") == resumed_before
        assert worker.proc.poll() is None
    finally:
        filler.unlink(missing_ok=True)
    freed_at = time.monotonic()
    worker.wait_count(r"landing works again; consumption resumed", resumed_before + 1, 60)
    ctx.notes.update(filled_mib=filled >> 20, refused_after_full_s=round(detected_s, 1),
                     recovered_after_space_returned_s=round(time.monotonic() - freed_at, 1))
    finish(ctx, worker, producer, workers, expected, rows, lag)
    report(ctx, "clickhouse_disk_full", "recovered_after_space_returned_s")
