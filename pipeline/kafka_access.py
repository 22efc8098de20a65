"""Fail fast, and say why, when Kafka brokers refuse the configured credentials or TLS set-up.

librdkafka treats a wrong password, an untrusted broker certificate or a plaintext client on a
TLS listener as transient: it retries forever, logs to stderr and a worker just sits there.
`check_access` asks for metadata once before a command starts its real clients and turns those
refusals into a `KafkaAccessError` that names the cause (authentication, certificate, SSL
handshake). An unreachable broker is not a refusal: the command goes on and its clients keep
retrying as before (a broker restarting is routine). No message quotes a secret: librdkafka's
texts hold none, and every configured secret is masked again before a text is used.
"""
from __future__ import annotations

import logging
import re
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from .errors import NetreadyError
from .kafka_config import MASK, KafkaSettings, Secret

log = logging.getLogger("netready.kafka")
DEFAULT_WAIT_S = 10.0
_POLL_S = 0.25
_BROKER_PREFIX = re.compile(r"^[a-z_]+://\S+: ")


class KafkaAccessError(NetreadyError):
    """The brokers answered but refused us (credentials, certificate, TLS/plaintext mismatch)."""


class _Collector(logging.Logger):
    """librdkafka's own log lines (the only place a plaintext-to-TLS disconnect shows up)."""

    def __init__(self) -> None:
        super().__init__("netready.kafka.librdkafka", logging.DEBUG)
        self.lines: list[str] = []

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A003
        self.lines.append(str(msg) % args if args else str(msg))


def check_access(settings: KafkaSettings, wait_s: float = DEFAULT_WAIT_S) -> bool:
    """True once a broker answers a metadata request; raises KafkaAccessError on a refusal;
    False if no broker answered within `wait_s` (unreachable, not refused)."""
    errors: list[KafkaError] = []
    collector = _Collector()
    admin = AdminClient(settings.client_config(error_cb=errors.append, logger=collector))
    deadline = time.monotonic() + wait_s
    while True:
        try:
            admin.list_topics(timeout=_POLL_S)
            return True
        except KafkaException:
            pass
        admin.poll(0)  # serves error_cb and the log lines
        refusal = _refusal(settings, errors, collector.lines)
        if refusal is not None:
            raise KafkaAccessError(_mask(refusal, settings))
        if time.monotonic() >= deadline:
            last = _mask(errors[-1].str(), settings) if errors else "no answer"
            log.warning("no Kafka broker at %s answered within %.0f s (%s); continuing, clients retry",
                        settings.bootstrap_servers, wait_s, last)
            return False


def _refusal(settings: KafkaSettings, errors: list[KafkaError], lines: list[str]) -> str | None:
    where = settings.bootstrap_servers
    for error in errors:
        text = error.str()
        if error.code() == KafkaError._AUTHENTICATION:
            return (f"Kafka authentication failed at {where} (SASL {settings.sasl_mechanism} as user "
                    f"{settings.sasl_username!r}): wrong username or password, or the user has no "
                    f"{settings.sasl_mechanism} credentials on the broker. Broker said: {_tail(text)}")
        if "certificate verify failed" in text or ("certificate" in text and error.code() == KafkaError._SSL):
            return (f"TLS certificate of the Kafka broker at {where} could not be verified: "
                    f"ssl_ca_location ({settings.ssl_ca_location or 'system CAs'}) must hold the CA that "
                    f"signed it, and the broker's host must be in its subjectAltName. Detail: {_tail(text)}")
        if error.code() == KafkaError._SSL:
            return f"SSL handshake with the Kafka broker at {where} failed: {_tail(text)}"
    if not settings.security_protocol.endswith("SSL"):
        closed = [line for line in lines if "Disconnected" in line and "APIVERSION_QUERY" in line]
        if len(closed) >= 2:  # twice: one dropped connection may be a broker going down
            return (f"no SSL handshake: the Kafka broker at {where} closes plaintext connections at the "
                    f"first request, so its listener most likely expects TLS; security_protocol is "
                    f"{settings.security_protocol}, use SSL or SASL_SSL (with ssl_ca_location)")
    return None


def _tail(text: str) -> str:
    """librdkafka's message without its 'proto://host:port/name: ' prefix."""
    return _BROKER_PREFIX.sub("", text, count=1)


def _mask(text: str, settings: KafkaSettings) -> str:
    for value in (settings.sasl_password, settings.ssl_key_password, *settings.extra.values()):
        if isinstance(value, Secret) and value.reveal():
            text = text.replace(value.reveal(), MASK)
    return text
