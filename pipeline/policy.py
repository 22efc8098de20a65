"""Compliance policies: what "a 1 ms metro" means, versioned and stored with every verdict.

The policy leaves open which statistic and which layer count (CONTEXT.md), so
the definition is data: a policy id is recorded with each verdict, and history
can be recomputed under a new policy.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError

MEASURED_FIELDS = ("rtt_us", "one_way_us")


@dataclass(frozen=True)
class SampleSharePolicy:
    """A metro window is compliant iff it has at least `min_samples` samples and at
    least `required_share` of them are strictly under `threshold_us` (1000.0 itself
    is not under)."""

    name: str = "sample-share"
    version: int = 1
    field: str = "rtt_us"
    threshold_us: float = 1000.0
    required_share: float = 0.99
    min_samples: int = 100

    def __post_init__(self) -> None:
        if self.field not in MEASURED_FIELDS:
            raise ConfigError(f"policy field must be one of {MEASURED_FIELDS}, not {self.field!r}")
        if not self.threshold_us > 0:
            raise ConfigError("policy threshold_us must be positive")
        if not 0 < self.required_share <= 1:
            raise ConfigError("policy required_share must be in (0, 1]")
        if self.min_samples < 1:
            raise ConfigError("policy min_samples must be at least 1")

    @property
    def id(self) -> str:
        """Stable, human-readable id: every parameter that changes a verdict is in it."""
        return (f"{self.name}.v{self.version}:{self.field}<{self.threshold_us:g}"
                f"@{self.required_share:g}/min{self.min_samples}")

    def compliant(self, samples: np.ndarray, under: np.ndarray) -> np.ndarray:
        """Exact verdicts from exact counts: `under >= required_share * samples`, done in integers
        where possible so that 0.99 * 100 does not round the wrong way."""
        samples = np.asarray(samples, dtype=np.int64)
        under = np.asarray(under, dtype=np.int64)
        share_ppm = round(self.required_share * 1_000_000)
        return (samples >= self.min_samples) & (under * 1_000_000 >= samples * share_ppm)

    def to_json(self) -> str:
        return json.dumps({"kind": "sample-share", **asdict(self)}, sort_keys=True)

    @classmethod
    def from_file(cls, path: str | Path) -> "SampleSharePolicy":
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read policy file {path}: {exc}") from exc
        data.pop("kind", None)
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"bad policy file {path}: {exc}") from exc


DEFAULT_POLICY = SampleSharePolicy()
