"""How a collector's tags and values map onto the telemetry record, read from `[adapter]` in TOML.

gNMIc and Telegraf already know the router and the measured link, but name them after the
device model (`source`, `interface_name`, `sr-policy_name`) or the Telegraf host, and report
latency under a vendor path or field name in that vendor's unit. An `AdapterMapping` says
which tag is which field and which value is the RTT; `pick_names` and `to_us` apply it.

    [adapter]
    kind = "gnmic"                       # or "telegraf"
    rtt_key = "/interfaces/interface/state/delay/average"
    link_tags = ["interface_name"]       # several tags are joined with "/"
    metro_tag = "source"                 # default "metro"
    metro_of_source = { "pe1.bj" = "北京" }
    unit = "us"                          # ns, us, ms or s; converted to µs

Conversions are exact where they can be: an RTT of "1.1" ms is 1100.0 µs, not 1100.0000000000002,
because the 1000 µs threshold is strict and a sample on it must land on it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Mapping

from pipeline.decode.chunk import RAW_PREVIEW_BYTES
from pipeline.decode.columns import number_from_string
from pipeline.errors import ConfigError
from pipeline.records import Reject

KINDS = ("gnmic", "telegraf")
UNITS = ("ns", "us", "ms", "s")
DEFAULT_ROUTER_TAG = {"gnmic": "source", "telegraf": "host"}
LINK_SEPARATOR = "/"
# Scale from a unit to microseconds as exact decimals: a float 0.001 would add its own error.
_US_PER_UNIT = {"ns": Decimal("0.001"), "us": Decimal(1), "ms": Decimal(1000), "s": Decimal(1_000_000)}
_INT_US_PER_UNIT = {"us": 1, "ms": 1000, "s": 1_000_000}
NS_PER_TIMESTAMP_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class AdapterMapping:
    """Which tag or value of a collector's output fills each telemetry field.

    `kind` is "gnmic" or "telegraf". `rtt_key` names the RTT value: for gNMIc an xpath (exact
    when it starts with "/", else a suffix of whole path elements such as "delay/average"; module
    prefixes and [key=value] parts are ignored on both sides), for Telegraf a field name.
    `link_tags` are joined with "/" into the link id. The metro is the `metro_tag` value, looked
    up in `metro_of_source` when that is given. `unit` is the unit of both latency values.
    `timestamp_unit` is Telegraf's `json_timestamp_units` (gNMIc timestamps are always ns).
    """

    kind: str
    rtt_key: str
    link_tags: tuple[str, ...]
    metro_tag: str = "metro"
    router_tag: str = ""  # "" means the kind's default: gNMIc "source", Telegraf "host"
    one_way_key: str | None = None
    site_tag: str | None = None
    dc_tag: str | None = None
    unit: str = "us"
    metro_of_source: Mapping[str, str] | None = field(default=None, hash=False)
    timestamp_unit: str = "s"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"[adapter] kind must be one of {KINDS}, got {self.kind!r}")
        if self.unit not in UNITS:
            raise ConfigError(f"[adapter] unit must be one of {UNITS}, got {self.unit!r}")
        object.__setattr__(self, "timestamp_unit", timestamp_unit_of(self.timestamp_unit))
        link_tags = (self.link_tags,) if isinstance(self.link_tags, str) else tuple(self.link_tags)
        object.__setattr__(self, "link_tags", link_tags)
        if not link_tags:
            raise ConfigError("[adapter] link_tags must name at least one tag")
        if not self.router_tag:
            object.__setattr__(self, "router_tag", DEFAULT_ROUTER_TAG[self.kind])
        for name in ("rtt_key", "metro_tag", "router_tag"):
            _check_name(name, getattr(self, name))
        for name in ("one_way_key", "site_tag", "dc_tag"):
            if getattr(self, name) is not None:
                _check_name(name, getattr(self, name))
        for tag in link_tags:
            _check_name("link_tags", tag)
        if self.metro_of_source is not None:
            if not isinstance(self.metro_of_source, Mapping) or not all(
                    type(k) is str and type(v) is str for k, v in self.metro_of_source.items()):
                raise ConfigError("[adapter] metro_of_source must be a table of strings to metro names")
            object.__setattr__(self, "metro_of_source", MappingProxyType(dict(self.metro_of_source)))
        if self.kind == "gnmic":
            for name in ("rtt_key", "one_way_key"):
                key = getattr(self, name)
                if key is not None and not normalize_path(key).strip("/"):
                    raise ConfigError(f"[adapter] {name} {key!r} names no path element")

    @property
    def timestamp_ns_per_unit(self) -> int:
        return 1 if self.kind == "gnmic" else NS_PER_TIMESTAMP_UNIT[self.timestamp_unit]

    @classmethod
    def from_dict(cls, section: Mapping[str, Any]) -> "AdapterMapping":
        """From a parsed `[adapter]` TOML table; unknown keys and bad values raise ConfigError."""
        if not isinstance(section, Mapping):
            raise ConfigError("[adapter] must be a table")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ConfigError(f"[adapter] unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for required in ("kind", "rtt_key", "link_tags"):
            if required not in section:
                raise ConfigError(f"[adapter] {required} is required")
        link_tags = section["link_tags"]
        if not (type(link_tags) is str or (type(link_tags) is list and all(type(t) is str for t in link_tags))):
            raise ConfigError("[adapter] link_tags must be a tag name or a list of tag names")
        for key in ("kind", "rtt_key", "metro_tag", "router_tag", "one_way_key", "site_tag", "dc_tag",
                    "unit", "timestamp_unit"):
            if key in section and type(section[key]) is not str:
                raise ConfigError(f"[adapter] {key} must be a string, got {type(section[key]).__name__}")
        if section["kind"] == "gnmic" and "timestamp_unit" in section:
            raise ConfigError("[adapter] timestamp_unit applies to telegraf only; gNMIc timestamps are ns")
        return cls(**dict(section))

    def metro_of(self, tag_value: str) -> str | None:
        if self.metro_of_source is None:
            return tag_value
        return self.metro_of_source.get(tag_value)


def _check_name(key: str, value: Any) -> None:
    if type(value) is not str or not value:
        raise ConfigError(f"[adapter] {key} must be a non-empty string, got {value!r}")


def timestamp_unit_of(unit: Any) -> str:
    """"s", "ms", "us" or "ns" from itself or Telegraf's duration spelling ("1ms")."""
    text = unit[1:] if type(unit) is str and unit.startswith("1") else unit
    if text not in NS_PER_TIMESTAMP_UNIT:
        raise ConfigError(f"[adapter] timestamp_unit must be one of {tuple(NS_PER_TIMESTAMP_UNIT)}, got {unit!r}")
    return text


