"""A ClickHouse server through clickhouse-driver (native protocol).

The password is read from the URL, `NETREADY_CLICKHOUSE_PASSWORD` or the file
named by `NETREADY_CLICKHOUSE_PASSWORD_FILE`, and never appears in `repr`,
logs or error messages.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa

from ..errors import ConfigError
from .base import Warehouse, table_name
from .classify import sink_error

# Longest wait for the server on an open connection: a silently dropped connection (a network
# blackhole, a powered-off host) fails after this instead of after the driver's 300 s default.
TIMEOUT_S = 30.0


class ServerWarehouse(Warehouse):
    def __init__(self, host: str, port: int, user: str, password: str, database: str,
                 secure: bool = False, timeout_s: float = TIMEOUT_S):
        from clickhouse_driver import Client

        self._client = Client(host=host, port=port, user=user, password=password,
                              database="default", secure=secure, send_receive_timeout=timeout_s,
                              connect_timeout=min(10.0, timeout_s),
                              settings={"use_numpy": False, "strings_as_bytes": False})
        scheme = "clickhouses" if secure else "clickhouse"
        self.url_for_display = f"{scheme}://{user}@{host}:{port}/{database}"

    def __repr__(self) -> str:
        return f"ServerWarehouse({self.url_for_display!r})"

    @classmethod
    def from_url(cls, url: str) -> "ServerWarehouse":
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        secure = parts.scheme == "clickhouses" or query.get("secure", ["0"])[0] in ("1", "true")
        password = unquote(parts.password or "") or _password_from_env()
        database = (parts.path or "/netready").strip("/") or "netready"
        if database != "netready":
            raise ConfigError("the netready schema lives in database 'netready'")
        try:
            timeout_s = float(query.get("timeout_s", [TIMEOUT_S])[0])
        except ValueError:
            raise ConfigError("timeout_s in the ClickHouse URL must be a number of seconds") from None
        if not 0 < timeout_s <= 3600:
            raise ConfigError("timeout_s in the ClickHouse URL must be in (0, 3600]")
        return cls(parts.hostname or "127.0.0.1", parts.port or (9440 if secure else 9000),
                   unquote(parts.username or "default"), password, database, secure, timeout_s)

    def execute(self, sql: str) -> None:
        self._call(sql)

    def query(self, sql: str) -> pa.Table:
        rows, columns = self._call(sql, with_column_types=True, columnar=True)
        names = [name for name, _ in columns]
        if not rows:
            rows = [[] for _ in names]
        return pa.table({name: pa.array(list(values)) for name, values in zip(names, rows)})

    def insert(self, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        columns = ", ".join(f"`{name}`" for name in data.column_names)
        values = [column.to_pylist() for column in data.columns]
        self._call(f"INSERT INTO {table_name(table)} ({columns}) VALUES", values,
                   columnar=True, types_check=True)

    def server_version(self) -> str:
        return str(self._call("SELECT version()")[0][0])

    def close(self) -> None:
        self._client.disconnect()

    def _call(self, sql: str, *args, **kwargs):
        from clickhouse_driver import errors

        try:
            return self._client.execute(sql, *args, **kwargs)
        except (errors.Error, OSError, EOFError) as exc:
            raise sink_error(exc, self.url_for_display) from None


def _password_from_env() -> str:
    path = os.environ.get("NETREADY_CLICKHOUSE_PASSWORD_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get("NETREADY_CLICKHOUSE_PASSWORD", "")
