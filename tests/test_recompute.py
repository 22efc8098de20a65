"""Recomputing stored verdicts under a new policy (pipeline/recompute.py, `netready recompute`).

The oracle is a fresh ingest of the same telemetry under the new threshold: the kernel then
counts every sample exactly. Recomputation from the stored histograms must match it exactly when
the threshold is unchanged or a bucket boundary, and bracket it within the reported bound
otherwise; changing only `required_share`/`min_samples` changes verdicts and nothing else.
"""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from pipeline import histogram
from pipeline.aggregate import AggregatorConfig
from pipeline.ingest import IngestConfig, ingest_paths
from pipeline.policy import DEFAULT_POLICY, SampleSharePolicy
from pipeline.recompute import RecomputeError, recompute, threshold_is_boundary, under_bounds
from pipeline.simulate import ScenarioConfig, generate
from pipeline.warehouse import open_warehouse
from pipeline.writers import write_table

NS = 1_000_000_000
START_S = 1_795_218_000 - 40 * 60  # 40 minutes before 2026-11-21T00:00Z: two UTC days
DURATION_S = 80 * 60
END_S = START_S + DURATION_S
BOUNDARY = (1008.0, 896.0, 1024.0)  # low edges of histogram buckets
NOT_BOUNDARY = (1003.0, 900.0, 1500.0, 250.5)
VERDICT_ONLY = (SampleSharePolicy(required_share=0.95), SampleSharePolicy(min_samples=500),
                SampleSharePolicy(required_share=0.999, min_samples=50))


def fresh(policy: SampleSharePolicy) -> SampleSharePolicy:
    """The oracle: the same definition under another name, ingested from the raw telemetry."""
    return replace(policy, name="fresh")


def recomputed(policy: SampleSharePolicy) -> SampleSharePolicy:
    return replace(policy, name="recomputed")


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> tuple[Path, Path]:
    """Telemetry ingested under the default policy and, as oracles, under every policy tested."""
    root = tmp_path_factory.mktemp("recompute")
    data = root / "telemetry.parquet"
    scenario = ScenarioConfig(metros=6, routers_per_metro=2, links_per_router=4, start_ns=START_S * NS,
                              duration_s=DURATION_S, seed=5)
    write_table(generate(scenario), data)
    wh = open_warehouse(f"chdb:{root / 'ch'}")
    try:
        oracles = [SampleSharePolicy(threshold_us=t) for t in BOUNDARY + NOT_BOUNDARY] + list(VERDICT_ONLY)
        for policy in [DEFAULT_POLICY, *map(fresh, oracles)]:
            config = IngestConfig(aggregator=AggregatorConfig(policy=policy), now_ns=END_S * NS)
            ingest_paths([data], wh, config)
    finally:
        wh.close()
    return root / "ch", data


@pytest.fixture
def wh(landed):
    warehouse = open_warehouse(f"chdb:{landed[0]}")
    try:
        yield warehouse
    finally:
        warehouse.close()


def windows(wh, policy_id: str) -> dict[tuple, dict]:
    rows = wh.query("SELECT toString(metro) AS metro, toUInt32(window_start) AS t, window_s, hop_s, samples, "
                    "under_threshold, share_under, compliant, p99_us, hist_bucket, hist_count, links "
                    f"FROM netready.metro_window FINAL WHERE policy = '{policy_id}'").to_pylist()
    return {(r["metro"], r["t"], r["window_s"], r["hop_s"]): r for r in rows}


def table(wh, name: str, policy_id: str, key: str, cols: str) -> dict:
    rows = wh.query(f"SELECT toString({key}) AS k, {cols} FROM netready.{name} FINAL "
                    f"WHERE policy = '{policy_id}'").to_pylist()
    return {r.pop("k"): r for r in rows}


def coverage(wh, policy_id: str) -> tuple[dict, dict]:
    cols = "metros_total, metros_compliant, metros_reporting, coverage"
    return (table(wh, "coverage_window", policy_id, "(window_start, window_s, hop_s)", cols),
            table(wh, "coverage_daily", policy_id, "day", cols))


