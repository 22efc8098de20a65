"""Produce simulated telemetry to Kafka, fast, in every message format the consumer decodes.

Formats (see pipeline.decode.message):
- "json": one JSON object per message (built column-wise by writers.encode_records_jsonl);
- "json-array": a JSON array of `rows_per_message` objects per message;
- "avro": one record per message in Confluent wire format (magic 0, 4-byte big-endian schema
  id, schemaless Avro body in schemas/telemetry.avsc, ts as long nanoseconds);
- "arrow": one Arrow IPC stream (schema + one record batch of CLEAN_SCHEMA) per message.

Messages are keyed by metro (or router), so with a keyed partitioner all of a key's samples
land in one partition, in arrival order. Batched formats keep one buffer per key and send a
message whenever a key has `rows_per_message` rows, then the remainders at the end: every
message holds one key's rows, and a key's rows keep their arrival order across messages.

Delivery reports are requested for failures only (delivery.report.only.error), so a million
small messages cost no million Python callbacks; failures are counted and raised as
ProduceError after the final flush.
"""
from __future__ import annotations

import io
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from .decode.avro import telemetry_schema
from .errors import ConfigError, NetreadyError
from .kafka_config import KafkaSettings
from .records import CLEAN_SCHEMA
from .simulate import ScenarioConfig, iter_batches
from .writers import encode_records_jsonl

Format = Literal["json", "json-array", "avro", "arrow"]
FORMATS = ("json", "json-array", "avro", "arrow")
KEY_COLUMNS = ("metro", "router")
_BATCHED = ("json-array", "arrow")
_SIM_BATCH_ROWS = 1 << 16
_POLL_EVERY = 10_000  # messages between polls that serve (error-only) delivery reports
_MAX_ERRORS_KEPT = 5


class ProduceError(NetreadyError):
    """Messages were not delivered; `summary` says what was sent, `failed` how many failed."""

    def __init__(self, message: str, *, summary: "ProduceSummary", failed: int):
        super().__init__(message)
        self.summary = summary
        self.failed = failed


@dataclass(frozen=True)
class ProduceSummary:
    """What was handed to the producer and delivered; `bytes` counts message values only."""

    messages: int
    samples: int
    bytes: int
    elapsed_s: float

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.elapsed_s if self.elapsed_s > 0 else 0.0


# One encoded message: (key, value, number of samples in it).
_Message = tuple[bytes | None, bytes, int]


