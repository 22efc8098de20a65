"""faust-streaming peer: windowed tables keyed by metro, 60 s tumbling and 300 s hopping every 60 s.

    python bench/peers/faust_peer.py --bootstrap HOST:PORT --topic T --group G --samples N --out rows.jsonl

The documented faust idiom: an agent iterates the topic (JSON values, decoded by faust's
orjson codec) and updates two windowed `app.Table`s, `table[metro].apply(op, value)`
folding the sample into every window its event time falls in (faust writes each update to
the table's changelog topic, as faust tables always do). Event time comes from each record's
`ts`, not from the Kafka message timestamp (`relative_to` a handler); a JSON array message is
one batch of records, each with its own event time, hence a handler reading the record
being folded rather than the message. Integer seconds (`ts // 1e9`) keep the window
assignment exact (windows are whole seconds; a float of 1.8e9 s has 0.2 µs resolution).
Windows never expire (`expires=None`): faust's expiry compares window ends with the wall
clock, which would drop simulated history at once. Faust has no watermark, so the data must
have no late samples (see bench/peers/pystream.py). After N samples the agent writes every
(metro, window) of both tables and stops the worker.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import faust  # noqa: E402

from bench.peers import window_acc  # noqa: E402


def build(args: argparse.Namespace) -> faust.App:
    app = faust.App(args.group, broker=f"kafka://{args.bootstrap}", store="memory://",
                    topic_partitions=args.partitions, consumer_auto_offset_reset="earliest",
                    web_enabled=False)
    topic = app.topic(args.topic, key_serializer="raw", value_serializer="json",
                      partitions=args.partitions)
    record_ts_s = [0]

    def event_time_s(_event) -> int:
        return record_ts_s[0]

    tumbling = app.Table("metro60", default=window_acc.new, partitions=args.partitions) \
        .tumbling(60, expires=None).relative_to(event_time_s)
    hopping = app.Table("metro300", default=window_acc.new, partitions=args.partitions) \
        .hopping(300, 60, expires=None).relative_to(event_time_s)
    add = window_acc.add
    seen = 0

    @app.agent(topic)
    async def aggregate(stream):
        nonlocal seen
        async for value in stream:
            for record in window_acc.records(value):
                record_ts_s[0] = record["ts"] // window_acc.NS_PER_S
                metro, rtt_us = record["metro"], float(record["rtt_us"])
                tumbling[metro].apply(add, rtt_us)
                hopping[metro].apply(add, rtt_us)
            seen += len(value) if isinstance(value, list) else 1
            if seen >= args.samples:
                rows = [window_acc.row(metro, start, 60, acc)
                        for (metro, (start, _end)), acc in tumbling.table.data.items()]
                rows += [window_acc.row(metro, start, 300, acc)
                         for (metro, (start, _end)), acc in hopping.table.data.items()]
                window_acc.write_rows(args.out, rows, seen)
                os.kill(os.getpid(), signal.SIGTERM)  # a faust worker's documented stop

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True, help="faust app id (consumer group, changelog prefix)")
    parser.add_argument("--samples", type=int, required=True, help="samples in the topic: stop after them")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    app = build(args)
    # with the default buffer of 100 changelog messages the agent waits for a flush every few
    # samples ("producer buffer full"); a larger buffer is the usual remedy (faust-streaming #173)
    app.producer.buffer.max_messages = 10_000
    worker = faust.Worker(app, loglevel=logging.WARNING, quiet=True)
    worker.execute_from_commandline()  # exits the process; the harness checks the output file
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
