"""bench/rss.py: a child's peak memory excludes what it inherited from a large parent at fork."""
from __future__ import annotations

import sys

from bench import e2e
from bench.rss import MeasuredPopen

CHILD_MB = 120
PARENT_MB = 700


def _touch(size_mb: int) -> bytearray:
    block = bytearray(size_mb << 20)
    block[::4096] = b"\x01" * len(range(0, len(block), 4096))  # make every page resident
    return block


def test_peak_is_the_childs_own_not_the_parents():
    parent = _touch(PARENT_MB)
    code = (f"import time; b = bytearray({CHILD_MB} << 20); b[::4096] = b'\\x01' * len(range(0, len(b), 4096)); "
            "time.sleep(0.3)")
    proc = MeasuredPopen([sys.executable, "-c", code])
    exit_code, cpu_s, peak_mb = e2e.wait(proc)
    assert exit_code == 0 and cpu_s > 0
    # the child's own allocation plus an interpreter (tens of MB); a figure carrying the parent's
    # pages (what ru_maxrss reports) would be above PARENT_MB
    assert CHILD_MB <= peak_mb < CHILD_MB + 150, peak_mb
    assert len(parent) == PARENT_MB << 20

