"""Event-time window definitions: half-open `[start, start + length)`, aligned to the epoch.

Every window is built from *panes*, the finest slices of time that all window
boundaries respect (the gcd of every length and hop). Samples are aggregated
once per pane; a window is the exact merge of its panes. A pane is *closed*
when the watermark reaches its end; a sample whose pane is closed is late,
because the earliest window containing it has already been emitted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ConfigError

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class WindowSpec:
    """A tumbling (hop == length) or sliding (hop < length) window family."""

    length_s: int
    hop_s: int

    def __post_init__(self) -> None:
        if self.length_s <= 0 or self.hop_s <= 0:
            raise ConfigError(f"window length and hop must be positive: {self}")
        if self.length_s % self.hop_s:
            raise ConfigError(f"window length must be a multiple of its hop: {self}")

    @classmethod
    def parse(cls, text: str) -> "WindowSpec":
        """`"60"` (tumbling) or `"300/60"` (length/hop), in seconds."""
        length, _, hop = text.partition("/")
        try:
            return cls(int(length), int(hop or length))
        except ValueError as exc:
            raise ConfigError(f"bad window spec {text!r}: expected LENGTH_S or LENGTH_S/HOP_S") from exc

    @property
    def label(self) -> str:
        return f"{self.length_s}" if self.length_s == self.hop_s else f"{self.length_s}/{self.hop_s}"


DEFAULT_WINDOWS = (WindowSpec(60, 60), WindowSpec(300, 60))


def pane_s(specs: tuple[WindowSpec, ...] | list[WindowSpec]) -> int:
    """Length of the finest pane every window of `specs` is made of."""
    if not specs:
        raise ConfigError("at least one window spec is required")
    return math.gcd(*(s.hop_s for s in specs))


def windows_containing(pane_start_ns: int, pane_ns: int, spec: WindowSpec) -> list[int]:
    """Start times (ns) of the windows of `spec` that contain the pane starting at `pane_start_ns`."""
    hop_ns, length_ns = spec.hop_s * NS_PER_S, spec.length_s * NS_PER_S
    last = (pane_start_ns // hop_ns) * hop_ns
    first = last - length_ns + hop_ns
    return list(range(first, last + 1, hop_ns))
