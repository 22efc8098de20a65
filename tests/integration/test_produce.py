"""pipeline.produce against the local Kafka broker, read back by clients we did not write.

Each format goes to a fresh 4-partition topic; kcat reads it back (partition, key and payload
framed by their lengths, so binary payloads survive), and pipeline.decode.decode_message
decodes every message. The decoded rows must be exactly the scenario's rows, every message's
key its rows' metro, each metro in one partition, in the simulator's arrival order.
"""
from __future__ import annotations

import subprocess
import uuid
from collections import defaultdict
from typing import NamedTuple

import pyarrow as pa
import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient

from pipeline.decode import decode_message
from pipeline.kafka_config import KafkaSettings
from pipeline.produce import ProduceError, ProduceSummary, create_topics, produce
from pipeline.simulate import ScenarioConfig, generate

pytestmark = pytest.mark.integration

PARTITIONS = 4
SCENARIO = ScenarioConfig(metros=6, routers_per_metro=2, links_per_router=4, duration_s=90, seed=7)
COLUMNS = ["ts_ns", "metro", "router", "link", "rtt_us", "one_way_us", "site", "dc"]


class Message(NamedTuple):
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@pytest.fixture(scope="module")
def expected() -> pa.Table:
    return generate(SCENARIO).select(COLUMNS)


@pytest.fixture
def settings(stack) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=stack["KAFKA_BOOTSTRAP"], client_id="netready-it-produce")


@pytest.fixture
def topic(settings):
    name = f"it-produce-{uuid.uuid4().hex[:12]}"
    assert create_topics(settings, {name: PARTITIONS}) == {name: PARTITIONS}
    yield name
    admin = AdminClient(settings.client_config())  # kept alive until the deletion is confirmed
    for future in admin.delete_topics([name], operation_timeout=30).values():
        future.result(timeout=60)


def kcat_read(bootstrap: str, topic: str) -> list[Message]:
    """All messages via kcat, each framed as 'partition offset keylen valuelen\\n' + key + value."""
    proc = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                           "-f", "%p %o %K %S\n%k%s"], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out, pos, messages = proc.stdout, 0, []
    while pos < len(out):
        end = out.index(b"\n", pos)
        partition, offset, key_len, value_len = map(int, out[pos:end].split())
        pos = end + 1
        key = None if key_len < 0 else out[pos:pos + key_len]
        pos += max(key_len, 0)
        messages.append(Message(partition, offset, key, out[pos:pos + value_len]))
        pos += value_len
    return messages


def confluent_read(settings: KafkaSettings, topic: str, expected_messages: int) -> list[Message]:
    """All messages via a confluent-kafka consumer built from our consumer_config defaults."""
    consumer = Consumer(settings.consumer_config(f"it-produce-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([topic])
    messages: list[Message] = []
    try:
        for _ in range(600):
            for msg in consumer.consume(1000, timeout=0.5):
                assert msg.error() is None, msg.error()
                messages.append(Message(msg.partition(), msg.offset(), msg.key(), msg.value()))
            if len(messages) >= expected_messages:
                break
    finally:
        consumer.close()
    return messages


def check_round_trip(messages: list[Message], expected: pa.Table, topic: str, fmt: str,
                     summary: ProduceSummary, rows_per_message: int) -> None:
    assert summary.messages == len(messages)
    assert summary.samples == expected.num_rows
    assert summary.bytes == sum(len(m.value) for m in messages)

    tables, partitions_of = [], defaultdict(set)
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        chunk = decode_message(m.value, source=topic, position=m.offset,
                               fmt="arrow" if fmt == "arrow" else "auto")
        assert chunk.rejects == [], chunk.rejects[:3]
        table = chunk.table.select(COLUMNS)
        assert 1 <= table.num_rows <= rows_per_message
        metros = set(table.column("metro").to_pylist())
        assert len(metros) == 1, f"message {m.partition}/{m.offset} mixes metros {metros}"
        assert m.key == next(iter(metros)).encode()
        partitions_of[m.key.decode()].add(m.partition)
        tables.append(table)
    assert all(len(p) == 1 for p in partitions_of.values()), dict(partitions_of)
    assert len(set().union(*partitions_of.values())) > 1, "all metros in one partition: keys ignored?"

    got = pa.concat_tables(tables)
    sort = [(c, "ascending") for c in COLUMNS]
    assert got.num_rows == expected.num_rows
    assert got.sort_by(sort).equals(expected.sort_by(sort)), "row multisets differ"
    # Within its partition, a metro's rows keep the simulator's arrival order.
    for metro in partitions_of:
        mine = pa.compute.equal(got.column("metro"), metro)
        assert got.filter(mine).equals(expected.filter(pa.compute.equal(expected.column("metro"), metro)))


@pytest.mark.parametrize("fmt, rows_per_message", [
    ("json", 1), ("json-array", 100), ("avro", 1), ("arrow", 500)])
def test_produce_round_trip_through_kcat(settings, topic, expected, fmt, rows_per_message):
    seen: list[ProduceSummary] = []
    summary = produce(settings, topic, SCENARIO, fmt, rows_per_message, progress=seen.append)
    assert seen and seen[-1].samples == expected.num_rows
    messages = kcat_read(settings.bootstrap_servers, topic)
    check_round_trip(messages, expected, topic, fmt, summary, rows_per_message)
    if rows_per_message > 1:  # full messages except one remainder per metro
        metros = len(set(expected.column("metro").to_pylist()))
        assert summary.messages <= expected.num_rows // rows_per_message + metros


def test_produce_round_trip_through_confluent_consumer(settings, topic, expected):
    summary = produce(settings, topic, SCENARIO, "arrow", 1000)
    messages = confluent_read(settings, topic, summary.messages)
    check_round_trip(messages, expected, topic, "arrow", summary, 1000)


def test_avro_schema_id_is_in_the_header(settings, topic):
    small = ScenarioConfig(metros=2, routers_per_metro=1, links_per_router=2, duration_s=5)
    produce(settings, topic, small, "avro", schema_id=4242)
    messages = kcat_read(settings.bootstrap_servers, topic)
    assert len(messages) == small.rows
    assert {m.value[:5] for m in messages} == {b"\x00" + (4242).to_bytes(4, "big")}


def test_create_topics_is_idempotent(settings, topic):
    assert create_topics(settings, {topic: PARTITIONS}) == {topic: PARTITIONS}
    # An existing topic is not resized; its real partition count is reported.
    assert create_topics(settings, {topic: PARTITIONS + 2}) == {topic: PARTITIONS}


def test_undeliverable_messages_raise():  # needs no broker: none answers on port 1
    unreachable = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    tiny = ScenarioConfig(metros=1, routers_per_metro=1, links_per_router=2, duration_s=3)
    with pytest.raises(ProduceError, match=f"{tiny.rows} of {tiny.rows} messages") as info:
        produce(unreachable, "never", tiny, "json",
                producer_overrides={"message.timeout.ms": 1500}, flush_timeout_s=30)
    assert info.value.failed == tiny.rows and info.value.summary.messages == tiny.rows