def daily(wh, policy_id: str) -> dict:
    return table(wh, "metro_daily", policy_id, "(metro, day)",
                 "samples, under_threshold, compliant, windows, compliant_windows")


# --------------------------------------------------------------------------- the maths alone

def test_1000_us_is_a_bucket_boundary():
    assert histogram.bucket_bounds(histogram.bucket_of(1000.0))[0] == 1000.0
    assert all(threshold_is_boundary(t) for t in BOUNDARY)
    assert not any(threshold_is_boundary(t) for t in NOT_BOUNDARY)


def test_under_bounds_on_a_handmade_histogram():
    values = [100.0, 999.0, 1000.0, 1001.0, 1002.0, 1007.9, 1500.0]
    buckets = sorted({histogram.bucket_of(v) for v in values})
    counts = [sum(histogram.bucket_of(v) == b for v in values) for b in buckets]
    offsets = np.array([0, len(buckets)])
    stored = np.array([sum(v < 1000.0 for v in values)])  # exact under the stored 1000 µs threshold

    def bounds(t):
        b = under_bounds(offsets, np.array(buckets), np.array(counts), stored, 1000.0, t)
        return int(b.lower[0]), int(b.upper[0])

    assert bounds(1000.0) == (2, 2)  # unchanged threshold: the stored exact count
    assert bounds(1008.0) == (6, 6)  # a boundary: exact
    # [1000, 1008) holds 4 samples; 1003 splits it: between 2 (the exact count at 1000) and 6.
    assert bounds(1003.0) == (2, 6)
    true = sum(v < 1003.0 for v in values)
    assert 2 <= true <= 6
    # [992, 1000) holds 999.0 only: below 1000, the stored count caps the upper bound.
    assert bounds(995.0) == (1, 2)
    assert bounds(2000.0) == (7, 7)


# --------------------------------------------------------------------------- against fresh ingests

def test_same_threshold_reproduces_stored_verdicts_exactly(wh):
    target = SampleSharePolicy(version=2)  # same definition, new id
    summary = recompute(wh, target, DEFAULT_POLICY.id)
    stored, again = windows(wh, DEFAULT_POLICY.id), windows(wh, target.id)
    assert summary.windows_recomputed == len(stored) == len(again) > 0
    assert summary.threshold_exact and summary.max_ambiguous_samples == 0 and summary.max_share_error == 0
    assert summary.compliant_before == summary.compliant_after == sum(r["compliant"] for r in stored.values())
    assert summary.window_families == ["60", "300/60"]
    assert again == stored
    assert coverage(wh, target.id) == coverage(wh, DEFAULT_POLICY.id)
    assert daily(wh, target.id) == daily(wh, DEFAULT_POLICY.id)


@pytest.mark.parametrize("threshold_us", BOUNDARY)
def test_boundary_threshold_equals_a_fresh_ingest(wh, threshold_us):
    policy = SampleSharePolicy(threshold_us=threshold_us)
    summary = recompute(wh, recomputed(policy), DEFAULT_POLICY.id)
    assert summary.threshold_exact and summary.max_ambiguous_samples == 0 and summary.verdicts_uncertain == 0
    got, truth = windows(wh, recomputed(policy).id), windows(wh, fresh(policy).id)
    assert got.keys() == truth.keys()
    for key, row in truth.items():
        assert got[key]["under_threshold"] == row["under_threshold"], key
        assert got[key]["compliant"] == row["compliant"], key
    assert coverage(wh, recomputed(policy).id) == coverage(wh, fresh(policy).id)
    assert daily(wh, recomputed(policy).id) == daily(wh, fresh(policy).id)
    stored = windows(wh, DEFAULT_POLICY.id)
    changed = sum(truth[k]["under_threshold"] != r["under_threshold"] for k, r in stored.items())
    assert changed > 0, "the scenario should have samples between 1000 µs and the new threshold"


