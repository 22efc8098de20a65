"""The interface every ClickHouse backend implements, and SQL literal helpers.

clickhouse-driver inlines non-string parameters with `str()`, so netready never
passes untyped values into SQL text: identifiers come from `TABLES`, values go
through `sql_string`/`sql_int` or travel as typed Arrow columns.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import pyarrow as pa

from ..errors import SinkError

TABLES = frozenset({
    "schema_migrations", "metro_window", "link_window", "coverage_window", "metro_daily",
    "coverage_daily", "metros", "policies", "late_samples", "ingest_runs", "alerts", "checkpoints",
    "coverage_trajectory", "metro_readiness", "link_paths", "site_window",
})


@dataclass(frozen=True)
class Features:
    """Server capabilities that change the DDL (old servers lack them)."""

    version: tuple[int, ...]
    low_cardinality: bool
    ttl: bool
    codecs: bool

    @classmethod
    def from_version(cls, version: str) -> "Features":
        parts = tuple(int(p) for p in version.split(".")[:3] if p.isdigit())
        modern = parts >= (19, 17)
        return cls(version=parts, low_cardinality=modern, ttl=modern, codecs=modern)


def table_name(name: str) -> str:
    """Fully qualified name of an allowlisted table; anything else is refused."""
    if name not in TABLES:
        raise SinkError(f"unknown table {name!r}")
    return f"netready.{name}"


def sql_string(value: str) -> str:
    """A ClickHouse string literal."""
    escaped = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def sql_int(value: int) -> str:
    return str(int(value))


class Warehouse(ABC):
    """A ClickHouse to run DDL, insert Arrow tables and read Arrow tables."""

    url_for_display: str

    @abstractmethod
    def execute(self, sql: str) -> None:
        """Run a statement that returns nothing."""

    @abstractmethod
    def query(self, sql: str) -> pa.Table:
        """Run a SELECT and return its result as an Arrow table."""

    @abstractmethod
    def insert(self, table: str, data: pa.Table) -> None:
        """Insert `data` into allowlisted `table`, matching columns by name."""

    @abstractmethod
    def server_version(self) -> str:
        """`SELECT version()`."""

    def features(self) -> Features:
        return Features.from_version(self.server_version())

    def close(self) -> None:
        """Release connections; the default does nothing."""

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
