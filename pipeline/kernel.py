"""The compiled aggregation kernel, re-exported; there is deliberately no fallback.

A missing extension is a build error, not a reason to run the pure-Python
reference 100x slower without anybody noticing.
"""
from .errors import KernelMissingError

try:
    from ._kernel import Kernel, bucket_of_array, concat_rowsets, merge_rows, quantiles_csr
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise KernelMissingError(
        "the compiled kernel pipeline._kernel is not built; run `pip install -e .` "
        f"(needs a C++ compiler and Cython): {exc}"
    ) from exc

__all__ = ["Kernel", "bucket_of_array", "concat_rowsets", "merge_rows", "quantiles_csr"]
