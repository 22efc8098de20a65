"""Compliance policies: what "a 1 ms metro" means, versioned and stored with every verdict.

The policy leaves open which statistic and which layer count (CONTEXT.md), so
the definition is data: a policy id is recorded with each verdict, and history
can be recomputed under a new policy.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass
from dataclasses import field as _dc_field
from fractions import Fraction
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

_QUANTILE = re.compile(r"^p([0-9]{1,6})$")


@dataclass(frozen=True)
class SiteCoveragePolicy:
    """MIIT's "under 1 ms from key sites/access points to computing centres", per metro.

    A *path* is (site, dc): every link whose samples carry that access point and that computing
    centre. Per window, a path **meets the statistic** iff it has at least `min_samples` samples
    and either (`statistic = "share"`) at least `required_share` of them are strictly under
    `threshold_us`, or (`statistic = "pNN"`, e.g. "p99") its nearest-rank NN-th percentile is
    strictly under `threshold_us`. A site is **covered** iff its best dc path meets the statistic.
    A metro window is **compliant** iff the (weighted) share of covered sites >= `site_share_bar`.

    `site_weights_file` (CSV `metro,site,weight`, header optional) lists the key sites of the
    metros it names: their sites are exactly the listed ones (a listed site without data in a
    window is not covered; unlisted sites weigh 0). Metros it does not name weigh every site seen
    in the window 1. The file's content is pinned by its SHA-256, which is part of the id.
    """

    name: str = "site-coverage"
    version: int = 1
    field: str = "rtt_us"
    threshold_us: float = 1000.0
    statistic: str = "share"  # "share" or "pNN" (p99, p95, p999 = 99.9 %)
    required_share: float = 0.99  # used by statistic "share"
    min_samples: int = 100
    site_share_bar: float = 0.9
    site_weights_file: str | None = None
    site_weights_sha256: str | None = None  # pin; computed from the file when not given
    _weights: tuple = _dc_field(default=(), init=False, repr=False, compare=False)

    kind = "site-coverage"

    def __post_init__(self) -> None:
        if self.field not in MEASURED_FIELDS:
            raise ConfigError(f"policy field must be one of {MEASURED_FIELDS}, not {self.field!r}")
        if not (isinstance(self.threshold_us, (int, float)) and math.isfinite(self.threshold_us)
                and self.threshold_us > 0):
            raise ConfigError("policy threshold_us must be positive")
        if self.statistic != "share" and not _QUANTILE.match(self.statistic or ""):
            raise ConfigError(f"policy statistic must be 'share' or 'pNN' (e.g. 'p99'), "
                              f"not {self.statistic!r}")
        if self.statistic != "share" and int(self.statistic[1:]) == 0:
            raise ConfigError("policy statistic p0 is meaningless")
        if not 0 < self.required_share <= 1:
            raise ConfigError("policy required_share must be in (0, 1]")
        if self.min_samples < 1:
            raise ConfigError("policy min_samples must be at least 1")
        if not 0 < self.site_share_bar <= 1:
            raise ConfigError("policy site_share_bar must be in (0, 1]")
        if self.site_weights_file is not None:
            data = _read_bytes(self.site_weights_file)
            digest = hashlib.sha256(data).hexdigest()
            if self.site_weights_sha256 is not None and self.site_weights_sha256 != digest:
                raise ConfigError(f"site weights file {self.site_weights_file} changed: its sha256 is "
                                  f"{digest}, the policy pins {self.site_weights_sha256}")
            object.__setattr__(self, "site_weights_sha256", digest)
            object.__setattr__(self, "_weights", _parse_weights(data, self.site_weights_file))
        elif self.site_weights_sha256 is not None:
            raise ConfigError("site_weights_sha256 given without site_weights_file")

    @property
    def quantile(self) -> Fraction | None:
        """The percentile of statistic "pNN" as an exact fraction (p99 -> 99/100, p999 -> 999/1000)."""
        if self.statistic == "share":
            return None
        digits = self.statistic[1:]
        return Fraction(int(digits), 10 ** len(digits))

    @property
    def weights(self) -> dict[str, dict[str, Fraction]]:
        """metro -> site -> weight (exact decimal fractions) from the weights file; {} without one."""
        out: dict[str, dict[str, Fraction]] = {}
        for metro, site, weight in self._weights:
            out.setdefault(metro, {})[site] = weight
        return out

    @property
    def id(self) -> str:
        """Stable, human-readable id: every parameter that changes a verdict is in it."""
        stat = (f"@{self.required_share:g}" if self.statistic == "share" else f"@{self.statistic}")
        weights = f"/w{self.site_weights_sha256[:12]}" if self.site_weights_sha256 else ""
        return (f"{self.name}.v{self.version}:{self.field}<{self.threshold_us:g}{stat}"
                f"/min{self.min_samples}/sites>={self.site_share_bar:g}{weights}")

    def compliant(self, samples: np.ndarray, under: np.ndarray) -> np.ndarray:
        """The PATH test on exact counts (does a set of samples meet the statistic).

        For "pNN": the nearest-rank percentile (the sample of rank ceil(q n)) is under the
        threshold iff at least ceil(q n) samples are, so the test is exact on the counts:
        `under >= ceil(q * samples)`, in integers. Metro verdicts are NOT this test applied to a
        metro's totals: they come from site verdicts (`pipeline.site_coverage`)."""
        samples = np.asarray(samples, dtype=np.int64)
        under = np.asarray(under, dtype=np.int64)
        q = self.quantile
        if q is None:
            share_ppm = round(self.required_share * 1_000_000)
            return (samples >= self.min_samples) & (under * 1_000_000 >= samples * share_ppm)
        # ceil(q n) = (num * n + den - 1) // den, exact in int64 for any realistic n
        need = (samples * q.numerator + q.denominator - 1) // q.denominator
        return (samples >= self.min_samples) & (under >= need)

    def metro_compliant(self, covered_weight: Fraction, total_weight: Fraction) -> bool:
        """A metro window (or day) is compliant iff covered / total >= site_share_bar, exactly."""
        if total_weight <= 0:
            return False
        return covered_weight * 1_000_000 >= total_weight * round(self.site_share_bar * 1_000_000)

    def daily_verdicts(self, warehouse, metros: list[str], day_s: list[int]) -> np.ndarray:
        """Metro-day verdicts for `Lander.refresh_daily` (see pipeline.site_coverage.daily_verdicts)."""
        from .site_coverage import daily_verdicts

        return daily_verdicts(warehouse, self, metros, day_s)

    def to_dict(self) -> dict:
        data = {"kind": self.kind, "name": self.name, "version": self.version, "field": self.field,
                "threshold_us": self.threshold_us, "statistic": self.statistic,
                "required_share": self.required_share, "min_samples": self.min_samples,
                "site_share_bar": self.site_share_bar, "site_weights_file": self.site_weights_file,
                "site_weights_sha256": self.site_weights_sha256}
        if self._weights:  # the definition stored in netready.policies is self-contained
            data["site_weights"] = [[m, s, str(w)] for m, s, w in self._weights]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict, base_dir: Path | None = None) -> "SiteCoveragePolicy":
        data = dict(data)
        data.pop("kind", None)
        data.pop("site_weights", None)  # audit copy; the file (pinned by sha256) is authoritative
        wfile = data.get("site_weights_file")
        if wfile is not None and base_dir is not None and not Path(wfile).is_absolute():
            data["site_weights_file"] = str(base_dir / wfile)
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"bad site-coverage policy: {exc}") from exc


