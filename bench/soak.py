"""Soak run: the long-lived worker (`netready run`) under a steady real-time stream.

    .venv/bin/python -m bench.soak --duration-s 3600            # the documented one-hour run
    .venv/bin/python -m bench.soak --duration-s 300 --name ci   # the CI version

Expected rate: one worker serving one metro set of 1 000 links (50 metros x 20 links) probing
once per second, 1 000 samples/s. The soak runs at twice that (`--rate 2000`). Once the worker
owns its partitions (start-up is not steady state), a producer thread
sends single-record JSON keyed by metro with event time = now (minus up to 2 s of arrival
disorder), and, after a minute, one sample in 10 000 stamped 10 minutes in the past (late on
purpose). It counts, from delivery reports, every delivered sample per (metro, 60 s window): the
independent reference the landed windows must equal.

Every `--sample-every-s` it records the worker's RSS (/proc/<pid>/status VmRSS), the group's
committed lag (high watermark minus committed offset), active ClickHouse parts per table
(system.parts), the worker's Prometheus counters (rejects, late, sink errors) and the load
average; a poller records when each new 60 s metro window becomes visible with FINAL
(delay = visible - (window end + 30 s lateness), the earliest moment it can close).

At the end the producer stops and sends one closing sample per metro, stamped past the last
window's end plus the lateness, so the running worker closes and lands every window that holds a
streamed sample; it must catch up (lag 0, committed only after landing), is stopped with SIGTERM,
and the final tables are checked against the reference. Topics, group and metro names are unique to the run (the database is never dropped).
The report (JSON) and a chart (PNG) go to bench/results/; exit status 1 if a criterion failed
(see bench.soak_analysis).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from bench import soak_analysis

REPO = Path(__file__).resolve().parent.parent
NETREADY = REPO / ".venv" / "bin" / "netready"
RESULTS = REPO / "bench" / "results"
PARTITIONS = 4
WINDOW_S = 60
LATENESS_S = 30
THRESHOLD_US = 1000.0
NS = 1_000_000_000


@dataclass
class SoakConfig:
    duration_s: float = 3600.0
    rate: int = 2000  # samples/s: twice the expected 1 000 links x 1 probe/s
    metros: int = 50
    links_per_metro: int = 20
    sample_every_s: float = 10.0
    poll_every_s: float = 1.0
    checkpoint_interval_s: float = 5.0
    late_every: int = 10_000  # one sample in this many is sent 10 minutes late (after the first minute)
    name: str = "soak"
    out_dir: str = str(RESULTS)
    bootstrap: str = ""
    clickhouse_url: str = ""


def stack_endpoints() -> dict[str, str]:
    """KAFKA_BOOTSTRAP and CLICKHOUSE_URL from `scripts/stack.sh status` (honours NETREADY_* ports)."""
    proc = subprocess.run(["bash", str(REPO / "scripts" / "stack.sh"), "status"], capture_output=True,
                          text=True, timeout=60)
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in values.items()}


def clickhouse_client(url: str):
    from clickhouse_driver import Client

    u = urlparse(url)
    return Client(host=u.hostname, port=u.port or 9000, user=u.username or "default",
                  password=u.password or os.environ.get("NETREADY_CLICKHOUSE_PASSWORD", ""),
                  connect_timeout=10, send_receive_timeout=60)


def kafka_settings(bootstrap: str):
    from pipeline.kafka_config import KafkaSettings

    return KafkaSettings(bootstrap_servers=bootstrap, client_id="netready-soak")


# --------------------------------------------------------------------------- producing

class RealtimeProducer(threading.Thread):
    """Paced single-record JSON at `rate` samples/s, event time = now; counts what was delivered."""

    def __init__(self, cfg: SoakConfig, topic: str, prefix: str):
        super().__init__(daemon=True)
        from confluent_kafka import Producer

        self.cfg, self.topic = cfg, topic
        self.producer = Producer(kafka_settings(cfg.bootstrap).producer_config(**{"linger.ms": 20}))
        self.links = [(f"{prefix}{m:02d}", f"{prefix}{m:02d}-r{k // 5}", f"et-0/0/{k % 5}", 300.0 + 16.0 * m)
                      for m in range(cfg.metros) for k in range(cfg.links_per_metro)]
        self.stop_event = threading.Event()
        self.sent = 0
        self.failed = 0
        self.late_sent = 0
        self.delivered = 0
        self.late_delivered = 0
        self.expected: Counter = Counter()  # (metro, window_start_s) -> delivered on-time samples
        self.expected_under: Counter = Counter()
        self.error: BaseException | None = None
        self.closing_sent = 0
        self.closing_failed = 0

    def close_windows(self) -> None:
        """After the stream: one sample per metro stamped 1 s past the end of the current minute
        plus the lateness. Every partition's watermark then passes the end of every window that
        holds a streamed sample, so the running worker closes and lands them all; the closing
        samples' own window (the next minute) stays open and is not part of the check."""
        end_s = time.time_ns() // NS // WINDOW_S * WINDOW_S + WINDOW_S
        ts_ns = (end_s + LATENESS_S + 1) * NS

        def delivered(err, _msg) -> None:
            self.closing_failed += err is not None

        for metro, router, link, median_us in self.links[::self.cfg.links_per_metro]:
            value = (f'{{"ts":{ts_ns},"metro":"{metro}","router":"{router}","link":"{link}",'
                     f'"rtt_us":{median_us}}}').encode()
            self.producer.produce(self.topic, value, metro.encode(), on_delivery=delivered)
            self.closing_sent += 1
        if self.producer.flush(60) != 0:
            raise RuntimeError("closing samples not delivered within 60 s")

    def _report(self, metro: str, window_start_s: int, under: bool, late: bool):
        def delivered(err, _msg) -> None:
            if err is not None:
                self.failed += 1
            elif late:
                self.late_delivered += 1
            else:
                self.delivered += 1
                self.expected[(metro, window_start_s)] += 1
                if under:
                    self.expected_under[(metro, window_start_s)] += 1
        return delivered

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported in the result
            self.error = exc

    def _run(self) -> None:
        rng = random.Random(7)
        tick_s = 0.05
        per_tick = max(1, round(self.cfg.rate * tick_s))
        started = next_at = time.monotonic()
        i = 0
        while not self.stop_event.is_set():
            now_ns = time.time_ns()
            warm = time.monotonic() - started > 60
            for _ in range(per_tick):
                metro, router, link, median_us = self.links[i % len(self.links)]
                i += 1
                late = warm and i % self.cfg.late_every == 0
                ts_ns = now_ns - (600 * NS if late else rng.randrange(0, 2 * NS))
                rtt_us = round(rng.lognormvariate(0, 0.25) * median_us, 3)
                value = (f'{{"ts":{ts_ns},"metro":"{metro}","router":"{router}","link":"{link}",'
                         f'"rtt_us":{rtt_us}}}').encode()
                window_start_s = ts_ns // NS // WINDOW_S * WINDOW_S
                callback = self._report(metro, window_start_s, rtt_us < THRESHOLD_US, late)
                while True:
                    try:
                        self.producer.produce(self.topic, value, metro.encode(), on_delivery=callback)
                        break
                    except BufferError:
                        self.producer.poll(0.01)
                self.sent += 1
                self.late_sent += late
            self.producer.poll(0)
            next_at += tick_s
            time.sleep(max(0.0, next_at - time.monotonic()))
        if self.producer.flush(60) != 0:
            raise RuntimeError("producer could not flush within 60 s")


