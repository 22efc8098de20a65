"""RFC 3339 event times to int64 nanoseconds since the Unix epoch.

A zone is mandatory: a time without one is ambiguous, and guessing is how audits fail. Arrow's
ISO 8601 cast does the bulk; a regex first enforces RFC 3339 syntax (the cast also takes forms
RFC 3339 forbids, such as +0800), and rows the cast refuses (more than 9 fractional digits,
lower-case t/z, impossible dates) go through a per-row parser that gives the final word.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.compute as pc

RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_ROW_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UTC_NS = pa.timestamp("ns", tz="UTC")


def parse_rfc3339_one(text: str) -> int | None:
    """Nanoseconds for one RFC 3339 string, or None. Fractions beyond 9 digits are truncated."""
    m = _ROW_RE.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second, frac, z, sign, off_h, off_m = m.groups()
    try:
        offset = timedelta(0) if z else timedelta(hours=int(off_h), minutes=int(off_m))
        if sign == "-":
            offset = -offset
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                         tzinfo=timezone(offset))
    except ValueError:
        return None
    delta = local - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + int((frac or "0")[:9].ljust(9, "0"))
    return ns if _INT64_MIN <= ns <= _INT64_MAX else None


def parse_rfc3339(strings: pa.Array | pa.ChunkedArray) -> pa.Array:
    """int64 ns per string; null where the input is null or not a zoned RFC 3339 time."""
    strings = pc.cast(strings, pa.string())
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    syntax_ok = pc.match_substring_regex(strings, RFC3339_PATTERN)
    candidates = pc.if_else(syntax_ok, strings, pa.scalar(None, pa.string()))
    try:
        return pc.cast(pc.cast(candidates, _UTC_NS), pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if s is None else parse_rfc3339_one(s)
                         for s in candidates.to_pylist()], pa.int64())
