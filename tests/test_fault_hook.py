"""The worker's fault-injection hook is off by default and refuses values it cannot honour.

Its effect (exit 137 between the checkpoint insert and the offset commit) is exercised against
the real servers in tests/integration/test_faults.py; here only the switch itself."""
from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.errors import ConfigError
from pipeline.stream.faults import EXIT_AFTER_LAND_ENV, EXIT_STATUS, ExitAfterLand


def test_off_without_the_variable():
    hook = ExitAfterLand({})
    for _ in range(5):
        hook.landed()  # would exit the test process if it were on
    assert hook.after is None and hook.rounds == 0


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_bad_values_are_refused(raw):
    with pytest.raises(ConfigError, match=EXIT_AFTER_LAND_ENV):
        ExitAfterLand({EXIT_AFTER_LAND_ENV: raw})


def test_exits_on_the_nth_round_only():
    code = ("from pipeline.stream.faults import ExitAfterLand\n"
            f"hook = ExitAfterLand({{'{EXIT_AFTER_LAND_ENV}': '3'}})\n"
            "hook.landed(); print('round 1', flush=True)\n"
            "hook.landed(); print('round 2', flush=True)\n"
            "hook.landed(); print('round 3', flush=True)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == EXIT_STATUS == 137
    assert proc.stdout.split("\n")[:2] == ["round 1", "round 2"] and "round 3" not in proc.stdout
