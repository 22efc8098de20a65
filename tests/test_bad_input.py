"""Bad input through the real command line: every bad line is refused with the right reason and
position, every valid line in between lands, and `--strict` turns rejects into exit status 3."""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from pipeline.decode import read_path
from pipeline.validate import Limits, validate
from pipeline.warehouse import open_warehouse

NS = 1_000_000_000
EXIT_STRICT = 3
VALID_METROS = ["北京", "São Paulo", "Zürich"]  # max_metros = 3 lets exactly these in
CAPPED_METRO = "Москва"


def _line(ts, metro="北京", router="北京-pe1", link="et-0/0/0", rtt=500.0, **extra) -> bytes:
    rec = {"ts": ts, "metro": metro, "router": router, "link": link, "rtt_us": rtt, **extra}
    return orjson.dumps({k: v for k, v in rec.items() if v is not ...})


def build_lines(now_ns: int) -> list[tuple[bytes, str | None]]:
    """(raw line without newline, expected outcome): 'valid', a reject reason, or None (blank)."""
    base = (now_ns // NS - 3600) // 60 * 60 * NS  # an hour ago, minute-aligned
    tick = iter(range(0, 10_000 * NS, NS // 4))

    def ts() -> int:
        return base + next(tick)

    def valid(i: int) -> bytes:
        metro = VALID_METROS[i % 3]
        return _line(ts(), metro=metro, router=f"{metro}-pe{i % 2}", rtt=100.0 + 10 * i)

    bad: list[tuple[bytes, str | None]] = [
        # a refused record must not use up a metro slot: this metro is new and has a bad latency
        (_line(ts(), metro="Kraków", rtt=-1.0), "bad_latency"),
        (b'{"ts": 1, "metro": "\xe5\x8c"}', "invalid_utf8"),  # cut inside a UTF-8 sequence
        (b'{"ts": 1764546000000000000, "metro": ', "malformed_json"),
        (_line(ts(), rtt=...), "missing_field"),
        (_line(ts(), metro=...), "missing_field"),
        (_line(ts(), metro=None), "missing_field"),
        (_line(ts(), metro=123), "wrong_type"),
        (_line(ts(), rtt="fast"), "wrong_type"),
        (_line(ts(), rtt=[1.0]), "wrong_type"),
        (_line(1.764546e18), "wrong_type"),  # float ts
        (_line(True), "wrong_type"),
        (_line(ts()).replace(b'"rtt_us":500.0', b'"rtt_us":NaN'), "malformed_json"),
        (_line(ts()).replace(b'"rtt_us":500.0', b'"rtt_us":Infinity'), "malformed_json"),
        (_line(ts()).replace(b'"rtt_us":500.0', b'"rtt_us":-Infinity'), "malformed_json"),
        (_line(ts()).replace(b'"rtt_us":500.0', b'"rtt_us":1e999'), "malformed_json"),
        (_line(ts(), rtt="NaN"), "wrong_type"),
        (_line(ts(), rtt=-0.5), "bad_latency"),
        (_line(ts(), rtt=1e12), "bad_latency"),
        (_line(ts(), rtt="1e12"), "bad_latency"),  # numeric string, converted, then out of range
        (_line(ts(), one_way_us=-3.0), "bad_latency"),
        (_line("1999-12-31T23:59:59Z"), "bad_timestamp"),
        (_line(946_684_799 * NS), "bad_timestamp"),  # 1999-12-31T23:59:59Z as ns
        (_line(now_ns + 2 * 86_400 * NS), "bad_timestamp"),
        (_line("2025-11-30T10:00:00"), "bad_timestamp"),  # no zone
        (_line("yesterday"), "bad_timestamp"),
        (_line(ts()).replace("北京".encode(), b"\xff\xfe\xfd"), "invalid_utf8"),
        (_line(ts(), metro="京" * 100), "bad_name"),  # 300 UTF-8 bytes
        (_line(ts(), link="x" * 300), "bad_name"),
        (_line(ts(), router="pe\u0007bell"), "bad_name"),
        (_line(ts(), metro="北京\n"), "bad_name"),
        (_line(ts(), link="et\u00850"), "bad_name"),  # C1 control (NEL)
        (_line(ts(), metro=""), "bad_name"),
        (b"", None),  # blank lines are skipped, not rejected
        (b"42", "not_an_object"),
        (b'"a string"', "not_an_object"),
        (_line(ts(), metro=CAPPED_METRO), "metro_cap"),
        (_line(ts(), metro=CAPPED_METRO, router="Москва-pe2"), "metro_cap"),
    ]
    lines: list[tuple[bytes, str | None]] = []
    n_valid = 0
    for raw, expected in bad:
        # a valid line (or two) between every bad one; the three valid metros come first
        for _ in range(2 if n_valid < 3 else 1):
            lines.append((valid(n_valid), "valid"))
            n_valid += 1
        lines.append((raw, expected))
    # Valid oddities: numeric strings as gNMIc sends them, zoned RFC 3339, a 256-byte name.
    t = base + 900 * NS
    lines += [
        (_line(t, rtt="812.5", one_way_us="400"), "valid"),
        (_line(time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t // NS + 1)), metro="São Paulo"),
         "valid"),
        (_line(t + 2 * NS, metro="Zürich", router="r" * 256), "valid"),
        (_line(t + 3 * NS, rtt=1000.0), "valid"),
        (_line(t + 4 * NS, rtt=0), "valid"),
    ]
    return lines


def write(path: Path, lines: list[tuple[bytes, str | None]]) -> None:
    path.write_bytes(b"".join(raw + b"\n" for raw, _ in lines))


def read_rejects(path: Path) -> list[dict]:
    # Split on b"\n" only: str.splitlines() would also split inside names holding U+0085 (NEL).
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line]


@pytest.fixture
def bad_file(tmp_path: Path) -> tuple[Path, list[tuple[bytes, str | None]], Path]:
    lines = build_lines(time.time_ns())
    path = tmp_path / "telemetry.jsonl"
    write(path, lines)
    config = tmp_path / "caps.toml"
    config.write_text("[limits]\nmax_metros = 3\n")
    return path, lines, config


def test_bad_lines_are_refused_by_reason_and_valid_lines_land(bad_file, netready, tmp_path):
    path, lines, config = bad_file
    url = f"chdb:{tmp_path / 'ch'}"
    rejects_path = tmp_path / "rejects.jsonl"
    proc = netready("--config", config, "--clickhouse", url, "ingest", path,
                    "--reject-file", rejects_path, "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)

    expected = Counter(reason for _, reason in lines if reason not in (None, "valid"))
    n_valid = sum(1 for _, reason in lines if reason == "valid")
    assert summary["rejects_by_reason"] == dict(expected)
    assert summary["samples_rejected"] == sum(expected.values())
    assert summary["samples_read"] == n_valid + sum(expected.values())
    assert summary["samples_accepted"] == n_valid
    assert summary["samples_late"] == 0

    # One reject-file line per reject: source, line number, reason, raw.
    records = read_rejects(rejects_path)
    assert len(records) == sum(expected.values())
    assert {r["source"] for r in records} == {str(path)}
    assert Counter(r["reason"] for r in records) == expected
    assert all(r["raw"] for r in records)
    want = {(number, reason) for number, (_, reason) in enumerate(lines, 1)
            if reason not in (None, "valid", "metro_cap")}
    got = {(r["position"], r["reason"]) for r in records if r["reason"] != "metro_cap"}
    assert got == want
    # Decoder rejects carry the original bytes (invalid UTF-8 escaped), validation rejects the row.
    for r in records:
        original = lines[r["position"] - 1][0] if r["position"] > 0 else None
        if r["reason"] in ("malformed_json", "invalid_utf8", "not_an_object", "missing_field",
                           "wrong_type"):
            assert r["raw"] == original.decode("utf-8", errors="backslashreplace")
        elif r["reason"] == "metro_cap":
            assert json.loads(r["raw"])["metro"] == CAPPED_METRO
    assert '"metro":"\\xff\\xfe\\xfd"' in [r for r in records if r["reason"] == "invalid_utf8"][-1]["raw"]

    # Every valid line landed, and nothing else did.
    valid_by_metro = Counter(json.loads(raw)["metro"] for raw, reason in lines if reason == "valid")
    with open_warehouse(url) as wh:
        for window_s in (60, 300):
            rows = wh.query(
                "SELECT metro, sum(samples) AS n, sum(under_threshold) AS under "
                f"FROM netready.metro_window FINAL WHERE window_s = {window_s} AND hop_s = 60 "
                "GROUP BY metro").to_pylist()
            # a 300 s window hopping every 60 s holds each sample 5 times
            reps = window_s // 60
            assert {r["metro"]: r["n"] for r in rows} == {m: n * reps for m, n in valid_by_metro.items()}
        under = sum(1 for raw, reason in lines if reason == "valid"
                    and float(json.loads(raw)["rtt_us"]) < 1000.0)
        total_under = wh.query("SELECT sum(under_threshold) AS u FROM netready.metro_window FINAL "
                               "WHERE window_s = 60").to_pylist()[0]["u"]
        assert total_under == under
        metros = wh.query("SELECT DISTINCT metro FROM netready.metros").column("metro").to_pylist()
        assert sorted(metros) == sorted(VALID_METROS)


def test_capped_rows_carry_their_line_number(bad_file, netready, tmp_path):
    path, lines, config = bad_file
    rejects_path = tmp_path / "rejects.jsonl"
    proc = netready("--config", config, "--clickhouse", f"chdb:{tmp_path / 'ch'}", "ingest", path,
                    "--reject-file", rejects_path, "--json")
    assert proc.returncode == 0, proc.stderr
    records = read_rejects(rejects_path)
    want = [n for n, (_, reason) in enumerate(lines, 1) if reason == "metro_cap"]
    assert sorted(r["position"] for r in records if r["reason"] == "metro_cap") == want


def test_strict_exits_3_on_rejects_and_0_without(bad_file, netready, tmp_path):
    path, lines, config = bad_file
    url = f"chdb:{tmp_path / 'ch'}"
    proc = netready("--config", config, "--clickhouse", url, "ingest", path, "--strict",
                    "--reject-file", tmp_path / "r1.jsonl", "--json")
    assert proc.returncode == EXIT_STRICT, proc.stderr
    assert json.loads(proc.stdout)["samples_rejected"] > 0  # the summary is still printed

    clean = tmp_path / "clean.jsonl"
    write(clean, [(raw, reason) for raw, reason in lines if reason == "valid"])
    proc = netready("--config", config, "--clickhouse", url, "ingest", clean, "--strict",
                    "--reject-file", tmp_path / "r2.jsonl", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["samples_rejected"] == 0


def test_nan_and_infinity_literals_get_the_same_reason_in_any_block(tmp_path):
    """pyarrow's JSON reader accepts NaN/Infinity literals, orjson does not: whether a block
    takes the fast path (all lines parse) or the per-line path must not change the reason."""
    now = time.time_ns()
    ts = now - 3600 * NS
    good = _line(ts)
    odd = [good.replace(b'"rtt_us":500.0', b'"rtt_us":' + lit) for lit in (b"NaN", b"Infinity",
                                                                          b"-Infinity")]
    reasons = []
    for name, extra in (("fast", []), ("slow", [b"{oops"])):
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(b"\n".join([good, *odd, *extra, good]) + b"\n")
        found = []
        for chunk in read_path(path):
            _, invalid = validate(chunk, Limits(), now)
            found += [(r.position, r.reason) for r in chunk.rejects + invalid if r.position <= 4]
        reasons.append(sorted(found))
    assert reasons[0] == reasons[1] == [(2, "malformed_json"), (3, "malformed_json"),
                                        (4, "malformed_json")]


def test_link_cap_refuses_new_links_in_process(warehouse, tmp_path):
    """In-process ingest with max_links = 2: rows of a third link are refused (`link_cap`), rows
    of the first two keep landing, including after the refusal."""
    from pipeline.aggregate import AggregatorConfig
    from pipeline.ingest import IngestConfig, ingest_paths

    base = (time.time_ns() // NS - 3600) // 60 * 60 * NS
    links = ["et-0/0/0", "et-0/0/1", "et-0/0/2", "et-0/0/0", "et-0/0/2", "et-0/0/1"]
    path = tmp_path / "links.jsonl"
    path.write_bytes(b"".join(_line(base + i * NS, link=link) + b"\n" for i, link in enumerate(links)))
    config = IngestConfig(aggregator=AggregatorConfig(max_links=2), reject_path=tmp_path / "r.jsonl")
    summary = ingest_paths([path], warehouse, config)
    assert dict(summary.rejects_by_reason) == {"link_cap": 2}
    assert summary.samples_accepted == 4
    rows = warehouse.query("SELECT link, sum(samples) AS n FROM netready.link_window FINAL "
                           "WHERE window_s = 60 GROUP BY link ORDER BY link").to_pylist()
    assert rows == [{"link": "et-0/0/0", "n": 2}, {"link": "et-0/0/1", "n": 2}]
    refused = read_rejects(tmp_path / "r.jsonl")
    assert [json.loads(r["raw"])["link"] for r in refused] == ["et-0/0/2", "et-0/0/2"]
