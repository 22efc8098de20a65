"""Configuration of `netready alerts`: the `[alerts]` TOML section, overridden by CLI options.

Example:

    [alerts]
    windows_topic = "netready.windows"
    alerts_topic = "netready.alerts"        # "" disables the topic
    app_id = "netready-alerts"               # faust app id: consumer group and state topics
    alertmanager_url = "http://127.0.0.1:9093"
    webhook_url = "https://hooks.example/netready"
    clickhouse = true                        # record history in netready.alerts (top-level `clickhouse` URL)
    resend_interval_s = 60
    web_host = "127.0.0.1"
    web_port = 6066
    generator_url = "https://grafana.example/d/netready"

    [alerts.labels]                          # added to every alert (and its fingerprint)
    env = "prod"

    [alerts.rules]                           # any RuleConfig field, see pipeline/alerts/rules.py
    regression_fire_windows = 3
    regression_clear_windows = 5
    no_data_s = 300
    coverage_drop_points = 10
    coverage_target = 0.75
    flap_max_changes = 4
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..kafka_config import KafkaSettings
from .rules import BurnWindow, RuleConfig

_RULE_FIELDS = {f.name for f in dataclasses.fields(RuleConfig)} - {"static_labels"}


@dataclass
class ServiceConfig:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    windows_topic: str = "netready.windows"
    alerts_topic: str | None = "netready.alerts"
    app_id: str = "netready-alerts"
    alertmanager_url: str | None = None
    webhook_url: str | None = None
    clickhouse_url: str | None = None
    resend_interval_s: float = 60.0
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    web_enabled: bool = True
    generator_url: str = ""
    replication_factor: int = 1
    drain_timeout_s: float = 10.0
    log_level: str = "info"
    rules: RuleConfig = field(default_factory=RuleConfig)

    @property
    def firing_ttl_s(self) -> float:
        """endsAt of a firing alert sent to Alertmanager: 4 re-send intervals, like Prometheus."""
        return max(4 * self.resend_interval_s, 60.0)


def from_mapping(data: Mapping[str, Any] | None, *, kafka: KafkaSettings,
                 clickhouse_url: str | None) -> ServiceConfig:
    """A ServiceConfig from the `[alerts]` section (None: defaults)."""
    data = dict(data or {})
    cfg = ServiceConfig(kafka=kafka)
    rules = dict(data.pop("rules", {}))
    labels = data.pop("labels", {})
    use_clickhouse = data.pop("clickhouse", True)
    for key in ("windows_topic", "alerts_topic", "app_id", "alertmanager_url", "webhook_url", "web_host",
                "generator_url", "log_level"):
        if key in data:
            value = data.pop(key)
            if not isinstance(value, str):
                raise ConfigError(f"[alerts] {key} must be a string")
            setattr(cfg, key, value or (None if key in ("alerts_topic", "alertmanager_url", "webhook_url")
                                        else value))
    for key, kind in (("resend_interval_s", float), ("web_port", int), ("replication_factor", int),
                      ("drain_timeout_s", float), ("web_enabled", bool)):
        if key in data:
            value = data.pop(key)
            if isinstance(value, bool) != (kind is bool) or not isinstance(value, (int, float, bool)):
                raise ConfigError(f"[alerts] {key} must be a {kind.__name__}")
            setattr(cfg, key, kind(value))
    if data:
        raise ConfigError(f"unknown [alerts] settings: {', '.join(sorted(data))}")
    if cfg.resend_interval_s <= 0:
        raise ConfigError("[alerts] resend_interval_s must be positive")
    if isinstance(use_clickhouse, str):
        cfg.clickhouse_url = use_clickhouse
    elif use_clickhouse:
        cfg.clickhouse_url = clickhouse_url
    cfg.rules = rule_config(rules, labels)
    return cfg


def rule_config(rules: Mapping[str, Any], labels: Mapping[str, Any]) -> RuleConfig:
    unknown = set(rules) - _RULE_FIELDS
    if unknown:
        raise ConfigError(f"unknown [alerts.rules] settings: {', '.join(sorted(unknown))}")
    values = dict(rules)
    for key in ("page_burn", "ticket_burn"):
        if key in values:  # a list of [factor, long_s, short_s]
            try:
                values[key] = tuple(BurnWindow(float(f), int(lo), int(sh)) for f, lo, sh in values[key])
            except (TypeError, ValueError):
                raise ConfigError(f"[alerts.rules] {key} must be a list of [factor, long_s, short_s]") from None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise ConfigError("[alerts.labels] must map strings to strings")
    reserved = {"alertname", "metro", "policy", "severity", "budget_alert"} & set(labels)
    if reserved:
        raise ConfigError(f"[alerts.labels] may not set {', '.join(sorted(reserved))}")
    try:
        return RuleConfig(**values, static_labels=tuple(sorted(labels.items())))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad [alerts.rules]: {exc}") from None
