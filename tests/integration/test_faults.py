"""Fault matrix, part A: the streaming worker against crashes, a zombie, a broker restart and
scaling, on the real local Kafka and ClickHouse servers.

Every test ends with the checks of test_worker.py: no sample lost, no duplicate row in the final
tables, every metro window equal to the reference computed independently with numpy
(`check_final_tables`). Each also reports how long recovery took and the largest committed lag
(high watermark minus committed offset, summed over partitions) it saw: printed, and appended as
one JSON line per test to the file named by NETREADY_FAULT_REPORT when that is set.

The broker-restart test stops and starts the stack's Kafka: run these tests against a private
stack (NETREADY_STACK_DIR and port variables, see scripts/stack.sh) when others share yours.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from test_worker import (PARTITIONS, STACK_SH, PacedProducer, WorkerProc, check_final_tables,  # noqa: F401
                         check_logs, clickhouse, ctx, drain, expected, messages, rows, sql_str, workers)

pytestmark = pytest.mark.integration

# A frozen or killed member leaves the group after 6 s (the broker's smallest session timeout)
# instead of the default 10 s.
FAST_GROUP = {"NETREADY_KAFKA_X_SESSION_TIMEOUT_MS": "6000",
              "NETREADY_KAFKA_X_HEARTBEAT_INTERVAL_MS": "1000"}
# For the zombie test also: a consumer that has not polled for 10 s gives up its partitions.
MAX_POLL_INTERVAL_S = 10
ZOMBIE_GROUP = {**FAST_GROUP, "NETREADY_KAFKA_X_MAX_POLL_INTERVAL_MS": str(MAX_POLL_INTERVAL_S * 1000)}
FAULT_HOOK = "NETREADY_FAULT_EXIT_AFTER_LAND"
ASSIGNED = r"assigned partitions \[[0-9]"
ALL_ASSIGNED = r"assigned partitions \[0, 1, 2, 3\]"


class ProgressSampler(threading.Thread):
    """Every 0.25 s: (monotonic time, committed offsets summed, lag) of the test's group.

    Recovery after a fault is read from it afterwards: the first moment the group's committed
    offsets moved past where they stood when the fault began."""

    def __init__(self, ctx):
        super().__init__(daemon=True)
        self.ctx = ctx
        self.samples: list[tuple[float, int, int]] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        consumer = Consumer(self.ctx.settings.consumer_config(self.ctx.group))  # never subscribes
        tps = [TopicPartition(self.ctx.topic, p) for p in range(PARTITIONS)]
        try:
            while not self.stop_event.wait(0.25):
                try:
                    committed = consumer.committed(tps, timeout=5)
                    highs = [consumer.get_watermark_offsets(tp, timeout=5)[1] for tp in committed]
                except Exception:  # broker down: no sample
                    continue
                done = sum(max(tp.offset, 0) for tp in committed)
                self.samples.append((time.monotonic(), done, sum(highs) - done))
        finally:
            consumer.close()

    def recovery_s(self, level: int, since: float) -> float | None:
        """Seconds from `since` until the committed offsets summed passed `level` (their sum
        once the fault had stopped every commit); None if they never did."""
        for at, done, _ in self.samples:
            if at > since and done > level:
                return round(at - since, 2)
        return None

    def stop(self) -> int:
        """Stops sampling; returns the largest lag seen."""
        self.stop_event.set()
        self.join(30)
        return max((lag for _, _, lag in self.samples), default=0)


def report(ctx, test: str, **figures) -> None:
    """Figures of a passed test: in ctx.notes (printed) and, if asked, one JSON line in a file."""
    ctx.notes.update(figures)
    path = os.environ.get("NETREADY_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"test": test, **ctx.notes}, ensure_ascii=False) + "\n")


def committed_sum(ctx) -> int:
    return sum(max(offset, 0) for offset in committed_offsets(ctx).values())


def committed_offsets(ctx, timeout_s: float = 60) -> dict[int, int]:
    """Per partition; retried while a restarted broker is still loading the group's offsets."""
    consumer = Consumer(ctx.settings.consumer_config(ctx.group))  # never subscribes
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                return {tp.partition: tp.offset for tp in consumer.committed(
                    [TopicPartition(ctx.topic, p) for p in range(PARTITIONS)], timeout=10)}
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def stored_checkpoints(ctx) -> dict[int, int]:
    """Highest checkpointed offset per partition in ClickHouse."""
    out = clickhouse(ctx.stack, "SELECT partition, max(offset) FROM netready.checkpoints "
                                f"WHERE consumer_group = {sql_str(ctx.group)} GROUP BY partition")
    return {int(p): int(o) for p, o in (line.split("\t") for line in out.splitlines() if line.strip())}