def produce(settings: KafkaSettings, topic: str, scenario: ScenarioConfig, fmt: Format = "json",
            rows_per_message: int = 1, key_by: str | None = "metro",
            progress: Callable[[ProduceSummary], None] | None = None, *,
            schema_id: int = 1, flush_timeout_s: float = 120.0,
            producer_overrides: dict | None = None) -> ProduceSummary:
    """Send every sample of `scenario` to `topic`; returns counts once all are delivered.

    `rows_per_message` applies to the batched formats (json-array, arrow); json and avro carry
    one record per message. `key_by` None sends unkeyed messages. `progress` is called with
    the running summary about every 65 536 samples and once at the end. Raises ProduceError
    if any message is not delivered (or not within `flush_timeout_s` after the last one was
    queued). `producer_overrides` go to settings.producer_config.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown produce format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if key_by is not None and key_by not in KEY_COLUMNS:
        raise ConfigError(f"key_by must be one of {', '.join(KEY_COLUMNS)} or None, not {key_by!r}")
    if not isinstance(rows_per_message, int) or rows_per_message < 1:
        raise ConfigError("rows_per_message must be a positive integer")
    if fmt not in _BATCHED and rows_per_message != 1:
        raise ConfigError(f"format {fmt} carries one record per message; rows_per_message must be 1")
    if not 0 <= schema_id < 1 << 32:
        raise ConfigError("schema_id must fit in 4 unsigned bytes")
    if not topic:
        raise ConfigError("a topic name is needed")

    errors: list[str] = []
    failed = 0

    def on_error(err: KafkaError | None, _msg) -> None:
        nonlocal failed
        if err is not None:
            failed += 1
            if len(errors) < _MAX_ERRORS_KEPT:
                errors.append(err.str())

    config = settings.producer_config(**{"delivery.report.only.error": True,
                                         "on_delivery": on_error, **(producer_overrides or {})})
    try:
        producer = Producer(config)
    except KafkaException as exc:
        raise ConfigError(f"cannot create a Kafka producer: {exc.args[0].str()}") from None

    stream = _messages(iter_batches(scenario, _SIM_BATCH_ROWS), fmt, key_by, rows_per_message, schema_id)
    messages = samples = size = reported = 0
    started = time.perf_counter()
    send = producer.produce
    for key, value, count in stream:
        while True:
            try:
                send(topic, value, key)
                break
            except BufferError:  # local queue full: let deliveries drain it
                producer.poll(0.05)
        messages += 1
        samples += count
        size += len(value)
        if messages % _POLL_EVERY == 0:
            producer.poll(0)
        if progress is not None and samples - reported >= _SIM_BATCH_ROWS:
            reported = samples
            progress(ProduceSummary(messages, samples, size, time.perf_counter() - started))
    remaining = producer.flush(flush_timeout_s)
    summary = ProduceSummary(messages, samples, size, time.perf_counter() - started)
    if progress is not None:
        progress(summary)
    if remaining or failed:
        detail = "; ".join(errors) or "no delivery report"
        raise ProduceError(f"{failed + remaining} of {messages} messages to topic {topic!r} not delivered "
                           f"({remaining} still queued after {flush_timeout_s:g} s): {detail}",
                           summary=summary, failed=failed + remaining)
    return summary


def create_topics(settings: KafkaSettings, topics: dict[str, int], *, replication_factor: int = -1,
                  timeout_s: float = 30.0) -> dict[str, int]:
    """Create topics with the given partition counts; existing topics are left as they are.

    Returns each topic's actual partition count, so a caller can notice an existing topic
    whose count differs (changing it would move keys between partitions, so it is not done).
    replication_factor -1 takes the broker's default.
    """
    for name, partitions in topics.items():
        if not name or not isinstance(partitions, int) or partitions < 1:
            raise ConfigError(f"topic {name!r}: need a name and at least 1 partition")
    admin = AdminClient(settings.client_config())
    futures = admin.create_topics([NewTopic(name, partitions, replication_factor)
                                   for name, partitions in topics.items()],
                                  operation_timeout=timeout_s, request_timeout=timeout_s)
    for name, future in futures.items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise NetreadyError(f"cannot create topic {name!r}: {exc.args[0].str()}") from None
    return _partition_counts(admin, list(topics), timeout_s)


def _partition_counts(admin: AdminClient, names: list[str], timeout_s: float) -> dict[str, int]:
    """Partition counts from metadata, waiting briefly until new topics show up in it."""
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = admin.list_topics(timeout=timeout_s).topics
        counts = {n: len(metadata[n].partitions) for n in names
                  if n in metadata and metadata[n].error is None and metadata[n].partitions}
        if len(counts) == len(names) or time.monotonic() > deadline:
            missing = sorted(set(names) - set(counts))
            if missing:
                raise NetreadyError(f"topics not visible in metadata after {timeout_s:g} s: {missing}")
            return counts
        time.sleep(0.1)


# ---------------------------------------------------------------------- encoders

def _keys(batch: pa.RecordBatch | pa.Table, key_by: str | None) -> list[bytes | None]:
    """UTF-8 keys per row, encoded once per distinct value."""
    if key_by is None:
        return [None] * batch.num_rows
    encoded = pc.dictionary_encode(batch.column(key_by))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    distinct = [s.encode() for s in encoded.dictionary.to_pylist()]
    return [distinct[i] for i in encoded.indices.to_numpy()]


def _messages(batches: Iterator[pa.RecordBatch], fmt: str, key_by: str | None, rows: int,
              schema_id: int) -> Iterator[_Message]:
    if fmt == "json":
        for batch in batches:
            values = encode_records_jsonl(pa.Table.from_batches([batch]), ts_style="ns")
            yield from zip(_keys(batch, key_by), values, [1] * len(values))
    elif fmt == "avro":
        for batch in batches:
            yield from _avro_messages(batch, key_by, schema_id)
    elif fmt == "json-array":
        yield from _json_array_messages(batches, key_by, rows)
    else:
        for key, table in _per_key_tables(batches, key_by, rows):
            sink = pa.BufferOutputStream()
            with ipc.new_stream(sink, CLEAN_SCHEMA) as writer:
                writer.write_table(table, max_chunksize=table.num_rows)
            yield key, sink.getvalue().to_pybytes(), table.num_rows


def _avro_messages(batch: pa.RecordBatch, key_by: str | None, schema_id: int) -> Iterator[_Message]:
    header = struct.pack(">bI", 0, schema_id)
    schema = telemetry_schema()
    names = CLEAN_SCHEMA.names[1:]
    columns = [batch.column("ts_ns").to_pylist()] + [batch.column(n).to_pylist() for n in names]
    buffer = io.BytesIO()
    write = fastavro.schemaless_writer
    for key, row in zip(_keys(batch, key_by), zip(*columns)):
        buffer.seek(0)
        buffer.truncate()
        buffer.write(header)
        write(buffer, schema, dict(zip(("ts", *names), row)))
        yield key, buffer.getvalue(), 1


def _json_array_messages(batches: Iterator[pa.RecordBatch], key_by: str | None,
                         rows: int) -> Iterator[_Message]:
    """Records are encoded a whole (key-grouped) batch at a time, then buffered per key:
    encoding costs about 3 ms per call whatever its size, so per-message calls would dominate."""
    pending: dict[str | None, list[bytes]] = {}
    for batch in batches:
        grouped, groups, order = _group_by_key(batch, key_by)
        records = encode_records_jsonl(pa.Table.from_batches([grouped]), ts_style="ns")
        ready = []  # (arrival index in `batch` of the message's last row, key, records)
        for key, start, stop in groups:
            buffer = pending.setdefault(key, [])
            cut = start
            while stop - cut >= rows - len(buffer):
                end = cut + rows - len(buffer)
                ready.append((int(order[end - 1]), key, buffer + records[cut:end]))
                buffer, cut = [], end
            buffer.extend(records[cut:stop])
            pending[key] = buffer
        ready.sort(key=lambda r: r[0])  # in the order messages filled up, so keys interleave
        for _, key, chunk in ready:
            yield _encode_key(key), b"[" + b",".join(chunk) + b"]", len(chunk)
    for key, buffer in pending.items():
        if buffer:
            yield _encode_key(key), b"[" + b",".join(buffer) + b"]", len(buffer)


def _encode_key(key: str | None) -> bytes | None:
    return None if key is None else key.encode()


def _per_key_tables(batches: Iterator[pa.RecordBatch], key_by: str | None,
                    rows: int) -> Iterator[tuple[bytes | None, pa.Table]]:
    """(key, table of `rows` rows of that key), remainders last; each key's rows stay in order.

    Messages go out in the order they fill up (the arrival index of their last row), not key
    by key per simulation batch: otherwise one key's rows for a whole batch (minutes of event
    time) would precede the next key's, and a consumer's per-partition watermark would make
    the later keys' samples late."""
    pending: dict[str | None, list[pa.RecordBatch]] = {}
    counts: dict[str | None, int] = {}
    for batch in batches:
        grouped, groups, order = _group_by_key(batch, key_by)
        ready = []  # (arrival index in `batch` of the message's last row, key, table)
        for key, start, stop in groups:
            parts, have, cut = pending.get(key, []), counts.get(key, 0), start
            while stop - cut >= rows - have:
                end = cut + rows - have
                piece = grouped.slice(cut, end - cut)
                table = (pa.Table.from_batches(parts + [piece]).combine_chunks() if parts
                         else pa.Table.from_batches([piece]))
                ready.append((int(order[end - 1]), key, table))
                parts, have, cut = [], 0, end
            if stop > cut:
                parts = parts + [grouped.slice(cut, stop - cut)]
            pending[key], counts[key] = parts, have + stop - cut
        ready.sort(key=lambda r: r[0])
        for _, key, table in ready:
            yield _encode_key(key), table
    for key, parts in pending.items():
        if counts[key]:
            yield _encode_key(key), pa.Table.from_batches(parts).combine_chunks()


def _group_by_key(batch: pa.RecordBatch, key_by: str | None
                  ) -> tuple[pa.RecordBatch, list[tuple[str | None, int, int]], np.ndarray]:
    """The batch with rows grouped by key (stable, so each group keeps arrival order),
    (key, start, stop) of each group, and each grouped row's index in `batch`."""
    if key_by is None:
        return batch, [(None, 0, batch.num_rows)], np.arange(batch.num_rows)
    encoded = pc.dictionary_encode(batch.column(key_by))
    ids = encoded.indices.to_numpy()
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]]) if len(ids) else []
    stops = list(starts[1:]) + [len(ids)]
    names = encoded.dictionary.to_pylist()
    groups = [(names[sorted_ids[a]], int(a), int(b)) for a, b in zip(starts, stops)]
    return batch.take(pa.array(order)), groups, order
