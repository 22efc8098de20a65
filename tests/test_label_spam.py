"""Label spam: millions of distinct link and metro names through the aggregator.

The caps of `[limits]` (max_metros, max_links) bound what a hostile or broken producer can make
the name index and the kernel hold: rows that would create a name beyond a cap are refused with
reason `metro_cap` / `link_cap`, the cap is logged once (not per row), and samples of the links
already known keep being aggregated. Memory is measured as resident set size, against a bound
derived from the caps.
"""
from __future__ import annotations

import logging
import os
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.aggregate import AggregatorConfig, WindowAggregator
from pipeline.records import CLEAN_SCHEMA

NS = 1_000_000_000
MAX_METROS = 50
MAX_LINKS = 20_000
SPAM_ROWS = 2_000_000
BATCH_ROWS = 250_000
KNOWN = [(metro, f"{metro}-pe1", f"et-0/0/{i}") for metro in ("北京", "上海") for i in range(4)]
VALID_PER_BATCH = 800  # 100 samples per known link per batch
# Generous per-link cost (index entry, key, path slots, one open pane row with a histogram
# octave): a link costs well under 4 KiB; batches add a fixed transient.
BYTES_PER_LINK = 4096
TRANSIENT_BYTES = 160 << 20


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def batch(number: int, base_ns: int) -> tuple[pa.Table, int]:
    """Known-link rows spread through BATCH_ROWS spam rows; every spam row names a new link (one
    in ten also a new metro). Returns the table and the number of known-link rows."""
    first = number * BATCH_ROWS
    ids = np.arange(first, first + BATCH_ROWS)
    text = pc.cast(pa.array(ids), pa.string())
    spam = pa.table({
        "metro": pc.if_else(pa.array(ids % 10 == 0), pc.binary_join_element_wise("spam-metro-", text, ""), "北京"),
        "router": pa.array(["北京-pe9"] * BATCH_ROWS, pa.string()),
        "link": pc.binary_join_element_wise("spam-", text, "")})
    known = [KNOWN[i % len(KNOWN)] for i in range(VALID_PER_BATCH)]
    valid = pa.table({"metro": [k[0] for k in known], "router": [k[1] for k in known],
                      "link": [k[2] for k in known]})
    slots = np.linspace(0, BATCH_ROWS, VALID_PER_BATCH, endpoint=False).astype(int)
    order = np.insert(np.arange(BATCH_ROWS), slots, BATCH_ROWS + np.arange(VALID_PER_BATCH))
    names = pa.concat_tables([spam, valid]).take(pa.array(order))
    n = names.num_rows
    ts = base_ns + (first + np.arange(n)) * 20_000  # event time moves 20 µs per row: nothing late
    table = names.append_column("ts_ns", pa.array(ts, pa.int64())).append_column(
        "rtt_us", pa.array(np.full(n, 500.0))).append_column(
        "one_way_us", pa.nulls(n, pa.float64())).append_column(
        "site", pa.nulls(n, pa.string())).append_column("dc", pa.nulls(n, pa.string()))
    return table.select(CLEAN_SCHEMA.names).cast(CLEAN_SCHEMA), VALID_PER_BATCH


def test_millions_of_distinct_names_stay_within_the_caps(caplog):
    caplog.set_level(logging.WARNING, logger="netready.index")
    agg = WindowAggregator(AggregatorConfig(max_metros=MAX_METROS, max_links=MAX_LINKS))
    base_ns = 1_790_000_000 * NS
    warm = pa.table({"ts_ns": pa.array([base_ns] * len(KNOWN), pa.int64()),
                     "metro": [k[0] for k in KNOWN], "router": [k[1] for k in KNOWN],
                     "link": [k[2] for k in KNOWN], "rtt_us": [400.0] * len(KNOWN),
                     "one_way_us": pa.nulls(len(KNOWN), pa.float64()), "site": pa.nulls(len(KNOWN), pa.string()),
                     "dc": pa.nulls(len(KNOWN), pa.string())}).cast(CLEAN_SCHEMA)
    assert agg.add(warm).accepted == len(KNOWN)
    rss_start = rss_bytes()
    started = time.monotonic()
    accepted = valid = 0
    refused: dict[str, int] = {}
    rss_after_first = peak = 0
    for number in range(SPAM_ROWS // BATCH_ROWS):
        table, n_valid = batch(number, base_ns)
        outcome = agg.add(table)
        valid += n_valid
        accepted += outcome.accepted
        for reason in outcome.refused["reason"].to_pylist():
            refused[reason] = refused.get(reason, 0) + 1
        refused_links = set(outcome.refused["link"].to_pylist())
        assert refused_links.isdisjoint(k[2] for k in KNOWN), "a known link was refused"
        assert outcome.late.num_rows == 0
        agg.take_windows()  # what a caller lands; closed panes are freed
        peak = max(peak, rss_bytes())
        if number == 0:
            rss_after_first = rss_bytes()
    elapsed_s = time.monotonic() - started
    rss_end = rss_bytes()

    assert len(agg.index.links) == MAX_LINKS and len(agg.index.metros) == MAX_METROS
    # every spam row names a new link: exactly the free link slots were filled, in arrival order
    assert accepted == valid + (MAX_LINKS - len(KNOWN))
    assert sum(refused.values()) == SPAM_ROWS - (MAX_LINKS - len(KNOWN))
    assert set(refused) == {"metro_cap", "link_cap"} and refused["metro_cap"] > 0
    cap_lines = [r.getMessage() for r in caplog.records if r.name == "netready.index"]
    assert len(cap_lines) == 2, cap_lines  # one per cap, not one per refused row
    assert any("link cap of 20000" in m for m in cap_lines) and any("metro cap of 50" in m for m in cap_lines)

    bound = MAX_LINKS * BYTES_PER_LINK + TRANSIENT_BYTES
    assert peak - rss_start < bound, f"RSS grew {(peak - rss_start) >> 20} MiB, bound {bound >> 20} MiB"
    # once the caps are full, millions more names add nothing that stays
    assert rss_end - rss_after_first < 96 << 20, f"{(rss_end - rss_after_first) >> 20} MiB after the caps filled"
    print(f"\nlabel spam: {SPAM_ROWS} distinct names in {elapsed_s:.1f} s; RSS +{(peak - rss_start) >> 20} MiB "
          f"peak, +{(rss_end - rss_after_first) >> 20} MiB after the caps filled (bound {bound >> 20} MiB)")
