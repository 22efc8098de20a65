-- First event time each metro was seen (min over rows; duplicates are harmless),
-- the policies verdicts refer to, late samples (never silently dropped) and an
-- audit trail of ingest runs.
CREATE TABLE IF NOT EXISTS netready.metros
(
    metro String,
    first_seen_ns Int64,
    landed_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY (metro, first_seen_ns);

CREATE TABLE IF NOT EXISTS netready.policies
(
    id String,
    definition String,
    landed_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY id;

CREATE TABLE IF NOT EXISTS netready.late_samples
(
    ts_ns Int64,
    event_time DateTime('UTC'),
    metro String,
    router String,
    link String,
    rtt_us Float64,
    one_way_us Nullable(Float64),
    watermark_ns Int64,
    reason String,
    source String,
    landed_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (metro, router, link, ts_ns, rtt_us);

CREATE TABLE IF NOT EXISTS netready.ingest_runs
(
    run_id String,
    started_at DateTime('UTC'),
    finished_at DateTime('UTC'),
    command String,
    sources Array(String),
    policy String,
    windows String,
    samples_read UInt64,
    samples_accepted UInt64,
    samples_late UInt64,
    samples_rejected UInt64,
    reject_reasons Array(String),
    reject_counts Array(UInt64),
    netready_version String
)
ENGINE = MergeTree
ORDER BY (started_at, run_id);
