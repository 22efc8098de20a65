"""The fault tests' final-table check must fail when a guarantee is broken on purpose.

After a clean run (which the check accepts), one landed metro window is overwritten with a newer
version that has lost one sample, then with one that counts a sample twice, and an extra window
is invented: each time the same check that guards the fault tests has to fail.
"""
from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.warehouse import open_warehouse
from test_worker import (ARROW_ROWS, SCENARIO, check_final_tables, ctx, drain, expected, messages,  # noqa: F401
                         produce, rows, workers)

pytestmark = pytest.mark.integration


def _rewrite_one_window(stack, metro: str, change) -> None:
    with open_warehouse(stack["CLICKHOUSE_URL"]) as warehouse:
        row = warehouse.query("SELECT * FROM netready.metro_window FINAL WHERE metro = "
                              f"'{metro}' AND window_s = 60 AND hop_s = 60 ORDER BY window_start LIMIT 1")
        assert row.num_rows == 1
        data = {name: row[name].to_pylist() for name in row.column_names if name != "landed_at"}
        change(data)
        data["version"] = [data["version"][0] + 1]
        warehouse.insert("metro_window", pa.table({k: pa.array(v) for k, v in data.items()}))


@pytest.mark.timeout(180)
def test_check_fails_on_lost_duplicated_or_invented_samples(ctx, workers, rows, expected):
    produce(ctx.settings, ctx.topic, SCENARIO, fmt="arrow", rows_per_message=ARROW_ROWS)
    drain(ctx, workers)
    check_final_tables(ctx, expected, rows.num_rows)  # the honest result passes
    metro = rows["metro"][0].as_py()

    def lose_one(data):
        data["samples"] = [data["samples"][0] - 1]

    _rewrite_one_window(ctx.stack, metro, lose_one)
    with pytest.raises(AssertionError, match="windows differ|samples in 60 s windows"):
        check_final_tables(ctx, expected, rows.num_rows)

    def count_twice(data):
        data["samples"] = [data["samples"][0] + 2]  # back from -1, and one sample counted twice

    _rewrite_one_window(ctx.stack, metro, count_twice)
    with pytest.raises(AssertionError, match="windows differ|samples in 60 s windows"):
        check_final_tables(ctx, expected, rows.num_rows)

    def restore(data):
        data["samples"] = [data["samples"][0] - 1]

    _rewrite_one_window(ctx.stack, metro, restore)
    check_final_tables(ctx, expected, rows.num_rows)  # repaired: passes again

    def invent_window(data):
        start = data["window_start"][0]
        data["window_start"] = [start.replace(year=start.year - 1)]

    _rewrite_one_window(ctx.stack, metro, invent_window)
    with pytest.raises(AssertionError, match="extra"):
        check_final_tables(ctx, expected, rows.num_rows)
