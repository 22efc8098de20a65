"""Site-coverage policy: numpy-generated samples with site/dc, ingested into chdb, judged by
`pipeline.site_coverage.evaluate`, and checked exactly against an expectation computed here from
the raw samples and the definitions alone:

- a link's path is the first non-null site and the first non-null dc seen on it (arrival order);
  links without both count for no site (but do count in the metro's totals);
- per (metro, 60 s window, site, dc) samples of every link on that path are pooled; a path meets
  the statistic iff samples >= min_samples and (share: under >= required_share * samples;
  pNN: the nearest-rank NN-th percentile of the pooled values is < threshold);
- a site is covered iff any of its paths meets the statistic (its best dc wins);
- metro share = sum(weight of covered sites) / sum(weight of sites), sites = sites seen in the
  window plus the weights file's sites of that metro; weight = file weight for metros the file
  lists (unlisted sites 0), else 1; compliant iff share >= bar;
- days do the same on the whole UTC day's samples per path;
- coverage = compliant metros / metros seen.
"""
from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import ConfigError
from pipeline.ingest import IngestConfig, ingest_paths
from pipeline.policy import (DEFAULT_POLICY, SampleSharePolicy, SiteCoveragePolicy, load_policy)
from pipeline.aggregate import AggregatorConfig
from pipeline.site_coverage import evaluate
from pipeline.warehouse import open_warehouse