# --------------------------------------------------------------------------- observing

def rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) / 1024 if m else None


def cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(port: int) -> dict[str, float]:
    """Prometheus text -> {metric name: value summed over labels} for the netready_* counters."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("netready_") and "_bucket" not in line and "_created" not in line:
            name = line.split("{", 1)[0].split(" ", 1)[0]
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


class LagReader:
    def __init__(self, bootstrap: str, topic: str, group: str):
        from confluent_kafka import Consumer, TopicPartition

        self.consumer = Consumer(kafka_settings(bootstrap).consumer_config(group))  # never subscribes
        self.tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]

    def lag(self) -> int | None:
        try:
            committed = self.consumer.committed(self.tps, timeout=10)
            return sum(self.consumer.get_watermark_offsets(tp, timeout=10)[1] - max(tp.offset, 0)
                       for tp in committed)
        except Exception:
            return None

    def close(self) -> None:
        self.consumer.close()


def parts(client) -> tuple[dict[str, int], int | None]:
    """Active parts per table of the netready database, and the most in one (table, partition)."""
    try:
        rows = client.execute("SELECT table, partition, count() FROM system.parts "
                              "WHERE active AND database = 'netready' GROUP BY table, partition")
    except Exception:
        return {}, None
    per_table: Counter = Counter()
    for table, _partition, n in rows:
        per_table[table] += n
    return dict(per_table), max((n for *_, n in rows), default=0)


class VisibilityPoller(threading.Thread):
    """First time each (metro, 60 s window) of the run is visible with FINAL."""

    def __init__(self, url: str, prefix: str, every_s: float):
        super().__init__(daemon=True)
        self.url, self.prefix, self.every_s = url, prefix, every_s
        self.seen: dict[tuple[str, int], float] = {}
        self.errors = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        client = clickhouse_client(self.url)
        while not self.stop_event.wait(self.every_s):
            since = int(time.time()) - 900
            try:
                rows = client.execute(
                    "SELECT metro, toUInt32(window_start) FROM netready.metro_window FINAL "
                    f"WHERE window_s = {WINDOW_S} AND hop_s = {WINDOW_S} AND startsWith(metro, %(p)s) "
                    f"AND window_start >= toDateTime({since})", {"p": self.prefix})
            except Exception:  # tables appear with the worker's first migration
                self.errors += 1
                continue
            now = time.time()
            for metro, start in rows:
                self.seen.setdefault((metro, int(start)), now)


# --------------------------------------------------------------------------- checking

def verify(client, prefix: str, producer: RealtimeProducer, worker_late: int, rejects: float) -> dict:
    """Landed 60 s metro windows against the producer's delivered counts; duplicates; late rows."""
    params = {"p": prefix}
    got = {}
    dup = 0
    for metro, start, samples, under in client.execute(
            "SELECT metro, toUInt32(window_start), samples, under_threshold FROM netready.metro_window FINAL "
            f"WHERE window_s = {WINDOW_S} AND hop_s = {WINDOW_S} AND startsWith(metro, %(p)s)", params):
        dup += (metro, int(start)) in got
        got[(metro, int(start))] = (int(samples), int(under))
    expected = {k: (n, producer.expected_under[k]) for k, n in producer.expected.items()}
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    wrong = [(k, got[k], expected[k]) for k in expected if k in got and got[k] != expected[k]]
    landed = sum(n for n, _ in got.values())
    problems = []
    if missing or extra or wrong:
        problems.append(f"{len(missing)} windows missing (e.g. {missing[:2]}), {len(extra)} extra "
                        f"(e.g. {extra[:2]}), {len(wrong)} differ (e.g. {wrong[:2]})")
    if landed != producer.delivered:
        problems.append(f"landed {landed} samples in 60 s windows, delivered on time {producer.delivered}")
    duplicates = {}
    for table, key in (("metro_window", "policy, window_s, hop_s, metro, window_start"),
                       ("link_window", "policy, window_s, hop_s, metro, router, link, window_start")):
        where = "WHERE startsWith(metro, %(p)s)"
        final = client.execute(f"SELECT count() FROM netready.{table} FINAL {where}", params)[0][0]
        distinct = client.execute(f"SELECT count() FROM (SELECT DISTINCT {key} FROM netready.{table} {where})",
                                  params)[0][0]
        duplicates[table] = int(final) - int(distinct)
    duplicates["metro_window_rows"] = dup
    if any(duplicates.values()):
        problems.append(f"duplicate rows: {duplicates}")
    link_landed = int(client.execute(
        "SELECT sum(samples) FROM netready.link_window FINAL "
        f"WHERE window_s = {WINDOW_S} AND hop_s = {WINDOW_S} AND startsWith(metro, %(p)s)", params)[0][0] or 0)
    if link_landed != producer.delivered:
        problems.append(f"link_window holds {link_landed} samples in 60 s windows, delivered {producer.delivered}")
    late_rows = int(client.execute("SELECT count() FROM netready.late_samples FINAL WHERE startsWith(metro, %(p)s)",
                                   params)[0][0])
    if not (worker_late == late_rows == producer.late_delivered):
        problems.append(f"late: worker counted {worker_late}, late_samples holds {late_rows}, "
                        f"sent late {producer.late_delivered}")
    if rejects:
        problems.append(f"{rejects:.0f} records rejected")
    if producer.failed or producer.error or getattr(producer, "closing_failed", 0):
        problems.append(f"producer: {producer.failed} failed deliveries, error {producer.error!r}, "
                        f"{getattr(producer, 'closing_failed', 0)} closing samples failed")
    return {"delivered": producer.delivered, "late": producer.late_delivered, "landed": landed,
            "link_landed": link_landed, "late_rows": late_rows, "worker_late": worker_late,
            "windows": len(got), "expected_windows": len(expected), "windows_missing": len(missing),
            "windows_extra": len(extra), "windows_differ": len(wrong), "duplicates": duplicates,
            "problems": problems}


