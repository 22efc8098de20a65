"""Peak resident memory of one benchmark child, without the harness's memory in it.

`ru_maxrss` from wait4 is no good for children of a large harness: Linux folds the high-water
mark of the process image a child had *before* exec (a copy of the harness, made by fork)
into it, so no child can look smaller than the harness. `VmHWM` in /proc/<pid>/status is the
high-water mark of the current image only, i.e. of the program measured; it is read every
`every_s` while the child runs (it only grows, so the last reading before exit is the figure,
short by at most what the child gained in its final `every_s`).
"""
from __future__ import annotations

import subprocess
import threading


def high_water_kb(pid: int) -> int | None:
    """VmHWM of `pid` in kB; None once it has exited (a zombie has no memory lines)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class HighWater:
    """Samples a child's VmHWM on a thread until `stop()`, which returns the peak in MB."""

    def __init__(self, pid: int, every_s: float = 0.02):
        self.pid = pid
        self.peak_kb = 0
        self.samples = 0
        self._stop = threading.Event()
        self._every_s = every_s
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            kb = high_water_kb(self.pid)
            if kb is not None:
                self.peak_kb = max(self.peak_kb, kb)
                self.samples += 1
            if self._stop.wait(self._every_s):
                return

    def stop(self) -> float | None:
        """Peak in MB, or None if the child was never seen running (then there is no figure)."""
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024 if self.samples else None


class MeasuredPopen(subprocess.Popen):
    """A Popen whose peak memory is sampled from the moment it exists (Popen returns after the
    child's exec, so every sample belongs to the program measured)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.high_water = HighWater(self.pid)
