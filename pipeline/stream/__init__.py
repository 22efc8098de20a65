"""The streaming path: Kafka in, the same aggregator as `ingest`, ClickHouse and Kafka out."""
