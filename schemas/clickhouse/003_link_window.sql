-- The same measures per link (router + link, within its metro): what drags a metro down.
CREATE TABLE IF NOT EXISTS netready.link_window
(
    metro $LC(String),
    router $LC(String),
    link String,
    window_start DateTime('UTC'),
    window_s UInt32,
    hop_s UInt32,
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
    hist_bucket Array(UInt16) $CODEC(ZSTD(3)),
    hist_count Array(UInt64) $CODEC(ZSTD(3)),
    version UInt64,
    landed_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (policy, window_s, hop_s, metro, router, link, window_start)
$TTL(window_start + INTERVAL 400 DAY);
