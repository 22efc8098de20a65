"""Readiness ranking on a small constructed warehouse, and the report's JSON fields."""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest

from pipeline import readiness
from pipeline import report as rep
from pipeline.histogram import bucket_of, representative
from pipeline.policy import DEFAULT_POLICY
from pipeline.warehouse.migrations import migrate
from pipeline.windows import WindowSpec

AS_OF = date(2026, 11, 30)
PID = DEFAULT_POLICY.id


def hist(values):
    b, c = np.unique([bucket_of(v) for v in values], return_counts=True)
    return [int(x) for x in b], [int(x) for x in c]


def p99(values):
    """Independent nearest-rank p99 read at bucket resolution, clamped to the exact min and max."""
    v = np.sort(values)
    return min(max(representative(bucket_of(v[math.ceil(0.99 * len(v)) - 1])), v[0]), v[-1])


def measures(values):
    v = np.asarray(values)
    under = int((v < 1000.0).sum())
    b, c = hist(v)
    return {"samples": len(v), "under_threshold": under, "share_under": under / len(v), "min_us": v.min(),
            "max_us": v.max(), "sum_us": v.sum(), "mean_us": v.mean(), "p50_us": 0.0, "p95_us": 0.0,
            "p99_us": 0.0, "hist_bucket": b, "hist_count": c}


def series(rng, n, median, bad_share):
    v = rng.normal(median, 40, n).clip(50, None)
    v[: int(bad_share * n)] = 1500.0 + rng.random(int(bad_share * n)) * 500
    return v


@pytest.fixture
def landed(warehouse):
    migrate(warehouse)
    rng = np.random.default_rng(1)
    # metro -> {day offset before AS_OF: (median, bad share)}
    plan = {"A": {0: (500, 0.20), 1: (500, 0.30), 2: (500, 0.40), 45: (500, 1.0)},
            "B": {0: (600, 0.03), 3: (600, 0.02)},
            "C": {0: (300, 0.0), 1: (300, 0.0), 29: (300, 0.005)}}
    raw = {m: [] for m in plan}
    daily, days_seen = [], {m: [] for m in plan}
    for metro, per_day in plan.items():
        for off, (median, bad) in per_day.items():
            v = series(rng, 200, median, bad)
            day = AS_OF - timedelta(days=off)
            m = measures(v)
            daily.append({"metro": metro, "day": day, "policy": PID, **m,
                          "compliant": int(m["under_threshold"] * 100 >= 99 * len(v)),
                          "windows": 1, "compliant_windows": 0, "version": 1})
            if off < 30:
                raw[metro].append(v)
                days_seen[metro].append((day, m["share_under"], daily[-1]["compliant"]))
    warehouse.insert("metro_daily", pa.Table.from_pylist(daily, schema=pa.schema([
        ("metro", pa.string()), ("day", pa.date32()), ("policy", pa.string()), ("samples", pa.uint64()),
        ("under_threshold", pa.uint64()), ("share_under", pa.float64()), ("min_us", pa.float64()),
        ("max_us", pa.float64()), ("sum_us", pa.float64()), ("mean_us", pa.float64()),
        ("p50_us", pa.float64()), ("p95_us", pa.float64()), ("p99_us", pa.float64()), ("compliant", pa.uint8()),
        ("hist_bucket", pa.list_(pa.uint16())), ("hist_count", pa.list_(pa.uint64())), ("windows", pa.uint32()),
        ("compliant_windows", pa.uint32()), ("version", pa.uint64())])))
    # D is registered (first seen long ago) but has no data in the period.
    warehouse.insert("metros", pa.table({"metro": ["A", "B", "C", "D"],
                                         "first_seen_ns": pa.array([0, 0, 0, 0], pa.int64())}))
    # Links of A: four links over two windows of the period, and an old terrible one.
    links = {("r1", "x"): [(0, 0.10)], ("r1", "y"): [(0, 0.50), (2, 0.30)], ("r2", "x"): [(1, 0.05)],
             ("r2", "z"): [(0, 0.0)], ("r3", "old"): [(40, 1.0)]}
    link_raw, rows = {}, []
    for (router, link), parts in links.items():
        for off, bad in parts:
            v = series(rng, 100, 500, bad)
            start = datetime.combine(AS_OF - timedelta(days=off), datetime.min.time(), timezone.utc)
            rows.append({"metro": "A", "router": router, "link": link, "window_start": start + timedelta(hours=3),
                         "window_s": 60, "hop_s": 60, "policy": PID, **measures(v), "compliant": 0, "version": 1})
            if off < 30:
                link_raw.setdefault((router, link), []).append(v)
    warehouse.insert("link_window", pa.Table.from_pylist(rows, schema=pa.schema([
        ("metro", pa.string()), ("router", pa.string()), ("link", pa.string()),
        ("window_start", pa.timestamp("s", tz="UTC")), ("window_s", pa.uint32()), ("hop_s", pa.uint32()),
        ("policy", pa.string()), ("samples", pa.uint64()), ("under_threshold", pa.uint64()),
        ("share_under", pa.float64()), ("min_us", pa.float64()), ("max_us", pa.float64()),
        ("sum_us", pa.float64()), ("mean_us", pa.float64()), ("p50_us", pa.float64()), ("p95_us", pa.float64()),
        ("p99_us", pa.float64()), ("hist_bucket", pa.list_(pa.uint16())), ("hist_count", pa.list_(pa.uint64())),
        ("compliant", pa.uint8()), ("version", pa.uint64())])))
    return warehouse, raw, days_seen, link_raw


