"""ClickHouse as the result store: embedded chdb (default) or a server via clickhouse-driver.

Both backends offer the same small interface (`Warehouse`), so migrations,
landing and reports are written once.
"""
from __future__ import annotations

from .base import Features, Warehouse
from .url import DEFAULT_URL, open_warehouse

__all__ = ["DEFAULT_URL", "Features", "Warehouse", "open_warehouse"]
