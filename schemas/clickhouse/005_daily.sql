-- UTC days, built by exact merges of the tumbling metro windows (counts add,
-- histograms merge by bucket); the day's verdict applies the policy to the day's
-- counts. `windows` and `compliant_windows` count the tumbling windows behind it.
CREATE TABLE IF NOT EXISTS netready.metro_daily
(
    metro $LC(String),
    day Date,
    policy $LC(String),
    samples UInt64,
    under_threshold UInt64,
    share_under Float64,
    min_us Float64,
    max_us Float64,
    sum_us Float64,
    mean_us Float64,
    p50_us Float64,
    p95_us Float64,
    p99_us Float64,
    compliant UInt8,
    hist_bucket Array(UInt16),
    hist_count Array(UInt64),
    windows UInt32,
    compliant_windows UInt32,
    version UInt64,
    landed_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYear(day)
ORDER BY (policy, metro, day);

CREATE TABLE IF NOT EXISTS netready.coverage_daily
(
    day Date,
    policy $LC(String),
    metros_total UInt32,
    metros_compliant UInt32,
    metros_reporting UInt32,
    coverage Float64,
    registry $LC(String),
    version UInt64,
    landed_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYear(day)
ORDER BY (policy, day);
