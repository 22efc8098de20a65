"""Names are data, never SQL: labels built to break out of a string literal land in ClickHouse
(embedded chdb) and come back byte for byte, through inserts and through the queries that
inline names as literals (the readiness ranking's worst links)."""
from __future__ import annotations

import json
import time

from test_hostile_properties import SQL_INJECTION, TRICKY_NAMES

from pipeline.aggregate import AggregatorConfig
from pipeline.ingest import IngestConfig, ingest_paths
from pipeline.policy import DEFAULT_POLICY
from pipeline.readiness import compute

NS = 1_000_000_000
NAMES = SQL_INJECTION + TRICKY_NAMES


def test_injection_labels_land_and_read_back_byte_exact(warehouse, tmp_path):
    base = (time.time_ns() // NS - 7200) // 60 * 60 * NS
    lines, expected = [], set()
    for i, name in enumerate(NAMES):
        metro, router, link = name, NAMES[(i + 1) % len(NAMES)], NAMES[(i + 2) % len(NAMES)]
        expected.add((metro, router, link))
        for k in range(3):
            lines.append({"ts": base + (i * 3 + k) * NS, "metro": metro, "router": router, "link": link,
                          "rtt_us": 900.0 + 100 * k, "site": link, "dc": router})
    path = tmp_path / "names.jsonl"
    path.write_bytes(b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in lines))
    summary = ingest_paths([path], warehouse, IngestConfig(aggregator=AggregatorConfig()))
    assert summary.samples_accepted == len(lines) and not summary.rejects_by_reason

    def read(sql: str) -> set[tuple]:
        table = warehouse.query(sql)
        return set(zip(*(table[c].to_pylist() for c in table.column_names)))

    assert read("SELECT DISTINCT toString(metro), toString(router), link FROM netready.link_window FINAL") == expected
    assert read("SELECT DISTINCT toString(metro) FROM netready.metro_window FINAL") == {(m,) for m, _, _ in expected}
    assert read("SELECT DISTINCT toString(metro) FROM netready.metros") == {(m,) for m, _, _ in expected}
    paths = read("SELECT toString(metro), toString(router), link, site, dc FROM netready.link_paths FINAL")
    assert paths == {(m, r, lk, lk, r) for m, r, lk in expected}
    tables = read("SELECT name FROM system.tables WHERE database = 'netready'")
    assert ("metro_window",) in tables and ("link_window",) in tables  # nothing was dropped

    # The ranking inlines (metro, router, link) as literals to fetch the worst links' histograms:
    # a name that broke out of its literal would miss its own row (or fail the query).
    ranking = compute(warehouse, DEFAULT_POLICY, days=3)
    worst = {(m.metro, link.router, link.link) for m in ranking.metros for link in m.worst_links}
    assert worst == expected
    assert all(link.p99_us is not None for m in ranking.metros for link in m.worst_links)