def stack_sh(*args: str, timeout_s: float = 180) -> None:
    proc = subprocess.run(["bash", str(STACK_SH), *args], capture_output=True, text=True, timeout=timeout_s)
    assert proc.returncode == 0, f"stack.sh {' '.join(args)}: {proc.stderr}"


def finish_and_check(ctx, workers, rows, expected, producer, *running: WorkerProc) -> float:
    """Producer done, everything committed, running workers stopped cleanly, then a drain run
    closes the last windows; the final tables must equal the reference. Returns the drain time."""
    producer.finish()
    if running:
        ctx.wait_caught_up(120, *running)
    for w in running:
        w.kill(signal.SIGTERM)
    for w in running:
        w.wait_ok(60)
    summary, drained_s = drain(ctx, workers)
    assert summary["late"] == 0 and summary["rejects"] == {}
    check_logs(workers)
    check_final_tables(ctx, expected, rows.num_rows)
    return round(drained_s, 1)


# --------------------------------------------------------------------------- tests

@pytest.mark.timeout(240)
def test_kill_9_at_random_moments(ctx, workers, rows, messages, expected):
    """Four crashes in a row: three SIGKILLs at seeded random delays after a worker got its
    partitions, and one exit between the ClickHouse insert and the offset commit (the fault
    hook). A drain run after the last crash completes the stream."""
    seed = int(os.environ.get("NETREADY_FAULT_SEED") or random.SystemRandom().randrange(2**31))
    print(f"\nkill schedule seed: {seed} (NETREADY_FAULT_SEED={seed} repeats it)")
    rng = random.Random(seed)
    kills = 4
    hook_at = 1  # early, so the stream still flows: the hooked worker replays, then lands N rounds
    producer = PacedProducer(ctx, messages, duration_s=24)
    progress = ProgressSampler(ctx)
    producer.start()
    progress.start()
    crashes = []
    for i in range(kills):
        name = f"w{i}"
        env = dict(FAST_GROUP)
        if i == hook_at:
            env[FAULT_HOOK] = str(rng.randint(1, 3))
        w = WorkerProc(ctx, name, drain=False, extra_env=env)
        workers.append(w)
        assigned_s = w.wait_log(ASSIGNED, 60)
        if i == hook_at:
            rc = w.wait(60)
            crashed_at = time.monotonic()
            assert rc == 137 and "fault injection: exiting after landing round" in w.stderr(), (
                rc, w.stderr()[-3000:])
            # The crash came after the checkpoint insert and before the commit: ClickHouse holds
            # a checkpoint for an offset Kafka never saw committed.
            stored, committed = stored_checkpoints(ctx), committed_offsets(ctx)
            assert any(offset > committed.get(p, -1) for p, offset in stored.items()), (stored, committed)
            crashes.append({"worker": name, "how": f"exit after landing round {env[FAULT_HOOK]}",
                            "partitions_after_start_s": round(assigned_s, 1), "at": crashed_at,
                            "level": sum(max(o, 0) for o in committed.values())})
        else:
            delay_s = round(rng.uniform(0.2, 4.0), 2)
            time.sleep(delay_s)
            assert w.proc.poll() is None, f"{name} exited early:\n{w.stderr()[-3000:]}"
            crashed_at = time.monotonic()
            w.kill(signal.SIGKILL)
            assert w.wait(10) == -signal.SIGKILL
            crashes.append({"worker": name, "how": f"SIGKILL {delay_s} s after assignment",
                            "partitions_after_start_s": round(assigned_s, 1), "at": crashed_at,
                            "level": committed_sum(ctx)})
    drained_s = finish_and_check(ctx, workers, rows, expected, producer)
    max_lag = progress.stop()
    # Recovery: crash to the group's next commit, unless the next crash came first (then None);
    # partitions_after_start_s: how long the worker, started right after the previous crash,
    # took to get the partitions (the dead member must time out first).
    ends = [c["at"] for c in crashes[1:]] + [float("inf")]
    level_at_last_crash = crashes[-1]["level"]
    for crash, next_crash_at in zip(crashes, ends):
        at = crash.pop("at")
        recovery_s = progress.recovery_s(crash.pop("level"), at)
        crash["first_commit_after_s"] = (recovery_s if recovery_s is not None and at + recovery_s < next_crash_at
                                         else None)
    # After the last crash the group commits again, unless the killed worker had already
    # committed the whole stream (a slow machine: the stream ended before the last kill).
    assert crashes[-1]["first_commit_after_s"] is not None or level_at_last_crash == len(messages), crashes
    report(ctx, "kill_9_at_random_moments", seed=seed, crashes=crashes, drain_s=drained_s, max_lag=max_lag,
           recovery_after_last_crash_s=crashes[-1]["first_commit_after_s"])


