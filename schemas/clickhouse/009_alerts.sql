-- Alert history: one row per alert state transition (firing or resolved) sent by
-- `netready alerts`. A transition delivered twice (at-least-once, e.g. after a crash
-- between sending and recording state) has the same (fingerprint, status, starts_at):
-- ReplacingMergeTree collapses it; query with FINAL for exact counts.
-- Times are event time in whole seconds (DateTime, which 18.16 supports; no DateTime64);
-- ends_at is 0 (1970-01-01) while firing. labels/annotations are JSON text.
CREATE TABLE IF NOT EXISTS netready.alerts
(
    fingerprint String,
    alertname $LC(String),
    status $LC(String),
    metro String,
    policy $LC(String),
    severity $LC(String),
    starts_at DateTime('UTC'),
    ends_at DateTime('UTC'),
    event_time DateTime('UTC'),
    flap_count UInt32,
    labels String,
    annotations String,
    summary String,
    sent_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(starts_at)
ORDER BY (alertname, fingerprint, starts_at, status)
$TTL(starts_at + INTERVAL 10 YEAR);
