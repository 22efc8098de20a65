"""The same schema and results on the real ClickHouse 18.16 server as on embedded chdb."""
from __future__ import annotations

import subprocess
from urllib.parse import urlparse

import numpy as np
import pytest

from pipeline.ingest import IngestConfig, ingest_paths
from pipeline.simulate import ScenarioConfig, generate
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.migrations import migrate
from pipeline.warehouse.server import ServerWarehouse
from pipeline.writers import write_table

pytestmark = pytest.mark.integration

WINDOW_COLUMNS = ("metro", "window_start", "window_s", "hop_s", "samples", "under_threshold",
                  "compliant", "p50_us", "p99_us", "min_us", "max_us")


def _client(stack, query: str, user: str = "default", password: str | None = None):
    url = urlparse(stack["CLICKHOUSE_URL"])
    cmd = ["clickhouse-client", "--host", url.hostname, "--port", str(url.port), "--user", user]
    if password is not None:
        cmd += ["--password", password]
    return subprocess.run(cmd + ["--query", query], capture_output=True, text=True, timeout=60)


@pytest.fixture()
def server(stack):
    dropped = _client(stack, "DROP DATABASE IF EXISTS netready")
    assert dropped.returncode == 0, dropped.stderr
    with open_warehouse(stack["CLICKHOUSE_URL"]) as warehouse:
        yield warehouse


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenario") / "telemetry.parquet"
    table = generate(ScenarioConfig(metros=12, routers_per_metro=2, links_per_router=4,
                                    duration_s=900, seed=7))
    write_table(table, path)
    return path, table.num_rows


def _sorted_rows(warehouse, sql: str) -> list[tuple]:
    table = warehouse.query(sql)
    return sorted(zip(*(table[c].to_pylist() for c in table.column_names)))


def test_migrations_apply_once_and_old_server_gets_plain_types(server, stack):
    assert server.features().version[:2] == (18, 16)
    first = migrate(server)
    assert first == sorted(first) and len(first) >= 6
    assert migrate(server) == []
    ddl = _client(stack, "SHOW CREATE TABLE netready.metro_window").stdout
    assert "ReplacingMergeTree(version)" in ddl
    assert "LowCardinality" not in ddl and "TTL" not in ddl and "CODEC" not in ddl


def test_server_results_equal_embedded_results(server, stack, scenario, tmp_path):
    path, rows = scenario
    config = IngestConfig(reject_path=tmp_path / "rejects.jsonl")
    on_server = ingest_paths([path], server, config)
    with open_warehouse(f"chdb:{tmp_path / 'chdb'}") as embedded:
        on_chdb = ingest_paths([path], embedded, config)
        query = (f"SELECT {', '.join(WINDOW_COLUMNS)} FROM netready.metro_window FINAL "
                 "ORDER BY metro, window_s, hop_s, window_start")
        expected = _sorted_rows(embedded, query)
        expected_cov = _sorted_rows(embedded, "SELECT toUInt32(window_start), window_s, hop_s, "
                                    "metros_total, metros_compliant FROM netready.coverage_window FINAL")
        expected_daily = _sorted_rows(embedded, "SELECT metro, samples, under_threshold, compliant, "
                                      "p99_us FROM netready.metro_daily FINAL")
    assert on_server.samples_read == on_chdb.samples_read == rows
    assert on_server.samples_late == on_chdb.samples_late
    got = _sorted_rows(server, query)
    assert len(got) == len(expected) > 0
    for mine, theirs in zip(got, expected):
        assert mine[0] == theirs[0] and tuple(mine[2:7]) == tuple(theirs[2:7]), (mine, theirs)
        assert int(mine[1].timestamp() if hasattr(mine[1], "timestamp") else mine[1]) == \
            int(theirs[1].timestamp() if hasattr(theirs[1], "timestamp") else theirs[1])
        assert np.allclose(mine[7:], theirs[7:], rtol=0, atol=0)
    assert _sorted_rows(server, "SELECT toUInt32(window_start), window_s, hop_s, metros_total, "
                        "metros_compliant FROM netready.coverage_window FINAL") == expected_cov
    assert _sorted_rows(server, "SELECT metro, samples, under_threshold, compliant, p99_us "
                        "FROM netready.metro_daily FINAL") == expected_daily

    # A client we did not write sees every accepted sample exactly once per tumbling window.
    total = _client(stack, "SELECT sum(samples) FROM netready.metro_window FINAL "
                           "WHERE window_s = 60 AND hop_s = 60")
    assert total.returncode == 0, total.stderr
    assert int(total.stdout.strip()) == on_server.samples_accepted

    # Landing the same input again changes no FINAL result.
    ingest_paths([path], server, config)
    assert _sorted_rows(server, query) == got


