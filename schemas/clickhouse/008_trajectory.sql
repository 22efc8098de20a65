-- Progress towards the coverage target (pipeline/trajectory.py), one row per
-- (policy, day): the day's coverage, the target path, on-track / at-risk /
-- off-track, whole days of slack (negative = behind) and the Theil-Sen forecast
-- of the day the target is reached with its band (NULL = not reached on the
-- trend). `target` records what the day was judged against. Query with FINAL.
CREATE TABLE IF NOT EXISTS netready.coverage_trajectory
(
    day Date,
    policy $LC(String),
    coverage Float64,
    target_path Float64,
    status $LC(String),
    slack_days Int32,
    forecast_date Nullable(Date),
    forecast_low Nullable(Date),
    forecast_high Nullable(Date),
    target String,
    version UInt64,
    landed_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYear(day)
ORDER BY (policy, day);

-- Readiness ranking (pipeline/readiness.py) as of a day: per metro over the 30
-- days ending `as_of`, the share under threshold, p99 from exactly merged daily
-- histograms and its gap to the threshold (negative = headroom), the Theil-Sen
-- trend of the daily share, compliant days, and the worst links (parallel arrays,
-- worst first). rank 1 = furthest from ready. Query with FINAL.
CREATE TABLE IF NOT EXISTS netready.metro_readiness
(
    metro $LC(String),
    policy $LC(String),
    as_of Date,
    days UInt32,
    samples UInt64,
    share_under Float64,
    p99_us Nullable(Float64),
    gap_us Nullable(Float64),
    trend_share_per_day Nullable(Float64),
    compliant_days_30 UInt32,
    worst_routers Array(String),
    worst_links Array(String),
    worst_links_share Array(Float64),
    worst_links_p99_us Array(Float64),
    rank UInt32,
    version UInt64,
    landed_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYear(as_of)
ORDER BY (policy, as_of, metro);