def theil_sen_slope(points):
    x = [d.toordinal() for d, _, _ in points]
    y = [s for _, s, _ in points]
    slopes = [(y[j] - y[i]) / (x[j] - x[i]) for i in range(len(x)) for j in range(i + 1, len(x))]
    return float(np.median(slopes)) if slopes else None


def test_ranking_numbers_and_order(landed):
    warehouse, raw, days_seen, link_raw = landed
    result = readiness.compute(warehouse, DEFAULT_POLICY, WindowSpec(60, 60))
    assert result.as_of == AS_OF
    by = {m.metro: m for m in result.metros}
    # Expected order computed from the raw values: no data first, then share ascending.
    shares = {m: float((np.concatenate(v) < 1000).mean()) for m, v in raw.items()}
    expected = ["D"] + sorted(shares, key=lambda m: shares[m])
    assert [m.metro for m in result.metros] == expected == ["D", "A", "B", "C"]
    assert [m.rank for m in result.metros] == [1, 2, 3, 4]
    for metro, values in raw.items():
        got, v = by[metro], np.concatenate(values)
        assert got.samples == len(v) and got.days == len(days_seen[metro])
        assert got.share_under == pytest.approx(shares[metro], abs=0)
        assert got.p99_us == p99(v) and got.gap_us == p99(v) - 1000.0
        assert got.compliant_days_30 == sum(c for _, _, c in days_seen[metro])
        assert got.trend_share_per_day == pytest.approx(theil_sen_slope(days_seen[metro]))
    assert by["A"].trend_share_per_day > 0  # A's bad share falls towards AS_OF: improving
    d = by["D"]
    assert (d.samples, d.p99_us, d.gap_us, d.trend_share_per_day, d.worst_links) == (0, None, None, None, [])
    # Worst links of A: lowest share first, the old link outside the 30 days ignored.
    lshare = {k: float((np.concatenate(v) < 1000).mean()) for k, v in link_raw.items()}
    worst = sorted(lshare, key=lambda k: (lshare[k], k))[:3]
    assert [(lk.router, lk.link) for lk in by["A"].worst_links] == worst == [("r1", "y"), ("r1", "x"), ("r2", "x")]
    for lk in by["A"].worst_links:
        v = np.concatenate(link_raw[(lk.router, lk.link)])
        assert lk.share_under == lshare[(lk.router, lk.link)] and lk.p99_us == p99(v) and lk.samples == len(v)


def test_refresh_lands_metro_readiness(landed):
    warehouse = landed[0]
    assert readiness.refresh(warehouse, DEFAULT_POLICY, WindowSpec(60, 60)) == 4
    rows = warehouse.query("SELECT metro, rank, as_of, gap_us, worst_links, worst_routers "
                           "FROM netready.metro_readiness FINAL ORDER BY rank").to_pylist()
    assert [r["metro"] for r in rows] == ["D", "A", "B", "C"] and rows[0]["gap_us"] is None
    assert rows[1]["worst_links"] == ["y", "x", "x"] and rows[1]["worst_routers"] == ["r1", "r1", "r2"]
    assert all(r["as_of"] == AS_OF for r in rows)


def test_report_json_has_trajectory_and_ranking(landed, tmp_path):
    warehouse = landed[0]
    days = [AS_OF - timedelta(days=k) for k in range(9, -1, -1)]
    covs = [0.5 + 0.02 * k for k in range(10)]
    warehouse.insert("coverage_daily", pa.table({
        "day": pa.array(days, pa.date32()), "policy": [PID] * 10, "metros_total": pa.array([4] * 10, pa.uint32()),
        "metros_compliant": pa.array([2] * 10, pa.uint32()), "metros_reporting": pa.array([3] * 10, pa.uint32()),
        "coverage": pa.array(covs, pa.float64()), "registry": ["seen"] * 10, "version": pa.array([1] * 10, pa.uint64())}))
    built = rep.build(warehouse, DEFAULT_POLICY, WindowSpec(60, 60), top=2)
    data = built.to_dict()
    today = data["trajectory"]["today"]
    assert today["day"] == str(AS_OF) and today["coverage"] == pytest.approx(0.68)
    assert today["status"] == "on-track" and today["slack_days"] > 0
    # 0.5 + 0.02 k reaches 0.75 at k = 12.5: the first whole day is k = 13, AS_OF (k = 9) + 4.
    assert today["forecast_date"] == str(AS_OF + timedelta(days=4))
    assert len(data["trajectory"]["days"]) == 10 and data["trajectory"]["target"]["coverage"] == 0.75
    assert [m["metro"] for m in data["readiness"]["metros"]] == ["D", "A", "B", "C"]
    assert data["readiness"]["as_of"] == str(AS_OF)
    text = rep.render_text(built)
    assert "ON-TRACK" in text and "Readiness as of 2026-11-30" in text and "r1 y" in text
    png = rep.render_png(built, tmp_path / "r.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
