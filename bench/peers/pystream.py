"""Python streaming peers (faust-streaming, quix-streams, bytewax) against `netready run`, one topic per format.

Cases (per format F in `json`, `json-array`):
- `stream/netready-F`: produces a fresh 4-partition topic with NO late samples (the streaming
  scenario of bench/stream.py with late_share = 0: single records at 10 s probes, JSON arrays
  of 1 000 records at 0.1 s probes as in `stream/json-array-1w`), times `netready run --drain` into chdb over it and
  keeps netready's landed metro windows (60 s tumbling, 300 s hopping by 60 s) as the reference;
- `stream/faust-F`, `stream/quix-F`, `stream/bytewax-F`: the peer script (bench/peers/*_peer.py)
  as a subprocess over the same topic, from the beginning to the known sample count or the end
  of every partition, timed (wall; CPU from wait4; peak RSS, bench/rss.py), then its (metro, window_start,
  window_s) rows are checked against netready's: samples and under_threshold equal, p99 within
  1 % (windows_check.compare). Only a verified peer's speed counts; otherwise the row is
  UNVERIFIED and bench/run exits 1.

Why no late samples: netready counts a sample whose pane is closed by its per-partition
watermark (highest event time - 30 s) apart as late; quix's grace (30 s here) closes windows
per key, bytewax's EventClock also advances with the system clock, and faust has no watermark
at all (it updates any window it still holds). With the arrival disorder (2 s) far inside 30 s,
every system counts every sample and the windows must agree exactly.

faust runs in netready's venv (it is a netready dependency). quix-streams pins confluent-kafka
< 2.13 and bytewax is no dependency, so each gets a virtualenv under
~/.cache/netready/peers/<name>/venv from the pinned bench/peers/requirements-<name>.txt, built
on first use and rebuilt when that file changes. A peer that cannot be installed becomes an
UNVERIFIED row carrying the reason.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import e2e, stream
from bench.rss import MeasuredPopen
from bench.peers import window_acc, windows_check

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CACHE = Path(os.environ.get("NETREADY_PEERS_CACHE", Path.home() / ".cache" / "netready" / "peers"))
PEERS = ("faust", "quix", "bytewax")
FORMATS = {"json": 1, "json-array": 1_000}  # format -> records per message
# Single-record JSON probes every 10 s: 20 000 samples of 1 000 links span 200 s of event time,
# so windows close while the stream runs. JSON arrays keep bench/stream.py's 0.1 s: a message
# holds 1 000 consecutive records of one metro (50 probe rounds of its 20 links) and must span
# well under the 30 s lateness, so a small topic spans only seconds of event time.
PROBE_INTERVAL_S = {"json": 10.0, "json-array": stream.PROBE_INTERVAL_S["json-array"]}
OWN_VENV = ("quix", "bytewax")
PEER_TIMEOUT_S = 1800


class PeerUnavailable(RuntimeError):
    """The peer cannot run here; the message says why (it goes into the results)."""


def cases(samples: int, reps: int, faust_reps: int) -> list[tuple[str, dict]]:
    """(name, spec) in run order: each format's netready reference before its peers."""
    out = []
    for fmt in FORMATS:
        out.append((f"stream/netready-{fmt}", {"kind": "pypeer", "name": f"stream/netready-{fmt}",
                                                "peer": "netready", "format": fmt,
                                                "samples": samples, "reps": reps}))
        for peer in PEERS:
            out.append((f"stream/{peer}-{fmt}", {"kind": "pypeer", "name": f"stream/{peer}-{fmt}",
                                                  "peer": peer, "format": fmt,
                                                  "samples": samples,
                                                  "reps": faust_reps if peer == "faust" else reps}))
    return out


def baseline(name: str) -> str | None:
    """netready's case on the same topic, for a peer case name; None for other names."""
    for fmt in FORMATS:
        if name in {f"stream/{p}-{fmt}" for p in ("netready", *PEERS)}:
            return f"stream/netready-{fmt}"
    return None


