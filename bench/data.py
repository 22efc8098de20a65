"""The shared columnar input of the kernel cases, the vectorized bucket maths and the canonical output form.

Every kernel case reads the SAME arrays (saved once as .npy files in a data
directory) and its result is converted, outside the timed region, into one
canonical form: sorted keys `window * n_metros + metro` (metro level) and
`window * n_links + link` (link level), with histogram keys `key * N_BUCKETS +
bucket`. `verify` compares two canonical forms exactly (floating sums to 1e-9).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline import histogram

WINDOW_NS = 60 * 1_000_000_000
LATENESS_NS = 30 * 1_000_000_000  # netready's default; the data's disorder is at most DISORDER_NS
DISORDER_NS = 2 * 1_000_000_000
THRESHOLD_US = 1000.0
N_BUCKETS = histogram.N_BUCKETS
START_NS = 1_795_132_800_000_000_000  # 2026-11-20T00:00:00Z, as pipeline.simulate
COLUMNS = ("ts_ns", "link_id", "metro_id", "rtt_us")

# (bits >> 46) is (biased exponent << 6 | top 6 mantissa bits) for a non-negative double, so
# bucket = 1 + (exponent - 1023 - MIN_EXP) * 64 + sub = (bits >> 46) - BUCKET_BIAS, clipped to
# [0, N_BUCKETS - 1]; values below 2**MIN_EXP clip to bucket 0, values >= 2**MAX_EXP to the last.
BUCKET_BIAS = (1023 + histogram.MIN_EXP) * histogram.SUB_BUCKETS - 1


def make_columns(n: int, n_links: int, n_metros: int = 50, seed: int = 0,
                 duration_s: int = 3600) -> dict[str, np.ndarray]:
    """`n` samples over `duration_s` of event time, uniform over links, in arrival order.

    Arrival times are evenly spaced; each event time is its arrival time minus
    U[0, 2 s), so the input is mostly ordered with small disorder and nothing
    is late under a 30 s lateness. Links belong to metros in contiguous blocks.
    Latencies: a per-link lognormal median (250-1300 µs) times lognormal noise,
    rounded to ns, 0.1 % exactly 1000.0 (not under the threshold).
    """
    rng = np.random.default_rng(seed)
    arrival_ns = START_NS + (np.arange(n, dtype=np.int64) * (duration_s * 1_000_000_000 // n))
    ts_ns = arrival_ns - rng.integers(0, DISORDER_NS, n, dtype=np.int64)
    link_id = rng.integers(0, n_links, n, dtype=np.int32)
    metro_of_link = (np.arange(n_links, dtype=np.int64) * n_metros // n_links).astype(np.int32)
    link_median_us = rng.uniform(250.0, 1300.0, n_links)
    rtt_us = np.round(link_median_us[link_id] * np.exp(rng.normal(0.0, 0.2, n)), 3)
    rtt_us[rng.random(n) < 0.001] = 1000.0
    return {"ts_ns": ts_ns, "link_id": link_id, "metro_id": metro_of_link[link_id], "rtt_us": rtt_us}


def save(cols: dict[str, np.ndarray], directory: Path, n_links: int, n_metros: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in COLUMNS:
        np.save(directory / f"{name}.npy", cols[name])
    (directory / "meta.json").write_text(json.dumps(
        {"samples": len(cols["ts_ns"]), "n_links": n_links, "n_metros": n_metros}))


def load(directory: Path) -> tuple[dict[str, np.ndarray], dict]:
    cols = {name: np.load(directory / f"{name}.npy") for name in COLUMNS}
    return cols, json.loads((directory / "meta.json").read_text())


def bucket_bits(values_us: np.ndarray) -> np.ndarray:
    """Histogram bucket of each non-negative latency, from the IEEE-754 bits (int64)."""
    return np.clip((values_us.view(np.int64) >> 46) - BUCKET_BIAS, 0, N_BUCKETS - 1)


def bucket_frexp(values_us: np.ndarray) -> np.ndarray:
    """The same buckets computed with np.frexp, as pipeline/histogram.py spells it."""
    mantissa, exp = np.frexp(values_us)
    octave = exp.astype(np.int64) - 1 - histogram.MIN_EXP
    sub = (mantissa * (2 * histogram.SUB_BUCKETS)).astype(np.int64) - histogram.SUB_BUCKETS
    bucket = np.minimum(1 + octave * histogram.SUB_BUCKETS + sub, N_BUCKETS - 1)
    return np.where(values_us < 2.0 ** histogram.MIN_EXP, 0, bucket)


def canon(*, m_key, m_samples, m_under, m_min, m_max, m_sum, mh_key, mh_count,
          l_key, l_samples, l_under, l_min, l_max, l_sum, lh_key, lh_count) -> dict[str, np.ndarray]:
    """Canonical form: every level sorted by key, dtypes fixed."""
    out = {}
    for prefix, key, cols in (("m_", m_key, (m_samples, m_under, m_min, m_max, m_sum)),
                              ("l_", l_key, (l_samples, l_under, l_min, l_max, l_sum))):
        key = np.asarray(key, dtype=np.int64)
        order = np.argsort(key, kind="stable")
        out[prefix + "key"] = key[order]
        for name, col, dtype in zip(("samples", "under", "min", "max", "sum"), cols,
                                    (np.int64, np.int64, np.float64, np.float64, np.float64)):
            out[prefix + name] = np.asarray(col, dtype=dtype)[order]
    for prefix, key, count in (("mh_", mh_key, mh_count), ("lh_", lh_key, lh_count)):
        key = np.asarray(key, dtype=np.int64)
        order = np.argsort(key, kind="stable")
        out[prefix + "key"] = key[order]
        out[prefix + "count"] = np.asarray(count, dtype=np.int64)[order]
    return out


def canon_from_csr(level_window, level_key, samples, under, mn, mx, sm, offsets, bucket, count,
                   n_keys: int) -> dict[str, np.ndarray]:
    """Keys and histogram keys of one level given as rows with CSR histograms."""
    key = np.asarray(level_window, dtype=np.int64) * n_keys + np.asarray(level_key, dtype=np.int64)
    per_row = np.diff(np.asarray(offsets, dtype=np.int64))
    return {"key": key, "samples": samples, "under": under, "min": mn, "max": mx, "sum": sm,
            "h_key": np.repeat(key, per_row) * N_BUCKETS + np.asarray(bucket, dtype=np.int64),
            "h_count": count}


def canon_levels(m: dict, l: dict) -> dict[str, np.ndarray]:
    return canon(m_key=m["key"], m_samples=m["samples"], m_under=m["under"], m_min=m["min"],
                 m_max=m["max"], m_sum=m["sum"], mh_key=m["h_key"], mh_count=m["h_count"],
                 l_key=l["key"], l_samples=l["samples"], l_under=l["under"], l_min=l["min"],
                 l_max=l["max"], l_sum=l["sum"], lh_key=l["h_key"], lh_count=l["h_count"])


def verify(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> list[str]:
    """Differences between two canonical forms; empty when equal."""
    problems = []
    for name, expected in want.items():
        actual = got.get(name)
        if actual is None or actual.shape != expected.shape:
            problems.append(f"{name}: shape {None if actual is None else actual.shape} != {expected.shape}")
        elif name.endswith("_sum"):
            if not np.allclose(actual, expected, rtol=1e-9, atol=0):
                problems.append(f"{name}: differs beyond 1e-9 relative")
        elif not np.array_equal(actual, expected):
            problems.append(f"{name}: {int((actual != expected).sum())} of {len(expected)} differ")
    return problems
