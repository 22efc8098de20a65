"""The canonical telemetry record, in the columnar form every decoder produces.

Decoders turn JSON, Avro, Arrow and Parquet into Arrow tables with exactly the
columns and types of CLEAN_SCHEMA (values not yet range-checked); `validate`
then turns them into CLEAN_SCHEMA tables and `Reject`s. Names meet integer
ids only in `pipeline.index`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

REQUIRED_FIELDS = ("ts", "metro", "router", "link", "rtt_us")
OPTIONAL_FIELDS = ("one_way_us", "site", "dc")

# What validation produces and the aggregator consumes: one row per sample.
CLEAN_SCHEMA = pa.schema(
    [
        pa.field("ts_ns", pa.int64(), nullable=False),
        pa.field("metro", pa.string(), nullable=False),
        pa.field("router", pa.string(), nullable=False),
        pa.field("link", pa.string(), nullable=False),
        pa.field("rtt_us", pa.float64(), nullable=False),
        pa.field("one_way_us", pa.float64()),
        pa.field("site", pa.string()),
        pa.field("dc", pa.string()),
    ]
)


@dataclass(frozen=True)
class Reject:
    """One record that was not accepted, with enough context to find and fix it.

    `source` names the file or topic, `position` the line number (1-based),
    record index or Kafka offset, `reason` is a short stable code (counted in
    summaries), `detail` a human sentence, `raw` the original bytes if known.
    """

    source: str
    position: int
    reason: str
    detail: str = ""
    raw: bytes | None = field(default=None, repr=False)

    def to_json_dict(self) -> dict:
        raw = None
        if self.raw is not None:
            raw = self.raw.decode("utf-8", errors="backslashreplace")
        return {"source": self.source, "position": self.position, "reason": self.reason,
                "detail": self.detail, "raw": raw}
