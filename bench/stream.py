"""Streaming cases: `netready run` (the Kafka worker) end to end, Kafka -> ClickHouse.

Throughput (`stream/json-1w`, `json-2w`, `arrow-1w`, `json-array-1w`, `json-1w-server`): the
samples are produced to a fresh 4-partition topic *before* timing, then `netready run --drain`
worker processes are timed from start to exit (wall until the last exits; CPU from wait4, peak
RSS from the child's VmHWM, bench/rss.py). Verified: landed sum(samples) in 60 s metro windows (FINAL) == produced - late.

Latency (`stream/latency-ckpt5`, `latency-ckpt1`): a producer thread emits single-record JSON with
event time = now at a fixed rate while one worker (no drain) lands into a private ClickHouse
server; a poller sees when each (metro, 60 s window) row becomes visible with SELECT ... FINAL.
delay = visible - (window end + 30 s lateness), the earliest moment the watermark can close it.

Every case uses its own topics (telemetry, windows, DLQ) and consumer groups (uuid) on the shared
Kafka, deleted afterwards. Server cases land in a private clickhouse-server (bench/chserver.py),
never in the shared stack's `netready` database.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from bench import e2e
from bench.rss import MeasuredPopen

REPO = Path(__file__).resolve().parent.parent
NETREADY = REPO / ".venv" / "bin" / "netready"
PYTHON = REPO / ".venv" / "bin" / "python"
BOOTSTRAP = os.environ.get("NETREADY_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
PARTITIONS = 4
LATENESS_S = 30
NS = 1_000_000_000


def kafka():
    from pipeline.kafka_config import KafkaSettings

    return KafkaSettings(bootstrap_servers=BOOTSTRAP)


# Probe interval per format. Batched messages hold one metro's rows (the producer keys by metro),
# so a message spans rows / (20 links / interval) seconds of event time, and the next metro's
# message in the same partition starts that far back: with 1 s probes a 10 000-row Arrow message
# spans 500 s and 80 % of the samples arrive behind the partition's watermark (late). Faster probes
# keep each message within ~10 s (json-array 1 000 rows at 0.1 s: 5 s; arrow 10 000 rows at 0.02 s:
# 10 s), far below the 30 s lateness, like a collector batching one metro's probes every few seconds.
PROBE_INTERVAL_S = {"json": 1.0, "json-array": 0.1, "arrow": 0.02, "avro": 1.0}


def scenario(samples: int, probe_interval_s: float = 1.0):
    """1 000 links (50 metros x 4 routers x 5 links), one probe per link every probe_interval_s:
    samples / 1000 x interval seconds of event time, the simulator's default arrival disorder and
    0.05 % late samples (120-600 s behind)."""
    from pipeline.simulate import ScenarioConfig

    return ScenarioConfig(metros=50, routers_per_metro=4, links_per_router=5,
                          duration_s=max(probe_interval_s, samples / 1000 * probe_interval_s),
                          probe_interval_s=probe_interval_s, seed=0)


class Topics:
    """Unique topic names for one case; `delete()` removes them (and only them)."""

    def __init__(self, tag: str):
        run = uuid.uuid4().hex[:8]
        self.telemetry = f"bench.{tag}.{run}"
        self.windows = f"bench.{tag}.{run}.windows"
        self.dlq = f"bench.{tag}.{run}.dlq"
        self.run = run

    def group(self, name: str) -> str:
        return f"bench-{self.run}-{name}"

    def create(self) -> None:
        from pipeline.produce import create_topics

        create_topics(kafka(), {self.telemetry: PARTITIONS, self.windows: 1, self.dlq: 1})

    def delete(self) -> None:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(kafka().client_config())
        for future in admin.delete_topics([self.telemetry, self.windows, self.dlq],
                                          operation_timeout=30).values():
            try:
                future.result(30)
            except Exception:
                pass


def produce_topic(topics: Topics, samples: int, fmt: str, rows: int) -> dict:
    from pipeline.produce import produce

    topics.create()
    started = time.perf_counter()
    interval = PROBE_INTERVAL_S[fmt]
    summary = produce(kafka(), topics.telemetry, scenario(samples, interval), fmt, rows_per_message=rows)
    return {"messages": summary.messages, "samples": summary.samples, "bytes": summary.bytes,
            "probe_interval_s": interval,
            "produce_s": round(time.perf_counter() - started, 2), "format": fmt, "rows_per_message": rows}


def worker_cmd(url: str, topics: Topics, group: str, interval_s: float, *, drain: bool,
               metrics_port: int | None = None, python_args: list[str] | None = None) -> list[str]:
    head = [str(PYTHON), *python_args, "-m", "pipeline"] if python_args else [str(NETREADY)]
    cmd = [*head, "--clickhouse", url, "run", "--bootstrap", BOOTSTRAP, "--topic", topics.telemetry,
           "--group", group, "--windows-topic", topics.windows, "--dlq-topic", topics.dlq,
           "--checkpoint-interval-s", str(interval_s)]
    if drain:
        cmd += ["--drain", "--json"]
    if metrics_port is not None:
        cmd += ["--metrics-port", str(metrics_port)]
    return cmd


def run_workers(urls: list[str], topics: Topics, group: str, work: Path, interval_s: float = 5.0) -> dict:
    """Start one draining worker per URL together; wall until the last exits."""
    env = {**os.environ, "TQDM_DISABLE": "1"}
    procs = []
    started = time.perf_counter()
    for i, url in enumerate(urls):
        out, err = open(work / f"worker{i}.out", "wb"), open(work / f"worker{i}.err", "wb")
        procs.append(MeasuredPopen(worker_cmd(url, topics, group, interval_s, drain=True),
                                      cwd=work, stdout=out, stderr=err, env=env))
    results = []
    for i, proc in enumerate(procs):
        code, cpu_s, rss_mb = e2e.wait(proc)
        results.append((code, cpu_s, rss_mb, time.perf_counter() - started))
        if code:
            raise RuntimeError(f"worker {i} failed ({code}): "
                               f"{(work / f'worker{i}.err').read_text()[-3000:]}")
    wall_s = time.perf_counter() - started
    summaries = [json.loads((work / f"worker{i}.out").read_text()) for i in range(len(urls))]
    return {"wall_s": wall_s, "cpu_s": sum(r[1] for r in results), "rss_mb": max(r[2] for r in results),
            "per_worker": [{"exit_s": round(r[3], 2), "cpu_s": round(r[1], 2), "rss_mb": round(r[2], 1)}
                           for r in results],
            "summaries": summaries}


def landed_samples(url: str, work: Path) -> int:
    query = ("SELECT sum(samples) AS samples FROM netready.metro_window FINAL "
             "WHERE window_s = 60 AND hop_s = 60")
    out = subprocess.run([str(NETREADY), "--clickhouse", url, "sql", query, "--format", "json"],
                         cwd=work, capture_output=True, check=True).stdout
    return int(json.loads(out)[0]["samples"] or 0)


def run_throughput(spec: dict, work: Path, produced: dict, topics: Topics, server=None) -> dict:
    """spec: workers, reps, backend ('chdb' | 'server')."""
    work.mkdir(parents=True, exist_ok=True)
    reps, problems = [], []
    n = produced["samples"]
    for rep in range(spec["reps"]):
        rep_dir = work / f"rep{rep}"
        rep_dir.mkdir(parents=True, exist_ok=True)
        if spec["backend"] == "server":
            server.reset()
            urls = [server.url] * spec["workers"]
        else:  # chdb is one process per directory: the 1-worker cases only
            urls = [f"chdb:{rep_dir / 'chdb'}"]
        result = run_workers(urls, topics, topics.group(f"{spec['name']}-{rep}"), rep_dir)
        late = sum(s["late"] for s in result["summaries"])
        rejects = sum(sum(s["rejects"].values()) for s in result["summaries"])
        landed = landed_samples(urls[0], rep_dir)
        if rejects:
            problems.append(f"rep {rep}: {rejects} rejects")
        if late > 0.01 * n:
            problems.append(f"rep {rep}: {late} of {n} samples late (> 1 %): not a representative run")
        if landed != n - late:
            problems.append(f"rep {rep}: landed {landed} samples in 60 s metro windows, expected {n - late}")
        reps.append({**result, "late": late, "landed": landed})
    return {"case": spec["name"], "samples": n, "produced": produced,
            "reps": [{k: r[k] for k in ("wall_s", "cpu_s", "rss_mb", "per_worker", "late", "landed")}
                     for r in reps],
            "summaries": [r["summaries"] for r in reps],
            "inner": "wall from worker start to exit (interpreter, imports, migrations, group join included)",
            "verified": not problems, "problems": problems}


# ---------------------------------------------------------------- window close -> queryable

class RealtimeProducer(threading.Thread):
    """Single-record JSON, event time = now, `rate` samples/s over 50 metros x 20 links, keyed by metro."""

    def __init__(self, topic: str, rate: int, prefix: str, metros: int = 50, links: int = 20):
        super().__init__(daemon=True)
        from confluent_kafka import Producer

        self.topic, self.rate = topic, rate
        self.producer = Producer(kafka().producer_config(**{"linger.ms": 5}))
        self.keys = [(f"{prefix}{m:02d}", f"{prefix}{m:02d}-r{l // 5}", f"et-0/0/{l % 5}")
                     for m in range(metros) for l in range(links)]
        self.stop_event = threading.Event()
        self.sent = 0

    def run(self) -> None:
        import random

        rng = random.Random(0)
        tick = 0.05
        per_tick = int(self.rate * tick)
        next_at = time.monotonic()
        i = 0
        while not self.stop_event.is_set():
            now_ns = time.time_ns()
            for _ in range(per_tick):
                metro, router, link = self.keys[i % len(self.keys)]
                i += 1
                value = (f'{{"ts":{now_ns},"metro":"{metro}","router":"{router}","link":"{link}",'
                         f'"rtt_us":{rng.uniform(200, 1500):.3f}}}').encode()
                while True:
                    try:
                        self.producer.produce(self.topic, value, metro.encode())
                        break
                    except BufferError:
                        self.producer.poll(0.01)
            self.sent += per_tick
            self.producer.poll(0)
            next_at += tick
            time.sleep(max(0.0, next_at - time.monotonic()))
        self.producer.flush(10)


def _poll_visible(server, prefix: str, stop: threading.Event, seen: dict, errors: list) -> None:
    client = server.client()
    query = ("SELECT metro, toUInt32(window_start) AS ws, samples FROM netready.metro_window FINAL "
             f"WHERE window_s = 60 AND hop_s = 60 AND startsWith(metro, '{prefix}')")
    while not stop.is_set():
        try:
            rows = client.execute(query)
            now = time.time()
            for metro, ws, samples in rows:
                seen.setdefault((metro, ws), (now, samples))
        except Exception as exc:  # the table does not exist before the first migration
            errors.append(str(exc)[:200])
        stop.wait(0.1)


def _metrics_histogram(port: int) -> dict:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except Exception as exc:
        return {"error": str(exc)}
    out = {}
    for line in text.splitlines():
        if line.startswith("netready_window_emit_delay_seconds"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def quantile(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run_latency(spec: dict, work: Path, server) -> dict:
    """One worker (no drain) with checkpoint interval spec['interval_s'] while a producer emits at
    spec['rate'] samples/s until spec['closes'] 60 s windows have closed (their end + 30 s passed)."""
    import socket

    work.mkdir(parents=True, exist_ok=True)
    topics = Topics(spec["name"].replace("/", "-"))
    topics.create()
    prefix = f"L{topics.run[:4]}m"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # no waiting for a phase: run until `closes` window closes (end + 30 s) have passed, the first
    # at least 15 s after start (worker start-up), plus one checkpoint interval and 5 s
    now = time.time()
    first_close = now + 15 + ((LATENESS_S - (now + 15)) % 60)
    duration_s = first_close + 60 * (spec["closes"] - 1) + spec["interval_s"] + 5 - now
    producer = RealtimeProducer(topics.telemetry, spec["rate"], prefix)
    producer.start()
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = MeasuredPopen(worker_cmd(server.url, topics, topics.group("lat"), spec["interval_s"],
                                       drain=False, metrics_port=port),
                            cwd=work, stdout=open(work / "worker.out", "wb"),
                            stderr=open(work / "worker.err", "wb"), env=env)
    started = time.time()
    seen: dict = {}
    errors: list = []
    stop = threading.Event()
    poller = threading.Thread(target=_poll_visible, args=(server, prefix, stop, seen, errors), daemon=True)
    poller.start()
    try:
        time.sleep(duration_s)
        histogram = _metrics_histogram(port)
    finally:
        producer.stop_event.set()
        producer.join(30)
        proc.terminate()
        code, cpu_s, rss_mb = e2e.wait(proc)
        stop.set()
        poller.join(10)
        topics.delete()
    delays = {f"{m}@{ws}": round(t - (ws + 60 + LATENESS_S), 3) for (m, ws), (t, _) in seen.items()}
    values = list(delays.values())
    closes = sorted({ws for (_, ws) in seen})
    problems = []
    if not values:
        problems.append("no window became visible")
    return {"case": spec["name"], "samples": producer.sent, "rate": spec["rate"],
            "interval_s": spec["interval_s"], "duration_s": round(duration_s, 1),
            "worker_started_unix": started, "window_starts": closes, "rows": len(values),
            "delay_p50_s": quantile(values, 0.5), "delay_p99_s": quantile(values, 0.99),
            "delay_max_s": max(values) if values else float("nan"),
            "delay_min_s": min(values) if values else float("nan"),
            "per_window": {str(ws): {"p50": quantile([d for (m, w), (t, _) in seen.items() if w == ws
                                                      for d in [t - (ws + 60 + LATENESS_S)]], 0.5),
                                     "max": max(t - (ws + 60 + LATENESS_S)
                                                for (m, w), (t, _) in seen.items() if w == ws)}
                           for ws in closes},
            "emit_delay_histogram": histogram, "worker_cpu_s": cpu_s, "worker_rss_mb": rss_mb,
            "worker_exit": code, "poll_errors": len(errors),
            "reps": [{"wall_s": duration_s, "cpu_s": cpu_s, "rss_mb": rss_mb}],
            "verified": not problems, "problems": problems}
