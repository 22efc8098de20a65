-- The netready database and the ledger of applied migrations.
CREATE DATABASE IF NOT EXISTS netready;

CREATE TABLE IF NOT EXISTS netready.schema_migrations
(
    version UInt32,
    name String,
    applied_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY version;
