"""Numbered, idempotent DDL migrations from `schemas/clickhouse/NNN_name.sql`.

The SQL is written for the oldest supported server (18.16) with three tokens
that expand only where the server supports them:
`$LC(T)` -> `LowCardinality(T)` or `T`; `$CODEC(c)` -> `CODEC(c)` or nothing;
`$TTL(expr)` -> `TTL expr` or nothing. Every statement is `IF NOT EXISTS`, so
re-running a migration is harmless; applied versions are recorded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from .base import Features, Warehouse

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "clickhouse"
_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_TOKEN = re.compile(r"\$(LC|CODEC|TTL)\(((?:[^()]|\([^()]*\))*)\)")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self, features: Features) -> list[str]:
        rendered = render(self.sql, features)
        body = "\n".join(line for line in rendered.splitlines() if not line.lstrip().startswith("--"))
        return [s.strip() for s in body.split(";") if s.strip()]


def render(sql: str, features: Features) -> str:
    def expand(match: re.Match) -> str:
        token, inner = match.group(1), match.group(2)
        if token == "LC":
            return f"LowCardinality({inner})" if features.low_cardinality else inner
        if token == "CODEC":
            return f"CODEC({inner})" if features.codecs else ""
        return f"TTL {inner}" if features.ttl else ""

    return _TOKEN.sub(expand, sql)


def load(schema_dir: Path = SCHEMA_DIR) -> list[Migration]:
    found = []
    for path in sorted(schema_dir.glob("*.sql")):
        match = _FILE.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    return found


def migrate(warehouse: Warehouse, schema_dir: Path = SCHEMA_DIR) -> list[int]:
    """Apply every migration (idempotently); return the versions newly recorded."""
    migrations = load(schema_dir)
    done = _applied(warehouse)
    if done >= {m.version for m in migrations}:
        return []  # up to date: skip the DDL round trips (they cost seconds on a short run)
    features = warehouse.features()
    for statement in migrations[0].statements(features):
        warehouse.execute(statement)
    done = _applied(warehouse)
    applied = []
    for migration in migrations:
        for statement in migration.statements(features):
            warehouse.execute(statement)
        if migration.version not in done:
            warehouse.insert("schema_migrations", pa.table({
                "version": pa.array([migration.version], type=pa.uint32()),
                "name": pa.array([migration.name], type=pa.string())}))
            applied.append(migration.version)
    return applied


def _applied(warehouse: Warehouse) -> set[int]:
    """Versions recorded as applied; empty when the ledger does not exist yet."""
    from ..errors import SinkError

    try:
        return set(warehouse.query("SELECT version FROM netready.schema_migrations")
                   .column("version").to_pylist())
    except SinkError:
        return set()