@pytest.mark.parametrize("threshold_us", NOT_BOUNDARY)
def test_non_boundary_threshold_is_within_the_stated_bound(wh, threshold_us):
    policy = SampleSharePolicy(threshold_us=threshold_us)
    stored = windows(wh, DEFAULT_POLICY.id)
    summary = recompute(wh, recomputed(policy), DEFAULT_POLICY.id)
    got, truth = windows(wh, recomputed(policy).id), windows(wh, fresh(policy).id)
    assert got.keys() == truth.keys() == stored.keys()
    assert not summary.threshold_exact
    worst_samples, worst_share = 0, 0.0
    for key, row in truth.items():
        # The per-window bound, recomputed from the stored row, brackets the true count.
        s = stored[key]
        b = under_bounds(np.array([0, len(s["hist_bucket"])]), np.array(s["hist_bucket"]),
                         np.array(s["hist_count"]), np.array([s["under_threshold"]]),
                         DEFAULT_POLICY.threshold_us, threshold_us)
        assert got[key]["under_threshold"] == b.lower[0] <= row["under_threshold"] <= b.upper[0], key
        missed = row["under_threshold"] - got[key]["under_threshold"]
        worst_samples = max(worst_samples, missed)
        worst_share = max(worst_share, missed / row["samples"])
        assert b.ambiguous[0] <= summary.max_ambiguous_samples
        # Conservative: a window judged compliant is compliant.
        assert not got[key]["compliant"] or row["compliant"], key
    assert worst_samples <= summary.max_ambiguous_samples
    assert worst_share <= summary.max_share_error + 1e-12
    flipped = sum(got[k]["compliant"] != r["compliant"] for k, r in truth.items())
    assert flipped <= summary.verdicts_uncertain
    print(f"threshold {threshold_us}: stated bound {summary.max_ambiguous_samples} samples / "
          f"{summary.max_share_error:.4%}; measured {worst_samples} samples / {worst_share:.4%}; "
          f"{flipped} of {summary.verdicts_uncertain} uncertain verdicts flipped")


@pytest.mark.parametrize("policy", VERDICT_ONLY, ids=lambda p: p.id)
def test_share_and_min_samples_change_only_verdicts(wh, policy):
    stored = windows(wh, DEFAULT_POLICY.id)
    summary = recompute(wh, recomputed(policy), DEFAULT_POLICY.id)
    assert summary.threshold_exact and summary.max_ambiguous_samples == 0
    got, truth = windows(wh, recomputed(policy).id), windows(wh, fresh(policy).id)
    for key, row in stored.items():
        new = got[key]
        without_verdict = lambda r: {k: v for k, v in r.items() if k != "compliant"}  # noqa: E731
        assert without_verdict(new) == without_verdict(row), key
        expected = bool(policy.compliant(row["samples"], row["under_threshold"]))
        assert new["compliant"] == truth[key]["compliant"] == expected, key
    assert coverage(wh, recomputed(policy).id) == coverage(wh, fresh(policy).id)
    assert sum(got[k]["compliant"] != r["compliant"] for k, r in stored.items()) > 0, "verdicts should change"


def test_a_recomputed_source_counts_only_as_lower_bounds(wh):
    """Recomputing from a recomputed policy: its counts off a boundary are lower bounds, so the
    bound must not claim exactness, yet still bracket the truth; a boundary target is exact again."""
    first = SampleSharePolicy(name="chain-1", threshold_us=1003.0)
    assert not recompute(wh, first, DEFAULT_POLICY.id).threshold_exact
    for name, threshold_us in (("chain-2", 1003.0), ("chain-3", 900.0), ("chain-4", 1008.0)):
        target = SampleSharePolicy(name=name, threshold_us=threshold_us)
        summary = recompute(wh, target, first.id)
        assert not summary.source_exact
        assert summary.threshold_exact == threshold_is_boundary(threshold_us)
        got, truth = windows(wh, target.id), windows(wh, fresh(SampleSharePolicy(threshold_us=threshold_us)).id)
        assert got.keys() == truth.keys()
        for key, row in truth.items():
            missed = row["under_threshold"] - got[key]["under_threshold"]
            assert 0 <= missed <= summary.max_ambiguous_samples, (name, key)
            if summary.threshold_exact:
                assert missed == 0
    runs = wh.query("SELECT policy, sources FROM netready.ingest_runs WHERE command = 'recompute'").to_pylist()
    assert {"policy": first.id, "sources": [DEFAULT_POLICY.id]} in runs


