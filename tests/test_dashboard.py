"""The Grafana dashboard: well-formed for grafana-clickhouse-datasource v4, provisioned, and every
panel's SQL runs against real netready tables (chdb) after the plugin's macro expansion.

Macros are expanded the way the plugin's backend does (pkg/macros/macros.go): `$__timeFilter(c)`
-> `c >= toDateTime(FROM) AND c <= toDateTime(TO)`, `$__dateFilter(c)` -> the same with
`toDate('YYYY-MM-DD')`, `$__fromTime`/`$__toTime` -> `toDateTime(EPOCH)`, `$__interval_s` -> the
interval in whole seconds (at least 1). Template variables are replaced as Grafana does before the
query leaves the browser: `${policy:sqlstring}` -> a quoted, escaped string literal; a bare
`$policy`/`${policy}` is inserted raw by the plugin's formatter (so it must not be used for strings).
"""
from __future__ import annotations

import json
import math
import re
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from pipeline.aggregate import AggregatorConfig
from pipeline.ingest import IngestConfig, ingest_paths
from pipeline.policy import DEFAULT_POLICY
from pipeline.simulate import ScenarioConfig, generate
from pipeline.warehouse import open_warehouse
from pipeline.writers import write_table

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy/grafana/dashboards/netready.json"
PROVIDER = ROOT / "deploy/grafana/provisioning/dashboards/netready.yaml"
DATASOURCE = ROOT / "deploy/grafana/provisioning/datasources/clickhouse.yaml"
COMPOSE = ROOT / "docker-compose.yml"
UID = "netready-clickhouse"
PLUGIN = "grafana-clickhouse-datasource"

NS = 1_000_000_000
START_S = 1_795_218_000 - 40 * 60  # 2026-11-21T00:00Z minus 40 min: the data spans two UTC days
DURATION_S = 80 * 60
END_S = START_S + DURATION_S
# The first column each table panel returns (time series panels always start with a time).
TABLE_FIRST_COLUMN = {"Worst metros on the last day of the range": "String",
                      "Active alerts (at the end of the range)": "DateTime"}
ALERTS_PANEL = "Active alerts (at the end of the range)"

spec = json.loads(DASHBOARD.read_text())
PANELS = spec["panels"]


def expand(sql: str, from_s: int, to_s: int, interval_s: int, policy: str) -> str:
    """The SQL ClickHouse receives from the plugin for this time range, interval and policy."""
    def day(ts: int) -> str:
        return f"toDate('{datetime.fromtimestamp(ts, timezone.utc):%Y-%m-%d}')"

    quoted = "'" + policy.replace("'", "''") + "'"
    sql = sql.replace("${policy:sqlstring}", quoted)
    sql = re.sub(r"\$\{policy\}|\$policy\b", policy, sql)
    sql = re.sub(r"\$__timeFilter\(\s*([^)]+?)\s*\)",
                 lambda m: f"{m[1]} >= toDateTime({from_s}) AND {m[1]} <= toDateTime({to_s})", sql)
    sql = re.sub(r"\$__dateFilter\(\s*([^)]+?)\s*\)",
                 lambda m: f"{m[1]} >= {day(from_s)} AND {m[1]} <= {day(to_s)}", sql)
    sql = re.sub(r"\$__fromTime\b", f"toDateTime({from_s})", sql)
    sql = re.sub(r"\$__toTime\b", f"toDateTime({to_s})", sql)
    sql = re.sub(r"\$__interval_s\b", str(max(int(interval_s), 1)), sql)
    assert "$" not in sql, f"unexpanded macro or variable left in:\n{sql}"
    return sql


def sql_of(panel: dict) -> str:
    (target,) = panel["targets"]
    return target["rawSql"]


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> Path:
    """A small simulated scenario across a UTC midnight, ingested into chdb, plus alert history.
    The warehouse is closed again: each test opens it on its own (one chdb path per process)."""
    root = tmp_path_factory.mktemp("dashboard")
    data = root / "telemetry.parquet"
    scenario = ScenarioConfig(metros=6, routers_per_metro=2, links_per_router=4, start_ns=START_S * NS,
                              duration_s=DURATION_S, seed=11)
    write_table(generate(scenario), data)
    wh = open_warehouse(f"chdb:{root / 'ch'}")
    try:
        ingest_paths([data], wh, IngestConfig(aggregator=AggregatorConfig(policy=DEFAULT_POLICY),
                                              now_ns=END_S * NS))
        if _has_alerts_table(wh):
            wh.insert("alerts", _alert_rows())
    finally:
        wh.close()
    return root / "ch"


