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
    reps, problems = [], []
    for rep in range(spec["reps"]):
        rep_dir = work / f"rep{rep}"
        rep_dir.mkdir(parents=True, exist_ok=True)
        url = f"chdb:{rep_dir / 'chdb'}"
        result = stream.run_workers([url], topics, topics.group(f"peer-netready-{rep}"), rep_dir)
        late = sum(s["late"] for s in result["summaries"])
        if late:
            problems.append(f"rep {rep}: {late} samples late; the peer data should have none")
        windows = windows_check.netready_windows(url, rep_dir)
        if topic.reference is None:
            topic.reference = windows
        elif windows != topic.reference:
            problems.append(f"rep {rep}: netready's windows differ from its first rep")
        reps.append({k: result[k] for k in ("wall_s", "cpu_s", "rss_mb")})
    landed = sum(v[0] for k, v in topic.reference.items() if k[2] == 60)
    if landed != topic.produced["samples"]:
        problems.append(f"landed {landed} samples in 60 s windows, produced {topic.produced['samples']}")
    return {"case": spec["name"], "samples": topic.produced["samples"], "produced": topic.produced,
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
