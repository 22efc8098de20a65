"""Every file format round-trips a small table; unreadable files raise DecodeError naming them."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import fastavro
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from pipeline.decode import read_path
from pipeline.errors import DecodeError
from pipeline.records import CLEAN_SCHEMA

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "telemetry.avsc"
TS0_NS = 1_780_000_000_123_456_789


def records(n: int = 5) -> list[dict]:
    return [{"ts": TS0_NS + i, "metro": ["北京", "São Paulo", "shanghai"][i % 3], "router": f"r{i}",
             "link": "xe-0/0/1", "rtt_us": 100.5 + i, "one_way_us": None if i % 2 else 50.25,
             "site": "ap1" if i % 2 else None, "dc": "dc1", "probe": "twamp"} for i in range(n)]


def expected(recs: list[dict]) -> list[dict]:
    return [{"ts_ns": r["ts"], **{k: r.get(k) for k in CLEAN_SCHEMA.names[1:]}} for r in recs]


def read_all(path: Path, **kw) -> tuple[list[dict], list[int], list]:
    chunks = list(read_path(path, **kw))
    for c in chunks:
        assert c.table.schema.names == CLEAN_SCHEMA.names
        assert c.table.num_rows == len(c.positions)
    rows = [row for c in chunks for row in c.table.to_pylist()]
    return rows, [int(p) for c in chunks for p in c.positions], [r for c in chunks for r in c.rejects]


def arrow_table(recs: list[dict], ts_type: pa.DataType = pa.timestamp("ns", tz="UTC")) -> pa.Table:
    table = pa.Table.from_pylist(recs)
    return table.set_column(0, "ts", pa.array([r["ts"] for r in recs], pa.int64()).cast(ts_type))


@pytest.mark.parametrize("name", ["t.jsonl", "t.ndjson", "t.jsonl.gz", "t.json"])
def test_json_lines_round_trip(tmp_path: Path, name: str) -> None:
    recs = records()
    data = b"".join(orjson.dumps(r) + b"\n" for r in recs)
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    rows, positions, rejects = read_all(path)
    assert rows == expected(recs) and positions == [1, 2, 3, 4, 5] and rejects == []


def test_json_lines_chunks_keep_line_numbers(tmp_path: Path) -> None:
    recs = records(10)
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in recs))  # no final newline
    rows, positions, _ = read_all(path, chunk_rows=3)
    assert rows == expected(recs) and positions == list(range(1, 11))


@pytest.mark.parametrize("name", ["t.json", "t.json.gz"])
def test_json_array_document(tmp_path: Path, name: str) -> None:
    recs = records()
    data = orjson.dumps(recs)
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    rows, positions, _ = read_all(path)
    assert rows == expected(recs) and positions == [0, 1, 2, 3, 4]


def test_json_single_object_document(tmp_path: Path) -> None:
    recs = records(1)
    path = tmp_path / "one.json"
    path.write_bytes(orjson.dumps(recs[0], option=orjson.OPT_INDENT_2))
    rows, positions, _ = read_all(path)
    assert rows == expected(recs) and positions == [0]


def test_avro_container(tmp_path: Path) -> None:
    recs = records()
    recs[1]["ts"] = "2026-05-28T08:00:00.000000001+08:00"
    schema = fastavro.parse_schema(json.loads(SCHEMA_PATH.read_text()))
    path = tmp_path / "t.avro"
    with path.open("wb") as f:
        fastavro.writer(f, schema, recs)
    rows, positions, rejects = read_all(path, chunk_rows=2)
    want = expected(recs)
    want[1]["ts_ns"] = 1_779_926_400_000_000_001
    assert rows == want and positions == [0, 1, 2, 3, 4] and rejects == []


@pytest.mark.parametrize("ts_type", [pa.timestamp("ns", tz="UTC"), pa.timestamp("us"),
                                     pa.timestamp("ns", tz="Asia/Shanghai"), pa.int64()])
@pytest.mark.parametrize("layout", ["file", "stream", "parquet"])
def test_arrow_and_parquet(tmp_path: Path, ts_type: pa.DataType, layout: str) -> None:
    recs = records()
    table = arrow_table(recs, pa.timestamp("ns", tz="UTC"))
    table = table.set_column(0, "ts", pa.array([r["ts"] for r in recs], pa.int64()).cast(
        ts_type if not pa.types.is_timestamp(ts_type) or ts_type.unit == "ns" else pa.int64()))
    if pa.types.is_timestamp(ts_type) and ts_type.unit == "us":
        table = table.set_column(0, "ts", pa.array([r["ts"] // 1000 for r in recs], pa.int64()).cast(ts_type))
        for r in recs:
            r["ts"] = r["ts"] // 1000 * 1000
    path = tmp_path / ("t.parquet" if layout == "parquet" else "t.arrows" if layout == "stream" else "t.arrow")
    if layout == "parquet":
        pq.write_table(table, path)
    else:
        opener = ipc.new_stream if layout == "stream" else ipc.new_file
        with opener(str(path), table.schema) as writer:
            writer.write_table(table, max_chunksize=2)
    rows, positions, rejects = read_all(path)
    assert rows == expected(recs) and positions == [0, 1, 2, 3, 4] and rejects == []


def test_arrow_ts_ns_strings_and_dictionaries(tmp_path: Path) -> None:
    recs = records(3)
    table = pa.table({
        "ts_ns": pa.array([r["ts"] for r in recs], pa.int64()),
        "metro": pa.array([r["metro"] for r in recs]).dictionary_encode(),
        "router": pa.array([r["router"] for r in recs], pa.large_string()),
        "link": pa.array([r["link"] for r in recs]),
        "rtt_us": pa.array([str(r["rtt_us"]) for r in recs]),  # gNMIc-style numeric strings
        "one_way_us": pa.array([r["one_way_us"] for r in recs], pa.float32()),
        "site": pa.array([r["site"] for r in recs], pa.string()),
        "dc": pa.array([r["dc"] for r in recs], pa.string()),
    })
    path = tmp_path / "t.arrow"
    with ipc.new_file(str(path), table.schema) as writer:
        writer.write_table(table)
    rows, _, rejects = read_all(path)
    assert rows == expected(recs) and rejects == []


def test_arrow_bad_values_become_rejects(tmp_path: Path) -> None:
    table = pa.table({"ts": ["2026-05-28T00:00:00Z", "2026-05-28T00:00:00", None],
                      "metro": ["a", "b", "c"], "router": ["r"] * 3, "link": ["l"] * 3,
                      "rtt_us": ["1.5", "2", "x"]})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    rows, positions, rejects = read_all(path)
    assert [r["metro"] for r in rows] == ["a"] and positions == [0]
    assert [(r.position, r.reason) for r in rejects] == [(1, "bad_timestamp"), (2, "missing_field")]
    assert orjson.loads(rejects[0].raw)["metro"] == "b"


@pytest.mark.parametrize("name,content", [
    ("missing.jsonl", None),
    ("bad.avro", b"not avro at all"),
    ("bad.parquet", b"PAR1 nope"),
    ("bad.arrow", b"ARROW1\x00\x00 nope"),
    ("bad.jsonl.gz", b"not gzip"),
    ("t.csv", b"a,b"),
])
def test_unreadable_file_raises_decode_error(tmp_path: Path, name: str, content: bytes | None) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DecodeError, match=name.replace(".", r"\.")):
        list(read_path(path))


def test_wrong_column_type_raises_decode_error(tmp_path: Path) -> None:
    table = pa.table({"ts": [1.5], "metro": ["a"], "router": ["r"], "link": ["l"], "rtt_us": [1.0]})
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    with pytest.raises(DecodeError, match="ts has type double"):
        list(read_path(path))
    pq.write_table(table.drop_columns(["link"]), path)
    with pytest.raises(DecodeError, match="missing column"):
        list(read_path(path))


def test_positions_are_int64(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(orjson.dumps(records(1)[0]))
    (chunk,) = read_path(path)
    assert chunk.positions.dtype == np.int64
