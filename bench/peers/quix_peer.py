"""quix-streams peer: a 60 s tumbling and a 300 s / 60 s hopping window with a custom reducer.

    python bench/peers/quix_peer.py --bootstrap HOST:PORT --topic T --group G --samples N --out rows.jsonl [--batched]

Runs in its own virtualenv (quixstreams pins confluent-kafka < 2.13; netready uses 2.16).
The documented idiom: `app.dataframe(topic)` with the JSON deserializer, event time set per
row (`set_timestamp`: `ts` ns -> ms, exact for whole-second windows), keyed by the message
key (metro), then on two branches `tumbling_window(60 s, grace 30 s)` and
`hopping_window(300 s, step 60 s, grace 30 s)`, each `.reduce(reducer, initializer)` with
the shared accumulator (bench/peers/window_acc.py) in quix's RocksDB state store, with
its changelog topics (quix's defaults). With `--batched` a JSON array message is expanded
(`apply(..., expand=True)`) into one row per record first.

Why `.current()` and not `.final()`: a window is final once a later record of the same key
passes its end + grace, so the last windows of a finite topic are never final. `.current()`
emits each updated window; the sink keeps the latest value per window, which at the end is
the complete window. The grace period equals netready's 30 s lateness, so a late sample
would be dropped by both (the benchmark data has none). The app stops after N updates of
the tumbling branch (one per sample).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from quixstreams import Application  # noqa: E402

from bench.peers import window_acc  # noqa: E402


def _initializer(sample: dict) -> list:
    rtt_us = float(sample["rtt_us"])
    # no +-inf: the state store serialises to JSON
    return window_acc.add([0, 0, rtt_us, rtt_us, {}], rtt_us)


def _reducer(acc: list, sample: dict) -> list:
    return window_acc.add(acc, float(sample["rtt_us"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--samples", type=int, required=True, help="samples in the topic: stop after them")
    parser.add_argument("--out", required=True)
    parser.add_argument("--batched", action="store_true", help="messages are JSON arrays of records")
    parser.add_argument("--state-dir", default="quix-state")
    args = parser.parse_args(argv)

    app = Application(broker_address=args.bootstrap, consumer_group=args.group,
                      auto_offset_reset="earliest", state_dir=args.state_dir, loglevel=logging.WARNING)
    topic = app.topic(args.topic, key_deserializer="str", value_deserializer="json")
    sdf = app.dataframe(topic)
    if args.batched:
        sdf = sdf.apply(window_acc.records, expand=True)
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: value["ts"] // 1_000_000)

    latest: dict[tuple[str, int, int], list] = {}
    updates = [0]

    def keep(window_s: int):
        def update(window, key, timestamp, headers):
            latest[(key, window["start"] // 1000, window_s)] = window["value"]
            if window_s == 60:
                updates[0] += 1
                if updates[0] == args.samples:
                    app.stop()
        return update

    tumbling = sdf.tumbling_window(duration_ms=60_000, grace_ms=30_000) \
        .reduce(reducer=_reducer, initializer=_initializer).current()
    tumbling.update(keep(60), metadata=True)
    hopping = sdf.hopping_window(duration_ms=300_000, step_ms=60_000, grace_ms=30_000) \
        .reduce(reducer=_reducer, initializer=_initializer).current()
    hopping.update(keep(300), metadata=True)
    app.run()
    rows = [window_acc.row(metro, start_s, window_s, acc)
            for (metro, start_s, window_s), acc in latest.items()]
    window_acc.write_rows(args.out, rows, updates[0])
    return 0 if updates[0] == args.samples else 1


if __name__ == "__main__":
    raise SystemExit(main())
