"""Kafka connection settings, and the confluent-kafka configs built from them.

Example `[kafka]` section of `netready.toml`:

    [kafka]
    bootstrap_servers = "broker1:9093,broker2:9093"   # or a list of "host:port"
    security_protocol = "SASL_SSL"
    sasl_mechanism = "SCRAM-SHA-512"
    sasl_username = "netready"
    # sasl_password_file = "/run/secrets/kafka"  # else $NETREADY_KAFKA_SASL_PASSWORD(_FILE)
    ssl_ca_location = "/etc/netready/ca.pem"
    client_id = "netready-ingest"

    [kafka.extra]                                 # raw librdkafka properties, e.g. OIDC
    "sasl.oauthbearer.method" = "oidc"
    "sasl.oauthbearer.token.endpoint.url" = "https://idp.example/token"

Secrets (the SASL password, the SSL key password, and extra properties whose names say
password/secret/pem/jaas/oauthbearer.config) are held in `Secret`, whose repr and str are
'***'. They reach only the dicts handed to confluent-kafka; `redacted` masks them again for
logging, and no ConfigError quotes a value that could be one.

Consumer defaults and why:
- enable.auto.commit=false, enable.auto.offset.store=false: offsets are stored and committed
  by the worker after its sinks have flushed (at-least-once; duplicates removed downstream).
- auto.offset.reset=earliest: a new group reads history rather than silently skipping it.
- fetch.min.bytes=64 KiB with fetch.wait.max.ms=100: fewer, fuller fetches at high rates,
  at most 100 ms extra latency at low rates (librdkafka waits up to 500 ms by default).
- partition.assignment.strategy=cooperative-sticky: on a rebalance only the partitions that
  move are revoked, so the other consumers keep their per-metro window state and keep
  consuming (no stop-the-world, far less state to rebuild). It obliges the rebalance
  callbacks to treat their partition lists as increments: on_revoke gets only the partitions
  being taken away (commit those), and any manual (re)assignment inside callbacks must use
  incremental_assign/incremental_unassign, never assign/unassign. A consumer that cannot do
  that passes partition_assignment_strategy="range" (all members of a group must agree).
  The classic group protocol is kept; KIP-848 (group.protocol=consumer) would ignore
  session.timeout.ms and the strategy and is left to a deliberate override.

Producer defaults favour throughput with no loss or duplicates from retries: linger.ms=20,
batch.size=1 MiB, lz4, acks=all, enable.idempotence=true, and the murmur2 partitioner, which
maps a key to the same partition as Java clients (Kafka Streams, Connect) do, so a metro's
samples meet in one partition whichever of them produced it. message.max.bytes is raised to
8 MiB so one batched message (e.g. 10 000 rows of Arrow) is not refused by the client; the
topic's max.message.bytes (1 MiB by default, checked after compression) still applies.
"""
from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .errors import ConfigError

DEFAULT_BOOTSTRAP = "127.0.0.1:19092"
ENV_PREFIX = "NETREADY_KAFKA_"
EXTRA_ENV_PREFIX = ENV_PREFIX + "X_"  # NETREADY_KAFKA_X_SASL_OAUTHBEARER_METHOD=oidc
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
MASK = "***"

# librdkafka names are lowercase dot-separated words ("sasl.oauthbearer.token.endpoint.url").
_PROPERTY = re.compile(r"[a-z][a-z0-9]*(?:\.[a-z0-9]+)*")
# Values of properties with these names are secrets (masked, wrapped in Secret).
_SENSITIVE = re.compile(r"password|secret|\.pem$|jaas|oauthbearer\.config|credential|token$")
# confluent-kafka's own (non-librdkafka) keys, which keep their underscores.
_PYTHON_KEYS = frozenset({"error_cb", "throttle_cb", "stats_cb", "oauth_cb", "on_delivery",
                          "on_commit", "logger"})

