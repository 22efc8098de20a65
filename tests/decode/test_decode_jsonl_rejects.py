"""Mixed good and bad JSON Lines: exact rejects, surviving rows, and fast path == slow path."""
from __future__ import annotations

import io
from pathlib import Path

import orjson

from pipeline.decode import read_path
from pipeline.decode.jsonl import JsonLinesDecoder, line_blocks

GOOD = {"ts": 1_780_000_000_000_000_000, "metro": "北京", "router": "r1", "link": "l1", "rtt_us": 812.5}


def good(**changes) -> bytes:
    return orjson.dumps({**GOOD, **changes})


LINES = [
    good(),                                                       # 1 ok
    b"",                                                          # 2 blank: skipped
    good(ts="2026-05-28T00:00:00.123456789+08:00", rtt_us="523.4"),  # 3 ok (string time, gNMIc number)
    b'{"ts": 1, "metro": ',                                       # 4 malformed_json
    b"[1, " + good(metro="São Paulo") + b"]",                     # 5 not_an_object + ok
    good(ts="2026-05-28T00:00:00"),                               # 6 bad_timestamp (no zone)
    good(ts=1.78e18),                                             # 7 wrong_type (float ts)
    good(metro=5),                                                # 8 wrong_type
    orjson.dumps({k: v for k, v in GOOD.items() if k != "link"}),  # 9 missing_field
    good(router=None),                                            # 10 missing_field (null)
    good(metro="x").replace(b'"x"', b'"\xff"'),                   # 11 invalid_utf8
    good(rtt_us="fast"),                                          # 12 wrong_type
    b'"just a string"',                                           # 13 not_an_object
    good(ts="2026-02-30T00:00:00Z"),                              # 14 bad_timestamp (no such day)
    good(ts="1700000000000000000"),                               # 15 bad_timestamp (digits in a string)
    good(rtt_us=True),                                            # 16 wrong_type
    good(probe=7),                                                # 17 wrong_type
    good(one_way_us=410.0, site="ap1", dc="dc1", carrier="cm"),   # 18 ok
]
EXPECTED_REJECTS = [(4, "malformed_json"), (5, "not_an_object"), (6, "bad_timestamp"),
                    (7, "wrong_type"), (8, "wrong_type"), (9, "missing_field"),
                    (10, "missing_field"), (11, "invalid_utf8"), (12, "wrong_type"),
                    (13, "not_an_object"), (14, "bad_timestamp"), (15, "bad_timestamp"),
                    (16, "wrong_type"), (17, "wrong_type")]


def test_mixed_lines(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(LINES) + b"\n")
    (chunk,) = read_path(path)
    assert [(r.position, r.reason) for r in chunk.rejects] == EXPECTED_REJECTS
    assert all(r.source == str(path) for r in chunk.rejects)
    assert chunk.rejects[0].raw == LINES[3] and chunk.rejects[2].raw == LINES[5]
    assert chunk.positions.tolist() == [1, 3, 5, 18]
    rows = chunk.table.to_pylist()
    assert [r["metro"] for r in rows] == ["北京", "北京", "São Paulo", "北京"]
    assert rows[1]["ts_ns"] == 1_779_897_600_123_456_789 and rows[1]["rtt_us"] == 523.4
    assert rows[3]["one_way_us"] == 410.0 and rows[3]["site"] == "ap1"


def test_bad_line_in_one_chunk_leaves_other_chunks_alone(tmp_path: Path) -> None:
    lines = [good(rtt_us=float(i)) for i in range(9)]
    lines[4] = b"{oops"
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    chunks = list(read_path(path, chunk_rows=3))
    assert [c.positions.tolist() for c in chunks] == [[1, 2, 3], [4, 6], [7, 8, 9]]
    assert [(r.position, r.reason) for c in chunks for r in c.rejects] == [(5, "malformed_json")]


def test_too_large_line(tmp_path: Path) -> None:
    decoder = JsonLinesDecoder("s", max_line_bytes=200)
    block = good() + b"\n" + good(metro="m" * 300) + b"\n"
    ((first, data, ends),) = line_blocks(io.BytesIO(block), 10)
    chunk = decoder.decode(first, data, ends)
    assert [(r.position, r.reason) for r in chunk.rejects] == [(2, "too_large")]
    assert chunk.positions.tolist() == [1]


def test_fast_and_slow_paths_agree() -> None:
    variants = [good(rtt_us=i + 0.5, one_way_us=None if i % 2 else i, site=None if i % 3 else "s")
                for i in range(50)]
    variants += [good(ts="2026-05-28T00:00:%02d.%dZ" % (i, i)) for i in range(50)]
    for lines in (variants[:50], variants[50:]):
        ((first, data, ends),) = line_blocks(io.BytesIO(b"\n".join(lines)), 1000)
        fast = JsonLinesDecoder("s")._fast(first, data, ends)
        slow = JsonLinesDecoder("s").slow(first, data)
        assert fast is not None
        assert fast.table.equals(slow.table) and fast.positions.tolist() == slow.positions.tolist()
