"""Retryable or fatal: how a failed ClickHouse call is judged.

The worker backs off and retries what may pass by itself (the server is down,
overloaded, out of disk space, has too many parts to merge) and stops on what
cannot pass without an operator (a column missing or of another type, an
unknown table, a wrong password): retrying those would stall silently, and
skipping them would lose data. Server error codes are data, so the decision
branches on them; anything not known to be transient is fatal.
"""
from __future__ import annotations

import re

from ..errors import SinkError

# ClickHouse error codes worth retrying. Not 164 (READONLY): that is what a read-only user gets,
# a configuration error no retry fixes; a replica that lost ZooKeeper says 242.
RETRYABLE_CODES = frozenset({
    159,  # TIMEOUT_EXCEEDED
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    203,  # NO_FREE_CONNECTION
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    242,  # TABLE_IS_READ_ONLY
    243,  # NOT_ENOUGH_SPACE (reserving space for a merge or an insert)
    252,  # TOO_MANY_PARTS (merges are behind: inserts pass again once they catch up)
    285,  # TOO_FEW_LIVE_REPLICAS
    319,  # UNKNOWN_STATUS_OF_INSERT
    425,  # SYSTEM_ERROR
    999,  # KEEPER_EXCEPTION
})
# A full or over-quota disk surfaces as an I/O error with the errno in the message
# (18.16: code 75 "Cannot write to file ..., errno: 28, strerror: No space left on device").
_NO_SPACE = re.compile(r"errno: (28|122)\b|no space left on device|disk quota exceeded", re.IGNORECASE)


def is_retryable(code: int, message: str = "") -> bool:
    """Whether a server error with this code and message may pass by itself."""
    return code in RETRYABLE_CODES or bool(_NO_SPACE.search(message))


def sink_error(exc: BaseException, where: str) -> SinkError:
    """A SinkError for a clickhouse-driver (or socket) exception raised talking to `where`."""
    from clickhouse_driver import errors

    if isinstance(exc, errors.ServerException):
        first_line = (exc.message or "").strip().splitlines()[0] if exc.message else ""
        return SinkError(f"ClickHouse error {exc.code}: {first_line}",
                         retryable=is_retryable(exc.code, exc.message or ""))
    if isinstance(exc, (errors.NetworkError, errors.SocketTimeoutError, errors.UnexpectedPacketFromServerError,
                        OSError, EOFError)):
        # A broken or desynchronised connection: the client reconnects on the next call.
        return SinkError(f"ClickHouse unreachable at {where}: {type(exc).__name__}", retryable=True)
    if isinstance(exc, errors.Error):  # raised by the client itself, e.g. a value of the wrong type
        detail = str(getattr(exc, "message", "") or exc).strip().splitlines()
        return SinkError(f"ClickHouse client error {exc.code}: {detail[0] if detail else type(exc).__name__}",
                         retryable=False)
    raise TypeError(f"not a ClickHouse failure: {type(exc).__name__}")
