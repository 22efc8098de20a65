"""Label spam through the real worker: a flood of new link and metro names meets the caps.

The worker's name caps (`[limits] max_metros / max_links`) bound its memory whatever names a
collector invents. Here the caps equal the scenario's real size (8 metros, 64 links) and the
topic has one partition (caps hold per partition aggregator), so once the real names are known
every invented one is refused. Expected: each spam message lands in the DLQ with its reason
(`link_cap` for a new link of a real metro, `metro_cap` for a new metro) and its original bytes;
the valid telemetry around it lands exactly (every metro window equal to the reference).
"""
from __future__ import annotations

import dataclasses
import json

import pytest
from confluent_kafka import Producer

from pipeline.produce import create_topics
from test_worker import (METROS, WorkerProc, check_final_tables, check_logs, ctx, expected,  # noqa: F401
                         messages, read_topic, rows, workers)

pytestmark = pytest.mark.integration

SPAM_LINKS = 6000   # new links of real metros
SPAM_METROS = 2000  # new metros
CAPS_TOML = "[limits]\nmax_metros = 8\nmax_links = 64\n"


def spam_messages(valid: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes, str]]:
    """(key, value, expected reason): records otherwise valid, timed inside the scenario."""
    stamps = [json.loads(v)["ts"] for _, v in valid[::max(1, len(valid) // 100)]]
    out = []
    for i in range(SPAM_LINKS + SPAM_METROS):
        new_metro = i >= SPAM_LINKS
        metro = f"spam-{i}" if new_metro else METROS[i % len(METROS)]
        record = {"ts": stamps[i % len(stamps)], "metro": metro, "router": "spam-router",
                  "link": f"spam-link-{i}", "rtt_us": 5000.0}
        out.append((metro.encode(), json.dumps(record, ensure_ascii=False).encode(),
                    "metro_cap" if new_metro else "link_cap"))
    return out


@pytest.mark.timeout(240)
def test_label_spam_goes_to_the_dlq_and_valid_data_lands_exactly(ctx, workers, rows, messages, expected):
    one = dataclasses.replace(ctx, topic=ctx.topic + "-1p")
    create_topics(ctx.settings, {one.topic: 1})
    config = ctx.tmp / "netready.toml"
    config.write_text(CAPS_TOML)

    spam = spam_messages(messages)
    head = len(messages) // 4  # every real link has reported long before the spam starts
    stream = [(k, v, None) for k, v in messages[:head]]
    rest = messages[head:]
    step = max(1, len(rest) // len(spam))
    for i, (key, value, reason) in enumerate(spam):
        stream.extend((k, v, None) for k, v in rest[i * step:(i + 1) * step])
        stream.append((key, value, reason))
    stream.extend((k, v, None) for k, v in rest[len(spam) * step:])
    assert sum(1 for *_, r in stream if r is None) == len(messages)

    producer = Producer(ctx.settings.producer_config())
    for key, value, _ in stream:
        while True:
            try:
                producer.produce(one.topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0

    worker = WorkerProc(one, "drain", drain=True, config=config)
    workers.append(worker)
    summary = worker.wait_ok(180)
    assert summary["samples"] == rows.num_rows and summary["late"] == 0
    assert summary["rejects"] == {"link_cap": SPAM_LINKS, "metro_cap": SPAM_METROS}, summary["rejects"]
    log = worker.stderr()
    assert log.count("cap") <= 10, "cap warnings must be logged once, not per record"

    dead = read_topic(one, one.dlq)
    assert len(dead) == len(spam)
    want = {value: reason for _, value, reason in spam}
    for m in dead:
        headers = {k: v.decode() for k, v in (m.headers() or [])}
        assert headers["netready.origin.topic"] == one.topic
        assert want.pop(m.value()) == headers["netready.reason"], headers
    assert not want, f"{len(want)} spam messages missing from the DLQ"

    check_logs(workers)
    check_final_tables(one, expected, rows.num_rows)