NS = 1_000_000_000
# Two UTC days ago: link_window keeps 400 days (TTL), so a fixed old date would expire.
T0_S = (int(time.time()) // 86_400 - 2) * 86_400
WINDOWS = 10
THRESHOLD = 1000.0
DAY_S = 86_400

# metro, router, link, site, dc, profile, interval (s), samples before the path is reported
LINKS = [
    ("北京", "bj-r1", "l1", "bj-A", "bj-dc1", "good", 0.5, 0),
    ("北京", "bj-r1", "l2", "bj-A", "bj-dc2", "bad", 0.5, 0),  # the worse path of site A
    ("北京", "bj-r2", "l1", "bj-B", "bj-dc1", "good", 0.5, 0),
    ("北京", "bj-r3", "l1", "bj-C", "bj-dc1", "bad", 0.5, 0),
    ("北京", "bj-r3", "l2", "bj-C", "bj-dc2", "mixed", 0.5, 0),  # site C covered in some windows
    ("上海", "sh-r1", "l1", "sh-D", "sh-dc1", "good", 1.0, 0),  # 60 a window: only the pooled
    ("上海", "sh-r1", "l2", "sh-D", "sh-dc1", "good", 1.0, 0),  # path reaches min_samples
    ("上海", "sh-r2", "l1", "sh-E", "sh-dc1", "mixed", 0.5, 0),
    ("上海", "sh-r9", "l1", None, None, "bad", 0.5, 0),  # no path: metro totals only
    ("上海", "sh-r8", "l1", "sh-E", None, "good", 0.5, 0),  # site without dc: no path
    ("广州", "gz-r1", "l1", "gz-F", "gz-dc1", "good", 0.5, 0),
    ("广州", "gz-r2", "l1", "gz-G", "gz-dc1", "bad", 0.5, 0),
    ("广州", "gz-r5", "l1", "gz-G", "gz-dc2", "mixed", 0.5, 37),  # path known from sample 38 on
    ("广州", "gz-r3", "l1", "gz-H", "gz-dc1", "edge", 0.5, 0),  # 117/120 under every window
    ("深圳", "sz-r1", "l1", None, None, "good", 0.5, 0),  # no sites at all
]
MIXED_P_BAD = [0.0, 0.3, 0.005, 0.02, 0.3, 0.0, 0.012, 0.3, 0.0, 0.008]

WEIGHTS_CSV = ("metro,site,weight\n北京,bj-A,1\n北京,bj-B,1\n北京,bj-C,4\n"
               "广州,gz-F,3\n广州,gz-G,1\n广州,gz-H,1\n广州,gz-I,1.5\n")


def generate(seed: int = 20280101):
    rng = np.random.default_rng(seed)
    ts, values, link_ix, has_path = [], [], [], []
    for i, (_, _, _, _, _, profile, interval, hidden) in enumerate(LINKS):
        n = int(WINDOWS * 60 / interval)
        t = (T0_S * NS + int(rng.integers(0, NS // 4)) + np.arange(n) * int(interval * NS)).astype(np.int64)
        v = rng.uniform(80.0, 990.0, n)
        window = (t // NS - T0_S) // 60
        if profile == "bad":
            p = np.full(n, 0.5)
        elif profile == "mixed":
            p = np.asarray(MIXED_P_BAD)[window]
        else:
            p = np.zeros(n)
        bad = rng.random(n) < p
        v[bad] = np.where(rng.random(int(bad.sum())) < 0.5, THRESHOLD,
                          rng.uniform(1000.5, 5000.0, int(bad.sum())))
        if profile == "edge":
            for w in range(WINDOWS):
                idx = np.flatnonzero(window == w)
                v[idx[:3]] = THRESHOLD
        ts.append(t)
        values.append(v)
        link_ix.append(np.full(n, i))
        known = np.ones(n, dtype=bool)
        known[:hidden] = False
        has_path.append(known)
    ts, values, link_ix, has_path = map(np.concatenate, (ts, values, link_ix, has_path))
    order = np.argsort(ts, kind="stable")
    return ts[order], values[order], link_ix[order], has_path[order]


def write_parquet(path: Path, ts, values, link_ix, has_path) -> None:
    cols = list(zip(*LINKS))
    site = np.array(cols[3], dtype=object)[link_ix]
    dc = np.array(cols[4], dtype=object)[link_ix]
    site[~has_path] = None
    dc[~has_path] = None
    pq.write_table(pa.table({
        "ts": pa.array(ts, type=pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "metro": pa.array(np.array(cols[0], dtype=object)[link_ix].tolist(), type=pa.string()),
        "router": pa.array(np.array(cols[1], dtype=object)[link_ix].tolist(), type=pa.string()),
        "link": pa.array(np.array(cols[2], dtype=object)[link_ix].tolist(), type=pa.string()),
        "rtt_us": pa.array(values, type=pa.float64()),
        "site": pa.array(site.tolist(), type=pa.string()),
        "dc": pa.array(dc.tolist(), type=pa.string()),
    }), path, row_group_size=2000)


# ----------------------------------------------------------------------------- expectation

def meets(policy: SiteCoveragePolicy, vals: np.ndarray) -> bool:
    n = len(vals)
    if n < policy.min_samples:
        return False
    if policy.statistic == "share":
        return Fraction(int((vals < THRESHOLD).sum()), n) >= Fraction(str(policy.required_share))
    q = Fraction(int(policy.statistic[1:]), 10 ** len(policy.statistic[1:]))
    rank = math.ceil(q * n)  # nearest rank, 1-based
    return float(np.sort(vals)[rank - 1]) < policy.threshold_us


def expected(policy: SiteCoveragePolicy, data, weights: dict | None, by_day: bool = False):
    """{(metro, start): (compliant, {site: covered})} for every metro that reported."""
    ts, values, link_ix, _ = data
    start = (ts // NS // DAY_S) * DAY_S if by_day else (ts // NS // 60) * 60
    pooled: dict[tuple, list] = defaultdict(list)
    reporting = set()
    for i, (metro, _, _, site, dc, *_rest) in enumerate(LINKS):
        mask = link_ix == i
        for s in np.unique(start[mask]).tolist():
            reporting.add((metro, s))
            if site is not None and dc is not None:
                pooled[(metro, s, site, dc)].append(values[mask & (start == s)])
    sites: dict[tuple, dict[str, bool]] = defaultdict(dict)
    for (metro, s, site, dc), parts in pooled.items():
        ok = meets(policy, np.concatenate(parts))
        sites[(metro, s)][site] = sites[(metro, s)].get(site, False) or ok
    out = {}
    for key in reporting:
        metro = key[0]
        seen = dict(sites.get(key, {}))
        listed = (weights or {}).get(metro)
        if listed is not None:
            for site in listed:
                seen.setdefault(site, False)
        weight = (lambda s: Fraction(1)) if listed is None else (lambda s: listed.get(s, Fraction(0)))
        total = sum((weight(s) for s in seen), Fraction(0))
        covered = sum((weight(s) for s, c in seen.items() if c), Fraction(0))
        ok = total > 0 and covered >= Fraction(str(policy.site_share_bar)) * total
        out[key] = (bool(ok), seen)
    return out


def parse_weights() -> dict:
    out: dict = {}
    for line in WEIGHTS_CSV.splitlines()[1:]:
        m, s, w = line.split(",")
        out.setdefault(m, {})[s] = Fraction(w)
    return out


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    data = generate()
    write_parquet(root / "paths.parquet", *data)
    weights = root / "weights.csv"
    weights.write_text(WEIGHTS_CSV)
    policies = {
        "share": SiteCoveragePolicy(site_share_bar=0.6),
        "weighted": SiteCoveragePolicy(site_share_bar=0.6, site_weights_file=str(weights)),
        "p99": SiteCoveragePolicy(statistic="p99", site_share_bar=0.6),
        "share95": SiteCoveragePolicy(required_share=0.95, site_share_bar=0.6),
    }
    out: dict = {"data": data, "policies": policies, "root": root, "weights": weights}
    with open_warehouse(f"chdb:{root / 'ch'}") as wh:
        ingest_paths([root / "paths.parquet"], wh, IngestConfig())
        for name, policy in policies.items():
            out[name] = evaluate(wh, policy, DEFAULT_POLICY.id)
        # a base policy with another threshold must be refused
        other = SampleSharePolicy(threshold_us=900.0)
        wh.insert("policies", pa.table({"id": [other.id], "definition": [other.to_json()]}))
        with pytest.raises(ConfigError, match="threshold") as refused:
            evaluate(wh, SiteCoveragePolicy(), other.id)
        out["refused"] = str(refused.value)
        with pytest.raises(ConfigError, match="threshold"):
            evaluate(wh, SiteCoveragePolicy(threshold_us=900.0), DEFAULT_POLICY.id)
        with pytest.raises(ConfigError, match="not in netready.policies"):
            evaluate(wh, SiteCoveragePolicy(), "no-such-policy")
        q = wh.query
        out["paths"] = q("SELECT metro, router, link, argMax(site, version) AS site, "
                         "argMax(dc, version) AS dc FROM netready.link_paths "
                         "GROUP BY metro, router, link").to_pylist()
        out["site_window"] = q("SELECT policy, metro, site, toInt64(toUnixTimestamp(window_start)) AS s, "
                               "window_s, best_dc, paths, samples, covered, weight "
                               "FROM netready.site_window FINAL").to_pylist()
        out["metro_window"] = q("SELECT policy, metro, toInt64(toUnixTimestamp(window_start)) AS s, "
                                "samples, under_threshold, p99_us, compliant, hist_count "
                                "FROM netready.metro_window FINAL WHERE window_s = 60 AND hop_s = 60"
                                ).to_pylist()
        out["coverage_window"] = q("SELECT policy, toInt64(toUnixTimestamp(window_start)) AS s, "
                                   "metros_total, metros_compliant, coverage "
                                   "FROM netready.coverage_window FINAL WHERE window_s = 60").to_pylist()
        out["metro_daily"] = q("SELECT policy, metro, toInt64(toUnixTimestamp(toDateTime(day, 'UTC'))) AS d, "
                               "samples, compliant FROM netready.metro_daily FINAL").to_pylist()
        out["coverage_daily"] = q("SELECT policy, metros_total, metros_compliant, coverage "
                                  "FROM netready.coverage_daily FINAL").to_pylist()
        out["policies_rows"] = q("SELECT id, definition FROM netready.policies FINAL").to_pylist()
    return out


# ----------------------------------------------------------------------------- tests

def test_link_paths_first_non_null(run):
    got = {(r["metro"], r["router"], r["link"]): (r["site"], r["dc"]) for r in run["paths"]}
    want = {(m, r, lk): (s, d) for m, r, lk, s, d, *_ in LINKS if s is not None or d is not None}
    assert got == want


@pytest.mark.parametrize("name", ["share", "weighted", "p99", "share95"])
def test_site_and_metro_verdicts_exact(run, name):
    policy = run["policies"][name]
    weights = parse_weights() if name == "weighted" else None
    want = expected(policy, run["data"], weights)
    rows = [r for r in run["site_window"] if r["policy"] == policy.id and r["window_s"] == 60]
    got_sites: dict = defaultdict(dict)
    for r in rows:
        got_sites[(r["metro"], r["s"])][r["site"]] = bool(r["covered"])
    for key, (_, seen) in want.items():
        if seen:
            assert got_sites[key] == seen, key
    assert {k for k in got_sites} == {k for k, (_, seen) in want.items() if seen}
    got_metro = {(r["metro"], r["s"]): bool(r["compliant"]) for r in run["metro_window"]
                 if r["policy"] == policy.id}
    assert got_metro == {k: v[0] for k, v in want.items()}
    # coverage per window: compliant metros / metros seen (all four start in the first window)
    cov = {r["s"]: r for r in run["coverage_window"] if r["policy"] == policy.id}
    assert sorted(cov) == [T0_S + 60 * w for w in range(WINDOWS)]
    for s, row in cov.items():
        good = sum(v[0] for k, v in want.items() if k[1] == s)
        assert (row["metros_total"], row["metros_compliant"]) == (4, good)
        assert row["coverage"] == good / 4
    # days: the day's pooled samples per path
    want_day = expected(policy, run["data"], weights, by_day=True)
    got_day = {(r["metro"], r["d"]): bool(r["compliant"]) for r in run["metro_daily"]
               if r["policy"] == policy.id}
    assert got_day == {k: v[0] for k, v in want_day.items()}
    [daily] = [r for r in run["coverage_daily"] if r["policy"] == policy.id]
    good = sum(v[0] for v in want_day.values())
    assert (daily["metros_total"], daily["metros_compliant"], daily["coverage"]) == (4, good, good / 4)


def test_metro_totals_are_the_merged_links(run):
    """metro_window rows of a site policy carry the base policy's exact totals and histograms."""
    base = {(r["metro"], r["s"]): r for r in run["metro_window"] if r["policy"] == DEFAULT_POLICY.id}
    ts, values, link_ix, _ = run["data"]
    metro_of = np.array([m for m, *_ in LINKS], dtype=object)[link_ix]
    start = (ts // NS // 60) * 60
    for policy in run["policies"].values():
        rows = {(r["metro"], r["s"]): r for r in run["metro_window"] if r["policy"] == policy.id}
        assert rows.keys() == base.keys()
        for key, row in rows.items():
            vals = values[(metro_of == key[0]) & (start == key[1])]
            assert row["samples"] == len(vals) == base[key]["samples"]
            assert row["under_threshold"] == int((vals < THRESHOLD).sum())
            assert row["hist_count"] == base[key]["hist_count"]
            exact_p99 = float(np.sort(vals)[math.ceil(0.99 * len(vals)) - 1])
            assert abs(row["p99_us"] - exact_p99) <= exact_p99 / 128 + 1e-9


def test_scenario_features(run):
    """The scenario exercises what it claims to (so the exact checks above are not vacuous)."""
    by = defaultdict(dict)
    for r in run["site_window"]:
        if r["window_s"] == 60:
            by[r["policy"]][(r["metro"], r["site"], r["s"])] = r
    p = run["policies"]
    share = by[p["share"].id]
    for w in range(WINDOWS):
        s = T0_S + 60 * w
        a = share[("北京", "bj-A", s)]
        assert (a["covered"], a["best_dc"], a["paths"]) == (1, "bj-dc1", 2)  # best path wins
        d = share[("上海", "sh-D", s)]
        assert (d["covered"], d["paths"], d["samples"]) == (1, 1, 120)  # two 60-sample links pooled
        assert share[("广州", "gz-H", s)]["covered"] == 0
        assert by[p["share95"].id][("广州", "gz-H", s)]["covered"] == 1
        assert by[p["p99"].id][("广州", "gz-H", s)]["covered"] == 0
        w_row = by[p["weighted"].id][("广州", "gz-I", s)]  # listed, never reported
        assert (w_row["covered"], w_row["samples"], w_row["weight"]) == (0, 0, 1.5)
    assert ("深圳", None) not in share
    verdict = {pol: {(r["metro"], r["s"]): r["compliant"] for r in run["metro_window"]
                     if r["policy"] == pol} for pol in (p["share"].id, p["weighted"].id, p["share95"].id)}
    bj = [(m, s) for (m, s) in verdict[p["share"].id] if m == "北京"]
    assert all(verdict[p["share"].id][k] for k in bj)  # A and B covered: 2/3 >= 0.6
    assert not all(verdict[p["weighted"].id][k] for k in bj)  # C weighs 4 of 6: the weights flip it
    assert any(verdict[p["weighted"].id][k] for k in bj)
    gz = [(m, s) for (m, s) in verdict[p["share"].id] if m == "广州"]
    assert any(verdict[p["share95"].id][k] != verdict[p["share"].id][k] for k in gz)
    assert not any(v for (m, _), v in verdict[p["share"].id].items() if m == "深圳")


def test_policies_stored_and_refusal(run):
    ids = {r["id"]: json.loads(r["definition"]) for r in run["policies_rows"]}
    for policy in run["policies"].values():
        assert ids[policy.id]["kind"] == "site-coverage"
    weighted = ids[run["policies"]["weighted"].id]
    assert weighted["site_weights"][2] == ["北京", "bj-C", "4"]
    assert "threshold" in run["refused"] and "900" in run["refused"]


def test_policy_ids_differ(tmp_path):
    weights = tmp_path / "w.csv"
    weights.write_text(WEIGHTS_CSV)
    other = tmp_path / "w2.csv"
    other.write_text(WEIGHTS_CSV.replace("4\n", "5\n"))
    variants = [SiteCoveragePolicy(), SiteCoveragePolicy(version=2), SiteCoveragePolicy(field="one_way_us"),
                SiteCoveragePolicy(threshold_us=900), SiteCoveragePolicy(required_share=0.95),
                SiteCoveragePolicy(statistic="p99"), SiteCoveragePolicy(statistic="p95"),
                SiteCoveragePolicy(min_samples=50), SiteCoveragePolicy(site_share_bar=0.75),
                SiteCoveragePolicy(site_weights_file=str(weights)),
                SiteCoveragePolicy(site_weights_file=str(other)), SiteCoveragePolicy(name="key-sites"),
                DEFAULT_POLICY]
    assert len({v.id for v in variants}) == len(variants)
    assert SiteCoveragePolicy().id == "site-coverage.v1:rtt_us<1000@0.99/min100/sites>=0.9"


def test_json_round_trip_and_load_policy(tmp_path):
    (tmp_path / "w.csv").write_text(WEIGHTS_CSV)
    for policy in (SiteCoveragePolicy(statistic="p999", min_samples=1000, site_share_bar=0.75),
                   SiteCoveragePolicy(site_weights_file=str(tmp_path / "w.csv"))):
        path = tmp_path / "p.json"
        path.write_text(policy.to_json())
        loaded = load_policy(path)
        assert loaded == policy and loaded.id == policy.id and loaded.to_json() == policy.to_json()
    # a relative weights file resolves against the JSON file's directory; the sha256 pins it
    path = tmp_path / "rel.json"
    path.write_text(json.dumps({"kind": "site-coverage", "site_weights_file": "w.csv"}))
    loaded = load_policy(path)
    assert loaded.site_weights_sha256 and loaded.weights["北京"]["bj-C"] == 4
    pinned = tmp_path / "pinned.json"
    pinned.write_text(json.dumps({"kind": "site-coverage", "site_weights_file": "w.csv",
                                  "site_weights_sha256": loaded.site_weights_sha256}))
    assert load_policy(pinned).id == loaded.id
    (tmp_path / "w.csv").write_text(WEIGHTS_CSV + "上海,sh-D,2\n")
    with pytest.raises(ConfigError, match="changed"):
        load_policy(pinned)
    # sample-share files (with or without "kind") still load
    ss = tmp_path / "ss.json"
    ss.write_text(DEFAULT_POLICY.to_json())
    assert load_policy(ss) == DEFAULT_POLICY
    ss.write_text(json.dumps({"required_share": 0.95}))
    assert load_policy(ss) == SampleSharePolicy(required_share=0.95)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"kind": "area-coverage"}))
    with pytest.raises(ConfigError, match="unknown policy kind"):
        load_policy(bad)
    for wrong in ({"statistic": "mean"}, {"site_share_bar": 0}, {"threshold_us": -1}):
        bad.write_text(json.dumps({"kind": "site-coverage", **wrong}))
        with pytest.raises(ConfigError):
            load_policy(bad)


def test_exact_path_statistic():
    """pNN on counts: the nearest-rank percentile is under iff at least ceil(q n) samples are."""
    p99 = SiteCoveragePolicy(statistic="p99", min_samples=1)
    rng = np.random.default_rng(5)
    for _ in range(300):
        n = int(rng.integers(1, 400))
        vals = np.where(rng.random(n) < rng.random() * 0.05, 1000.0, rng.uniform(1, 999, n))
        under = int((vals < 1000).sum())
        assert bool(p99.compliant([n], [under])[0]) == (np.sort(vals)[math.ceil(0.99 * n) - 1] < 1000)


def test_weights_file_validation(tmp_path):
    f = tmp_path / "w.csv"
    for text in ("北京,bj-A\n", "北京,bj-A,-1\n", "北京,bj-A,x\n", "北京,bj-A,1\n北京,bj-A,2\n"):
        f.write_text(text)
        with pytest.raises(ConfigError):
            SiteCoveragePolicy(site_weights_file=str(f))
    with pytest.raises(ConfigError):
        SiteCoveragePolicy(site_weights_file=str(tmp_path / "missing.csv"))


def test_name_index_paths_across_batches_and_restore():
    from pipeline.index import NameIndex

    def batch(rows):
        m, r, lk, s, d = zip(*rows)
        return pa.table({"metro": list(m), "router": list(r), "link": list(lk),
                         "site": pa.array(list(s), pa.string()), "dc": pa.array(list(d), pa.string())})

    index = NameIndex()
    index.encode(batch([("m", "r", "a", None, None), ("m", "r", "b", "s1", None)]))
    assert index.take_new_paths() == [("m", "r", "b", "s1", None)]
    index.encode(batch([("m", "r", "a", None, "d9"), ("m", "r", "a", "s2", "d8"),
                        ("m", "r", "b", "s3", "d1"), ("m", "r", "c", None, None)]))
    assert index.take_new_paths() == [("m", "r", "a", "s2", "d9"), ("m", "r", "b", "s1", "d1")]
    index.encode(batch([("m", "r", "a", "sX", "dX")]))
    assert index.take_new_paths() == []  # first non-null wins, nothing new
    restored = NameIndex.restore(json.loads(json.dumps(index.snapshot())))
    assert restored.take_new_paths() == [("m", "r", "a", "s2", "d9"), ("m", "r", "b", "s1", "d1")]
    restored.encode(batch([("m", "r", "c", "s5", "d5"), ("m", "r", "b", "sY", "dY")]))
    assert restored.take_new_paths() == [("m", "r", "c", "s5", "d5")]
    assert NameIndex.restore({"metros": ["m"], "links": [["m", "r", "a"]]}).take_new_paths() == []
