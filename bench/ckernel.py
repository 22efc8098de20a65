"""The plain C reference loop (bench/c/kernel_ref.c): compiled at run time with gcc -O3, loaded with ctypes."""
from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "c" / "kernel_ref.c"
BUILD = HERE / "build"
LIBRARY = BUILD / "kernel_ref.so"
CFLAGS = ["-O3", "-shared", "-fPIC"]

_P = ctypes.c_void_p
_FIELDS = ["l_window", "l_key", "l_samples", "l_under", "l_min", "l_max", "l_sum", "l_off",
           "l_bucket", "l_count", "m_window", "m_key", "m_samples", "m_under", "m_min", "m_max",
           "m_sum", "m_off", "m_bucket", "m_count"]
_DTYPES = {"window": np.int64, "key": np.int32, "samples": np.int64, "under": np.int64,
           "min": np.float64, "max": np.float64, "sum": np.float64, "off": np.int64,
           "bucket": np.uint16, "count": np.uint32}
_COUNTERS = ["cap_rows", "cap_nnz", "cap_mrows", "cap_mnnz", "n_rows", "n_nnz", "n_mrows",
             "n_mnnz", "n_late"]


class _Out(ctypes.Structure):
    _fields_ = [(f, _P) for f in _FIELDS] + [(c, ctypes.c_int64) for c in _COUNTERS]


def build() -> Path:
    """Compile the library unless an up-to-date one exists; returns its path."""
    BUILD.mkdir(exist_ok=True)
    if not LIBRARY.exists() or LIBRARY.stat().st_mtime < SOURCE.stat().st_mtime:
        subprocess.run(["gcc", *CFLAGS, "-o", str(LIBRARY), str(SOURCE), "-lm"], check=True)
    return LIBRARY


def load():
    lib = ctypes.CDLL(str(build()))
    fn = lib.c_aggregate
    fn.restype = ctypes.c_int64
    fn.argtypes = [ctypes.c_int64, _P, _P, _P, _P, ctypes.c_int64, ctypes.c_int64, ctypes.c_double,
                   ctypes.c_int32, ctypes.c_int32, ctypes.POINTER(_Out)]
    return fn


def aggregate(fn, ts_ns, link_id, metro_id, value_us, window_ns: int, lateness_ns: int,
              threshold_us: float, n_links: int, n_metros: int, n_windows_hint: int) -> dict:
    """Run the C loop; returns its link and metro rows as numpy arrays (CSR histograms)."""
    n = len(ts_ns)
    caps = {"l": n_windows_hint * n_links, "m": n_windows_hint * n_metros}
    nnz = {"l": min(n, caps["l"] * 2177) + 2177, "m": min(n, caps["m"] * 2177) + 2177}
    arrays = {}
    for f in _FIELDS:
        level, kind = f.split("_", 1)
        size = nnz[level] if kind in ("bucket", "count") else caps[level] + (kind == "off")
        arrays[f] = np.empty(size, dtype=_DTYPES[kind])
    out = _Out(*[a.ctypes.data for a in arrays.values()], caps["l"], nnz["l"], caps["m"], nnz["m"],
               0, 0, 0, 0, 0)
    rc = fn(n, ts_ns.ctypes.data, link_id.ctypes.data, metro_id.ctypes.data, value_us.ctypes.data,
            window_ns, lateness_ns, threshold_us, n_links, n_metros, ctypes.byref(out))
    if rc:
        raise RuntimeError(f"c_aggregate failed with {rc}")
    rows = {"l": out.n_rows, "m": out.n_mrows}
    used = {"l": out.n_nnz, "m": out.n_mnnz}
    result = {"late": out.n_late}
    for f, a in arrays.items():
        level, kind = f.split("_", 1)
        result[f] = a[:used[level]] if kind in ("bucket", "count") else a[:rows[level] + (kind == "off")]
    return result
