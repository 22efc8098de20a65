"""Per-(metro, window) accumulator shared by the Python streaming peers (faust, quix, bytewax).

Runs inside any peer's virtualenv: it needs only the standard library and
`pipeline/histogram.py` (found through the repository root on sys.path, which
the harness passes in PYTHONPATH). An accumulator is a plain JSON-able list
`[samples, under, min_us, max_us, {bucket: count}]` so that faust changelogs
and quix state stores can serialise it; bucket keys are strings because JSON
object keys are, and a state store hands back what JSON gave it.
p99 is read the way netready reads it: nearest rank over netready's log-linear
buckets, clamped to the window's exact min and max.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from pipeline import histogram

THRESHOLD_US = 1000.0
NS_PER_S = 1_000_000_000
_bucket_of = histogram.bucket_of


def new() -> list:
    return [0, 0, math.inf, -math.inf, {}]


def add(acc: list, rtt_us: float) -> list:
    """Fold one sample in (in place) and return the accumulator."""
    acc[0] += 1
    if rtt_us < THRESHOLD_US:
        acc[1] += 1
    if rtt_us < acc[2]:
        acc[2] = rtt_us
    if rtt_us > acc[3]:
        acc[3] = rtt_us
    hist = acc[4]
    key = str(_bucket_of(rtt_us))
    hist[key] = hist.get(key, 0) + 1
    return acc


def merge(a: list, b: list) -> list:
    """Exact merge of two accumulators (counts add, histograms add bucket by bucket)."""
    out = [a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3]), dict(a[4])]
    for key, count in b[4].items():
        out[4][key] = out[4].get(key, 0) + count
    return out


def p99_us(acc: list) -> float:
    buckets = sorted(int(k) for k in acc[4])
    return histogram.quantile(buckets, [acc[4][str(b)] for b in buckets], 0.99, acc[2], acc[3])


def row(metro: str, window_start_s: int, window_s: int, acc: list) -> dict:
    return {"metro": metro, "window_start": int(window_start_s), "window_s": int(window_s),
            "samples": acc[0], "under_threshold": acc[1], "p99_us": p99_us(acc)}


def write_rows(path: str | Path, rows: list[dict], samples_seen: int) -> None:
    """JSON Lines: one line per metro window, then a trailer with the samples the peer read."""
    with open(path, "w", encoding="utf-8") as out:
        for r in rows:
            out.write(json.dumps(r, ensure_ascii=False) + "\n")
        out.write(json.dumps({"samples_seen": samples_seen}) + "\n")


def read_rows(path: str | Path) -> tuple[dict[tuple[str, int, int], tuple[int, int, float]], int]:
    """(metro, window_start, window_s) -> (samples, under_threshold, p99_us), and samples seen.

    A window reported twice is an error of the peer, not something to average away."""
    windows: dict[tuple[str, int, int], tuple[int, int, float]] = {}
    seen = -1
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if "samples_seen" in r:
            seen = r["samples_seen"]
            continue
        key = (r["metro"], int(r["window_start"]), int(r["window_s"]))
        if key in windows:
            raise ValueError(f"window {key} reported twice in {path}")
        windows[key] = (int(r["samples"]), int(r["under_threshold"]), float(r["p99_us"]))
    return windows, seen


def records(value) -> list:
    """The records of one decoded message: a JSON array is a batch, an object one record."""
    return value if isinstance(value, list) else [value]
