"""bytewax peer: `fold_window` over a 60 s tumbling and a 300 s / 60 s sliding windower, keyed by metro.

    python bench/peers/bytewax_peer.py --bootstrap HOST:PORT --topic T --samples N --out rows.jsonl

Runs in its own virtualenv (bytewax is not a netready dependency). The documented idiom:
`KafkaSource(tail=False)` (batches of 1 000 messages, stops at the end of every partition),
`flat_map` decoding each message with orjson into its records (one, or all of a JSON array),
`key_on` metro, then two `fold_window`s with an `EventClock` on the record's `ts` (ns ->
datetime, exact to the µs) and `wait_for_system_duration` = 30 s, netready's allowed
lateness, windows aligned to the Unix epoch. A window's start is `align_to + id x offset`.
At the end of the input bytewax closes every open window, so each is emitted once.
Late items (`WindowOut.late`) are counted and reported; the benchmark data has none.
One worker in one process (`cli_main`, what `python -m bytewax.run` calls).
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bytewax.operators as op  # noqa: E402
import orjson  # noqa: E402
from bytewax._bytewax import cli_main  # noqa: E402
from bytewax.connectors.kafka import KafkaSource  # noqa: E402
from bytewax.dataflow import Dataflow  # noqa: E402
from bytewax.operators import windowing as win  # noqa: E402
from bytewax.testing import TestingSink  # noqa: E402

from bench.peers import window_acc  # noqa: E402

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
WINDOWS = {60: (timedelta(seconds=60), timedelta(seconds=60)),  # window_s: (length, offset)
           300: (timedelta(seconds=300), timedelta(seconds=60))}


def _event_time(record: dict) -> datetime:
    return EPOCH + timedelta(microseconds=record["ts"] // 1000)


def _fold(acc: list, record: dict) -> list:
    return window_acc.add(acc, float(record["rtt_us"]))


def build(bootstrap: str, topic: str, out: list, late: list, seen: list) -> Dataflow:
    flow = Dataflow("netready_peer")
    messages = op.input("kafka", flow, KafkaSource([bootstrap], [topic], tail=False))

    def decode(message) -> list:
        records = window_acc.records(orjson.loads(message.value))
        seen[0] += len(records)
        return records

    records = op.flat_map("decode", messages, decode)
    keyed = op.key_on("metro", records, lambda r: r["metro"])
    clock = win.EventClock(_event_time, wait_for_system_duration=timedelta(seconds=30))
    for window_s, (length, offset) in WINDOWS.items():
        windower = (win.TumblingWindower(length=length, align_to=EPOCH) if length == offset
                    else win.SlidingWindower(length=length, offset=offset, align_to=EPOCH))
        folded = win.fold_window(f"w{window_s}", keyed, clock, windower, window_acc.new, _fold,
                                 window_acc.merge)
        starts = op.map(f"rows{window_s}", folded.down,
                        lambda item, w=window_s, o=offset: window_acc.row(
                            item[0], int((EPOCH + o * item[1][0]).timestamp()), w, item[1][1]))
        op.output(f"out{window_s}", starts, TestingSink(out))
        op.output(f"late{window_s}", folded.late, TestingSink(late))
    return flow


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--samples", type=int, required=True, help="samples expected in the topic")
    parser.add_argument("--out", required=True)
    parser.add_argument("--group", help="unused: KafkaSource assigns partitions itself, no group")
    parser.add_argument("--batched", action="store_true", help="accepted for symmetry; arrays are detected")
    args = parser.parse_args(argv)
    out: list[dict] = []
    late: list = []
    seen = [0]
    cli_main(build(args.bootstrap, args.topic, out, late, seen), workers_per_process=1)
    window_acc.write_rows(args.out, out, seen[0])
    if late:
        print(f"{len(late)} late items (dropped by bytewax)", file=sys.stderr)
    return 0 if seen[0] == args.samples and not late else 1


if __name__ == "__main__":
    raise SystemExit(main())
