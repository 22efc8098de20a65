"""The simulator's promises (determinism, shape, realism, disorder) and writer round trips."""
from __future__ import annotations

import fastavro
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from pipeline import simulate
from pipeline.errors import ConfigError
from pipeline.records import CLEAN_SCHEMA
from pipeline.simulate import Incident, ScenarioConfig, generate, iter_batches, write_scenario
from pipeline.writers import encode_records_jsonl, write_table

SMALL = ScenarioConfig(metros=6, duration_s=600.0, seed=7)
NS = 1_000_000_000


@pytest.fixture(scope="module")
def small() -> pa.Table:
    return generate(SMALL)


def _rfc3339_to_ns(values: list[str]) -> np.ndarray:
    assert all(v.endswith("Z") for v in values)
    return np.array([v[:-1] for v in values], dtype="datetime64[ns]").astype(np.int64)


def test_same_seed_same_table_other_seed_differs(small: pa.Table) -> None:
    assert generate(SMALL).equals(small)
    other = generate(ScenarioConfig(metros=6, duration_s=600.0, seed=8))
    assert not other.column("rtt_us").equals(small.column("rtt_us"))


def test_shape_and_schema(small: pa.Table) -> None:
    assert small.schema.equals(CLEAN_SCHEMA)
    assert small.num_rows == SMALL.rows == 6 * 4 * 8 * 600
    links = small.group_by(["router", "link"]).aggregate([("ts_ns", "count_distinct")])
    assert links.num_rows == 6 * 4 * 8
    assert set(links.column("ts_ns_count_distinct").to_pylist()) == {600}
    ts_ns = small.column("ts_ns").to_numpy()
    assert SMALL.start_ns <= ts_ns.min() and ts_ns.max() < SMALL.start_ns + 600 * NS
    assert small.column("site").null_count == small.column("dc").null_count == 0
    assert 0 < small.column("one_way_us").null_count < small.num_rows  # some probes lack one-way


def test_unicode_then_generated_metro_names() -> None:
    names = simulate.metro_names(ScenarioConfig(metros=42))
    assert names[:4] == ["北京", "上海", "广州", "深圳"] and names[-2:] == ["metro-041", "metro-042"]
    assert simulate.metro_names(ScenarioConfig(metros=["甲", "b"])) == ["甲", "b"]


def test_unicode_names_in_rows(small: pa.Table) -> None:
    metros = set(small.column("metro").to_pylist())
    assert metros == {"北京", "上海", "广州", "深圳", "成都", "杭州"}
    assert any(r.startswith("北京-") for r in small.column("router").to_pylist()[:5000])


def test_exact_threshold_values_present(small: pa.Table) -> None:
    exact = int(np.count_nonzero(small.column("rtt_us").to_numpy() == 1000.0))
    expected = SMALL.exact_threshold_share * small.num_rows
    assert 0.5 * expected < exact < 2 * expected + 5


def test_arrival_order_within_jitter_except_late(small: pa.Table) -> None:
    ts_ns = small.column("ts_ns").to_numpy()
    assert not np.all(np.diff(ts_ns) >= 0)
    lag_ns = np.maximum.accumulate(ts_ns) - ts_ns
    late = lag_ns > SMALL.jitter_s * NS
    expected_late = SMALL.late_share * small.num_rows
    assert 1 <= np.count_nonzero(late) <= 3 * expected_late + 5
    low_s, high_s = SMALL.late_delay_s
    # A late row trails the newest event by its delay, or by all that remains once the run is over.
    jitter_ns = SMALL.jitter_s * NS
    floor_ns = np.minimum((low_s * NS) - jitter_ns, ts_ns.max() - ts_ns[late] - jitter_ns)
    assert np.all(lag_ns[late] >= floor_ns)
    assert lag_ns.max() <= high_s * NS


def test_iter_batches_matches_generate_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulate, "_CHUNK_ROWS", 5000)  # many chunks, so pending rows cross them
    config = ScenarioConfig(metros=2, duration_s=900.0, seed=3, late_share=0.01)
    whole = generate(config)
    batches = list(iter_batches(config, 7777))
    assert {b.num_rows for b in batches[:-1]} == {7777} and batches[-1].num_rows <= 7777
    assert pa.Table.from_batches(batches).equals(whole)
    lag_ns = np.maximum.accumulate(whole.column("ts_ns").to_numpy()) - whole.column("ts_ns").to_numpy()
    on_time = lag_ns <= config.jitter_s * NS
    assert 0 < np.count_nonzero(~on_time) < 0.03 * whole.num_rows


def test_default_incident_raises_latency(small: pa.Table) -> None:
    (incident,) = simulate.scenario_incidents(SMALL)
    assert incident.start_offset_s == 250.0 and incident.duration_s == 100.0
    mine = small.filter(pa.compute.equal(small.column("metro"), incident.metro))
    offset_s = (mine.column("ts_ns").to_numpy() - SMALL.start_ns) / NS
    during = (offset_s >= incident.start_offset_s) & (offset_s < incident.start_offset_s + incident.duration_s)
    rtt_us = mine.column("rtt_us").to_numpy()
    assert np.median(rtt_us[during]) - np.median(rtt_us[~during]) > 0.8 * incident.added_rtt_us