# --------------------------------------------------------------------------- running

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_cmd(cfg: SoakConfig, topics: dict, group: str, port: int) -> list[str]:
    cmd = [str(NETREADY), "--clickhouse", cfg.clickhouse_url, "run", "--topic", topics["telemetry"],
           "--group", group, "--windows-topic", topics["windows"], "--dlq-topic", topics["dlq"],
           "--checkpoint-interval-s", str(cfg.checkpoint_interval_s), "--metrics-port", str(port), "--json"]
    return cmd


def worker_env(cfg: SoakConfig) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETREADY_") or k == "NETREADY_CLICKHOUSE_PASSWORD"}
    env["NETREADY_KAFKA_BOOTSTRAP_SERVERS"] = cfg.bootstrap
    return env


T0 = time.monotonic()
PHASES: dict[str, float] = {}


def log(msg: str, phase: str | None = None) -> None:
    """Progress on stderr; `phase` also records seconds since the harness started (overhead)."""
    if phase:
        PHASES[phase] = round(time.monotonic() - T0, 1)
    print(time.strftime("%H:%M:%S"), msg, file=sys.stderr, flush=True)


def run_soak(cfg: SoakConfig) -> dict:
    from confluent_kafka.admin import AdminClient

    from pipeline.produce import create_topics

    if not cfg.bootstrap or not cfg.clickhouse_url:
        endpoints = stack_endpoints()
        cfg.bootstrap = cfg.bootstrap or endpoints["KAFKA_BOOTSTRAP"]
        cfg.clickhouse_url = cfg.clickhouse_url or endpoints["CLICKHOUSE_URL"]
    run = uuid.uuid4().hex[:8]
    prefix = f"soak{run[:6]}-m"
    topics = {"telemetry": f"soak.{run}", "windows": f"soak.{run}.windows", "dlq": f"soak.{run}.dlq"}
    group = f"soak-{run}"
    out_dir = Path(cfg.out_dir)
    work = out_dir / f"{cfg.name}-work"
    work.mkdir(parents=True, exist_ok=True)
    settings = kafka_settings(cfg.bootstrap)
    create_topics(settings, {topics["telemetry"]: PARTITIONS, topics["windows"]: 1, topics["dlq"]: 1})
    client = clickhouse_client(cfg.clickhouse_url)
    port = free_port()
    log(f"soak {run}: {cfg.rate} samples/s for {cfg.duration_s:.0f} s, topic {topics['telemetry']}, "
        f"metros {prefix}*, ClickHouse {urlparse(cfg.clickhouse_url).netloc.split('@')[-1]}", "harness_start")

    producer = RealtimeProducer(cfg, topics["telemetry"], prefix)
    lag_reader = LagReader(cfg.bootstrap, topics["telemetry"], group)
    poller = VisibilityPoller(cfg.clickhouse_url, prefix, cfg.poll_every_s)
    worker = subprocess.Popen(worker_cmd(cfg, topics, group, port), cwd=work,
                              env=worker_env(cfg), stdin=subprocess.DEVNULL,
                              stdout=open(work / "worker.out", "wb"), stderr=open(work / "worker.err", "wb"))
    samples: list[dict] = []
    result: dict = {"config": asdict(cfg), "run": run, "topics": topics, "group": group, "metro_prefix": prefix}
    failures: list[str] = []
    caught_up_s = None
    try:
        # the stream starts once the worker owns the partitions: start-up (imports, migrations,
        # group join) is not part of the steady state the lag criterion is about
        wait_assigned(worker, work / "worker.err", timeout_s=180)
        log("worker assigned its partitions; stream starts", "worker_ready")
        started = time.monotonic()
        producer.start()
        poller.start()
        next_sample = started
        while (elapsed := time.monotonic() - started) < cfg.duration_s:
            if worker.poll() is not None:
                failures.append(f"worker exited with {worker.returncode} after {elapsed:.0f} s")
                break
            next_sample += cfg.sample_every_s
            samples.append(observe(worker.pid, port, lag_reader, client, producer, elapsed))
            if len(samples) % 30 == 1:
                s = samples[-1]
                log(f"t={s['t_s']:.0f}s rss={s['rss_mb']}MB lag={s['lag']} parts={s['parts_max_partition']} "
                    f"load={s['loadavg_1m']}")
            time.sleep(max(0.0, min(next_sample, started + cfg.duration_s) - time.monotonic()))
        producer.stop_event.set()
        producer.join(120)
        stopped_at = time.time()
        log(f"stream stopped: {producer.sent} sent, {producer.failed} failed", "stream_stopped")
        if not failures:
            samples.append(observe(worker.pid, port, lag_reader, client, producer, time.monotonic() - started))
            producer.close_windows()
            t0 = time.monotonic()
            while time.monotonic() - t0 < soak_analysis.CATCH_UP_LIMIT_S * 2:
                if lag_reader.lag() == 0:
                    caught_up_s = round(time.monotonic() - t0, 1)
                    break
                if worker.poll() is not None:
                    failures.append(f"worker exited with {worker.returncode} while catching up")
                    break
                time.sleep(0.5)
        log(f"caught up after {caught_up_s} s", "caught_up")
        poller.stop_event.set()
        poller.join(30)
        metrics = scrape(port)
        worker_cpu_s = cpu_s(worker.pid)
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        code = worker.wait(120)
        if code != 0:
            failures.append(f"worker exit status {code} after SIGTERM")
        run_summary = _summary(work / "worker.out")
        log(f"worker stopped ({code}); verifying", "worker_stopped")
        worker_late = run_summary.get("late", 0)
        rejects = sum(run_summary.get("rejects", {}).values())
        counts = verify(client, prefix, producer, worker_late, rejects)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        producer.stop_event.set()
        poller.stop_event.set()
        lag_reader.close()
        admin = AdminClient(settings.client_config())
        for future in admin.delete_topics(list(topics.values()), operation_timeout=30).values():
            try:
                future.result(60)
            except Exception:  # cleanup only
                pass

    # delays of the windows that could close while the stream ran (end + lateness before it stopped)
    delays = {f"{m}@{ws}": round(t - (ws + WINDOW_S + LATENESS_S), 3) for (m, ws), t in poller.seen.items()
              if ws + WINDOW_S + LATENESS_S <= stopped_at}
    log("verified; topics deleted", "verified")
    fig = soak_analysis.figures(samples, list(delays.values()), cfg.duration_s)
    parts_limit = int(client.execute("SELECT value FROM system.merge_tree_settings "
                                     "WHERE name = 'parts_to_delay_insert'")[0][0])
    checks = soak_analysis.criteria(fig, rate=cfg.rate, caught_up_s=caught_up_s, parts_limit=parts_limit,
                                    counts=counts)
    for name, (ok, why) in checks.items():
        if not ok:
            failures.append(f"{name}: {why}")
    result.update(
        passed=not failures, failures=failures,
        criteria={k: {"passed": ok, "detail": why} for k, (ok, why) in checks.items()},
        figures={**fig, "caught_up_after_stop_s": caught_up_s, "parts_to_delay_insert": parts_limit},
        counts=counts, produced={"sent": producer.sent, "late_sent": producer.late_sent,
                                 "failed": producer.failed, "closing_sent": producer.closing_sent},
        worker={"run_summary": run_summary, "metrics_at_end": metrics,
                "cpu_s": worker_cpu_s,
                "cpu_s_per_m_samples": (worker_cpu_s / producer.sent * 1e6) if worker_cpu_s and producer.sent
                else None},
        machine={"cpus": os.cpu_count(), "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
                 "uname": " ".join(os.uname())},
        finished_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        phases_s=PHASES, delays_s=delays, samples=samples, poll_errors=poller.errors)
    return result


