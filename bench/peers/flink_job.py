"""The PyFlink peer's job: Flink SQL windows over the JSON telemetry topic, results to a JSON file.

Runs inside the PyFlink virtualenv (bench/peers/flink_env.py), not netready's:
    python flink_job.py --bootstrap H:P --topic T --group G --jar J --parallelism N --out FILE

Kafka source table over single-record JSON (`ts` in ns), event time `rt` with a 30 s bounded
out-of-orderness watermark (netready's lateness), `scan.bounded.mode` = latest-offset so the
job ends at the end of the topic (Flink then emits a final watermark that fires every window).
Per metro: TUMBLE(60 s) and HOP(300 s / 60 s) windows with COUNT(*), a countIf-style SUM for
rtt_us < 1000 and p99 from a Python aggregate function over the same log-linear histogram as
pipeline/histogram.py (bucket counts accumulate and merge exactly; nearest-rank read-out). The
two window families run as one UNION ALL query collected by the client, so the source is read
once. Group-window syntax (GROUP BY TUMBLE(...)/HOP(...)) rather than the windowing TVFs: with a
Python aggregate function in it, a windowing-TVF query is planned as a regular updating group
aggregation (one retract/update pair per input row, duplicate window rows in the result), while
group windows are the form PyFlink documents for Python aggregate functions and emit each window
once when the watermark passes its end. The output file holds one JSON object per window row and the job's own timings.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import time

from pyflink.common import Row
from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
from pyflink.table.udf import AggregateFunction, udaf

THRESHOLD_US = 1000.0
QUANTILE = 0.99


class HistogramP99(AggregateFunction):
    """p99 (µs) read from a sparse log-linear histogram, clamped to the exact min and max."""

    def create_accumulator(self):
        return Row({}, float("inf"), float("-inf"))

    def accumulate(self, acc, rtt_us):
        from pipeline.histogram import bucket_of

        if rtt_us is None:
            return
        bucket = bucket_of(rtt_us)
        acc[0][bucket] = acc[0].get(bucket, 0) + 1
        acc[1] = min(acc[1], rtt_us)
        acc[2] = max(acc[2], rtt_us)

    def merge(self, acc, accumulators):
        for other in accumulators:
            for bucket, count in other[0].items():
                acc[0][bucket] = acc[0].get(bucket, 0) + count
            acc[1] = min(acc[1], other[1])
            acc[2] = max(acc[2], other[2])

    def get_value(self, acc):
        from pipeline.histogram import quantile

        if not acc[0]:
            return None
        buckets = sorted(acc[0])
        return quantile(buckets, [acc[0][b] for b in buckets], QUANTILE, acc[1], acc[2])

    def get_accumulator_type(self):
        return DataTypes.ROW([DataTypes.FIELD("hist", DataTypes.MAP(DataTypes.INT(), DataTypes.BIGINT())),
                              DataTypes.FIELD("min_us", DataTypes.DOUBLE()),
                              DataTypes.FIELD("max_us", DataTypes.DOUBLE())])

    def get_result_type(self):
        return DataTypes.DOUBLE()


SOURCE = """
CREATE TABLE telemetry (
    ts BIGINT,
    metro STRING,
    rtt_us DOUBLE,
    rt AS TO_TIMESTAMP_LTZ(ts / 1000000, 3),
    WATERMARK FOR rt AS rt - INTERVAL '30' SECOND
) WITH (
    'connector' = 'kafka',
    'topic' = '{topic}',
    'properties.bootstrap.servers' = '{bootstrap}',
    'properties.group.id' = '{group}',
    'scan.startup.mode' = 'earliest-offset',
    'scan.bounded.mode' = 'latest-offset',
    'format' = 'json',
    'json.fail-on-missing-field' = 'false',
    'json.ignore-parse-errors' = 'false'
)
"""

QUERY = """
SELECT metro, TUMBLE_START(rt, INTERVAL '60' SECOND) AS window_start, 60 AS window_s, COUNT(*) AS samples,
       SUM(CASE WHEN rtt_us < {threshold} THEN 1 ELSE 0 END) AS under_threshold, {p99} AS p99_us
FROM telemetry
GROUP BY metro, TUMBLE(rt, INTERVAL '60' SECOND)
UNION ALL
SELECT metro, HOP_START(rt, INTERVAL '60' SECOND, INTERVAL '5' MINUTE) AS window_start, 300 AS window_s,
       COUNT(*) AS samples, SUM(CASE WHEN rtt_us < {threshold} THEN 1 ELSE 0 END) AS under_threshold,
       {p99} AS p99_us
FROM telemetry
GROUP BY metro, HOP(rt, INTERVAL '60' SECOND, INTERVAL '5' MINUTE)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("bootstrap", "topic", "group", "jar", "out"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--no-p99", action="store_true",
                        help="counts only (no Python aggregate): what the SQL engine alone costs")
    args = parser.parse_args()
    started = time.perf_counter()
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    config.set("pipeline.jars", f"file://{args.jar}")
    config.set("parallelism.default", str(args.parallelism))
    config.set("table.local-time-zone", "UTC")
    config.set("python.fn-execution.bundle.size", "100000")  # the documented throughput knob
    env.create_temporary_function("p99", udaf(HistogramP99()))
    env.execute_sql(SOURCE.format(topic=args.topic, bootstrap=args.bootstrap, group=args.group))
    submitted = time.perf_counter()
    rows = []
    query = QUERY.format(threshold=THRESHOLD_US, p99="CAST(NULL AS DOUBLE)" if args.no_p99 else "p99(rtt_us)")
    with env.execute_sql(query).collect() as results:
        for metro, window_start, window_s, samples, under, p99_us in results:
            rows.append({"metro": metro, "window_start": int(window_start.replace(tzinfo=dt.timezone.utc).timestamp()),
                         "window_s": int(window_s), "samples": int(samples),
                         "under_threshold": int(under),
                         "p99_us": None if p99_us is None else float(p99_us)})
    finished = time.perf_counter()
    with open(args.out, "w") as out:
        json.dump({"rows": rows, "setup_s": round(submitted - started, 3),
                   "job_s": round(finished - submitted, 3), "parallelism": args.parallelism}, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
