"""A private, throwaway ClickHouse server for the streaming benchmarks.

The shared stack's server keeps the schema in database `netready`, which the integration tests
drop and check while they run; landing benchmark rows there would break their checks (and they
would drop ours). So the server cases start Debian's `clickhouse-server` (the same 18.16 binary
as the stack) on free loopback ports with its data in a temporary directory, and stop it (by its
own pid) afterwards. Nothing of the shared stack is touched.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

BIN = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"

CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/server.err.log</errorlog>
        <size>50M</size><count>1</count></logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{tcp}</tcp_port>
    <http_port>{http}</http_port>
    <path>{d}/data/</path>
    <tmp_path>{d}/tmp/</tmp_path>
    <user_files_path>{d}/user_files/</user_files_path>
    <format_schema_path>{d}/format_schemas/</format_schema_path>
    <users_config>{d}/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_connections>256</max_connections>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <mlock_executable>false</mlock_executable>
</yandex>
"""
USERS = """<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
        <profile>default</profile><quota>default</quota></default></users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateServer:
    def __init__(self, directory: Path):
        self.dir = directory
        self.tcp, self.http = _free_port(), _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"clickhouse://default@127.0.0.1:{self.tcp}/netready"

    def client(self):
        from clickhouse_driver import Client

        return Client(host="127.0.0.1", port=self.tcp, user="default", database="default")

    def start(self, timeout_s: float = 60.0) -> "PrivateServer":
        for sub in ("data", "tmp", "user_files", "format_schemas"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "config.xml").write_text(CONFIG.format(d=self.dir, tcp=self.tcp, http=self.http))
        (self.dir / "users.xml").write_text(USERS)
        self.proc = subprocess.Popen([BIN, f"--config-file={self.dir / 'config.xml'}"],
                                     stdout=open(self.dir / "stdout.log", "wb"), stderr=subprocess.STDOUT,
                                     cwd=self.dir)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.client().execute("SELECT 1")
                break
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private clickhouse-server did not start; see {self.dir}")
                time.sleep(0.2)
        self.reset()
        return self

    def reset(self) -> None:
        """An empty `netready` database (the worker migrates it on start)."""
        c = self.client()
        c.execute("DROP DATABASE IF EXISTS netready")
        c.execute("CREATE DATABASE netready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
