"""Aggregation state of one partition as bytes: what a checkpoint stores.

The kernel snapshot (numpy arrays and ints), the name index and the metro
first-seen times are packed into one `.npz` archive with a JSON header; no
pickle, so a checkpoint read back from the warehouse cannot run code.
"""
from __future__ import annotations

import io
import json

import numpy as np

from ..aggregate import AggregatorConfig, WindowAggregator
from ..index import NameIndex
from ..kernel import Kernel
from ..rows import RowSet

_ROW_FIELDS = ("key", "samples", "under", "min_us", "max_us", "sum_us", "hist_offsets",
               "hist_bucket", "hist_count")
FORMAT_VERSION = 1


def encode(aggregator: WindowAggregator) -> bytes:
    snap = aggregator.kernel.snapshot()
    arrays: dict[str, np.ndarray] = {"link_metro": snap["link_metro"]}
    panes = []
    for kind in ("open", "closed"):
        for i, (index, rows) in enumerate(snap[kind]):
            name = f"{kind}{i}"
            panes.append([kind, int(index), name])
            for field in _ROW_FIELDS:
                arrays[f"{name}.{field}"] = getattr(rows, field)
    header = {
        "format": FORMAT_VERSION,
        "kernel": {k: snap[k] for k in ("pane_ns", "lateness_ns", "threshold_us", "has_data",
                                        "max_ts_ns", "closed_wm_ns", "samples_in", "samples_late")},
        "windows_ns": [list(w) for w in snap["windows_ns"]],
        "panes": panes,
        "index": aggregator.index.snapshot(),
        "first_seen": {str(k): v for k, v in aggregator.metro_first_seen_ns.items()},
    }
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def decode(data: bytes, config: AggregatorConfig) -> WindowAggregator:
    """Rebuild an aggregator; refuses a checkpoint made under other window settings."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        header = json.loads(archive["header"].tobytes())
        if header["format"] != FORMAT_VERSION:
            raise ValueError(f"checkpoint format {header['format']} is not {FORMAT_VERSION}")
        aggregator = WindowAggregator(config)
        kernel = header["kernel"]
        if ([list(w) for w in config.windows_ns] != header["windows_ns"]
                or kernel["pane_ns"] != config.pane_ns
                or kernel["threshold_us"] != config.policy.threshold_us):
            raise ValueError("checkpoint was made with other window or policy settings")
        state = dict(kernel, windows_ns=[tuple(w) for w in header["windows_ns"]],
                     link_metro=archive["link_metro"], open=[], closed=[])
        for kind, index, name in header["panes"]:
            rows = RowSet(**{f: archive[f"{name}.{f}"] for f in _ROW_FIELDS})
            state[kind].append((index, rows))
    aggregator.kernel = Kernel.restore(state)
    aggregator.index = NameIndex.restore(header["index"], config.max_metros, config.max_links)
    aggregator.metro_first_seen_ns = {int(k): v for k, v in header["first_seen"].items()}
    return aggregator