@pytest.fixture
def wh(landed: Path):
    warehouse = open_warehouse(f"chdb:{landed}")
    try:
        yield warehouse
    finally:
        warehouse.close()


def _has_alerts_table(wh) -> bool:
    rows = wh.query("SELECT count() AS n FROM system.tables WHERE database = 'netready' AND name = 'alerts'")
    return rows["n"][0].as_py() == 1


def _alert_rows() -> pa.Table:
    """Three episodes: one still firing at END_S, one resolved before END_S, one starting after it."""
    t = START_S + 20 * 60
    rows = [  # fingerprint, alertname, status, metro, severity, starts_at, ends_at, event_time
        ("fp-active", "MetroRegression", "firing", "北京", "critical", t, 0, t),
        ("fp-resolved", "MetroNoData", "firing", "上海", "warning", t, 0, t),
        ("fp-resolved", "MetroNoData", "resolved", "上海", "warning", t, t + 300, t + 300),
        ("fp-later", "CoverageDrop", "firing", "", "warning", END_S + 600, 0, END_S + 600),
    ]
    cols = list(zip(*rows))
    ts = lambda values: pa.array(values, type=pa.int64()).cast(pa.timestamp("s", tz="UTC"))  # noqa: E731
    n = len(rows)
    return pa.table({
        "fingerprint": pa.array(cols[0], pa.string()), "alertname": pa.array(cols[1], pa.string()),
        "status": pa.array(cols[2], pa.string()), "metro": pa.array(cols[3], pa.string()),
        "policy": pa.array([DEFAULT_POLICY.id] * n, pa.string()), "severity": pa.array(cols[4], pa.string()),
        "starts_at": ts(cols[5]), "ends_at": ts(cols[6]), "event_time": ts(cols[7]),
        "flap_count": pa.array([0] * n, pa.uint32()), "labels": pa.array(["{}"] * n, pa.string()),
        "annotations": pa.array(["{}"] * n, pa.string()), "summary": pa.array(["test"] * n, pa.string()),
    })


def run_panel(wh, panel: dict, interval_s: int = 60) -> tuple[pa.Table, list[tuple[str, str]]]:
    """Rows and (name, ClickHouse type) columns of a panel's query over the whole data set."""
    sql = expand(sql_of(panel), START_S, END_S, interval_s, DEFAULT_POLICY.id)
    # chdb's Arrow output turns DateTime into uint32, so column types come from DESCRIBE.
    described = wh.query(f"DESCRIBE TABLE ({sql})")
    return wh.query(sql), list(zip(described["name"].to_pylist(), described["type"].to_pylist()))


def is_time(ch_type: str) -> bool:
    return re.match(r"(Nullable\()?(DateTime|Date)", ch_type) is not None


def is_number(ch_type: str) -> bool:
    return re.match(r"(Nullable\()?(U?Int|Float|Decimal)", ch_type) is not None


# --------------------------------------------------------------------------- structure

def test_every_panel_and_variable_uses_the_provisioned_datasource():
    datasources = yaml.safe_load(DATASOURCE.read_text())["datasources"]
    assert [(d["uid"], d["type"]) for d in datasources] == [(UID, PLUGIN)]
    assert PANELS and len({p["id"] for p in PANELS}) == len(PANELS)
    for panel in PANELS:
        assert panel["datasource"] == {"type": PLUGIN, "uid": UID}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": PLUGIN, "uid": UID}, panel["title"]
    for variable in spec["templating"]["list"]:
        assert variable["datasource"] == {"type": PLUGIN, "uid": UID}


def test_targets_use_the_v4_sql_query_format():
    for panel in PANELS:
        for target in panel["targets"]:
            assert target["editorType"] == "sql" and target["rawSql"].strip()
            assert target["pluginVersion"].startswith("4.")
            # format: 0 = time series, 1 = table (sqlds); queryType must agree with it.
            assert (target["format"], target["queryType"]) in {(0, "timeseries"), (1, "table")}, panel["title"]
            if panel["type"] == "table":
                assert target["format"] == 1, panel["title"]
            else:
                assert target["format"] == 0, panel["title"]
            # A bare $policy is inserted unquoted by the plugin: strings need ${policy:sqlstring}.
            assert not re.search(r"\$policy\b|\$\{policy\}", target["rawSql"]), panel["title"]


