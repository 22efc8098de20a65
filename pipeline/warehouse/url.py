"""Warehouse URLs: `chdb:DIR` (embedded) or `clickhouse://user:pass@host:port/db?secure=1`."""
from __future__ import annotations

import os

from ..errors import ConfigError
from .base import Warehouse

DEFAULT_URL = "chdb:netready-data/chdb"
URL_ENV = "NETREADY_CLICKHOUSE"


def redact_url(url: str | None) -> str | None:
    """The URL with a password in it replaced by '***' (for reprs and messages)."""
    if not url or "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    user, at, host = authority.rpartition("@")
    if at and ":" in user:
        user = user.split(":", 1)[0] + ":***"
    return f"{scheme}://{user}{at}{host}{slash}{path}"


def resolve_url(url: str | None) -> str:
    return url or os.environ.get(URL_ENV) or DEFAULT_URL


def open_warehouse(url: str | None = None) -> Warehouse:
    url = resolve_url(url)
    if url.startswith("chdb:"):
        from .embedded import ChdbWarehouse

        return ChdbWarehouse(url[len("chdb:"):] or "netready-data/chdb")
    if url.startswith(("clickhouse://", "clickhouses://")):
        from .server import ServerWarehouse

        return ServerWarehouse.from_url(url)
    raise ConfigError(f"unsupported warehouse URL {redact_url(url)!r}: use chdb:DIR or clickhouse://host:port/db")