PRODUCER_DEFAULTS: Mapping[str, Any] = MappingProxyType({
    "linger.ms": 20,
    "batch.size": 1 << 20,
    "compression.type": "lz4",
    "enable.idempotence": True,
    "acks": "all",
    "partitioner": "murmur2_random",
    "message.max.bytes": 8 << 20,
})
CONSUMER_DEFAULTS: Mapping[str, Any] = MappingProxyType({
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "fetch.min.bytes": 64 << 10,
    "fetch.wait.max.ms": 100,
    "max.poll.interval.ms": 300_000,
    "session.timeout.ms": 10_000,
    "partition.assignment.strategy": "cooperative-sticky",
})


class Secret:
    """A string that never shows itself: repr, str and format give '***'; `reveal()` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        if not isinstance(value, str):
            raise ConfigError("a secret must be a string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


def _reveal(value: Any) -> Any:
    return value.reveal() if isinstance(value, Secret) else value


def is_sensitive(key: str) -> bool:
    """Whether a librdkafka property's value is a secret."""
    return bool(_SENSITIVE.search(key))


def redacted(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a client config fit for logs: secret values become '***'."""
    return {k: MASK if isinstance(v, Secret) or is_sensitive(str(k)) else v
            for k, v in config.items()}


# Properties set by a dedicated field; `extra` may not set them too (a password there
# would bypass Secret, a second bootstrap list would silently win or lose).
_FIELD_PROPERTIES = {
    "bootstrap_servers": "bootstrap.servers",
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_username": "sasl.username",
    "sasl_password": "sasl.password",
    "ssl_ca_location": "ssl.ca.location",
    "ssl_certificate_location": "ssl.certificate.location",
    "ssl_key_location": "ssl.key.location",
    "ssl_key_password": "ssl.key.password",
    "client_id": "client.id",
}
_RESERVED = frozenset(_FIELD_PROPERTIES.values()) | {"sasl.mechanisms", "metadata.broker.list",
                                                      "sasl.user", "group.id"}
_SECRET_FIELDS = ("sasl_password", "ssl_key_password")
_SSL_FIELDS = ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location", "ssl_key_password")


@dataclass(frozen=True)
class KafkaSettings:
    """Where the brokers are and how to authenticate; see the module docstring for defaults.

    `extra` holds raw librdkafka properties (OAUTHBEARER/OIDC settings, timeouts, ...) given
    to every client; it is stored read-only, with sensitive values wrapped in Secret.
    """

    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: Secret | None = None
    client_id: str = "netready"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        for name in _SECRET_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str):
                set_(name, Secret(value))
            elif value is not None and not isinstance(value, Secret):
                raise ConfigError(f"kafka {name} must be a string")
        for name in ("bootstrap_servers", "security_protocol", "client_id"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ConfigError(f"kafka {name} must be a non-empty string")
        for name in ("sasl_mechanism", "sasl_username", *_SSL_FIELDS[:3]):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ConfigError(f"kafka {name} must be a string")
        set_("security_protocol", self.security_protocol.strip().upper())
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(f"unknown kafka security_protocol {self.security_protocol!r}; "
                              f"expected one of {', '.join(SECURITY_PROTOCOLS)}")
        if self.sasl_mechanism is not None:
            set_("sasl_mechanism", self.sasl_mechanism.strip().upper())
        set_("extra", MappingProxyType(_check_extra(self.extra)))
        self._check_consistency()

    def _check_consistency(self) -> None:
        sasl = self.security_protocol.startswith("SASL_")
        ssl = self.security_protocol.endswith("SSL")
        given = lambda names: [n for n in names if getattr(self, n) is not None]  # noqa: E731
        if not sasl and given(("sasl_mechanism", "sasl_username", "sasl_password")):
            raise ConfigError(f"kafka {', '.join(given(('sasl_mechanism', 'sasl_username', 'sasl_password')))} "
                              f"given but security_protocol is {self.security_protocol}; "
                              "use SASL_SSL (or SASL_PLAINTEXT) to authenticate")
        if not ssl and given(_SSL_FIELDS):
            raise ConfigError(f"kafka {', '.join(given(_SSL_FIELDS))} given but security_protocol is "
                              f"{self.security_protocol}; use SSL or SASL_SSL")
        if (self.ssl_certificate_location is None) != (self.ssl_key_location is None):
            raise ConfigError("kafka ssl_certificate_location and ssl_key_location go together "
                              "(client certificate authentication needs both)")
        if not sasl:
            return
        if self.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError(f"kafka security_protocol {self.security_protocol} needs sasl_mechanism, one of "
                              f"{', '.join(SASL_MECHANISMS)} (got {self.sasl_mechanism!r})")
        if self.sasl_mechanism == "OAUTHBEARER":
            return  # token settings come through `extra` (or an oauth_cb override)
        if not self.sasl_username or self.sasl_password is None:
            raise ConfigError(f"kafka SASL {self.sasl_mechanism} needs sasl_username and a password "
                              f"(sasl_password, sasl_password_file, ${ENV_PREFIX}SASL_PASSWORD "
                              f"or ${ENV_PREFIX}SASL_PASSWORD_FILE)")

    def __repr__(self) -> str:
        parts = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                 if f.name != "extra" and getattr(self, f.name) is not None]
        parts.append(f"extra={redacted(self.extra)!r}")
        return f"KafkaSettings({', '.join(parts)})"

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *,
                     environ: Mapping[str, str] | None = None) -> "KafkaSettings":
        """From a TOML `[kafka]` table. Missing secrets come from `<name>_file` keys, then
        $NETREADY_KAFKA_SASL_PASSWORD / ..._FILE (and SSL_KEY_PASSWORD likewise)."""
        if not isinstance(data, Mapping):
            raise ConfigError("[kafka] must be a table")
        environ = os.environ if environ is None else environ
        known = set(_FIELD_PROPERTIES) | {"extra"} | {f"{n}_file" for n in _SECRET_FIELDS}
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise ConfigError(f"unknown [kafka] keys: {', '.join(unknown)}; "
                              f"expected some of {', '.join(sorted(known))}")
        values = {k: v for k, v in data.items() if k in _FIELD_PROPERTIES}
        servers = values.get("bootstrap_servers")
        if isinstance(servers, (list, tuple)):
            if not all(isinstance(s, str) for s in servers):
                raise ConfigError("kafka bootstrap_servers must be a string or a list of strings")
            values["bootstrap_servers"] = ",".join(servers)
        for name in _SECRET_FIELDS:
            file_key = f"{name}_file"
            if name in data and file_key in data:
                raise ConfigError(f"[kafka] gives both {name} and {file_key}; keep one")
            if file_key in data:
                values[name] = _read_secret_file(data[file_key], f"[kafka] {file_key}")
            elif name not in data:
                values[name] = _env_secret(environ, ENV_PREFIX + name.upper())
        extra = data.get("extra", {})
        if not isinstance(extra, Mapping):
            raise ConfigError("[kafka] extra must be a table of librdkafka properties")
        return cls(**values, extra={**extra_from_env(environ), **extra})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "KafkaSettings":
        """From NETREADY_KAFKA_<FIELD> variables (e.g. NETREADY_KAFKA_BOOTSTRAP_SERVERS), secrets
        also from NETREADY_KAFKA_<SECRET>_FILE, extra properties from NETREADY_KAFKA_X_<NAME>
        (underscores become dots: NETREADY_KAFKA_X_SASL_OAUTHBEARER_METHOD)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in _FIELD_PROPERTIES:
            if name in _SECRET_FIELDS:
                values[name] = _env_secret(environ, ENV_PREFIX + name.upper())
            elif environ.get(ENV_PREFIX + name.upper()):
                values[name] = environ[ENV_PREFIX + name.upper()]
        return cls(**values, extra=extra_from_env(environ))

    # ------------------------------------------------------------------ client configs

    def client_config(self, **overrides: Any) -> dict[str, Any]:
        """Settings every client shares (admin clients use this directly)."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers,
                                  "security.protocol": self.security_protocol,
                                  "client.id": self.client_id}
        if self.sasl_mechanism is not None:
            config["sasl.mechanism"] = self.sasl_mechanism
        for name in ("sasl_username", "sasl_password", *_SSL_FIELDS):
            if getattr(self, name) is not None:
                config[_FIELD_PROPERTIES[name]] = _reveal(getattr(self, name))
        config.update({k: _reveal(v) for k, v in self.extra.items()})
        return _apply(config, overrides)

    def producer_config(self, **overrides: Any) -> dict[str, Any]:
        """A confluent_kafka.Producer config: PRODUCER_DEFAULTS, then `extra`, then overrides.
        Override keys may use underscores for dots (linger_ms=5); a None value removes a key."""
        return _apply({**PRODUCER_DEFAULTS, **self.client_config()}, overrides)

    def consumer_config(self, group_id: str, **overrides: Any) -> dict[str, Any]:
        """A confluent_kafka.Consumer config for `group_id`: CONSUMER_DEFAULTS, `extra`, overrides."""
        if not isinstance(group_id, str) or not group_id.strip():
            raise ConfigError("a Kafka consumer needs a non-empty group_id")
        return _apply({**CONSUMER_DEFAULTS, **self.client_config(), "group.id": group_id}, overrides)


def extra_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """librdkafka properties from NETREADY_KAFKA_X_<NAME> variables (underscores to dots)."""
    return {k[len(EXTRA_ENV_PREFIX):].lower().replace("_", "."): v
            for k, v in environ.items() if k.startswith(EXTRA_ENV_PREFIX) and v != ""}


def _check_extra(extra: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(extra, Mapping):
        raise ConfigError("kafka extra must be a mapping of librdkafka property names to values")
    checked: dict[str, Any] = {}
    for key, value in extra.items():
        if not isinstance(key, str) or not _PROPERTY.fullmatch(key):
            raise ConfigError(f"kafka extra key {key!r} does not look like a librdkafka property "
                              "(lowercase words joined by dots, e.g. 'sasl.oauthbearer.method')")
        if key in _RESERVED:
            field_name = next((n for n, p in _FIELD_PROPERTIES.items() if p == key), None)
            hint = f"use the {field_name} setting" if field_name else "it is set by netready"
            raise ConfigError(f"kafka extra may not set {key!r}; {hint}")
        if isinstance(value, Secret):
            checked[key] = value
        elif isinstance(value, bool):
            checked[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            checked[key] = Secret(str(value)) if is_sensitive(key) else str(value)
        else:
            raise ConfigError(f"kafka extra {key!r} must be a string, number or boolean")
    return checked


def _apply(config: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if key not in _PYTHON_KEYS:
            key = key.replace("_", ".")
            if not _PROPERTY.fullmatch(key):
                raise ConfigError(f"override {key!r} does not look like a librdkafka property")
        if value is None:
            config.pop(key, None)
        else:
            config[key] = _reveal(value)
    return config


def _env_secret(environ: Mapping[str, str], name: str) -> Secret | None:
    value, path = environ.get(name), environ.get(name + "_FILE")
    if value and path:
        raise ConfigError(f"both ${name} and ${name}_FILE are set; keep one")
    if path:
        return _read_secret_file(path, f"${name}_FILE")
    return Secret(value) if value else None


def _read_secret_file(path: Any, what: str) -> Secret:
    """The file's text without one trailing newline (as `echo` and secret managers write it)."""
    if not isinstance(path, (str, Path)):
        raise ConfigError(f"{what} must be a path")
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what}: {path} is not UTF-8 text") from None
    text = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text
    if not text:
        raise ConfigError(f"{what}: {path} is empty")
    return Secret(text)

