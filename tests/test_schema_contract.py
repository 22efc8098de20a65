"""The JSON Schema, the Avro schema and the decoder describe the same telemetry record."""
from __future__ import annotations

import io
import json
from pathlib import Path

import fastavro
import jsonschema
import orjson
import pytest

from pipeline.decode import decode_message
from pipeline.records import CLEAN_SCHEMA, OPTIONAL_FIELDS, REQUIRED_FIELDS

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
JSON_SCHEMA = json.loads((SCHEMAS / "telemetry.schema.json").read_text())
AVRO_SCHEMA = json.loads((SCHEMAS / "telemetry.avsc").read_text())
AVRO_TO_JSON = {"long": "integer", "int": "integer", "double": "number", "float": "number",
                "string": "string", "null": "null"}
VALIDATOR = jsonschema.Draft202012Validator(JSON_SCHEMA)


def json_types(prop: dict) -> set[str]:
    if "oneOf" in prop:
        return set().union(*(json_types(p) for p in prop["oneOf"]))
    kinds = prop["type"]
    return {kinds} if isinstance(kinds, str) else set(kinds)


def avro_types(field: dict) -> set[str]:
    kinds = field["type"]
    return {AVRO_TO_JSON[k] for k in (kinds if isinstance(kinds, list) else [kinds])}


def test_schemas_are_well_formed() -> None:
    jsonschema.Draft202012Validator.check_schema(JSON_SCHEMA)
    parsed = fastavro.parse_schema(AVRO_SCHEMA)
    assert parsed["name"] == "netready.Telemetry"


def test_json_and_avro_agree_on_names_requiredness_and_types() -> None:
    avro_fields = {f["name"]: f for f in AVRO_SCHEMA["fields"]}
    assert set(avro_fields) == set(JSON_SCHEMA["properties"])
    avro_required = {name for name, f in avro_fields.items() if "null" not in avro_types(f)}
    assert avro_required == set(JSON_SCHEMA["required"]) == set(REQUIRED_FIELDS)
    for name, prop in JSON_SCHEMA["properties"].items():
        assert json_types(prop) == avro_types(avro_fields[name]), name


def test_clean_schema_is_covered() -> None:
    for names in (set(JSON_SCHEMA["properties"]), {f["name"] for f in AVRO_SCHEMA["fields"]}):
        covered = {"ts_ns" if n == "ts" else n for n in names}
        assert set(CLEAN_SCHEMA.names) <= covered
        assert set(REQUIRED_FIELDS) | set(OPTIONAL_FIELDS) <= names


BASE = {"ts": 1_780_000_000_000_000_000, "metro": "北京", "router": "r1", "link": "l1", "rtt_us": 850.5}
VALID = [
    BASE,
    {**BASE, "ts": "2026-05-28T00:00:00Z"},
    {**BASE, "ts": "2026-05-28T08:00:00.123456789+08:00", "rtt_us": "523.4"},
    {**BASE, "ts": "2026-05-28 00:00:00.5-03:00"},
    {**BASE, "rtt_us": 900, "one_way_us": "410", "site": "ap", "dc": "dc1", "probe": "twamp",
     "carrier": "cm"},
    {**BASE, "one_way_us": None, "site": None, "dc": None, "probe": None, "carrier": None},
    {**BASE, "extra": {"nested": [1, 2]}},
]
INVALID = [
    {k: v for k, v in BASE.items() if k != "metro"},
    {k: v for k, v in BASE.items() if k != "ts"},
    {**BASE, "router": None},
    {**BASE, "ts": "2026-05-28T00:00:00"},
    {**BASE, "ts": "2026-05-28T00:00:00+0800"},
    {**BASE, "ts": "1780000000000000000"},
    {**BASE, "ts": True},
    {**BASE, "metro": 7},
    {**BASE, "link": ["l"]},
    {**BASE, "rtt_us": "fast"},
    {**BASE, "rtt_us": "NaN"},
    {**BASE, "rtt_us": False},
    {**BASE, "one_way_us": "1_000"},
    {**BASE, "site": 3},
    {**BASE, "probe": {"kind": "twamp"}},
    {**BASE, "carrier": 1},
]


@pytest.mark.parametrize("record", VALID)
def test_valid_records_decode(record: dict) -> None:
    VALIDATOR.validate(record)
    chunk = decode_message(orjson.dumps(record), source="t", position=0, fmt="json")
    assert chunk.rejects == [] and chunk.table.num_rows == 1


@pytest.mark.parametrize("record", INVALID)
def test_invalid_records_are_rejected(record: dict) -> None:
    assert not VALIDATOR.is_valid(record)
    chunk = decode_message(orjson.dumps(record), source="t", position=0, fmt="json")
    assert chunk.table.num_rows == 0 and len(chunk.rejects) == 1


def test_decoder_is_stricter_on_float_times() -> None:
    """JSON Schema calls 1.78e18 an integer; the decoder refuses it, as a double cannot carry ns."""
    record = {**BASE, "ts": 1.78e18}
    assert VALIDATOR.is_valid(record)
    chunk = decode_message(orjson.dumps(record), source="t", position=0, fmt="json")
    assert [r.reason for r in chunk.rejects] == ["wrong_type"]


@pytest.mark.parametrize("record", VALID[:6])
def test_valid_records_round_trip_through_avro(record: dict) -> None:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(AVRO_SCHEMA), record)
    chunk = decode_message(out.getvalue(), source="t", position=0, fmt="avro")
    assert chunk.rejects == [] and chunk.table.num_rows == 1
