-- Streaming worker checkpoints: the aggregation state of one Kafka partition right
-- before `offset`, stored before that offset is committed. On restart the worker
-- loads the checkpoint of its committed offset, so replayed messages rebuild the
-- exact same windows (effectively-once results from at-least-once delivery).
CREATE TABLE IF NOT EXISTS netready.checkpoints
(
    consumer_group String,
    topic String,
    partition UInt32,
    offset Int64,
    state String,
    created_at DateTime('UTC') DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY (consumer_group, topic, partition, offset)
$TTL(created_at + INTERVAL 7 DAY);