@pytest.mark.timeout(240)
def test_zombie_worker_frozen_past_session_timeout(ctx, workers, rows, messages, expected):
    """SIGSTOP a worker mid-stream for longer than its session timeout; a second worker takes
    over and lands everything; after SIGCONT the zombie must land nothing and commit nothing."""
    producer = PacedProducer(ctx, messages, duration_s=14)
    progress = ProgressSampler(ctx)
    producer.start()
    progress.start()
    zombie = WorkerProc(ctx, "zombie", drain=False, extra_env=ZOMBIE_GROUP)
    workers.append(zombie)
    ctx.wait_checkpoints(2, 60, zombie)
    stopped_at = time.monotonic()
    zombie.kill(signal.SIGSTOP)
    try:
        heir = WorkerProc(ctx, "heir", drain=False, extra_env=ZOMBIE_GROUP)
        workers.append(heir)
        heir.wait_log(ALL_ASSIGNED, 60)
        takeover_s = time.monotonic() - stopped_at
        level = committed_sum(ctx)  # the zombie commits nothing from here on
        producer.finish()
        ctx.wait_caught_up(120, heir)
        time.sleep(max(1.5, MAX_POLL_INTERVAL_S + 1 - (time.monotonic() - stopped_at)))  # frozen past
        # the poll interval too, and the heir's last checkpoint round is over
        committed_before = committed_offsets(ctx)
        # Resume on a whole second, so "created in ClickHouse after the resume" is exact.
        time.sleep(1.05 - time.time() % 1.0)
        resumed_ns = time.time_ns()
        frozen_s = time.monotonic() - stopped_at
    finally:
        zombie.kill(signal.SIGCONT)
    rejoins_before = len(zombie.assignments())
    deadline = time.monotonic() + 40
    while len(zombie.assignments()) <= rejoins_before:
        assert zombie.proc.poll() is None, f"zombie exited:\n{zombie.stderr()[-3000:]}"
        assert time.monotonic() < deadline, f"zombie did not rejoin:\n{zombie.stderr()[-3000:]}"
        time.sleep(0.2)
    rejoined_s = round((time.time_ns() - resumed_ns) / 1e9, 1)
    time.sleep(3)  # several checkpoint intervals for a stale landing or commit to show
    assert committed_offsets(ctx) == committed_before
    for table in ("metro_window", "link_window"):
        stale = int(clickhouse(ctx.stack, f"SELECT count() FROM netready.{table} WHERE version >= {resumed_ns}"))
        assert stale == 0, f"{stale} {table} rows landed after the zombie resumed:\n{zombie.stderr()[-3000:]}"
    stale = int(clickhouse(ctx.stack, "SELECT count() FROM netready.checkpoints "
                                      f"WHERE consumer_group = {sql_str(ctx.group)} "
                                      f"AND created_at >= toDateTime({resumed_ns // 1_000_000_000}, 'UTC')"))
    assert stale == 0, f"{stale} checkpoints stored after the zombie resumed:\n{zombie.stderr()[-3000:]}"
    assert "lost (session expired or fenced)" in zombie.stderr(), zombie.stderr()[-3000:]
    drained_s = finish_and_check(ctx, workers, rows, expected, producer, zombie, heir)
    max_lag = progress.stop()
    report(ctx, "zombie_worker_frozen_past_session_timeout", frozen_s=round(frozen_s, 1),
           takeover_s=round(takeover_s, 1), recovery_s=progress.recovery_s(level, stopped_at),
           zombie_rejoined_s=rejoined_s, drain_s=drained_s, max_lag=max_lag)


