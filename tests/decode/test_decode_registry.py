"""Confluent wire format read with the writer schema registered under its id."""
from __future__ import annotations

import io
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fastavro
import pytest

from pipeline.decode.message import decode_message
from pipeline.decode.registry import SchemaRegistry
from pipeline.errors import DecodeError

# A producer's evolved schema: a different field order, a long ts, an extra field the
# telemetry schema does not know, and no optional fields.
WRITER = {"type": "record", "name": "Telemetry", "namespace": "netready", "fields": [
    {"name": "rtt_us", "type": "double"},
    {"name": "metro", "type": "string"},
    {"name": "router", "type": "string"},
    {"name": "link", "type": "string"},
    {"name": "ts", "type": "long"},
    {"name": "vendor_blob", "type": "string"},
]}


@pytest.fixture()
def registry_url():
    """The registry's REST shape: GET /schemas/ids/{id} -> {"schema": "<json>"}."""
    schemas = {7: json.dumps(WRITER)}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            schema_id = int(self.path.rsplit("/", 1)[-1])
            if schema_id not in schemas:
                self.send_response(404)
                self.end_headers()
                self.wfile.write(b'{"error_code": 40403, "message": "Schema not found"}')
                return
            body = json.dumps({"schema": schemas[schema_id]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _wire(schema_id: int, record: dict) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(WRITER), record)
    return b"\x00" + struct.pack(">I", schema_id) + body.getvalue()


RECORD = {"rtt_us": 812.5, "metro": "杭州", "router": "hz-pe1", "link": "et-0/0/3",
          "ts": 1_795_132_800_123_456_789, "vendor_blob": "x"}


def test_writer_schema_from_registry_is_resolved_onto_telemetry_schema(registry_url):
    chunk = decode_message(_wire(7, RECORD), source="t", position=42, fmt="confluent",
                           registry=SchemaRegistry(registry_url))
    assert chunk.rejects == []
    row = chunk.table.to_pylist()[0]
    assert (row["ts_ns"], row["metro"], row["link"], row["rtt_us"]) == (
        RECORD["ts"], "杭州", "et-0/0/3", 812.5)
    assert row["one_way_us"] is None and chunk.positions.tolist() == [42]


def test_without_registry_the_evolved_record_is_refused(registry_url):
    chunk = decode_message(_wire(7, RECORD), source="t", position=1, fmt="confluent")
    assert chunk.table.num_rows == 0 and chunk.rejects[0].reason == "malformed_avro"


def test_unknown_schema_id_is_a_reject(registry_url):
    chunk = decode_message(_wire(99, RECORD), source="t", position=5, fmt="confluent",
                           registry=SchemaRegistry(registry_url))
    assert [(r.reason, r.position) for r in chunk.rejects] == [("unknown_schema", 5)]


def test_unreachable_registry_is_an_error_not_a_reject():
    with pytest.raises(DecodeError, match="unreachable"):
        decode_message(_wire(7, RECORD), source="t", position=0, fmt="confluent",
                       registry=SchemaRegistry("http://127.0.0.1:9", timeout_s=1))
