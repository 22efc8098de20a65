"""Test hook: crash the worker at the one moment a timer-driven kill rarely hits.

Off unless `NETREADY_FAULT_EXIT_AFTER_LAND=N` is set (N >= 1). Then the worker exits with
status 137 (what a shell reports for SIGKILL) right after its N-th checkpoint round has landed
windows and stored the checkpoint in ClickHouse, and before that round's offset commit: results
are in ClickHouse that Kafka does not know about. The fault tests use it to prove that the
restarted worker replays from the older commit without losing or double-counting anything.
Never set it in production.
"""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from ..errors import ConfigError

EXIT_AFTER_LAND_ENV = "NETREADY_FAULT_EXIT_AFTER_LAND"
EXIT_STATUS = 137

log = logging.getLogger("netready.worker")


class ExitAfterLand:
    """Counts landed checkpoint rounds; exits the process on the configured one."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        raw = (os.environ if environ is None else environ).get(EXIT_AFTER_LAND_ENV, "")
        self.after: int | None = None
        self.rounds = 0
        if raw.strip():
            try:
                self.after = int(raw)
            except ValueError:
                raise ConfigError(f"${EXIT_AFTER_LAND_ENV} must be a positive integer, got {raw!r}") from None
            if self.after < 1:
                raise ConfigError(f"${EXIT_AFTER_LAND_ENV} must be a positive integer, got {raw!r}")
            log.warning("fault injection on: exiting after landing round %d, before its commit", self.after)

    def landed(self) -> None:
        """Call after landing and storing the checkpoint, before committing the offsets."""
        if self.after is None:
            return
        self.rounds += 1
        if self.rounds >= self.after:
            log.warning("fault injection: exiting after landing round %d, before its commit", self.rounds)
            for handler in logging.getLogger().handlers:
                handler.flush()
            sys.stderr.flush()
            os._exit(EXIT_STATUS)