def test_the_expected_panels_are_there():
    kinds = {p["title"]: p["type"] for p in PANELS}
    sql = {p["title"]: sql_of(p) for p in PANELS}
    coverage = next(t for t in sql if t.startswith("National coverage"))
    assert "netready.coverage_window FINAL" in sql[coverage] and "0.75 AS target" in sql[coverage]
    assert "window_s = 60 AND hop_s = 60" in sql[coverage] and "$__timeFilter(window_start)" in sql[coverage]
    assert "netready.coverage_daily FINAL" in sql["Daily coverage"]
    assert kinds["Share of samples under the threshold, per metro"] in ("state-timeline", "heatmap")
    assert "sumMap(hist_bucket, hist_count)" in sql["p99 latency by metro (µs)"]
    assert "netready.metro_daily FINAL" in sql["Worst metros on the last day of the range"]
    assert "netready.alerts" in sql[ALERTS_PANEL]
    assert all("${policy:sqlstring}" in s for t, s in sql.items() if t != ALERTS_PANEL)
    assert any("$__interval_s" in s for s in sql.values())
    (variable,) = spec["templating"]["list"]
    assert variable["name"] == "policy" and variable["type"] == "query"
    assert variable["query"].startswith("SELECT DISTINCT policy FROM netready.metro_window")


def test_dashboards_are_provisioned_and_mounted():
    provider = yaml.safe_load(PROVIDER.read_text())
    assert provider["apiVersion"] == 1
    (entry,) = provider["providers"]
    assert entry["type"] == "file" and entry["name"]
    path = entry["options"]["path"]
    grafana = yaml.safe_load(COMPOSE.read_text())["services"]["grafana"]
    mounts = {}
    for volume in grafana["volumes"]:
        host, container, *_ = volume.split(":")
        mounts[container] = (ROOT / host).resolve()
    assert mounts.get(path) == DASHBOARD.parent.resolve(), f"{path} is not mounted from {DASHBOARD.parent}"
    assert mounts.get("/etc/grafana/provisioning") == (ROOT / "deploy/grafana/provisioning").resolve()
    assert spec["uid"] and spec["title"]


# --------------------------------------------------------------------------- the SQL runs

def test_policy_variable_query(wh):
    (variable,) = spec["templating"]["list"]
    rows = wh.query(variable["query"])
    assert rows.column(0).to_pylist() == [DEFAULT_POLICY.id]
    assert variable["current"]["value"] == DEFAULT_POLICY.id


@pytest.mark.parametrize("panel", PANELS, ids=[p["title"] for p in PANELS])
@pytest.mark.parametrize("interval_s", [60, 600])
def test_panel_sql_runs_and_returns_the_expected_shape(wh, panel, interval_s):
    if panel["title"] == ALERTS_PANEL and not _has_alerts_table(wh):
        pytest.skip("netready.alerts does not exist (schemas/clickhouse/009_alerts.sql not applied)")
    rows, columns = run_panel(wh, panel, interval_s)
    assert rows.num_rows > 0, panel["title"]
    names = [n for n, _ in columns]
    types = [t for _, t in columns]
    if panel["targets"][0]["format"] == 0:
        assert is_time(types[0]), f"{panel['title']}: time column first, got {columns}"
        if "metro" in names:
            # The long layout the plugin turns into one series per metro: time, metro, value.
            assert names[1] == "metro" and "String" in types[1], columns
            assert len(columns) == 3 and is_number(types[2]), columns
        else:
            assert all(is_number(t) for t in types[1:]), columns
        times = rows.column(0).to_pylist()
        assert times == sorted(times), "time series rows must come in time order"
    else:
        expected = TABLE_FIRST_COLUMN[panel["title"]]
        assert types[0].startswith(expected) or types[0].startswith(f"LowCardinality({expected}"), columns


def _panel(title_start: str) -> dict:
    return next(p for p in PANELS if p["title"].startswith(title_start))