def test_another_measured_field_is_refused(wh):
    one_way = SampleSharePolicy(name="one-way", field="one_way_us", threshold_us=500.0)
    with pytest.raises(RecomputeError, match="rtt_us.*one_way_us"):
        recompute(wh, one_way, DEFAULT_POLICY.id)
    assert windows(wh, one_way.id) == {}


def test_unknown_source_is_refused(wh):
    with pytest.raises(RecomputeError, match="no metro windows stored"):
        recompute(wh, recomputed(DEFAULT_POLICY), "sample-share.v9:rtt_us<1@0.5/min1")


def test_day_range_limits_the_recomputation(wh):
    last_day = datetime.fromtimestamp(END_S, timezone.utc).date()
    target = SampleSharePolicy(name="last-day", threshold_us=1008.0)
    summary = recompute(wh, target, DEFAULT_POLICY.id, first_day=last_day, last_day=last_day)
    day_start = int(datetime(last_day.year, last_day.month, last_day.day, tzinfo=timezone.utc).timestamp())
    stored = [k for k in windows(wh, DEFAULT_POLICY.id) if k[1] >= day_start]
    assert summary.windows_recomputed == len(stored) == len(windows(wh, target.id)) > 0
    assert summary.first_window.startswith(last_day.isoformat())
    assert list(coverage(wh, target.id)[1]) == [last_day.isoformat()]
    empty = recompute(wh, replace(target, name="nothing"), DEFAULT_POLICY.id,
                      first_day=date(2020, 1, 1), last_day=date(2020, 1, 2))
    assert empty.windows_recomputed == 0 and empty.coverage_window_rows == 0


# --------------------------------------------------------------------------- the command

def test_cli_recompute(landed, tmp_path, netready):
    url = f"chdb:{landed[0]}"
    path = tmp_path / "policy.json"
    path.write_text(SampleSharePolicy(name="cli", threshold_us=1003.0).to_json())
    proc = netready("--clickhouse", url, "recompute", "--policy", path, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["source_policy"] == DEFAULT_POLICY.id
    assert summary["target_policy"] == "cli.v1:rtt_us<1003@0.99/min100"
    assert summary["windows_recomputed"] > 0 and summary["max_ambiguous_samples"] > 0
    assert 0 < summary["max_share_error"] < 1

    proc = netready("--clickhouse", url, "recompute", "--policy", path, "--from", "2026-11-21",
                    "--to", "2026-11-21")
    assert proc.returncode == 0, proc.stderr
    assert "recomputed" in proc.stdout and "2026-11-21T00:00:00Z" in proc.stdout and "at most" in proc.stdout

    one_way = tmp_path / "one_way.json"
    one_way.write_text(json.dumps({"kind": "sample-share", "field": "one_way_us", "threshold_us": 500.0}))
    proc = netready("--clickhouse", url, "recompute", "--policy", one_way)
    assert proc.returncode == 1 and "measure rtt_us" in proc.stderr and "one_way_us" in proc.stderr

    # A site-coverage file goes to the site evaluator, which refuses a threshold with no stored
    # sample-share windows to reuse.
    other_kind = tmp_path / "site.json"
    other_kind.write_text(json.dumps({"kind": "site-coverage", "threshold_us": 700.0}))
    proc = netready("--clickhouse", url, "recompute", "--policy", other_kind)
    assert proc.returncode == 1 and "cannot be reused" in proc.stderr