# ---------------------------------------------------------------- environments

def python_for(peer: str, log=print) -> Path:
    """The interpreter that runs a peer; builds its virtualenv when missing or outdated."""
    if peer not in OWN_VENV:
        return REPO / ".venv" / "bin" / "python"
    requirements = HERE / f"requirements-{peer}.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    venv = CACHE / peer / "venv"
    python = venv / "bin" / "python"
    marker = venv / "netready-requirements.sha256"
    if marker.exists() and marker.read_text().strip() == digest and python.exists():
        return python
    log(f"#   installing {requirements.name} into {venv} (first run only)")
    shutil.rmtree(venv, ignore_errors=True)
    for cmd in ([sys.executable, "-m", "venv", str(venv)],
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                 str(requirements)]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise PeerUnavailable(f"{' '.join(cmd[:4])} failed ({proc.returncode}): "
                                  f"{(proc.stderr or proc.stdout)[-1500:]}")
    marker.write_text(digest + "\n")
    return python


def versions(peer: str) -> dict[str, str]:
    """Pinned versions of the peer and its Kafka client, for the results."""
    if peer == "faust":
        from importlib.metadata import version

        return {"faust-streaming": version("faust-streaming"), "aiokafka": version("aiokafka")}
    pins = dict(line.split("==", 1) for line in (HERE / f"requirements-{peer}.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    return {k: v for k, v in pins.items() if k in ("quixstreams", "bytewax", "confluent-kafka", "rocksdict")}


# ---------------------------------------------------------------- topics and the reference

class PeerTopics:
    """One late-free topic per format, netready's reference windows for it, and cleanup."""

    def __init__(self):
        self.topics: dict[str, stream.Topics] = {}
        self.produced: dict[str, dict] = {}
        self.reference: dict[str, dict] = {}
        self.groups: list[str] = []

    def ensure(self, fmt: str, samples: int) -> stream.Topics:
        if fmt not in self.topics:
            from pipeline.produce import produce

            rows = FORMATS[fmt]
            t = stream.Topics(f"pypeer-{fmt}")
            t.create()
            self.topics[fmt] = t
            interval = PROBE_INTERVAL_S[fmt]
            scenario = dataclasses.replace(stream.scenario(samples, interval), late_share=0.0)
            print(f"#   producing {samples:,} samples ({fmt}, no late samples) to {t.telemetry}",
                  file=sys.stderr, flush=True)
            started = time.perf_counter()
            summary = produce(stream.kafka(), t.telemetry, scenario, fmt, rows_per_message=rows)
            self.produced[fmt] = {"messages": summary.messages, "samples": summary.samples,
                                  "bytes": summary.bytes, "probe_interval_s": interval, "late_share": 0.0,
                                  "produce_s": round(time.perf_counter() - started, 2)}
        return self.topics[fmt]

    def delete(self) -> None:
        """The telemetry topics and every internal topic a peer made (changelogs, repartition
        and assignor topics carry the peer's group id in their names)."""
        from confluent_kafka.admin import AdminClient

        for t in self.topics.values():
            t.delete()
        if not self.groups:
            return
        admin = AdminClient(stream.kafka().client_config())
        names = [n for n in admin.list_topics(timeout=30).topics if any(g in n for g in self.groups)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=30).values():
                try:
                    future.result(30)
                except Exception:
                    pass


def run_case(spec: dict, work: Path, state: PeerTopics) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    fmt = spec["format"]
    topics = state.ensure(fmt, spec["samples"])
    produced = state.produced[fmt]
    if spec["peer"] == "netready":
        return _run_netready(spec, work, topics, produced, state)
    if fmt not in state.reference:
        raise RuntimeError(f"{spec['peer']}-{fmt} needs stream/netready-{fmt} first (the reference)")
    return run_peer(spec, work, topics, produced, state.reference[fmt], state.groups)


def _run_netready(spec: dict, work: Path, topics: stream.Topics, produced: dict, state: PeerTopics) -> dict:
    n, fmt = produced["samples"], spec["format"]
    reps, state.reference[fmt], problems = windows_check.netready_reps(
        topics, spec["reps"], work, f"netready-{fmt}", n, state.reference.get(fmt))
    return {"case": f"stream/netready-{fmt}", "samples": n, "produced": produced, "reps": reps,
            "windows": len(state.reference[fmt]), "verified": not problems, "problems": problems}


# ---------------------------------------------------------------- one peer

def peer_cmd(python: Path, peer: str, topics: stream.Topics, group: str, samples: int, out: Path,
             batched: bool) -> list[str]:
    cmd = [str(python), str(HERE / f"{peer}_peer.py"), "--bootstrap", stream.BOOTSTRAP,
           "--topic", topics.telemetry, "--group", group, "--samples", str(samples), "--out", str(out)]
    return cmd + (["--batched"] if batched and peer != "faust" else [])


def run_once(cmd: list[str], cwd: Path, timeout_s: float = PEER_TIMEOUT_S) -> dict:
    """Wall, CPU and peak RSS of one peer process (bench.e2e.wait); killed (by its pid) after timeout_s."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    with open(cwd / "peer.out", "wb") as out, open(cwd / "peer.err", "wb") as err:
        proc = MeasuredPopen(cmd, cwd=cwd, stdout=out, stderr=err, env=env)
        timer = threading.Timer(timeout_s, lambda: os.kill(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            code, cpu_s, rss_mb = e2e.wait(proc)
        finally:
            timer.cancel()
    wall_s = time.perf_counter() - started
    if code:
        why = "timed out" if wall_s >= timeout_s else f"exit status {code}"
        raise RuntimeError(f"{Path(cmd[1]).name} {why}: "
                           f"{(cwd / 'peer.err').read_text(errors='replace')[-2000:]}")
    return {"wall_s": wall_s, "cpu_s": cpu_s, "rss_mb": rss_mb}


def verify(out: Path, reference: dict, samples: int) -> list[str]:
    """Problems with one peer output: unreadable, wrong sample count, windows unlike netready's."""
    try:
        got, seen = window_acc.read_rows(out)
    except (OSError, ValueError, KeyError) as exc:
        return [f"unreadable output {out.name}: {exc}"]
    problems = [] if seen == samples else [f"peer read {seen} samples, the topic holds {samples}"]
    return problems + windows_check.compare(got, reference)


def run_peer(spec: dict, work: Path, topics: stream.Topics, produced: dict, reference: dict,
             groups: list[str]) -> dict:
    peer, n = spec["peer"], produced["samples"]
    base = {"case": f"stream/{peer}-{spec['format']}", "samples": n, "produced": produced}
    try:
        python = python_for(peer, log=lambda m: print(m, file=sys.stderr, flush=True))
        info = versions(peer)
    except PeerUnavailable as exc:
        return {**base, "reps": [], "verified": False, "problems": [f"{peer} unavailable: {exc}"]}
    reps, problems = [], []
    for rep in range(spec["reps"]):
        rep_dir = work / f"rep{rep}"
        rep_dir.mkdir(parents=True, exist_ok=True)
        group = topics.group(f"{peer}-{spec['format']}-{rep}")
        groups.append(group)
        out = rep_dir / "windows.jsonl"
        try:
            reps.append(run_once(peer_cmd(python, peer, topics, group, n, out, FORMATS[spec["format"]] > 1),
                                 rep_dir))
        except RuntimeError as exc:
            problems.append(f"rep {rep}: {exc}")
            break
        problems += [f"rep {rep}: {p}" for p in verify(out, reference, n)]
    if problems:
        reps = []  # an unverified speed is not reported
    return {**base, "versions": info, "reps": reps, "verified": not problems, "problems": problems}