@lru_cache(maxsize=8192)
def normalize_path(path: str) -> str:
    """An xpath with a leading "/" and without origin, module prefixes or [key=value] parts, e.g.
    "openconfig:/oc-if:interfaces/interface[name=Eth1]/state" -> "/interfaces/interface/state"."""
    out, depth = [], 0
    for ch in path:  # drop [...] first: key values may hold ":" and "/"
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    elements = "".join(out).split("/")
    if elements and ":" in elements[0] and len(elements) > 1 and elements[0].endswith(":"):
        elements[0] = ""  # "origin:" before the leading slash
    path = "/".join(e.rsplit(":", 1)[-1] for e in elements)
    return path if path.startswith("/") else "/" + path


def find_value(values: Mapping[str, Any], key: str) -> tuple[list[str], Any]:
    """(matching value names, the value if exactly one matched) for a configured gNMIc key."""
    exact = key.startswith("/")
    if exact and key in values:  # the common case: the configured path is the value name as sent
        return [key], values[key]
    want = normalize_path(key)  # starts with "/", so endswith() matches whole elements only
    hits = [name for name in values
            if type(name) is str and ((norm := normalize_path(name)) == want
                                      or (not exact and norm.endswith(want)))]
    return hits, values[hits[0]] if len(hits) == 1 else None


