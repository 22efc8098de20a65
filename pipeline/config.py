"""Settings from an optional TOML file, overridden by command-line options.

Example `netready.toml`:

    clickhouse = "chdb:netready-data/chdb"
    windows = ["60", "300/60"]
    lateness_s = 30
    metros = ["北京", "上海"]          # registry; omit for "every metro seen"
    reject_path = "netready-data/rejects.jsonl"

    [policy]
    field = "rtt_us"
    threshold_us = 1000.0
    required_share = 0.99
    min_samples = 100

    [limits]
    max_name_bytes = 256
    max_latency_us = 10000000
    max_metros = 10000
    max_links = 1000000

    [target]                         # progress towards the coverage target (pipeline/trajectory.py)
    coverage = 0.75
    deadline = 2028-12-31
    baseline_date = 2026-06-10       # omit both baseline keys for "the first observed day"
    baseline_coverage = 0.40
    milestones = [[2027-06-30, 0.55], [2027-12-31, 0.65]]
    at_risk_points = 5
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from .aggregate import AggregatorConfig
from .coverage import Registry
from .errors import ConfigError
from .ingest import IngestConfig
from .kafka_config import KafkaSettings
from .policy import DEFAULT_POLICY, SampleSharePolicy
from .trajectory import TargetConfig
from .validate import Limits
from .windows import DEFAULT_WINDOWS, WindowSpec

DEFAULT_REJECT_PATH = Path("netready-data/rejects.jsonl")


@dataclass
class Settings:
    clickhouse: str | None = None
    windows: tuple[WindowSpec, ...] = DEFAULT_WINDOWS
    lateness_s: int = 30
    policy: SampleSharePolicy = DEFAULT_POLICY
    metros: list[str] | None = None
    reject_path: Path = DEFAULT_REJECT_PATH
    limits: Limits = field(default_factory=Limits)
    max_metros: int = 10_000
    max_links: int = 1_000_000
    kafka: KafkaSettings | None = None
    adapter: dict | None = None
    alerts: dict | None = None  # the [alerts] section, read by pipeline.alerts.config
    target: TargetConfig = field(default_factory=TargetConfig)

    @classmethod
    def load(cls, path: str | Path | None) -> "Settings":
        if path is None:
            return cls()
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {path}: {exc}") from exc
        settings = cls()
        if "kafka" in data:
            settings.kafka = KafkaSettings.from_mapping(data.pop("kafka"))
        if "adapter" in data:
            settings.adapter = dict(data.pop("adapter"))
        if "alerts" in data:
            settings.alerts = dict(data.pop("alerts"))
        if "target" in data:
            try:
                settings.target = TargetConfig.from_mapping(dict(data.pop("target")))
            except ConfigError as exc:
                raise ConfigError(f"bad [target] in {path}: {exc}") from exc
        policy = data.pop("policy", None)
        if policy is not None:
            try:
                settings.policy = SampleSharePolicy(**policy)
            except TypeError as exc:  # unknown key or a value of the wrong type
                raise ConfigError(f"bad [policy] in {path}: {exc}") from exc
        limits = dict(data.pop("limits", {}))
        settings.max_metros = int(limits.pop("max_metros", settings.max_metros))
        settings.max_links = int(limits.pop("max_links", settings.max_links))
        try:
            settings.limits = Limits(**limits)
        except TypeError as exc:
            raise ConfigError(f"bad [limits] in {path}: {exc}") from exc
        if "windows" in data:
            settings.windows = tuple(WindowSpec.parse(str(w)) for w in data.pop("windows"))
        for key in ("clickhouse", "lateness_s", "metros"):
            if key in data:
                setattr(settings, key, data.pop(key))
        if type(settings.lateness_s) is not int or settings.lateness_s < 0:
            raise ConfigError(f"lateness_s in {path} must be a non-negative integer of seconds")
        if "reject_path" in data:
            settings.reject_path = Path(data.pop("reject_path"))
        if data:
            raise ConfigError(f"unknown settings in {path}: {', '.join(sorted(data))}")
        return settings

    def __repr__(self) -> str:
        """The dataclass repr, with a password in the ClickHouse URL masked (Kafka secrets mask
        themselves), so settings can be logged."""
        from .warehouse.url import redact_url

        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["clickhouse"] = redact_url(self.clickhouse)
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    def kafka_settings(self) -> KafkaSettings:
        """The `[kafka]` section, else NETREADY_KAFKA_* environment variables."""
        return self.kafka if self.kafka is not None else KafkaSettings.from_env()

    def registry(self) -> Registry:
        return Registry() if self.metros is None else Registry.from_list(self.metros)

    def ingest_config(self) -> IngestConfig:
        aggregator = AggregatorConfig(windows=self.windows, lateness_s=self.lateness_s,
                                      policy=self.policy, max_metros=self.max_metros,
                                      max_links=self.max_links)
        return IngestConfig(aggregator=aggregator, limits=self.limits, registry=self.registry(),
                            reject_path=self.reject_path, target=self.target)
