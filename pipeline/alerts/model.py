"""The two values the alert rules trade in: window events in, alert events out.

Times are integer seconds since the Unix epoch (event time), with `_s` in the name.
An AlertEvent's payload (`to_payload`) follows schemas/alert.schema.json.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

from .exceptions import BadWindowEvent

FIRING = "firing"
RESOLVED = "resolved"
PAYLOAD_VERSION = 1


def parse_time_s(value: str) -> int:
    """An RFC 3339 timestamp ("2026-06-10T08:00:00Z") as integer epoch seconds."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise BadWindowEvent(f"bad timestamp {value!r}") from None
    if parsed.tzinfo is None:
        raise BadWindowEvent(f"timestamp without a time zone: {value!r}")
    return int(parsed.timestamp())


def format_time(value_s: int | None) -> str | None:
    if value_s is None:
        return None
    return dt.datetime.fromtimestamp(value_s, dt.timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class WindowEvent:
    """The fields of a `netready.windows` event that the rules use."""

    metro: str
    policy: str
    window_start_s: int
    window_end_s: int
    window_s: int
    hop_s: int
    samples: int
    under_threshold: int
    compliant: bool
    version: int = 0

    @classmethod
    def from_dict(cls, data: dict) -> "WindowEvent":
        try:
            event = cls(metro=str(data["metro"]), policy=str(data["policy"]),
                        window_start_s=parse_time_s(data["window_start"]),
                        window_end_s=parse_time_s(data["window_end"]),
                        window_s=int(data["window_s"]), hop_s=int(data["hop_s"]),
                        samples=int(data["samples"]), under_threshold=int(data["under_threshold"]),
                        compliant=bool(data["compliant"]), version=int(data.get("version", 0)))
        except KeyError as exc:
            raise BadWindowEvent(f"window event lacks {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise BadWindowEvent(f"bad window event: {exc}") from None
        if not event.metro or event.samples < 0 or not 0 <= event.under_threshold <= event.samples:
            raise BadWindowEvent(f"inconsistent window event for metro {event.metro!r}")
        if event.window_end_s - event.window_start_s != event.window_s or event.window_s <= 0:
            raise BadWindowEvent(f"window bounds disagree with window_s for metro {event.metro!r}")
        return event


def fingerprint(labels: dict[str, str]) -> str:
    """Stable identity of an alert: a hash of its sorted labels (as Alertmanager identifies alerts)."""
    canonical = json.dumps(sorted(labels.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class AlertEvent:
    """One state transition of one alert (or its current state, when re-sent)."""

    alertname: str
    labels: dict[str, str]
    annotations: dict[str, str]
    status: str  # FIRING or RESOLVED
    starts_at_s: int
    ends_at_s: int | None  # None while firing
    event_time_s: int  # end of the window whose arrival decided the transition
    flap_count: int = 0
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        self.labels = {"alertname": self.alertname, **self.labels}
        if not self.fingerprint:
            self.fingerprint = fingerprint(self.labels)

    def to_payload(self) -> dict:
        """The `netready.alerts` topic / webhook payload (schemas/alert.schema.json)."""
        return {"alertname": self.alertname, "status": self.status, "labels": dict(self.labels),
                "annotations": dict(self.annotations), "starts_at": format_time(self.starts_at_s),
                "ends_at": format_time(self.ends_at_s), "event_time": format_time(self.event_time_s),
                "fingerprint": self.fingerprint, "flap_count": self.flap_count,
                "version": PAYLOAD_VERSION}

    @classmethod
    def from_payload(cls, data: dict) -> "AlertEvent":
        labels = {k: v for k, v in data["labels"].items() if k != "alertname"}
        ends = data.get("ends_at")
        return cls(alertname=data["alertname"], labels=labels, annotations=dict(data["annotations"]),
                   status=data["status"], starts_at_s=parse_time_s(data["starts_at"]),
                   ends_at_s=parse_time_s(ends) if ends else None,
                   event_time_s=parse_time_s(data["event_time"]), flap_count=int(data.get("flap_count", 0)),
                   fingerprint=data["fingerprint"])
