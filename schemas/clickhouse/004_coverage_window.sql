-- National coverage per window: compliant metros / metros in the registry.
-- `registry` says which registry was used: 'seen' (every metro seen before the
-- window ended) or 'configured:<name>'.
CREATE TABLE IF NOT EXISTS netready.coverage_window
(
    window_start DateTime('UTC'),
    window_s UInt32,
    hop_s UInt32,
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
PARTITION BY toYYYYMM(window_start)
ORDER BY (policy, window_s, hop_s, window_start)
$TTL(window_start + INTERVAL 10 YEAR);
