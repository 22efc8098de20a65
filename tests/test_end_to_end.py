"""End to end: files -> decode -> validate -> kernel -> chdb, checked against an independent numpy
computation of every metro window, link window, coverage window and UTC day.

The scenario is generated here with numpy (not with pipeline.simulate) and the expectation is
computed from the definitions in CONTEXT.md alone:
- a sample is under threshold iff value < 1000 µs (1000.0 is not under);
- windows are half-open and epoch-aligned: 60 s tumbling and 300 s sliding every 60 s;
- watermark = highest event time seen so far in arrival order - 30 s; a sample is late iff the
  end of its 60 s pane is <= the watermark at its arrival; late samples are not counted;
- a metro window is compliant iff samples >= 100 and under / samples >= 0.99;
- coverage = compliant metros / metros in the registry (default: every metro whose first
  accepted sample is before the period's end).
"""
from __future__ import annotations

import json
import time
import math
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import ingest as ingest_module
from pipeline.coverage import Registry
from pipeline.ingest import IngestConfig, ingest_paths
from pipeline.policy import DEFAULT_POLICY
from pipeline.warehouse import open_warehouse

NS = 1_000_000_000
PANE_NS = 60 * NS
LATENESS_NS = 30 * NS
DAY_S = 86_400
THRESHOLD = 1000.0
FAMILIES = ((60, 60), (300, 60))
# 30 days ago, 20 min before a UTC midnight: recent enough for every table's TTL, and crosses a day.
T0_S = (int(time.time()) // DAY_S - 30) * DAY_S - 20 * 60
DURATION_S = 40 * 60
MIDNIGHT_S = T0_S + 20 * 60
END_S = T0_S + DURATION_S

CLEARLY_COMPLIANT = ["北京", "上海", "广州", "深圳", "São Paulo", "Zürich", "München", "東京", "서울",
                     "Montréal"]
CLEARLY_NOT = {"Москва": 0.05, "القاهرة": 0.2, "तिरुवनंतपुरम": 0.5, "Hà Nội": 0.03, "Kraków": 0.1}
BORDERLINE = {"成都": 0.01, "Ciudad de México": 0.008, "İstanbul": 0.012}
EDGE = "Reykjavík"  # exactly 200 samples a minute, 2 or 3 of them exactly 1000.0
SPARSE = "Łódź"  # 15 samples a minute, all fast: never enough samples
INCIDENT = "Αθήνα"  # compliant except for an incident in minutes 10-15
LATE_START = "Xi'an"  # first sample exactly at midnight (and a quote for the SQL escaping)
NO_DATA = "拉萨"  # in the configured registry, never reports
ALL_METROS = [*CLEARLY_COMPLIANT, *CLEARLY_NOT, *BORDERLINE, EDGE, SPARSE, INCIDENT, LATE_START]
REGISTRY = [*CLEARLY_COMPLIANT[:6], "Москва", "成都", EDGE, SPARSE, LATE_START, NO_DATA]

FINAL_TABLES = ("metro_window", "link_window", "coverage_window", "metro_daily", "coverage_daily",
                "metros", "policies", "late_samples")


# ----------------------------------------------------------------------------- scenario

class Scenario:
    """Samples in arrival order: ts_ns, metro (index into ALL_METROS), router, link, value."""

    def __init__(self, seed: int = 20260610):
        rng = np.random.default_rng(seed)
        ts, metro, router, link, value = [], [], [], [], []

        def add_link(m: int, r: str, lk: str, t: np.ndarray, v: np.ndarray) -> None:
            ts.append(t.astype(np.int64))
            metro.append(np.full(len(t), m, dtype=np.int64))
            router.extend([r] * len(t))
            link.extend([lk] * len(t))
            value.append(v.astype(np.float64))

        def latencies(n: int, p_bad: np.ndarray | float) -> np.ndarray:
            v = rng.uniform(80.0, 999.9, n)
            v[rng.random(n) < 0.01] = np.nextafter(THRESHOLD, 0.0)  # largest double under 1000
            bad = rng.random(n) < p_bad
            exact = rng.random(n) < 0.5
            v[bad & exact] = THRESHOLD  # exactly 1000.0 is NOT under
            v[bad & ~exact] = rng.uniform(1000.5, 6000.0, int((bad & ~exact).sum()))
            return v

        p_bad = {m: 0.0 if i % 2 else 0.001 for i, m in enumerate(CLEARLY_COMPLIANT)}
        p_bad.update(CLEARLY_NOT)
        p_bad.update(BORDERLINE)
        for m_index, name in enumerate(ALL_METROS):
            if name == EDGE:
                over_per_minute = [3 if m % 7 == 3 else 2 for m in range(DURATION_S // 60)]
                base = T0_S * NS + np.arange(DURATION_S * 50 // 60, dtype=np.int64) * 1_200_000_000
                per_link = []
                for k in range(4):
                    t = base + k * 300_000_000
                    per_link.append((f"{name}-rtr{k // 2}", f"ge-0/0/{k % 2}", t,
                                     rng.uniform(150.0, 950.0, len(t))))
                all_t = np.concatenate([t for _, _, t, _ in per_link])
                all_v = np.concatenate([v for _, _, _, v in per_link])
                minute = (all_t // NS - T0_S) // 60
                for m, n_over in enumerate(over_per_minute):
                    idx = np.flatnonzero(minute == m)
                    assert len(idx) == 200
                    all_v[rng.choice(idx, n_over, replace=False)] = THRESHOLD
                offset = 0
                for r, lk, t, _ in per_link:
                    add_link(m_index, r, lk, t, all_v[offset:offset + len(t)])
                    offset += len(t)
                continue
            if name == SPARSE:
                t = T0_S * NS + 1_500_000_000 + np.arange(DURATION_S // 4, dtype=np.int64) * 4 * NS
                add_link(m_index, "Łódź-pe1", "xe-1/1/1", t, rng.uniform(100.0, 500.0, len(t)))
                continue
            for r in range(3):
                for j in range(2):
                    if name == LATE_START:
                        start_ns = MIDNIGHT_S * NS + (0 if r == j == 0 else int(rng.integers(1, 2 * NS)))
                    else:
                        start_ns = T0_S * NS + int(rng.integers(0, 2 * NS))
                    t = np.arange(start_ns, END_S * NS, 2 * NS, dtype=np.int64)
                    if name == INCIDENT:
                        minute = (t // NS - T0_S) // 60
                        p = np.where((minute >= 10) & (minute < 15), 0.3, 0.0)
                    else:
                        p = p_bad.get(name, 0.0)
                    add_link(m_index, f"{name}-pe{r}", f"et-0/0/{j}", t, latencies(len(t), p))

        ts_ns = np.concatenate(ts)
        metro_ix = np.concatenate(metro)
        values = np.concatenate(value)
        routers = np.array(router, dtype=object)
        links = np.array(link, dtype=object)
        n = len(ts_ns)

        # Arrival: shuffled within a few seconds, some samples delayed by 30-100 s (late or not,
        # depending on where they fall in their pane), and a handful of very late ones appended.
        arrival = ts_ns + rng.integers(0, 3 * NS, n)
        delayed = rng.choice(np.flatnonzero(metro_ix != ALL_METROS.index(EDGE)), 40, replace=False)
        arrival[delayed] += rng.integers(30 * NS, 100 * NS, len(delayed))
        very_late = [(EDGE, f"{EDGE}-rtr0", "ge-0/0/0", T0_S * NS + 7_777_777_777, THRESHOLD),
                     (EDGE, f"{EDGE}-rtr1", "ge-0/0/1", T0_S * NS + 33_333_333_333, 5000.0),
                     (EDGE, f"{EDGE}-rtr1", "ge-0/0/0", T0_S * NS + 59_999_999_999, 4321.5),
                     ("北京", "北京-pe0", "et-0/0/0", (T0_S + 130) * NS + 123, 3000.0),
                     ("Zürich", "Zürich-pe2", "et-0/0/1", (T0_S + 200) * NS + 456, 1000.0),
                     ("São Paulo", "São Paulo-pe1", "et-0/0/0", (MIDNIGHT_S + 60) * NS + 789, 250.0)]
        extra_arrival = list((END_S - 5) * NS + np.arange(len(very_late), dtype=np.int64))
        # Exactly on the lateness boundary: a driver sample lifts the highest event time to X just
        # before a sample whose pane ends exactly at X - 30 s (late: pane end <= watermark), and
        # another driver stops 1 ns short of that (not late: pane end = watermark + 1 ns).
        boundary = [((T0_S + 630) * NS, (T0_S + 599) * NS + 999_999_999, True),
                    ((T0_S + 1290) * NS - 1, (T0_S + 1259) * NS + 999_999_999, False)]
        for driver_ts, sample_ts, _ in boundary:
            very_late.append(("上海", "上海-pe1", "et-0/0/1", driver_ts, 500.0))
            very_late.append(("上海", "上海-pe2", "et-0/0/0", sample_ts, 600.0))
            extra_arrival += [(driver_ts // NS - 1) * NS - 1] * 2  # same key: kept in this order
        ts_ns = np.concatenate([ts_ns, [v[3] for v in very_late]]).astype(np.int64)
        metro_ix = np.concatenate([metro_ix, [ALL_METROS.index(v[0]) for v in very_late]])
        routers = np.concatenate([routers, np.array([v[1] for v in very_late], dtype=object)])
        links = np.concatenate([links, np.array([v[2] for v in very_late], dtype=object)])
        values = np.concatenate([values, [v[4] for v in very_late]])
        arrival = np.concatenate([arrival, extra_arrival])

        order = np.argsort(arrival, kind="stable")
        self.ts_ns = ts_ns[order]
        self.metro = metro_ix[order]
        self.router = routers[order]
        self.link = links[order]
        self.value = values[order]
        self.very_late_ts = {v[3] for v in very_late[:6]}
        self.boundary_late = {sample_ts: is_late for _, sample_ts, is_late in boundary}

        # Late, by the rule, in arrival order.
        watermark = np.maximum.accumulate(self.ts_ns) - LATENESS_NS
        pane_end = (self.ts_ns // PANE_NS + 1) * PANE_NS
        self.late = pane_end <= watermark
        self.ok = ~self.late

    @property
    def n(self) -> int:
        return len(self.ts_ns)

    def metro_names(self) -> np.ndarray:
        return np.array(ALL_METROS, dtype=object)[self.metro]

    # ------------------------------------------------------------------ writers

    def write_jsonl(self, paths: list[Path], rng: np.random.Generator) -> None:
        """Arrival order split over the files; the first file has integer ns timestamps only
        (pyarrow's fast path), the second a mix of integer ns and RFC 3339 with Z, +08:00 and
        -05:30 (the per-line path)."""
        cut = self.n * 3 // 5
        styles = np.zeros(self.n, dtype=np.int64)
        styles[cut:] = rng.integers(0, 4, self.n - cut)
        offsets = {1: (0, "Z"), 2: (8 * 3600 * NS, "+08:00"), 3: (-(5 * 3600 + 1800) * NS, "-05:30")}
        text_ts = np.empty(self.n, dtype=object)
        for style, (offset, suffix) in offsets.items():
            idx = np.flatnonzero(styles == style)
            local = (self.ts_ns[idx] + offset).astype("datetime64[ns]")
            text_ts[idx] = np.char.add(np.datetime_as_string(local, unit="ns").astype(str), suffix)
        names = self.metro_names()
        with_one_way = rng.random(self.n) < 0.3
        as_int = (self.value == THRESHOLD) & (rng.random(self.n) < 0.2)  # "rtt_us": 1000
        for path, (lo, hi) in zip(paths, [(0, cut), (cut, self.n)]):
            with open(path, "wb") as out:
                for i in range(lo, hi):
                    rec = {"ts": int(self.ts_ns[i]) if styles[i] == 0 else text_ts[i],
                           "metro": names[i], "router": self.router[i], "link": self.link[i],
                           "rtt_us": 1000 if as_int[i] else float(self.value[i])}
                    if with_one_way[i]:
                        rec["one_way_us"] = float(self.value[i]) / 2
                    out.write(orjson.dumps(rec) + b"\n")

    def write_parquet(self, path: Path) -> None:
        table = pa.table({
            "ts": pa.array(self.ts_ns, type=pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
            "metro": pa.array(self.metro_names().tolist(), type=pa.string()),
            "router": pa.array(self.router.tolist(), type=pa.string()),
            "link": pa.array(self.link.tolist(), type=pa.string()),
            "rtt_us": pa.array(self.value, type=pa.float64()),
        })
        pq.write_table(table, path, row_group_size=40_000)


# ----------------------------------------------------------------------------- expectation

def compliant(samples: int, under: int) -> bool:
    return samples >= 100 and under * 100 >= 99 * samples


def nearest_rank_p99(sorted_values: np.ndarray) -> float:
    return float(sorted_values[math.ceil(0.99 * len(sorted_values)) - 1])


def grouped(keys: list[np.ndarray], values: np.ndarray):
    """Yield (key tuple, sorted values) for each distinct combination of keys."""
    order = np.lexsort((values, *reversed(keys)))
    ks = [k[order] for k in keys]
    vs = values[order]
    change = np.zeros(len(vs), dtype=bool)
    change[0] = True
    for k in ks:
        change[1:] |= k[1:] != k[:-1]
    bounds = np.r_[np.flatnonzero(change), len(vs)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        yield tuple(k[a] for k in ks), vs[a:b], order[a:b]


class Expected:
    def __init__(self, sc: Scenario):
        ok = sc.ok
        ts, metro, value = sc.ts_ns[ok], sc.metro[ok], sc.value[ok]
        link_key = np.unique(np.char.add(np.char.add(sc.metro_names()[ok].astype(str), "\x1f"),
                                         np.char.add(sc.router[ok].astype(str),
                                                     np.char.add("\x1f", sc.link[ok].astype(str)))),
                             return_inverse=True)
        link_names, link_id = link_key[0], link_key[1]
        self.link_names = [tuple(s.split("\x1f")) for s in link_names.tolist()]

        self.metro_window: dict[tuple, dict] = {}
        self.link_window: dict[tuple, tuple[int, int]] = {}
        for length, hop in FAMILIES:
            reps = length // hop
            base = (ts // (hop * NS)) * hop
            starts = np.concatenate([base - j * hop for j in range(reps)])
            m = np.tile(metro, reps)
            lk = np.tile(link_id, reps)
            v = np.tile(value, reps)
            for (mi, start), vals, rows in grouped([m, starts], v):
                n, under = len(vals), int((vals < THRESHOLD).sum())
                self.metro_window[(ALL_METROS[mi], length, hop, int(start))] = {
                    "samples": n, "under_threshold": under, "p99_us": nearest_rank_p99(vals),
                    "min_us": float(vals[0]), "max_us": float(vals[-1]),
                    "compliant": int(compliant(n, under)), "links": len(np.unique(lk[rows]))}
            for (li, start), vals, _ in grouped([lk, starts], v):
                self.link_window[(*self.link_names[li], length, hop, int(start))] = (
                    len(vals), int((vals < THRESHOLD).sum()))

        self.first_seen_ns = {ALL_METROS[mi]: int(ts[metro == mi].min()) for mi in np.unique(metro)}

        self.metro_daily: dict[tuple, dict] = {}
        for (mi, day), vals, _ in grouped([metro, ts // NS // DAY_S], value):
            name, day = ALL_METROS[mi], int(day)
            wins = [w for k, w in self.metro_window.items()
                    if k[0] == name and k[1:3] == (60, 60) and k[3] // DAY_S == day]
            n, under = len(vals), int((vals < THRESHOLD).sum())
            self.metro_daily[(name, day)] = {
                "samples": n, "under_threshold": under, "compliant": int(compliant(n, under)),
                "p99_us": nearest_rank_p99(vals), "windows": len(wins),
                "compliant_windows": sum(w["compliant"] for w in wins)}

    def coverage_window(self, registry: list[str] | None) -> dict[tuple, dict]:
        by_window: dict[tuple, dict[str, int]] = defaultdict(dict)
        for (name, length, hop, start), row in self.metro_window.items():
            by_window[(length, hop, start)][name] = row["compliant"]
        out = {}
        for (length, hop, start), verdicts in by_window.items():
            members = self._members(registry, (start + length) * NS)
            reporting = [m for m in verdicts if m in members]
            good = sum(verdicts[m] for m in reporting)
            out[(length, hop, start)] = {"metros_total": len(members), "metros_compliant": good,
                                         "metros_reporting": len(reporting),
                                         "coverage": good / len(members) if members else 0.0}
        return out

    def coverage_daily(self, registry: list[str] | None) -> dict[int, dict]:
        by_day: dict[int, dict[str, int]] = defaultdict(dict)
        for (name, day), row in self.metro_daily.items():
            by_day[day][name] = row["compliant"]
        out = {}
        for day, verdicts in by_day.items():
            members = self._members(registry, (day + 1) * DAY_S * NS)
            reporting = [m for m in verdicts if m in members]
            good = sum(verdicts[m] for m in reporting)
            out[day] = {"metros_total": len(members), "metros_compliant": good,
                        "metros_reporting": len(reporting), "coverage": good / len(members)}
        return out

    def _members(self, registry: list[str] | None, end_ns: int) -> set[str]:
        if registry is not None:
            return set(registry)
        return {m for m, first in self.first_seen_ns.items() if first < end_ns}


# ----------------------------------------------------------------------------- running

def snapshot(warehouse) -> dict[str, list[str]]:
    """Every table's FINAL content minus version/landed_at, as sorted row reprs."""
    out = {}
    for table in FINAL_TABLES:
        result = warehouse.query(f"SELECT * FROM netready.{table} FINAL")
        result = result.drop_columns([c for c in ("version", "landed_at") if c in result.column_names])
        out[table] = sorted(repr(sorted(row.items())) for row in result.to_pylist())
    return out


def query_rows(warehouse, sql: str) -> list[dict]:
    return warehouse.query(sql).to_pylist()


def read_results(warehouse) -> dict[str, list[dict]]:
    return {
        "metro_window": query_rows(warehouse,
            "SELECT metro, toInt64(toUnixTimestamp(window_start)) AS start_s, window_s, hop_s, policy, "
            "samples, under_threshold, p99_us, min_us, max_us, compliant, links "
            "FROM netready.metro_window FINAL"),
        "link_window": query_rows(warehouse,
            "SELECT metro, router, link, toInt64(toUnixTimestamp(window_start)) AS start_s, window_s, "
            "hop_s, samples, under_threshold FROM netready.link_window FINAL"),
        "coverage_window": query_rows(warehouse,
            "SELECT toInt64(toUnixTimestamp(window_start)) AS start_s, window_s, hop_s, policy, "
            "metros_total, metros_compliant, metros_reporting, coverage, registry "
            "FROM netready.coverage_window FINAL"),
        "metro_daily": query_rows(warehouse,
            "SELECT metro, toInt32(toRelativeDayNum(day)) AS day, policy, samples, under_threshold, "
            "compliant, p99_us, windows, compliant_windows FROM netready.metro_daily FINAL"),
        "coverage_daily": query_rows(warehouse,
            "SELECT toInt32(toRelativeDayNum(day)) AS day, policy, metros_total, metros_compliant, "
            "metros_reporting, coverage, registry FROM netready.coverage_daily FINAL"),
        "late_samples": query_rows(warehouse,
            "SELECT metro, router, link, ts_ns, rtt_us, watermark_ns, source "
            "FROM netready.late_samples FINAL"),
    }


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> tuple[Scenario, Expected, dict[str, object]]:
    sc = Scenario()
    exp = Expected(sc)
    root = tmp_path_factory.mktemp("e2e")
    jsonl = [root / "arrivals-1.jsonl", root / "arrivals-2.jsonl"]
    sc.write_jsonl(jsonl, np.random.default_rng(7))
    parquet = root / "arrivals.parquet"
    sc.write_parquet(parquet)
    return sc, exp, {"root": root, "jsonl": jsonl, "parquet": parquet}


@pytest.fixture(scope="module")
def jsonl_run(scenario):
    """Ingest the JSON Lines files twice into one warehouse (default registry)."""
    sc, _, files = scenario
    url = f"chdb:{files['root'] / 'ch-jsonl'}"
    rejects = files["root"] / "rejects-jsonl.jsonl"
    config = IngestConfig(reject_path=rejects)
    with open_warehouse(url) as wh:
        first = ingest_paths(files["jsonl"], wh, config)
        results = read_results(wh)
        snap1 = snapshot(wh)
        reject_lines = rejects.read_text().splitlines()
        second = ingest_paths(files["jsonl"], wh, config)
        snap2 = snapshot(wh)
        runs = query_rows(wh, "SELECT samples_read, samples_late, samples_accepted FROM netready.ingest_runs")
    return {"summary": first, "second": second, "results": results, "snap1": snap1,
            "snap2": snap2, "rejects": reject_lines, "runs": runs}


@pytest.fixture(scope="module")
def parquet_run(scenario):
    """Ingest the Parquet file with a configured registry, landing in many small batches."""
    _, _, files = scenario
    url = f"chdb:{files['root'] / 'ch-parquet'}"
    config = IngestConfig(registry=Registry.from_list(REGISTRY))
    with pytest.MonkeyPatch.context() as mp, open_warehouse(url) as wh:
        mp.setattr(ingest_module, "LAND_EVERY_LINK_ROWS", 500)
        summary = ingest_paths([files["parquet"]], wh, config)
        results = read_results(wh)
    return {"summary": summary, "results": results}


# ----------------------------------------------------------------------------- checks

def check_metro_windows(rows: list[dict], exp: Expected) -> None:
    got = {(r["metro"], r["window_s"], r["hop_s"], r["start_s"]): r for r in rows}
    assert set(got) == set(exp.metro_window), (
        f"missing {sorted(set(exp.metro_window) - set(got))[:5]}, "
        f"unexpected {sorted(set(got) - set(exp.metro_window))[:5]}")
    bad = []
    for key, want in exp.metro_window.items():
        row = got[key]
        for col in ("samples", "under_threshold", "compliant", "links", "min_us", "max_us"):
            if row[col] != want[col]:
                bad.append((key, col, row[col], want[col]))
        if abs(row["p99_us"] - want["p99_us"]) > 0.01 * want["p99_us"]:
            bad.append((key, "p99_us", row["p99_us"], want["p99_us"]))
        if row["policy"] != DEFAULT_POLICY.id:
            bad.append((key, "policy", row["policy"], DEFAULT_POLICY.id))
    assert not bad, f"{len(bad)} mismatches, first: {bad[:10]}"


def check_link_windows(rows: list[dict], exp: Expected) -> None:
    got = {(r["metro"], r["router"], r["link"], r["window_s"], r["hop_s"], r["start_s"]):
           (r["samples"], r["under_threshold"]) for r in rows}
    assert got == exp.link_window


def check_coverage(results: dict, exp: Expected, registry: list[str] | None, registry_name: str) -> None:
    want = exp.coverage_window(registry)
    got = {(r["window_s"], r["hop_s"], r["start_s"]): r for r in results["coverage_window"]}
    assert set(got) == set(want)
    bad = [(k, got[k], w) for k, w in want.items()
           if any(got[k][c] != w[c] for c in w) or got[k]["registry"] != registry_name
           or got[k]["policy"] != DEFAULT_POLICY.id]
    assert not bad, f"{len(bad)} coverage mismatches, first: {bad[:5]}"

    want_daily = exp.coverage_daily(registry)
    got_daily = {r["day"]: r for r in results["coverage_daily"]}
    assert set(got_daily) == set(want_daily)
    for day, w in want_daily.items():
        assert {c: got_daily[day][c] for c in w} == w, day
        assert got_daily[day]["registry"] == registry_name


def check_daily(rows: list[dict], exp: Expected) -> None:
    got = {(r["metro"], r["day"]): r for r in rows}
    assert set(got) == set(exp.metro_daily)
    for key, want in exp.metro_daily.items():
        row = got[key]
        for col in ("samples", "under_threshold", "compliant", "windows", "compliant_windows"):
            assert row[col] == want[col], (key, col, row[col], want[col])
        assert abs(row["p99_us"] - want["p99_us"]) <= 0.01 * want["p99_us"], key


def test_scenario_has_the_intended_shape(scenario):
    """Guards the test data itself: the cases the other tests rely on are really present."""
    sc, exp, _ = scenario
    assert len(set(ALL_METROS)) == len(ALL_METROS) >= 20
    assert (sc.value == THRESHOLD).sum() > 1000
    assert all(sc.late[sc.ts_ns == t].all() for t in sc.very_late_ts)
    assert 6 < sc.late.sum() < 60
    for ts, is_late in sc.boundary_late.items():
        (i,) = np.flatnonzero(sc.ts_ns == ts)
        watermark = sc.ts_ns[:i + 1].max() - LATENESS_NS
        assert (ts // PANE_NS + 1) * PANE_NS - watermark == (0 if is_late else 1)
        assert sc.late[i] == is_late
    assert np.any(np.diff(sc.ts_ns) < 0), "arrival order must not be event-time order"
    verdicts = Counter()
    for (name, length, hop, _), row in exp.metro_window.items():
        verdicts[(name, length, row["compliant"])] += 1
    assert verdicts[("北京", 60, 1)] > 30 and verdicts[("北京", 60, 0)] == 0
    assert verdicts[("तिरुवनंतपुरम", 60, 1)] == verdicts[("तिरुवनंतपुरम", 300, 1)] == 0
    assert verdicts[(SPARSE, 60, 1)] == verdicts[(SPARSE, 300, 1)] == 0
    # The edge metro sits exactly on the 0.99 boundary: both verdicts occur in both families,
    # with exactly 200 (60 s) and 1000 (300 s) samples in full windows.
    for length in (60, 300):
        assert verdicts[(EDGE, length, 1)] > 0 and verdicts[(EDGE, length, 0)] > 0
    full = [r for (m, l, _, _), r in exp.metro_window.items() if m == EDGE and l == 60]
    assert {r["samples"] for r in full} == {200}
    assert {r["under_threshold"] for r in full} == {197, 198}
    # The late-starting metro first reports exactly at midnight.
    assert exp.first_seen_ns[LATE_START] == MIDNIGHT_S * NS
    assert len(exp.metro_daily) > len(ALL_METROS)  # two UTC days


def test_jsonl_summary_and_late_samples(scenario, jsonl_run):
    sc, _, files = scenario
    summary = jsonl_run["summary"]
    n_late = int(sc.late.sum())
    assert summary.samples_read == sc.n
    assert summary.samples_late == n_late
    assert summary.samples_accepted == sc.n - n_late
    assert dict(summary.rejects_by_reason) == {"late": n_late}
    assert summary.samples_rejected == 0

    late_rows = jsonl_run["results"]["late_samples"]
    names = sc.metro_names()
    want = Counter((names[i], sc.router[i], sc.link[i], int(sc.ts_ns[i]), float(sc.value[i]))
                   for i in np.flatnonzero(sc.late))
    got = Counter((r["metro"], r["router"], r["link"], r["ts_ns"], r["rtt_us"]) for r in late_rows)
    assert got == want
    # Each landed late sample was late by the recorded watermark.
    for r in late_rows:
        assert (r["ts_ns"] // PANE_NS + 1) * PANE_NS <= r["watermark_ns"]
        assert r["source"] in {str(p) for p in files["jsonl"]}

    rejects = [json.loads(line) for line in jsonl_run["rejects"]]
    assert len(rejects) == n_late and {r["reason"] for r in rejects} == {"late"}


def test_jsonl_metro_windows_match_reference(scenario, jsonl_run):
    _, exp, _ = scenario
    check_metro_windows(jsonl_run["results"]["metro_window"], exp)


def test_jsonl_link_windows_match_reference(scenario, jsonl_run):
    _, exp, _ = scenario
    check_link_windows(jsonl_run["results"]["link_window"], exp)


def test_jsonl_coverage_with_seen_registry(scenario, jsonl_run):
    _, exp, _ = scenario
    check_coverage(jsonl_run["results"], exp, None, "seen")
    # The midnight metro is outside the registry of the window ending at midnight and inside the
    # registry of the sliding window that contains midnight.
    cov = {(r["window_s"], r["start_s"]): r for r in jsonl_run["results"]["coverage_window"]}
    assert cov[(60, MIDNIGHT_S - 60)]["metros_total"] == len(ALL_METROS) - 1
    assert cov[(60, MIDNIGHT_S)]["metros_total"] == len(ALL_METROS)
    assert cov[(300, MIDNIGHT_S - 240)]["metros_total"] == len(ALL_METROS)


def test_jsonl_daily_rollups(scenario, jsonl_run):
    _, exp, _ = scenario
    check_daily(jsonl_run["results"]["metro_daily"], exp)
    days = {r["day"]: r for r in jsonl_run["results"]["coverage_daily"]}
    assert days[T0_S // DAY_S]["metros_total"] == len(ALL_METROS) - 1  # Xi'an starts next day
    assert days[MIDNIGHT_S // DAY_S]["metros_total"] == len(ALL_METROS)


def test_second_ingest_of_same_files_changes_nothing(jsonl_run):
    first, second = jsonl_run["snap1"], jsonl_run["snap2"]
    for table in FINAL_TABLES:
        assert first[table], f"{table} is empty"
        assert second[table] == first[table], f"{table} changed on re-ingest"
    assert jsonl_run["second"].samples_accepted == jsonl_run["summary"].samples_accepted
    assert len(jsonl_run["runs"]) == 2  # the audit trail records both runs


def test_parquet_with_configured_registry(scenario, parquet_run):
    sc, exp, _ = scenario
    summary = parquet_run["summary"]
    assert summary.samples_read == sc.n and summary.samples_late == int(sc.late.sum())
    assert dict(summary.rejects_by_reason) == {"late": int(sc.late.sum())}
    results = parquet_run["results"]
    check_metro_windows(results["metro_window"], exp)
    check_link_windows(results["link_window"], exp)
    check_daily(results["metro_daily"], exp)
    check_coverage(results, exp, REGISTRY, "configured:configured")
    assert {r["metros_total"] for r in results["coverage_window"]} == {len(REGISTRY)}
    assert {r["metros_total"] for r in results["coverage_daily"]} == {len(REGISTRY)}
    # Coverage can never reach 1: 拉萨 is registered and never reports.
    assert max(r["coverage"] for r in results["coverage_window"]) <= (len(REGISTRY) - 1) / len(REGISTRY)
