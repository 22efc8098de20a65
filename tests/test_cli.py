"""The `netready` command line, run as users run it (a subprocess of the console script)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from pipeline import __version__
from pipeline.policy import DEFAULT_POLICY, SampleSharePolicy
from pipeline.warehouse import open_warehouse

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


REPO_ROOT = Path(__file__).resolve().parents[1]


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def landed(tmp_path_factory, netready_in):
    """`simulate` a small scenario to Parquet, then `ingest` it into a fresh embedded warehouse."""
    root = tmp_path_factory.mktemp("cli")
    data = root / "telemetry.parquet"
    proc = ok(netready_in(root, "simulate", "--out", data, "--metros", 6, "--routers", 2,
                          "--links", 2, "--duration-s", 1200, "--interval-s", 1, "--seed", 3))
    assert data.exists() and data.stat().st_size > 0 and "wrote" in proc.stdout
    url = f"chdb:{root / 'ch'}"
    proc = ok(netready_in(root, "--clickhouse", url, "ingest", data, "--reject-file",
                          root / "rejects.jsonl", "--json"))
    summary = json.loads(proc.stdout)
    assert summary["sources"] == [str(data)] and summary["metro_window_rows"] > 0
    return root, url, summary


def test_version(netready):
    proc = ok(netready("--version"))
    assert __version__ in proc.stdout and "netready" in proc.stdout


def test_ingest_summary_is_consistent(landed):
    _, _, s = landed
    assert s["samples_read"] == s["samples_accepted"] + s["samples_late"] + s["samples_rejected"]
    assert s["samples_accepted"] > 10_000
    assert s["coverage_window_rows"] > 0 and s["daily_rows"] > 0


def test_report_writes_png_and_json(landed, netready_in):
    root, url, _ = landed
    png = root / "out" / "report.png"
    proc = ok(netready_in(root, "--clickhouse", url, "report", "--png", png, "--json"))
    assert png.exists() and png.stat().st_size > 1000
    assert png.read_bytes()[:8] == PNG_MAGIC
    report = json.loads(proc.stdout)
    assert report["policy"] == DEFAULT_POLICY.id and report["window"] == "60"
    assert report["png"] == str(png)
    assert report["coverage_window"]["count"] > 0
    first = report["coverage_window"]["first"]
    assert 0.0 <= first["coverage"] <= 1.0 and first["metros_total"] >= first["metros_compliant"]
    assert report["coverage_daily"] and all(0.0 <= d["coverage"] <= 1.0 for d in report["coverage_daily"])
    assert len(report["metros"]) == 6

    proc = ok(netready_in(root, "--clickhouse", url, "report", "--window", "300/60", "--png",
                          root / "sliding.png"))
    assert "policy" in proc.stdout and (root / "sliding.png").read_bytes()[:8] == PNG_MAGIC


def test_sql_json_and_csv(landed, netready_in):
    root, url, summary = landed
    query = "SELECT count() FROM netready.metro_window"
    rows = json.loads(ok(netready_in(root, "--clickhouse", url, "sql", query, "--format", "json")).stdout)
    assert rows == [{"count()": summary["metro_window_rows"]}]

    out = ok(netready_in(root, "--clickhouse", url, "sql", query, "--format", "csv")).stdout
    assert list(csv.reader(io.StringIO(out))) == [["count()"], [str(summary["metro_window_rows"])]]

    table = ok(netready_in(root, "--clickhouse", url, "sql",
                           "SELECT metro, count() AS n FROM netready.metro_window FINAL "
                           "GROUP BY metro ORDER BY metro")).stdout
    assert "metro" in table and len(table.strip().splitlines()) == 2 + 6


def test_sql_error_is_reported_cleanly(landed, netready_in):
    root, url, _ = landed
    proc = netready_in(root, "--clickhouse", url, "sql", "SELECT * FROM netready.no_such_table")
    assert proc.returncode != 0
    assert "netready: error:" in proc.stderr and "Traceback" not in proc.stderr


def test_migrate_twice_is_idempotent(netready, tmp_path):
    url = f"chdb:{tmp_path / 'ch'}"
    versions = [int(p.name[:3]) for p in sorted((REPO_ROOT / "schemas" / "clickhouse").glob("[0-9][0-9][0-9]_*.sql"))]
    assert versions[:6] == [1, 2, 3, 4, 5, 6]
    first = ok(netready("--clickhouse", url, "migrate")).stdout
    assert f"applied {versions}" in first
    second = ok(netready("--clickhouse", url, "migrate")).stdout
    assert "applied nothing new" in second
    rows = json.loads(ok(netready("--clickhouse", url, "sql",
                                  "SELECT version, count() AS n FROM netready.schema_migrations "
                                  "GROUP BY version ORDER BY version", "--format", "json")).stdout)
    assert rows == [{"version": v, "n": 1} for v in versions]


@pytest.mark.parametrize("spec", ["70/60", "0", "abc", "60/0"])
def test_bad_window_is_a_clear_error(netready, tmp_path, spec):
    data = tmp_path / "one.jsonl"
    data.write_text('{"ts": 1764546000000000000, "metro": "a", "router": "r", "link": "l", "rtt_us": 1}\n')
    proc = netready("--clickhouse", f"chdb:{tmp_path / 'ch'}", "ingest", data, "--window", spec)
    assert proc.returncode != 0
    assert proc.stderr.startswith("netready: error:"), proc.stderr
    assert "window" in proc.stderr and "Traceback" not in proc.stderr


def test_config_policy_changes_the_policy_id_in_rows(landed, netready, tmp_path):
    root, _, _ = landed
    data = root / "telemetry.parquet"
    config = tmp_path / "netready.toml"
    config.write_text('windows = ["60"]\n\n[policy]\nthreshold_us = 800\n')
    url = f"chdb:{tmp_path / 'ch'}"
    ok(netready("--config", config, "--clickhouse", url, "ingest", data, "--reject-file",
                tmp_path / "r.jsonl"))
    ok(netready("--clickhouse", url, "ingest", data, "--window", "60", "--reject-file",
                tmp_path / "r.jsonl"))  # the same data under the default policy, side by side
    strict = SampleSharePolicy(threshold_us=800)
    assert strict.id == "sample-share.v1:rtt_us<800@0.99/min100"

    # Read back in-process (the subprocesses have exited, so the data directory is free).
    with open_warehouse(url) as wh:
        def sql(query: str) -> list[dict]:
            return wh.query(query).to_pylist()

        by_policy = {r["policy"]: r for r in sql(
            "SELECT policy, sum(samples) AS n, sum(under_threshold) AS under, count() AS rows "
            "FROM netready.metro_window FINAL GROUP BY policy")}
        assert set(by_policy) == {strict.id, DEFAULT_POLICY.id}
        assert by_policy[strict.id]["n"] == by_policy[DEFAULT_POLICY.id]["n"]
        assert by_policy[strict.id]["rows"] == by_policy[DEFAULT_POLICY.id]["rows"]
        assert by_policy[strict.id]["under"] < by_policy[DEFAULT_POLICY.id]["under"]
        for table in ("coverage_window", "metro_daily", "coverage_daily"):
            assert {r["policy"] for r in sql(f"SELECT DISTINCT policy FROM netready.{table}")} == \
                {strict.id, DEFAULT_POLICY.id}, table
        definitions = {r["id"]: json.loads(r["definition"]) for r in sql(
            "SELECT id, definition FROM netready.policies FINAL")}
        assert definitions[strict.id]["threshold_us"] == 800
        runs = sql("SELECT policy, windows FROM netready.ingest_runs")
        assert {(r["policy"], r["windows"]) for r in runs} == {(strict.id, "60"), (DEFAULT_POLICY.id, "60")}


def test_bad_config_is_a_clear_error(netready, tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[policy]\nthreshold_us = -5\n")
    proc = netready("--config", config, "migrate")
    assert proc.returncode != 0 and "threshold_us" in proc.stderr and "Traceback" not in proc.stderr
    config.write_text("[policy]\nthresold_us = 800\n")  # typo: a clear error, not a traceback
    proc = netready("--config", config, "migrate")
    assert proc.returncode != 0 and "thresold_us" in proc.stderr and "Traceback" not in proc.stderr
    config.write_text("lateness_s = 'soon'\n")
    proc = netready("--config", config, "migrate")
    assert proc.returncode != 0 and "lateness_s" in proc.stderr and "Traceback" not in proc.stderr
    config.write_text("colour = 'blue'\n")
    proc = netready("--config", config, "migrate")
    assert proc.returncode != 0 and "unknown settings" in proc.stderr and "colour" in proc.stderr


def test_negative_lateness_is_a_usage_error(netready, tmp_path):
    data = tmp_path / "one.jsonl"
    data.write_text('{"ts": 1764546000000000000, "metro": "a", "router": "r", "link": "l", "rtt_us": 1}\n')
    proc = netready("--clickhouse", f"chdb:{tmp_path / 'ch'}", "ingest", data, "--lateness-s", "-5")
    assert proc.returncode == 2 and "--lateness-s" in proc.stderr and "Traceback" not in proc.stderr


def test_recompute_with_a_site_coverage_policy(netready, tmp_path):
    """The recompute command dispatches on the policy file's kind and lands the site policy's rows."""
    data = tmp_path / "t.parquet"
    ok(netready("simulate", "--out", data, "--metros", "4", "--routers", "2", "--links", "2",
                "--duration-s", "600"))
    url = f"chdb:{tmp_path / 'ch'}"
    ok(netready("--clickhouse", url, "ingest", data))
    policy = tmp_path / "site.json"
    policy.write_text(json.dumps({"kind": "site-coverage", "site_share_bar": 0.5}))
    summary = json.loads(ok(netready("--clickhouse", url, "recompute", "--policy", policy, "--json")).stdout)
    assert summary["policy"].startswith("site-coverage.v1:") and summary["site_rows"] > 0
    rows = json.loads(ok(netready("--clickhouse", url, "sql",
                                  "SELECT DISTINCT policy FROM netready.coverage_window FINAL ORDER BY policy",
                                  "--format", "json")).stdout)
    assert [r["policy"] for r in rows] == sorted(["sample-share.v1:rtt_us<1000@0.99/min100", summary["policy"]])


def test_demo_shows_coverage_trajectory_and_writes_the_chart(netready, tmp_path):
    """The README's main job, scaled down: simulate, ingest into chdb, report with the chart."""
    out = ok(netready("demo", "--data-dir", tmp_path / "demo", "--metros", "8", "--days", "3")).stdout
    assert "Target 75% of metros by 2028-12-31" in out and "Forecast" in out
    assert "National coverage by UTC day" in out and "Readiness" in out
    chart = tmp_path / "demo" / "report.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 20_000
    days = json.loads(ok(netready("--clickhouse", f"chdb:{tmp_path / 'demo' / 'chdb'}", "sql",
                                  "SELECT count() AS n FROM netready.coverage_daily FINAL",
                                  "--format", "json")).stdout)
    assert days == [{"n": 3}]