def test_writer_password_from_environment_and_readonly_analyst(stack, server, scenario, tmp_path,
                                                                monkeypatch):
    migrate(server)
    host = urlparse(stack["CLICKHOUSE_URL"])
    monkeypatch.setenv("NETREADY_CLICKHOUSE_PASSWORD", "writer-secret")
    writer = open_warehouse(f"clickhouse://netready_writer@{host.hostname}:{host.port}/netready")
    try:
        assert "writer-secret" not in repr(writer) and "writer-secret" not in writer.url_for_display
        path, _ = scenario
        summary = ingest_paths([path], writer, IngestConfig(reject_path=tmp_path / "r.jsonl"))
        assert summary.metro_rows > 0
    finally:
        writer.close()
    denied = _client(stack, "INSERT INTO netready.policies (id, definition) VALUES ('x', 'y')",
                     user="analyst", password="analyst-secret")
    assert denied.returncode != 0 and "readonly" in denied.stderr.lower()
    readable = _client(stack, "SELECT count() FROM netready.metro_window", user="analyst",
                       password="analyst-secret")
    assert readable.returncode == 0 and int(readable.stdout) > 0


def test_wrong_password_is_a_clear_error(stack):
    host = urlparse(stack["CLICKHOUSE_URL"])
    from pipeline.errors import SinkError

    warehouse = ServerWarehouse(host.hostname, host.port, "netready_writer", "wrong", "netready")
    with pytest.raises(SinkError) as info:
        warehouse.server_version()
    assert "wrong" not in str(info.value)
    assert "516" in str(info.value) or "192" in str(info.value) or "password" in str(info.value).lower()


def test_analyst_cannot_insert_alter_drop_or_lift_readonly(stack):
    """Every kind of write by the read-only analyst is refused (code 164) and changes nothing,
    through clickhouse-client and through netready's own client; SELECT still works. Runs on a
    scratch database so a server that wrongly allowed a DROP would lose nothing shared."""
    import uuid

    from pipeline.errors import SinkError

    db = f"netready_sec_{uuid.uuid4().hex[:10]}"
    for statement in (f"CREATE DATABASE {db}", f"CREATE TABLE {db}.t (a UInt8) ENGINE = MergeTree ORDER BY a",
                      f"INSERT INTO {db}.t VALUES (1)"):
        made = _client(stack, statement)
        assert made.returncode == 0, made.stderr
    try:
        for statement in (f"INSERT INTO {db}.t VALUES (2)", f"ALTER TABLE {db}.t DELETE WHERE 1",
                          f"ALTER TABLE {db}.t ADD COLUMN b UInt8", f"TRUNCATE TABLE {db}.t",
                          f"DROP TABLE {db}.t", f"DROP DATABASE {db}",
                          f"CREATE TABLE {db}.u (a UInt8) ENGINE = Memory", "SET readonly = 0"):
            denied = _client(stack, statement, user="analyst", password="analyst-secret")
            assert denied.returncode != 0 and "Code: 164" in denied.stderr and "readonly mode" in denied.stderr, \
                (statement, denied.stderr)
        host = urlparse(stack["CLICKHOUSE_URL"])
        analyst = ServerWarehouse(host.hostname, host.port, "analyst", "analyst-secret", "netready")
        try:
            with pytest.raises(SinkError) as info:
                analyst.execute(f"INSERT INTO {db}.t VALUES (3)")
            assert "164" in str(info.value) and "readonly" in str(info.value)
            assert "analyst-secret" not in str(info.value) and "analyst-secret" not in repr(analyst)
            assert analyst.query(f"SELECT a FROM {db}.t").column("a").to_pylist() == [1]
        finally:
            analyst.close()
        columns = _client(stack, f"SELECT name FROM system.columns WHERE database = '{db}' AND table = 't'")
        assert columns.stdout.split() == ["a"]
        assert _client(stack, f"SELECT a FROM {db}.t").stdout.split() == ["1"]
    finally:
        _client(stack, f"DROP DATABASE IF EXISTS {db}")