def test_panels_at_60_s_agree_with_the_stored_windows(wh):
    """At the finest interval each panel shows exactly what is stored: coverage per window,
    share per metro window, and the p99 read from the histogram equals the kernel's p99_us."""
    where = (f"policy = '{DEFAULT_POLICY.id}' AND window_s = 60 AND hop_s = 60 "
             f"AND window_start >= toDateTime({START_S}) AND window_start <= toDateTime({END_S})")
    stored = wh.query("SELECT toUInt32(window_start) AS t, metro, share_under, p99_us "
                      f"FROM netready.metro_window FINAL WHERE {where}").to_pylist()
    share = {(r["t"], r["metro"]): r["share_under"] for r in stored}
    p99 = {(r["t"], r["metro"]): r["p99_us"] for r in stored}

    rows, _ = run_panel(wh, _panel("Share of samples"), 60)
    got = {(r["time"], r["metro"]): r["share_under"] for r in rows.to_pylist()}
    assert got.keys() == share.keys()
    assert all(math.isclose(got[k], share[k], rel_tol=1e-12) for k in share)

    rows, _ = run_panel(wh, _panel("p99 latency"), 60)
    got = {(r["time"], r["metro"]): r["p99_us"] for r in rows.to_pylist()}
    assert got.keys() == p99.keys()
    assert all(math.isclose(got[k], p99[k], rel_tol=1e-9) for k in p99), \
        [(k, got[k], p99[k]) for k in p99 if not math.isclose(got[k], p99[k], rel_tol=1e-9)][:5]

    coverage = wh.query("SELECT toUInt32(window_start) AS t, coverage FROM netready.coverage_window FINAL "
                        f"WHERE {where}").to_pylist()
    rows, _ = run_panel(wh, _panel("National coverage"), 60)
    got = {r["time"]: (r["coverage"], r["target"]) for r in rows.to_pylist()}
    assert got == {r["t"]: (r["coverage"], 0.75) for r in coverage}


def test_coarser_intervals_merge_counts_exactly(wh):
    rows, _ = run_panel(wh, _panel("Share of samples"), 600)
    expected = wh.query(
        "SELECT intDiv(toUInt32(window_start), 600) * 600 AS t, metro, sum(under_threshold) / sum(samples) AS s "
        f"FROM netready.metro_window FINAL WHERE policy = '{DEFAULT_POLICY.id}' AND window_s = 60 "
        f"AND hop_s = 60 GROUP BY t, metro").to_pylist()
    got = {(r["time"], r["metro"]): r["share_under"] for r in rows.to_pylist()}
    assert got == {(r["t"], r["metro"]): r["s"] for r in expected}


def test_worst_metros_are_those_of_the_last_day(wh):
    rows, _ = run_panel(wh, _panel("Worst metros"))
    last_day = datetime.fromtimestamp(END_S, timezone.utc).date()
    daily = wh.query("SELECT metro, share_under FROM netready.metro_daily FINAL "
                     f"WHERE policy = '{DEFAULT_POLICY.id}' AND day = toDate('{last_day}') "
                     "ORDER BY share_under, metro").to_pylist()
    shares = rows["share_under"].to_pylist()
    assert shares == sorted(shares) and len(shares) == min(10, len(daily))
    assert shares[0] == daily[0]["share_under"]


def test_active_alerts_are_the_unresolved_episodes(wh):
    if not _has_alerts_table(wh):
        pytest.skip("netready.alerts does not exist (schemas/clickhouse/009_alerts.sql not applied)")
    rows, _ = run_panel(wh, _panel("Active alerts"))
    assert [(r["alertname"], r["metro"]) for r in rows.to_pylist()] == [("MetroRegression", "北京")]


def test_expand_matches_the_plugin_macros():
    sql = ("SELECT 1 WHERE $__timeFilter(window_start) AND $__dateFilter(day) AND x = ${policy:sqlstring} "
           "AND t <= $__toTime AND t >= $__fromTime AND n = $__interval_s")
    out = expand(sql, 1_795_216_800, 1_795_221_600, 0, "p'1")
    assert out == ("SELECT 1 WHERE window_start >= toDateTime(1795216800) AND window_start <= "
                   "toDateTime(1795221600) AND day >= toDate('2026-11-20') AND day <= toDate('2026-11-21') "
                   "AND x = 'p''1' AND t <= toDateTime(1795221600) AND t >= toDateTime(1795216800) AND n = 1")
