"""Embedded ClickHouse (chdb): the default warehouse, a directory on local disk."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from ..errors import SinkError
from .base import Warehouse, table_name


class ChdbWarehouse(Warehouse):
    def __init__(self, path: str | Path):
        from chdb import session  # imported late: loading the engine takes a moment

        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.url_for_display = f"chdb:{self.path}"
        self._session = session.Session(str(self.path))

    def execute(self, sql: str) -> None:
        self._run(sql, "CSV")

    def query(self, sql: str) -> pa.Table:
        return self._run(sql, "ArrowTable")

    def insert(self, table: str, data: pa.Table) -> None:
        if data.num_rows == 0:
            return
        columns = ", ".join(f"`{name}`" for name in data.column_names)
        sql = (f"INSERT INTO {table_name(table)} ({columns}) "
               f"SELECT {columns} FROM Python(netready_rows)")
        netready_rows = data  # noqa: F841 - found by name in this frame by chdb's Python()
        if self._session is None:
            raise SinkError("warehouse is closed")
        try:
            self._session.query(sql, "CSV")
        except Exception as exc:
            raise SinkError(f"chdb insert into {table} failed: {exc}") from exc

    def server_version(self) -> str:
        return self.query("SELECT version() AS v").column("v")[0].as_py()

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def _run(self, sql: str, fmt: str):
        if self._session is None:
            raise SinkError("warehouse is closed")
        try:
            return self._session.query(sql, fmt)
        except Exception as exc:  # chdb raises plain RuntimeError with the server message
            raise SinkError(f"chdb query failed: {exc}") from exc
