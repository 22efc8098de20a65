"""`netready run`: the long-lived Kafka worker with effectively-once results.

Delivery: at-least-once consumption plus idempotent landing plus checkpoints.
Each assigned partition has its own aggregator (its own watermark). Every
`checkpoint_interval_s` the worker, per partition:

1. lands the windows emitted so far (ReplacingMergeTree: re-landing is harmless)
   and publishes them to the windows topic, and flushes dead-letter messages;
2. stores the partition's aggregation state for its next offset in
   `netready.checkpoints`;
3. commits that offset.

After a crash at any point, the group resumes from the last committed offset
with the state stored for exactly that offset, so replayed messages rebuild
the same windows: final tables equal an uninterrupted run. Telemetry must be
keyed by metro so that a metro's samples meet in one partition.

A checkpoint also runs as soon as windows are emitted while the worker is caught up
(its last `consume` returned less than a full batch): in real time a closed window is
then queryable within a poll of its close instead of up to a checkpoint interval later.
While it is catching up (full batches), and under `--drain` (a backfill), only the
interval applies, so a backfill is not slowed by a checkpoint per batch.
"""
from __future__ import annotations

import base64
import logging
import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pyarrow as pa
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer,
                             TopicPartition)

from ..aggregate import WindowAggregator
from ..decode.registry import SchemaRegistry
from ..errors import SinkError
from ..ingest import IngestConfig
from ..landing import Lander
from ..records import Reject
from ..validate import validate_with_positions
from ..warehouse import Warehouse
from ..warehouse.base import sql_int, sql_string
from ..warehouse.migrations import migrate
from . import state
from .messages import MessageDecoder, decode_batch
from .faults import ExitAfterLand
from .metrics import WorkerMetrics
from .publish import window_events

log = logging.getLogger("netready.worker")
OUTLOOK_INTERVAL_S = 60.0  # trajectory and readiness read 30 days: refresh them at most once a minute
# Commit errors saying this consumer no longer owns its partitions in the group's current
# generation (its session expired while it was frozen, or the group is completing a rebalance).
FENCED = frozenset({KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION,
                    KafkaError.REBALANCE_IN_PROGRESS, KafkaError.FENCED_INSTANCE_ID,
                    KafkaError._ASSIGNMENT_LOST})


@dataclass
class WorkerConfig:
    kafka: object  # pipeline.kafka_config.KafkaSettings
    topic: str = "netready.telemetry"
    group_id: str = "netready"
    windows_topic: str | None = "netready.windows"
    dlq_topic: str = "netready.dlq"
    fmt: str = "auto"
    adapter: MessageDecoder | None = None
    schema_registry_url: str | None = None
    ingest: IngestConfig = field(default_factory=IngestConfig)
    batch_size: int = 20_000
    poll_timeout_s: float = 0.1  # consume waits this long for a full batch: the latency floor when caught up
    checkpoint_interval_s: float = 5.0
    drain: bool = False
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    max_backoff_s: float = 30.0


@dataclass
class _Partition:
    aggregator: WindowAggregator
    next_offset: int | None  # None: nothing consumed or committed yet
    checkpointed_offset: int | None
    pending: list = field(default_factory=list)  # emitted windows not yet landed
    emitted_at: list = field(default_factory=list)  # wall time each pending window was emitted
    late: list = field(default_factory=list)  # (rows, watermark_ns) not yet landed

    @property
    def dirty(self) -> bool:
        return bool(self.pending or self.late) or self.next_offset != self.checkpointed_offset


@dataclass
class WorkerSummary:
    messages: int = 0
    samples: int = 0
    late: int = 0
    rejects: Counter = field(default_factory=Counter)
    windows: int = 0
    checkpoints: int = 0
    sink_retries: int = 0

    def to_dict(self) -> dict:
        return {"messages": self.messages, "samples": self.samples, "late": self.late,
                "rejects": dict(self.rejects), "windows_landed": self.windows,
                "checkpoints": self.checkpoints, "sink_retries": self.sink_retries}


