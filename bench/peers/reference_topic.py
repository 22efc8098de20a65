"""The PyFlink and ClickHouse-SQL peer cases: one topic, netready's windows first, then each peer.

`peer/netready-1w` produces a fresh 4-partition single-record JSON topic (windows_check.scenario:
no late samples), times one `netready run --drain` worker into chdb over it and keeps its landed
windows as the reference. `peer/flink-p1`, `peer/flink-p2` (PyFlink, parallelism 1 and 2) and
`peer/clickhouse-sql` read the same topic and are verified against that reference before their
speed counts. The topic is deleted by the harness at the end of the run.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from bench import stream
from bench.peers import windows_check


class PeerTopic:
    """The shared topic and netready's reference windows, made on first use."""

    def __init__(self, samples: int):
        self.samples = samples
        self.topics: stream.Topics | None = None
        self.produced: dict | None = None
        self.reference: dict | None = None

    def ensure_topic(self) -> stream.Topics:
        if self.topics is None:
            from pipeline.produce import produce

            self.topics = stream.Topics("peer")
            self.topics.create()
            print(f"#   producing {self.samples:,} samples (json, no late samples) to {self.topics.telemetry}",
                  file=sys.stderr, flush=True)
            started = time.perf_counter()
            summary = produce(stream.kafka(), self.topics.telemetry, windows_check.scenario(self.samples), "json")
            self.produced = {"messages": summary.messages, "samples": summary.samples,
                             "produce_s": round(time.perf_counter() - started, 2)}
        return self.topics

    def delete(self) -> None:
        if self.topics is not None:
            self.topics.delete()


def run_netready(spec: dict, work: Path, topic: PeerTopic) -> dict:
    topics = topic.ensure_topic()
    work.mkdir(parents=True, exist_ok=True)
    n = topic.produced["samples"]
    reps, topic.reference, problems = windows_check.netready_reps(
        topics, spec["reps"], work, "peer-netready", n, topic.reference)
    return {"case": spec["name"], "samples": n, "produced": topic.produced,
            "reps": reps, "windows": len(topic.reference), "verified": not problems, "problems": problems}


def run_peer(spec: dict, work: Path, topic: PeerTopic) -> dict:
    """One peer case; an unavailable peer becomes an unverified row carrying the reason."""
    topics = topic.ensure_topic()
    if topic.reference is None:
        raise RuntimeError("peer cases need peer/netready-1w first (the reference windows)")
    work.mkdir(parents=True, exist_ok=True)
    if spec["peer"] == "flink":
        from bench.peers import flink

        return flink.run_case(spec, work, topics, topic.produced["samples"], topic.reference)
    from bench.peers import clickhouse_sql

    return clickhouse_sql.run_case(spec, work, topics, topic.produced["samples"], topic.reference)
