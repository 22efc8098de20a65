"""RejectWriter appends JSON Lines; RejectCounter counts by reason."""
from __future__ import annotations

from pathlib import Path

import orjson

from pipeline.records import Reject
from pipeline.rejects import RejectCounter, RejectWriter

REJECTS = [Reject("f.jsonl", 4, "malformed_json", "eof", b'{"ts":'),
           Reject("f.jsonl", 9, "invalid_utf8", "byte 3", b"ab\xff"),
           Reject("t[0]", 77, "malformed_json")]


def test_writer_appends_and_counts(tmp_path: Path) -> None:
    path = tmp_path / "out" / "rejects.jsonl"
    with RejectWriter(path) as writer:
        writer.write(REJECTS[:2])
    with RejectWriter(path) as writer:
        writer.write(REJECTS[2:])
        assert writer.counter.by_reason == {"malformed_json": 1}
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [(d["source"], d["position"], d["reason"]) for d in lines] == [
        ("f.jsonl", 4, "malformed_json"), ("f.jsonl", 9, "invalid_utf8"), ("t[0]", 77, "malformed_json")]
    assert lines[0]["raw"] == '{"ts":' and lines[1]["raw"] == "ab\\xff" and lines[2]["raw"] is None


def test_counter_without_file() -> None:
    counter = RejectCounter()
    counter.add(REJECTS)
    assert counter.by_reason == {"malformed_json": 2, "invalid_utf8": 1} and counter.total == 3