class Worker:
    def __init__(self, config: WorkerConfig, warehouse: Warehouse):
        self.config = config
        self.warehouse = warehouse
        agg = config.ingest.aggregator
        self.lander = Lander(warehouse, agg.policy, agg.windows, config.ingest.registry,
                             config.ingest.target, outlook_interval_s=OUTLOOK_INTERVAL_S)
        self.metrics = WorkerMetrics()
        self.summary = WorkerSummary()
        self.parts: dict[int, _Partition] = {}
        self._stop = False
        self._paused = False
        self._emitted = False  # windows emitted since the last checkpoint began
        self._delivery_errors = 0  # failed deliveries since the last checkpoint flush
        self._exit_after_land = ExitAfterLand()  # a test hook, off unless its variable is set
        consumer_config = config.kafka.consumer_config(config.group_id)
        consumer_config["partition.assignment.strategy"] = "roundrobin"  # eager: whole-partition handover
        self.consumer = Consumer(consumer_config)
        self.registry = SchemaRegistry(config.schema_registry_url) if config.schema_registry_url else None
        self.producer = Producer(config.kafka.producer_config())

    # ------------------------------------------------------------------ main loop
    def run(self) -> WorkerSummary:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())
        if self.config.metrics_port is not None:
            self.metrics.serve(self.config.metrics_port, self.config.metrics_address)
        self._migrate()
        self.consumer.subscribe([self.config.topic], on_assign=self._on_assign,
                                on_revoke=self._on_revoke, on_lost=self._on_lost)
        last_checkpoint = time.monotonic()
        try:
            while not self._stop:
                messages = self.consumer.consume(self.config.batch_size, self.config.poll_timeout_s)
                self._process(messages)
                caught_up = len(messages) < self.config.batch_size
                if (time.monotonic() - last_checkpoint >= self.config.checkpoint_interval_s
                        or (caught_up and self._emitted and not self.config.drain)):
                    self._emitted = False
                    self._with_retry(lambda: self._checkpoint(list(self.parts)))
                    last_checkpoint = time.monotonic()
                if self.config.drain and len(messages) < self.config.batch_size and self._drained():
                    self._finish_drain()
                    break
            else:
                self._with_retry(lambda: self._checkpoint(list(self.parts)))
        finally:
            self.consumer.close()
            self.producer.flush(10)
        return self.summary

    def stop(self) -> None:
        self._stop = True

    def _process(self, messages) -> None:
        """Split a consumed batch by partition (offset order within each is kept). Per-message
        method calls go through `map`: at 100 k+ messages/s the interpreter loop is the cost."""
        errors = list(map(Message.error, messages))
        if errors.count(None) != len(errors):
            for error in errors:
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", error)
            messages = [m for m, error in zip(messages, errors) if error is None]
        partitions = list(map(Message.partition, messages))
        if not partitions:
            return
        if partitions.count(partitions[0]) == len(partitions):
            groups = {partitions[0]: messages}
        else:
            groups = defaultdict(list)
            for partition, message in zip(partitions, messages):
                groups[partition].append(message)
        for partition, batch in groups.items():
            if partition in self.parts:
                self._process_partition(partition, batch)

    def _process_partition(self, partition: int, batch: list) -> None:
        part = self.parts[partition]
        source = f"{self.config.topic}[{partition}]"
        payloads = list(map(Message.value, batch))
        offsets = list(map(Message.offset, batch))
        empty = []
        if None in payloads:
            empty = [Reject(source, o, "empty_message", "message has no value")
                     for o, p in zip(offsets, payloads) if p is None]
            offsets = [o for o, p in zip(offsets, payloads) if p is not None]
            payloads = [p for p in payloads if p is not None]
        chunk = decode_batch(payloads, offsets, source, self.config.fmt, self.config.adapter,
                             self.registry)
        clean, positions, invalid = validate_with_positions(chunk, self.config.ingest.limits)
        outcome = part.aggregator.add(clean, positions)
        rejects = empty + chunk.rejects + invalid + [
            Reject(source, int(p), r, "refused by the metro/link caps or the policy's field")
            for p, r in zip(outcome.refused_positions.tolist(), outcome.refused["reason"].to_pylist())]
        if rejects:
            self._dead_letter(rejects, {m.offset(): m for m in batch}, partition)
        if outcome.late.num_rows:
            part.late.append((outcome.late, outcome.watermark_ns))
            self.summary.late += outcome.late.num_rows
            self.metrics.late.inc(outcome.late.num_rows)
        emitted = part.aggregator.take_windows()
        part.pending.extend(emitted)
        part.emitted_at.extend([time.time()] * len(emitted))
        self._emitted = self._emitted or bool(emitted)
        part.next_offset = offsets[-1] + 1 if offsets else batch[-1].offset() + 1
        self.summary.messages += len(batch)
        self.summary.samples += outcome.accepted
        self.metrics.messages.inc(len(batch))
        self.metrics.samples.inc(outcome.accepted)

    def _dead_letter(self, rejects: list[Reject], by_offset: dict, partition: int) -> None:
        """The original message, with headers naming where it came from and why it was refused."""
        sent: set[tuple[int, str]] = set()
        for reject in rejects:
            self.summary.rejects[reject.reason] += 1
            self.metrics.rejects.labels(reject.reason).inc()
            if (reject.position, reject.reason) in sent:
                continue  # one message, several bad records for the same reason
            sent.add((reject.position, reject.reason))
            message = by_offset.get(reject.position)
            value = message.value() if message is not None else reject.raw
            headers = [("netready.origin.topic", self.config.topic.encode()),
                       ("netready.origin.partition", str(partition).encode()),
                       ("netready.origin.offset", str(reject.position).encode()),
                       ("netready.reason", reject.reason.encode()),
                       ("netready.detail", reject.detail[:1000].encode())]
            key = message.key() if message is not None else None
            self._produce(self.config.dlq_topic, key, value, headers)
            self.metrics.dlq.inc()

    def _produce(self, topic: str, key, value, headers=None) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=headers,
                                      on_delivery=self._on_delivery)
                return
            except BufferError:
                self.producer.poll(0.1)

    def _on_delivery(self, error, message) -> None:
        if error is not None:
            self._delivery_errors += 1
            log.error("delivery to %s failed: %s", message.topic(), error)

    # ---------------------------------------------------------------- checkpoints
    def _checkpoint(self, partitions: list[int]) -> None:
        """Land, publish, store state, then commit; any failure leaves the commit undone."""
        parts = {p: self.parts[p] for p in partitions if p in self.parts and self.parts[p].dirty}
        if not parts or not self._still_owner(parts):
            return
        self.lander.land_late([(rows, watermark_ns, self.config.topic)
                               for part in parts.values() for rows, watermark_ns in part.late])
        for part in parts.values():
            part.late.clear()
            self._land(part)
        self.lander.refresh()
        self._delivery_errors = 0
        remaining = self.producer.flush(30)
        if remaining or self._delivery_errors:
            raise SinkError(f"{remaining} dead-letter/window messages undelivered", retryable=True)
        rows = [(p, part.next_offset, base64.b64encode(state.encode(part.aggregator)).decode())
                for p, part in parts.items() if part.next_offset is not None]
        if rows:
            self.warehouse.insert("checkpoints", pa.table({
                "consumer_group": [self.config.group_id] * len(rows),
                "topic": [self.config.topic] * len(rows),
                "partition": pa.array([r[0] for r in rows], type=pa.uint32()),
                "offset": pa.array([r[1] for r in rows], type=pa.int64()),
                "state": [r[2] for r in rows],
            }))
            offsets = [TopicPartition(self.config.topic, p, offset) for p, offset, _ in rows]
            self._exit_after_land.landed()
            try:
                self.consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as exc:  # e.g. a rebalance took the partition: the next owner replays
                log.warning("offset commit failed (%s); the partition will be replayed", exc)
                return
            for p, offset, _ in rows:
                parts[p].checkpointed_offset = offset
        self.summary.checkpoints += 1
        self.metrics.checkpoints.inc()
        self._update_lag()

    def _still_owner(self, parts: dict[int, _Partition]) -> bool:
        """Fence before landing: re-commit the offsets already committed. The coordinator accepts
        that only from a member of the group's current generation, so a worker that was frozen
        past its session timeout (a zombie) learns here that another worker owns its partitions,
        before it can land stale windows; its lost-partitions callback then drops their state."""
        held = [TopicPartition(self.config.topic, p, part.checkpointed_offset)
                for p, part in parts.items() if part.checkpointed_offset is not None]
        if not held:
            return True  # nothing committed yet: the group has never moved these partitions
        try:
            self.consumer.commit(offsets=held, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() in FENCED:
                log.warning("partitions %s may belong to another worker now (%s): not landing them; "
                            "their owner resumes from the last commit", sorted(parts), error.str())
                return False
            raise SinkError(f"cannot confirm that partitions {sorted(parts)} are still ours: {error.str()}",
                            retryable=True) from exc
        return True

    def _land(self, part: _Partition) -> None:
        if not part.pending:
            return
        metro_rows, _link_rows = self.lander.land_results(part.pending, part.aggregator.index,
                                                          part.aggregator.metro_first_seen())
        landed_at = time.time()
        for emitted_at in part.emitted_at:
            self.metrics.emit_delay.observe(max(0.0, landed_at - emitted_at))
        if self.config.windows_topic:
            for key, value in window_events(metro_rows):
                self._produce(self.config.windows_topic, key, value)
        self.summary.windows += len(part.pending)
        self.metrics.windows.inc(len(part.pending))
        part.pending.clear()
        part.emitted_at.clear()

    def _with_retry(self, action) -> None:
        """Retry retryable sink failures with exponential back-off, consumption paused meanwhile."""
        backoff_s = 0.5
        while True:
            try:
                action()
                if self._paused:
                    self.consumer.resume(self.consumer.assignment())
                    self._paused = False
                    self.metrics.paused.set(0)
                    log.warning("landing works again; consumption resumed")
                return
            except SinkError as exc:
                self.metrics.sink_errors.labels("retryable" if exc.retryable else "fatal").inc()
                if not exc.retryable:  # retrying cannot help and skipping would lose data: stop
                    log.critical("fatal sink error, stopping; offsets stay at the last landed "
                                 "checkpoint: %s", exc)
                    raise
                if not self._paused:
                    self.consumer.pause(self.consumer.assignment())
                    self._paused = True
                    self.metrics.paused.set(1)
                log.warning("landing failed (%s); consumption paused, retrying in %.1f s", exc, backoff_s)
                self.summary.sink_retries += 1
                self.metrics.sink_retries.inc()
                self._idle(backoff_s)
                backoff_s = min(backoff_s * 2, self.config.max_backoff_s)
                if self._stop:
                    raise

    def _migrate(self) -> None:
        """Migrations at start, waiting out a server that is down or busy (as landing does later)
        instead of exiting; a fatal error (e.g. a read-only user) still stops the worker."""
        backoff_s = 0.5
        while True:
            try:
                migrate(self.warehouse)
                return
            except SinkError as exc:
                self.metrics.sink_errors.labels("retryable" if exc.retryable else "fatal").inc()
                if not exc.retryable or self._stop:
                    raise
                log.warning("migrations failed (%s); retrying in %.1f s", exc, backoff_s)
                self.summary.sink_retries += 1
                self.metrics.sink_retries.inc()
                time.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self.config.max_backoff_s)

    def _idle(self, seconds: float) -> None:
        """Wait while staying in the group: paused partitions return no messages."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._process(self.consumer.consume(1000, min(0.5, max(0.0, deadline - time.monotonic()))))

    def _update_lag(self) -> None:
        for partition, part in self.parts.items():
            try:
                _low, high = self.consumer.get_watermark_offsets(
                    TopicPartition(self.config.topic, partition), cached=True)
            except KafkaException:
                continue
            if high >= 0 and part.next_offset is not None:
                self.metrics.lag.labels(str(partition)).set(max(0, high - part.next_offset))

    # ------------------------------------------------------------------ rebalance
    def _on_assign(self, consumer, partitions) -> None:
        committed = consumer.committed(partitions, timeout=30)
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else None
            self.parts[tp.partition] = _Partition(self._restore(tp.partition, offset), offset, offset)
            if offset is None:
                tp.offset = OFFSET_BEGINNING
        consumer.assign(committed)
        # librdkafka keeps a partition's pause flag across revoke and re-assign: a partition
        # paused during an outage and handed back after a lost session would never be fetched.
        if self._paused:
            consumer.pause(committed)
        else:
            consumer.resume(committed)
        log.info("assigned partitions %s", sorted(tp.partition for tp in committed))

    def _restore(self, partition: int, offset: int | None) -> WindowAggregator:
        config = self.config.ingest.aggregator
        if offset is None:
            return WindowAggregator(config)
        for attempt in range(10):
            try:
                found = self.warehouse.query(
                    "SELECT state FROM netready.checkpoints FINAL "
                    f"WHERE consumer_group = {sql_string(self.config.group_id)} "
                    f"AND topic = {sql_string(self.config.topic)} "
                    f"AND partition = {sql_int(partition)} AND offset = {sql_int(offset)} LIMIT 1")
                break
            except SinkError as exc:
                if not exc.retryable or attempt == 9:
                    raise
                time.sleep(min(2 ** attempt, self.config.max_backoff_s))
        if found.num_rows == 0:
            log.error("no checkpoint for %s[%d] at committed offset %d: starting with empty state; "
                      "windows open at that offset may be landed incomplete", self.config.topic,
                      partition, offset)
            return WindowAggregator(config)
        return state.decode(base64.b64decode(found["state"][0].as_py()), config)

    def _on_revoke(self, consumer, partitions) -> None:
        revoked = [tp.partition for tp in partitions]
        try:
            self._checkpoint(revoked)
        except SinkError as exc:  # the next owner replays from the last commit: nothing is lost
            log.warning("could not checkpoint revoked partitions %s: %s", revoked, exc)
        for partition in revoked:
            self.parts.pop(partition, None)
        consumer.unassign()

    def _on_lost(self, consumer, partitions) -> None:
        log.warning("partitions %s lost (session expired or fenced): dropping their state; "
                    "whoever owns them now resumes from the last commit", sorted(tp.partition for tp in partitions))
        for tp in partitions:
            self.parts.pop(tp.partition, None)

    # ---------------------------------------------------------------------- drain
    def _drained(self) -> bool:
        assignment = self.consumer.assignment()
        if not assignment or not self.parts:
            return False
        for tp in assignment:
            _low, high = self.consumer.get_watermark_offsets(tp, timeout=10, cached=False)
            part = self.parts.get(tp.partition)
            if part is None:
                return False
            position = part.next_offset if part.next_offset is not None else _low
            if position < high:
                return False
        return True

    def _finish_drain(self) -> None:
        """Checkpoint the state as it is (windows still open stay open for a later run), then
        close every window and land it; a later run re-lands those windows complete."""
        self._with_retry(lambda: self._checkpoint(list(self.parts)))
        for part in self.parts.values():
            part.aggregator.finish()
            emitted = part.aggregator.take_windows()
            part.pending.extend(emitted)
            part.emitted_at.extend([time.time()] * len(emitted))

        def land_all() -> None:
            for part in self.parts.values():
                self._land(part)
            self.lander.refresh()
            if self.producer.flush(30):
                raise SinkError("window messages undelivered", retryable=True)

        self._with_retry(land_all)
