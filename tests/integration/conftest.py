"""Shared fixtures for integration tests against the real local servers (scripts/stack.sh).

Nothing is started here: `scripts/test.sh` starts the stack first. When it is down the tests
skip, unless NETREADY_REQUIRE_STACK=1 (CI), in which case they fail.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STACK_SH = REPO / "scripts" / "stack.sh"


def _stack_status() -> tuple[dict[str, str], int, str]:
    proc = subprocess.run(
        ["bash", str(STACK_SH), "status"], capture_output=True, text=True, timeout=60
    )
    values = {}
    for line in proc.stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip()
    return values, proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def stack() -> dict[str, str]:
    """Endpoints of a running stack; skip (or fail if required) when it is down."""
    values, rc, output = _stack_status()
    if rc != 0:
        down = sorted(k for k, v in values.items() if v == "down")
        reason = (
            f"local stack is not fully up (down: {', '.join(down) or '?'}; "
            f"`scripts/stack.sh status` exit {rc}). Start it with `scripts/stack.sh up`."
        )
        if os.environ.get("NETREADY_REQUIRE_STACK") == "1":
            pytest.fail(reason + "\n" + output, pytrace=False)
        pytest.skip(reason)
    return values