def to_us(value: Any, unit: str) -> float | None:
    """A latency in `unit` as float µs; None if it is not a number or a decimal string.
    Infinite when too large for a double (validation rejects it with the right reason)."""
    kind = type(value)
    try:
        if kind is int:
            if unit == "ns":
                return value / 1000
            return float(value * _INT_US_PER_UNIT[unit])
        if kind is float:
            if unit == "us" or value != value or value in (float("inf"), float("-inf")):
                return value
            return float(Decimal(repr(value)) * _US_PER_UNIT[unit])
        if kind is str:
            if number_from_string(value) is None:
                return None
            if unit == "us":
                return float(value)
            return float(Decimal(value) * _US_PER_UNIT[unit])
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")
    except InvalidOperation:
        return None
    return None


def build_record(tags: Any, mapping: AdapterMapping, ts: int, rtt: float, one_way: float | None
                 ) -> dict | tuple[str, str]:
    """The telemetry record from an event's tags and its already-read values, or (reason, detail)."""
    if tags is None:
        tags = {}
    elif type(tags) is not dict:
        return "wrong_type", f"tags must be an object, got {json_type(tags)}"
    reason, detail, names = pick_names(tags, mapping)
    if names is None:
        return reason, detail
    names["ts"] = ts
    names["rtt_us"] = rtt
    names["one_way_us"] = one_way
    return names


def pick_names(tags: Mapping[str, Any], mapping: AdapterMapping) -> tuple[str, str, dict | None]:
    """("", "", names) with metro/router/link/site/dc from tags, or (reason, detail, None)."""
    names: dict[str, Any] = {}
    for field_name, tag in (("metro", mapping.metro_tag), ("router", mapping.router_tag)):
        value = tags.get(tag)
        if value is None:
            return "missing_field", f"{field_name}: tag {tag!r} is missing", None
        if type(value) is not str:
            return "wrong_type", f"{field_name}: tag {tag!r} must be a string, got {json_type(value)}", None
        names[field_name] = value
    metro = mapping.metro_of(names["metro"])
    if metro is None:
        return ("unmapped", f"metro: {mapping.metro_tag}={names['metro']!r} is not in metro_of_source",
                None)
    names["metro"] = metro
    parts = []
    for tag in mapping.link_tags:
        value = tags.get(tag)
        if value is None:
            return "missing_field", f"link: tag {tag!r} is missing", None
        if type(value) is not str:
            return "wrong_type", f"link: tag {tag!r} must be a string, got {json_type(value)}", None
        parts.append(value)
    names["link"] = LINK_SEPARATOR.join(parts)
    for field_name, tag in (("site", mapping.site_tag), ("dc", mapping.dc_tag)):
        value = tags.get(tag) if tag is not None else None
        if value is not None and type(value) is not str:
            return "wrong_type", f"{field_name}: tag {tag!r} must be a string, got {json_type(value)}", None
        names[field_name] = value
    return "", "", names


def oversized(payload: bytes, max_bytes: int, source: str, position: int) -> Reject | None:
    if len(payload) <= max_bytes:
        return None
    return Reject(source, position, "too_large",
                  f"message of {len(payload)} bytes exceeds {max_bytes}; raw truncated",
                  bytes(payload[:RAW_PREVIEW_BYTES]))


def int64_ns(value: int) -> int | None:
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def value_names(values: Mapping[str, Any], limit: int = 5) -> str:
    """A short list of what a message did carry, for an `unmapped` detail."""
    names = [str(name) for name in list(values)[:limit]]
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return (", ".join(names) + more) if names else "none"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), type(value).__name__)
