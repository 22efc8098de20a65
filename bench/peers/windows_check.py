"""What the PyFlink and ClickHouse-SQL peers are checked against, and how their processes are measured.

Data: the streaming cases' scenario (50 metros x 20 links, 1 s probes, up to 2 s arrival
disorder) with NO late samples (late_share = 0). Samples behind netready's 30 s watermark are
counted apart as late; a Flink watermark follows the same 30 s bound but is computed per Kafka
partition and emitted periodically, and plain SQL has no watermark at all, so which of the
0.05 % very late samples each system drops would differ for reasons unrelated to speed. With
the disorder (2 s) far inside the lateness (30 s) every system counts every sample and the
per-window results must agree exactly.

Reference: netready's own landed rows (`netready.metro_window FINAL`, hop 60 s, window 60 s and
300 s) after `netready run --drain` over the same topic. A peer passes when it has exactly the
same (metro, window_start, window_s) keys with equal `samples` and `under_threshold`, and p99
within 1 % (netready's p99 is a histogram read-out within 0.79 % of the exact value).
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
NETREADY = REPO / ".venv" / "bin" / "netready"
P99_TOLERANCE = 0.01
WINDOWS_S = (60, 300)

Key = tuple[str, int, int]  # metro, window_start (unix s), window_s


def scenario(samples: int):
    from pipeline.simulate import ScenarioConfig

    return ScenarioConfig(metros=50, routers_per_metro=4, links_per_router=5,
                          duration_s=max(1.0, samples / 1000), probe_interval_s=1.0, seed=0,
                          late_share=0.0)


def netready_reps(topics, reps: int, work: Path, group_prefix: str, produced_samples: int,
                  reference: dict | None) -> tuple[list[dict], dict, list[str]]:
    """`netready run --drain` `reps` times over the peer topic, each into a fresh chdb directory.

    Returns the per-rep figures, netready's windows (the reference every peer is checked against:
    `reference` if given, else the first rep's) and the problems found: late samples (peer data
    has none by construction), a rep differing from the reference, landed != produced."""
    from bench import stream

    figures, problems = [], []
    for rep in range(reps):
        rep_dir = work / f"rep{rep}"
        rep_dir.mkdir(parents=True, exist_ok=True)
        url = f"chdb:{rep_dir / 'chdb'}"
        result = stream.run_workers([url], topics, topics.group(f"{group_prefix}-{rep}"), rep_dir)
        late = sum(s["late"] for s in result["summaries"])
        if late:
            problems.append(f"rep {rep}: {late} samples late; the peer data must have none")
        windows = netready_windows(url, rep_dir)
        if reference is None:
            reference = windows
        elif windows != reference:
            problems.append(f"rep {rep}: netready's windows differ from its first rep")
        figures.append({k: result[k] for k in ("wall_s", "cpu_s", "rss_mb")})
    landed = sum(v[0] for k, v in reference.items() if k[2] == 60)
    if landed != produced_samples:
        problems.append(f"landed {landed} samples in 60 s windows, produced {produced_samples}")
    return figures, reference, problems


def netready_windows(url: str, cwd: Path) -> dict[Key, tuple[int, int, float]]:
    """netready's landed metro windows: key -> (samples, under_threshold, p99_us).

    Rows exist once per policy with the same counts; any one of them is the reference."""
    query = ("SELECT metro, toUInt32(window_start) AS ws, window_s, any(samples) AS samples, "
             "any(under_threshold) AS under, any(p99_us) AS p99 FROM netready.metro_window FINAL "
             "WHERE hop_s = 60 AND window_s IN (60, 300) GROUP BY metro, ws, window_s")
    out = subprocess.run([str(NETREADY), "--clickhouse", url, "sql", query, "--format", "json"],
                         cwd=cwd, capture_output=True, check=True).stdout
    return {(r["metro"], int(r["ws"]), int(r["window_s"])):
            (int(r["samples"]), int(r["under"]), float(r["p99"])) for r in json.loads(out)}


def compare(got: dict[Key, tuple[int, int, float]], want: dict[Key, tuple[int, int, float]],
            limit: int = 5) -> list[str]:
    """Differences between a peer's windows and netready's; empty when they agree."""
    problems = []
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing:
        problems.append(f"{len(missing)} of {len(want)} netready windows missing, e.g. {missing[:limit]}")
    if extra:
        problems.append(f"{len(extra)} windows netready does not have, e.g. {extra[:limit]}")
    counts = [k for k in want if k in got and got[k][:2] != want[k][:2]]
    if counts:
        problems.append(f"{len(counts)} windows differ in samples/under_threshold, e.g. "
                        f"{[(k, got[k][:2], want[k][:2]) for k in counts[:limit]]}")
    p99 = [k for k in want if k in got and abs(got[k][2] - want[k][2]) > P99_TOLERANCE * want[k][2]]
    if p99:
        problems.append(f"{len(p99)} windows with p99 off by more than 1 %, e.g. "
                        f"{[(k, got[k][2], want[k][2]) for k in p99[:limit]]}")
    if not want:
        problems.append("netready landed no windows: nothing to compare with")
    return problems


def p99_error(got: dict, want: dict) -> float:
    """Largest relative p99 difference over the common keys."""
    return max((abs(got[k][2] - want[k][2]) / want[k][2] for k in want if k in got and want[k][2]),
               default=0.0)


# ---------------------------------------------------------------- process-tree accounting

def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def _usage(pid: int) -> tuple[float, float] | None:
    """(CPU seconds of the process itself, RSS MB)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_tree(cmd: list[str], cwd: Path, env: dict | None = None, interval_s: float = 0.2) -> dict:
    """Run `cmd` and account for every process it starts (a JVM, Python UDF workers...):
    wall seconds, CPU seconds summed over the tree (each process's last sample, so at most
    `interval_s` of a process is missed), and the peak of the tree's summed RSS."""
    started = time.perf_counter()
    with open(cwd / "peer.out", "wb") as out, open(cwd / "peer.err", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, env=env)
        cpu: dict[int, float] = {}
        peak_rss_mb = 0.0
        while proc.poll() is None:
            rss = 0.0
            for pid in _tree(proc.pid):
                usage = _usage(pid)
                if usage:
                    cpu[pid] = usage[0]
                    rss += usage[1]
            peak_rss_mb = max(peak_rss_mb, rss)
            time.sleep(interval_s)
    wall_s = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"{Path(cmd[1]).name if len(cmd) > 1 else cmd[0]} failed ({proc.returncode}): "
                           f"{(cwd / 'peer.err').read_text(errors='replace')[-3000:]}")
    return {"wall_s": wall_s, "cpu_s": round(sum(cpu.values()), 2), "rss_mb": round(peak_rss_mb, 1),
            "processes": len(cpu)}
