"""Coverage: compliant metros / metros in the registry, per window and per UTC day.

The registry is either a configured list of metros or, by default, every metro
seen before the period ended (by event time). A registered metro with no or too
few samples counts in the denominator and not in the numerator: it has not
demonstrated compliance.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Registry:
    configured: frozenset[str] | None = None
    name: str = "seen"

    @classmethod
    def from_list(cls, metros: Iterable[str], name: str = "configured") -> "Registry":
        return cls(frozenset(metros), f"configured:{name}")

    def members(self, first_seen_ns: dict[str, int], end_ns: int) -> frozenset[str]:
        """Metros that count for a period ending (exclusive) at `end_ns`."""
        if self.configured is not None:
            return self.configured
        return frozenset(m for m, ts in first_seen_ns.items() if ts < end_ns)


@dataclass(frozen=True)
class Coverage:
    metros_total: int
    metros_compliant: int
    metros_reporting: int

    @property
    def coverage(self) -> float:
        return self.metros_compliant / self.metros_total if self.metros_total else 0.0


def coverage_of(members: frozenset[str], verdicts: dict[str, bool]) -> Coverage:
    """Coverage of one period from each reporting metro's verdict."""
    reporting = [m for m in verdicts if m in members]
    return Coverage(metros_total=len(members),
                    metros_compliant=sum(1 for m in reporting if verdicts[m]),
                    metros_reporting=len(reporting))