def wait_assigned(worker: subprocess.Popen, err_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not re.search(r"assigned partitions \[[0-9]", err_path.read_text(errors="replace")):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker not assigned (exit {worker.poll()}):\n"
                               f"{err_path.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


def observe(pid: int, port: int, lag_reader: LagReader, client, producer: RealtimeProducer, t_s: float) -> dict:
    per_table, max_partition = parts(client)
    metrics = scrape(port)
    return {"t_s": round(t_s, 1), "unix": round(time.time(), 1), "rss_mb": rss_mb(pid), "cpu_s": cpu_s(pid),
            "lag": lag_reader.lag(), "parts": per_table,
            "parts_total": sum(per_table.values()) if per_table else None,
            "parts_max_partition": max_partition, "sent": producer.sent,
            "samples": metrics.get("netready_samples_total"),
            "late": metrics.get("netready_late_samples_total"),
            "rejects": metrics.get("netready_rejects_total", 0.0),
            "sink_errors": metrics.get("netready_sink_errors_total", 0.0),
            "sink_retries": metrics.get("netready_sink_retries_total"),
            "paused": metrics.get("netready_consumption_paused"),
            "loadavg_1m": float(Path("/proc/loadavg").read_text().split()[0])}


def _summary(path: Path) -> dict:
    return _summary_text(path.read_bytes()) if path.exists() else {}


def _summary_text(data: bytes) -> dict:
    """The worker's --json summary (one JSON document on stdout; {} when there is none)."""
    try:
        return json.loads(data.decode(errors="replace"))
    except ValueError:
        return {}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["samples"]
    t_min = [x["t_s"] / 60 for x in s]
    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    axes[0].plot(t_min, [x["rss_mb"] for x in s])
    axes[0].set_ylabel("worker RSS (MB)")
    axes[1].plot(t_min, [x["lag"] for x in s])
    axes[1].set_ylabel("committed lag (messages)")
    tables = sorted({t for x in s for t in x["parts"]})
    for table in tables:
        axes[2].plot(t_min, [x["parts"].get(table, 0) for x in s], label=table)
    axes[2].set_ylabel("active parts")
    axes[2].legend(fontsize=6, ncol=3)
    start_unix = s[0]["unix"] - s[0]["t_s"] if s else 0
    points = sorted((int(k.rsplit("@", 1)[1]) + WINDOW_S + LATENESS_S - start_unix, d)
                    for k, d in result["delays_s"].items())
    axes[3].plot([p[0] / 60 for p in points], [p[1] for p in points], ".", markersize=2)
    axes[3].set_ylabel("close -> queryable (s)")
    axes[3].set_xlabel("minutes since start")
    f = result["figures"]
    fig.suptitle(f"netready soak {result['config']['name']}: {result['config']['rate']} samples/s, "
                 f"{'PASS' if result['passed'] else 'FAIL'}; slope {f['rss_slope_mb_per_h']:.1f} MB/h, "
                 f"max lag {f['lag_max']}, p99 delay {f['delay_p99_s']:.1f} s")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--duration-s", type=float, default=3600.0)
    p.add_argument("--rate", type=int, default=2000, help="samples/s (default: 2 x the expected 1 000)")
    p.add_argument("--metros", type=int, default=50)
    p.add_argument("--links-per-metro", type=int, default=20)
    p.add_argument("--sample-every-s", type=float, default=10.0)
    p.add_argument("--checkpoint-interval-s", type=float, default=5.0)
    p.add_argument("--name", default="soak", help="report name: bench/results/<name>.json and .png")
    p.add_argument("--out-dir", default=str(RESULTS))
    p.add_argument("--no-plot", action="store_true", help="JSON report only (saves matplotlib's start-up)")
    p.add_argument("--bootstrap", default="", help="Kafka (default: from scripts/stack.sh status)")
    p.add_argument("--clickhouse", default="", help="ClickHouse server URL (default: from scripts/stack.sh status)")
    a = p.parse_args(argv)
    cfg = SoakConfig(duration_s=a.duration_s, rate=a.rate, metros=a.metros, links_per_metro=a.links_per_metro,
                     sample_every_s=a.sample_every_s, checkpoint_interval_s=a.checkpoint_interval_s,
                     name=a.name, out_dir=a.out_dir, bootstrap=a.bootstrap, clickhouse_url=a.clickhouse)
    result = run_soak(cfg)
    out = Path(cfg.out_dir)
    (out / f"{cfg.name}.json").write_text(json.dumps(result, indent=1, default=str))
    if not a.no_plot:
        plot(result, out / f"{cfg.name}.png")
    f = result["figures"]
    print(json.dumps({"passed": result["passed"], "failures": result["failures"],
                      **{k: f[k] for k in ("rss_slope_mb_per_h", "rss_slope_limit_mb_per_h", "lag_max", "lag_final",
                                           "caught_up_after_stop_s", "parts_max_partition", "delay_p50_s",
                                           "delay_p99_s", "loadavg_1m_mean")},
                      "counts": {k: result["counts"][k] for k in ("delivered", "late", "landed", "windows")},
                      "report": str(out / f"{cfg.name}.json")}, indent=1))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