def test_explicit_incidents_and_validation() -> None:
    config = ScenarioConfig(metros=2, duration_s=60.0, incidents=[("上海", 0.0, 60.0, 5000.0)])
    table = generate(config)
    shanghai = table.filter(pa.compute.equal(table.column("metro"), "上海"))
    assert pa.compute.min(shanghai.column("rtt_us")).as_py() >= 1000.0
    assert simulate.scenario_incidents(ScenarioConfig(incidents=())) == []
    with pytest.raises(ConfigError):
        ScenarioConfig(metros=2, incidents=[Incident("火星", 0.0, 1.0, 1.0)])
    with pytest.raises(ConfigError):
        ScenarioConfig(metros=["a", "a"])


def test_some_metros_chronically_over_threshold() -> None:
    config = ScenarioConfig(duration_s=600.0)
    table = generate(config)
    grouped = table.group_by("metro").aggregate([("rtt_us", "tdigest", pa.compute.TDigestOptions(q=0.99))])
    p99_us = dict(zip(grouped.column("metro").to_pylist(),
                      (v[0] for v in grouped.column("rtt_us_tdigest").to_pylist())))
    compliant = sum(v < 1000.0 for v in p99_us.values()) / len(p99_us)
    assert 0.5 <= compliant <= 0.9
    for profile in simulate.metro_profiles(config):
        if profile.kind == "chronic":
            assert p99_us[profile.name] > 1000.0


# Writers


def _ts_of(records: list[dict]) -> np.ndarray:
    values = [r["ts"] for r in records]
    return np.array(values, np.int64) if isinstance(values[0], int) else _rfc3339_to_ns(values)


def _assert_records_equal(records: list[dict], table: pa.Table) -> None:
    assert len(records) == table.num_rows
    assert np.array_equal(_ts_of(records), table.column("ts_ns").to_numpy())
    for name in CLEAN_SCHEMA.names[1:]:
        assert [r.get(name) for r in records] == table.column(name).to_pylist(), name


@pytest.mark.parametrize("ts_style", ["rfc3339", "ns"])
def test_jsonl_round_trip(small: pa.Table, tmp_path, ts_style: str) -> None:
    path = write_table(small, tmp_path / "t.jsonl", ts_style=ts_style)
    lines = path.read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]
    _assert_records_equal(records, small)
    assert all("one_way_us" in r for r in records if r.get("one_way_us") is not None)
    assert any("one_way_us" not in r for r in records)  # nulls are omitted, not written as null
    assert lines == encode_records_jsonl(small, ts_style=ts_style)


def test_jsonl_lines_equal_orjson_of_rows(small: pa.Table) -> None:
    head = small.slice(0, 2000)
    ts_ns = head.column("ts_ns").to_pylist()
    for message, row, ns in zip(encode_records_jsonl(head, ts_style="ns"), head.to_pylist(), ts_ns):
        row = {"ts": ns, **{k: v for k, v in row.items() if k != "ts_ns" and v is not None}}
        assert message == orjson.dumps(row)


def test_json_array_round_trip(small: pa.Table, tmp_path) -> None:
    records = orjson.loads(write_table(small, tmp_path / "t.json").read_bytes())
    _assert_records_equal(records, small)
    empty = small.slice(0, 0)
    assert orjson.loads(write_table(empty, tmp_path / "e.json").read_bytes()) == []


def test_rfc3339_edges(tmp_path) -> None:
    ts_ns = [0, -1, 1_795_132_800_000_000_000, 1_795_132_800_999_999_999, 4_102_444_800_123_000_000]
    table = pa.table({"ts_ns": ts_ns, "metro": ["m"] * 5, "router": ['r"\\'] * 5, "link": ["l\n"] * 5,
                      "rtt_us": [1000.0, 0.001, 1e-7, 123456789.0, 5.5],
                      "one_way_us": [None] * 5, "site": [None] * 5, "dc": [None] * 5})
    records = [orjson.loads(m) for m in encode_records_jsonl(table)]
    assert records[1]["ts"] == "1969-12-31T23:59:59.999999999Z"
    assert records[3]["ts"] == "2026-11-20T00:00:00.999999999Z"
    _assert_records_equal(records, table.cast(CLEAN_SCHEMA))


def test_json_rejects_non_finite(small: pa.Table) -> None:
    bad = small.slice(0, 2).set_column(4, "rtt_us", pa.array([1.0, float("nan")]))
    with pytest.raises(ValueError):
        encode_records_jsonl(bad)


def test_arrow_and_parquet_round_trip(small: pa.Table, tmp_path) -> None:
    with ipc.open_file(write_table(small, tmp_path / "t.arrow")) as reader:
        assert reader.read_all().equals(small)
    assert pq.read_table(write_table(small, tmp_path / "t.parquet")).equals(small)
    assert pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0).column(0).compression == "ZSTD"


@pytest.mark.parametrize("ts_style", ["ns", "rfc3339"])
def test_avro_round_trip(small: pa.Table, tmp_path, ts_style: str) -> None:
    head = small.slice(0, 5000)
    with open(write_table(head, tmp_path / "t.avro", ts_style=ts_style), "rb") as f:
        records = list(fastavro.reader(f))
    _assert_records_equal(records, head)


def test_format_inference_and_write_scenario(tmp_path) -> None:
    with pytest.raises(ValueError):
        write_table(generate(ScenarioConfig(metros=1, duration_s=1.0)), tmp_path / "t.csv")
    config = ScenarioConfig(metros=1, duration_s=10.0, seed=5)
    path = write_scenario(config, tmp_path / "out", "parquet")
    assert path.name == "netready-sim-seed5.parquet"
    assert pq.read_table(path).equals(generate(config))
