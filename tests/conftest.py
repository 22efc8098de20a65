"""Shared fixtures: a fresh embedded warehouse and a runner for the `netready` command.

chdb runs one embedded server per process, bound to one data directory: opening a
second session on another path while one is open fails ("EmbeddedServer already
initialized with path ..."). Closing the session releases it, and a later session may
use another path. So warehouses here are function-scoped and always closed, and
tests never hold a session open while a `netready` subprocess uses the same path.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def netready_executable() -> Path:
    """The console script of the interpreter running the tests (the project venv)."""
    beside = Path(sys.executable).parent / "netready"
    return beside if beside.exists() else ROOT / ".venv" / "bin" / "netready"


@pytest.fixture
def chdb_url(tmp_path: Path) -> str:
    return f"chdb:{tmp_path / 'ch'}"


@pytest.fixture
def warehouse(chdb_url: str):
    """A fresh embedded ClickHouse in the test's tmp dir, closed afterwards."""
    from pipeline.warehouse import open_warehouse

    wh = open_warehouse(chdb_url)
    try:
        yield wh
    finally:
        wh.close()


@pytest.fixture(scope="session")
def netready_in():
    """Run `netready ARGS...` with cwd=DIR: `netready_in(DIR, *args)`; returns CompletedProcess.
    NETREADY_* variables of the calling environment are dropped so they cannot leak in."""
    exe = str(netready_executable())
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETREADY_")}

    def run(cwd: Path, *args, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([exe, *map(str, args)], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)

    return run


@pytest.fixture
def netready(netready_in, tmp_path: Path):
    """Run `netready ARGS...` in tmp_path (so default paths stay there); returns CompletedProcess."""
    return lambda *args, **kw: netready_in(tmp_path, *args, **kw)