@pytest.mark.timeout(300)
def test_kafka_broker_restart_mid_stream(ctx, workers, rows, messages, expected):
    """The broker goes down for a few seconds while a producer sends and a worker consumes;
    both ride it out (the producer is idempotent and retries) and nothing is lost."""
    producer = PacedProducer(ctx, messages, duration_s=20)
    progress = ProgressSampler(ctx)
    producer.start()
    progress.start()
    worker = WorkerProc(ctx, "worker", drain=False)
    workers.append(worker)
    ctx.wait_checkpoints(2, 60, worker)
    down_at = time.monotonic()
    try:
        stack_sh("down", "kafka")
        time.sleep(3)
    finally:
        stack_sh("up", "kafka")
    up_at = time.monotonic()
    level = committed_sum(ctx)
    assert worker.proc.poll() is None, f"worker died with the broker:\n{worker.stderr()[-3000:]}"
    drained_s = finish_and_check(ctx, workers, rows, expected, producer, worker)
    max_lag = progress.stop()
    recovery_s = progress.recovery_s(level, up_at)
    assert recovery_s is not None
    report(ctx, "kafka_broker_restart_mid_stream", broker_down_s=round(up_at - down_at, 1),
           recovery_after_up_s=recovery_s, drain_s=drained_s, max_lag=max_lag)


@pytest.mark.timeout(240)
def test_scale_1_to_3_to_1_under_load(ctx, workers, rows, messages, expected):
    """One worker, then three (two join under load), then one again: one leaves with SIGTERM,
    one is killed with SIGKILL. The final tables equal the single-worker reference."""
    # Two paced halves, the second sent while three workers run and the group shrinks, so
    # those phases meet a live stream however long the machine takes to start workers.
    split = len(messages) // 2
    producer = PacedProducer(ctx, messages[:split], duration_s=12, chunks=50)
    progress = ProgressSampler(ctx)
    producer.start()
    progress.start()
    first = WorkerProc(ctx, "first", drain=False, extra_env=FAST_GROUP)
    workers.append(first)
    ctx.wait_checkpoints(1, 60, first)
    grow_at = time.monotonic()
    second = WorkerProc(ctx, "second", drain=False, extra_env=FAST_GROUP)
    third = WorkerProc(ctx, "third", drain=False, extra_env=FAST_GROUP)
    workers += [second, third]
    second.wait_log(ASSIGNED, 60)
    third.wait_log(ASSIGNED, 60)
    grown_s = time.monotonic() - grow_at
    producer.finish()
    producer = PacedProducer(ctx, messages[split:], duration_s=16, chunks=50)
    producer.start()
    rounds = ctx.checkpoint_rounds()
    ctx.wait_checkpoints(rounds + 2, 60, first, second, third)
    owned = [set(w.assignments()[-1]) for w in (first, second, third)]
    assert all(owned) and set().union(*owned) == set(range(PARTITIONS)), owned
    assert sum(map(len, owned)) == PARTITIONS, owned  # no partition owned twice

    shrink_at = time.monotonic()
    second.kill(signal.SIGTERM)
    second.wait_ok(60)
    killed_at = time.monotonic()
    streaming_at_kill = producer.is_alive()
    third.kill(signal.SIGKILL)
    assert third.wait(10) == -signal.SIGKILL
    level = committed_sum(ctx)
    deadline = time.monotonic() + 60
    while first.assignments()[-1] != list(range(PARTITIONS)):
        assert first.proc.poll() is None, f"first exited:\n{first.stderr()[-3000:]}"
        assert time.monotonic() < deadline, f"first never got every partition back: {first.assignments()}"
        time.sleep(0.2)
    shrunk_s = time.monotonic() - shrink_at
    regained_s = time.monotonic() - killed_at
    drained_s = finish_and_check(ctx, workers, rows, expected, producer, first)
    max_lag = progress.stop()
    # recovery_s: from the SIGKILL until the survivor owned every partition again.
    report(ctx, "scale_1_to_3_to_1_under_load", grow_to_3_s=round(grown_s, 1),
           shrink_to_1_s=round(shrunk_s, 1), recovery_s=round(regained_s, 1),
           commits_after_kill_s=progress.recovery_s(level, killed_at),
           streaming_at_kill=streaming_at_kill, first_assignments=first.assignments(), drain_s=drained_s,
           max_lag=max_lag)