POLICY_KINDS = {"sample-share": SampleSharePolicy, "site-coverage": SiteCoveragePolicy}


def policy_from_dict(data: dict, base_dir: Path | None = None) -> SampleSharePolicy | SiteCoveragePolicy:
    """Either policy kind from its JSON object; `"kind"` defaults to "sample-share"."""
    kind = data.get("kind", "sample-share")
    if kind == "site-coverage":
        return SiteCoveragePolicy.from_dict(data, base_dir)
    if kind != "sample-share":
        raise ConfigError(f"unknown policy kind {kind!r}; known: {sorted(POLICY_KINDS)}")
    data = {k: v for k, v in data.items() if k != "kind"}
    try:
        return SampleSharePolicy(**data)
    except TypeError as exc:
        raise ConfigError(f"bad sample-share policy: {exc}") from exc


def load_policy(path: str | Path) -> SampleSharePolicy | SiteCoveragePolicy:
    """A policy from a JSON file, dispatching on `"kind"` ("sample-share" when absent).
    A relative `site_weights_file` is resolved against the JSON file's directory."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read policy file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"policy file {path} must hold a JSON object")
    return policy_from_dict(data, path.parent)


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read site weights file {path}: {exc}") from exc


def _parse_weights(data: bytes, path: str) -> tuple[tuple[str, str, Fraction], ...]:
    """Rows of a `metro,site,weight` CSV (header optional), weights as exact decimal fractions."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"site weights file {path} is not UTF-8: {exc}") from exc
    rows: dict[tuple[str, str], Fraction] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if number == 1 and [c.strip().lower() for c in row] == ["metro", "site", "weight"]:
            continue
        if len(row) != 3:
            raise ConfigError(f"{path}:{number}: expected metro,site,weight, got {row!r}")
        metro, site, raw = row[0].strip(), row[1].strip(), row[2].strip()
        try:
            weight = Fraction(raw)
        except (ValueError, ZeroDivisionError) as exc:
            raise ConfigError(f"{path}:{number}: weight {raw!r} is not a number") from exc
        if not metro or not site or weight < 0:
            raise ConfigError(f"{path}:{number}: need a metro, a site and a weight >= 0")
        if (metro, site) in rows:
            raise ConfigError(f"{path}:{number}: site {site!r} of {metro!r} listed twice")
        rows[(metro, site)] = weight
    return tuple((m, s, w) for (m, s), w in sorted(rows.items()))
