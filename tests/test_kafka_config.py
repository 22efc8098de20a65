"""KafkaSettings: secrets stay hidden, env/file loading, librdkafka names, validation."""
from __future__ import annotations

import traceback

import pytest
from confluent_kafka import Consumer, Producer

from pipeline.errors import ConfigError
from pipeline.kafka_config import (CONSUMER_DEFAULTS, PRODUCER_DEFAULTS, KafkaSettings, Secret,
                                   redacted)

PASSWORD = "hunter2-Zq7#secret"
KEY_PASSWORD = "key-pass-Xy9!"
NO_BROKER = "127.0.0.1:1"  # clients below are only constructed, never connected


def sasl_ssl(**kw) -> KafkaSettings:
    values = dict(bootstrap_servers=NO_BROKER, security_protocol="SASL_SSL",
                  sasl_mechanism="SCRAM-SHA-512", sasl_username="netready", sasl_password=PASSWORD,
                  ssl_ca_location="/etc/ca.pem", ssl_certificate_location="/etc/client.pem",
                  ssl_key_location="/etc/client.key", ssl_key_password=KEY_PASSWORD)
    return KafkaSettings(**{**values, **kw})


def full_text(exc: BaseException) -> str:
    """Everything a traceback would print, causes and contexts included."""
    return "".join(traceback.format_exception(exc))


# ------------------------------------------------------------------- secrets hidden

def test_secret_never_shows_itself():
    secret = Secret(PASSWORD)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", "%s" % secret):
        assert text == "***"
    assert secret.reveal() == PASSWORD
    assert secret == Secret(PASSWORD) and secret != Secret("other")


def test_settings_repr_and_str_hide_secrets():
    settings = sasl_ssl(extra={"sasl.oauthbearer.client.secret": "oidc-Secret-42"})
    for text in (repr(settings), str(settings), f"{settings}"):
        assert PASSWORD not in text and KEY_PASSWORD not in text and "oidc-Secret-42" not in text
        assert "***" in text and "netready" in text


def test_redacted_configs_hide_secrets_but_real_configs_carry_them():
    settings = sasl_ssl(extra={"sasl.oauthbearer.client.secret": "oidc-Secret-42",
                               "socket.keepalive.enable": True})
    producer = settings.producer_config()
    consumer = settings.consumer_config("g")
    assert producer["sasl.password"] == PASSWORD and consumer["ssl.key.password"] == KEY_PASSWORD
    assert producer["sasl.oauthbearer.client.secret"] == "oidc-Secret-42"
    for config in (producer, consumer):
        shown = repr(redacted(config))
        assert PASSWORD not in shown and KEY_PASSWORD not in shown and "oidc-Secret-42" not in shown
        assert redacted(config)["sasl.password"] == "***"
        assert redacted(config)["sasl.username"] == "netready"
        assert redacted(config)["socket.keepalive.enable"] == "true"


@pytest.mark.parametrize("make", [
    # SASL credentials given without a SASL protocol
    lambda: KafkaSettings(sasl_username="u", sasl_password=PASSWORD),
    # SSL key password on a plaintext connection
    lambda: KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                          sasl_username="u", sasl_password=PASSWORD, ssl_key_password=PASSWORD),
    # unknown protocol, while a password is set
    lambda: sasl_ssl(security_protocol="KERBEROS"),
    # a password smuggled in through extra
    lambda: KafkaSettings(extra={"sasl.password": PASSWORD}),
    # secret extra with a value of the wrong type
    lambda: KafkaSettings(extra={"sasl.oauthbearer.client.secret": [PASSWORD]}),
    # bad extra key next to a secret
    lambda: sasl_ssl(extra={"Bad Key": PASSWORD}),
    # unknown mapping key while secrets are present
    lambda: KafkaSettings.from_mapping({"sasl_password": PASSWORD, "sasl_pasword": PASSWORD}, environ={}),
    lambda: KafkaSettings.from_mapping({"sasl_password": PASSWORD, "sasl_password_file": "/x"}, environ={}),
    lambda: sasl_ssl(sasl_mechanism="GSSAPI"),
    lambda: sasl_ssl(client_id=""),
])
def test_exceptions_never_quote_secrets(make):
    with pytest.raises(ConfigError) as info:
        make()
    assert PASSWORD not in full_text(info.value)


def test_unreadable_secret_file_error_does_not_leak_content(tmp_path):
    path = tmp_path / "pw"
    path.write_bytes(b"\xff\xfe" + PASSWORD.encode())
    with pytest.raises(ConfigError, match="not UTF-8") as info:
        KafkaSettings.from_env({"NETREADY_KAFKA_SASL_PASSWORD_FILE": str(path)})
    assert PASSWORD not in full_text(info.value)


# ------------------------------------------------------------------- env and file loading

def test_from_env_reads_fields_and_password():
    settings = KafkaSettings.from_env({
        "NETREADY_KAFKA_BOOTSTRAP_SERVERS": "b1:9093,b2:9093",
        "NETREADY_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "NETREADY_KAFKA_SASL_MECHANISM": "scram-sha-256",
        "NETREADY_KAFKA_SASL_USERNAME": "ingest",
        "NETREADY_KAFKA_SASL_PASSWORD": PASSWORD,
        "NETREADY_KAFKA_X_SOCKET_KEEPALIVE_ENABLE": "true",
        "UNRELATED": "x",
    })
    assert settings.bootstrap_servers == "b1:9093,b2:9093"
    assert (settings.security_protocol, settings.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-256")
    assert isinstance(settings.sasl_password, Secret) and settings.sasl_password.reveal() == PASSWORD
    assert settings.producer_config()["socket.keepalive.enable"] == "true"


def test_password_file_strips_one_trailing_newline(tmp_path):
    path = tmp_path / "pw"
    path.write_text(PASSWORD + "\n")
    env = {"NETREADY_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "NETREADY_KAFKA_SASL_MECHANISM": "PLAIN",
           "NETREADY_KAFKA_SASL_USERNAME": "u", "NETREADY_KAFKA_SASL_PASSWORD_FILE": str(path)}
    assert KafkaSettings.from_env(env).producer_config()["sasl.password"] == PASSWORD


def test_value_and_file_together_is_an_error(tmp_path):
    path = tmp_path / "pw"
    path.write_text(PASSWORD)
    with pytest.raises(ConfigError, match="both"):
        KafkaSettings.from_env({"NETREADY_KAFKA_SASL_PASSWORD": PASSWORD,
                                "NETREADY_KAFKA_SASL_PASSWORD_FILE": str(path)})


@pytest.mark.parametrize("content, match", [(b"", "empty"), (None, "cannot read")])
def test_bad_password_files(tmp_path, content, match):
    path = tmp_path / "pw"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=match):
        KafkaSettings.from_env({"NETREADY_KAFKA_SASL_PASSWORD_FILE": str(path)})


def test_from_mapping_takes_secrets_from_file_key_then_env(tmp_path):
    section = {"bootstrap_servers": ["b1:9093", "b2:9093"], "security_protocol": "SASL_SSL",
               "sasl_mechanism": "PLAIN", "sasl_username": "u", "ssl_ca_location": "/ca.pem"}
    from_env = KafkaSettings.from_mapping(section, environ={"NETREADY_KAFKA_SASL_PASSWORD": PASSWORD})
    assert from_env.bootstrap_servers == "b1:9093,b2:9093"
    assert from_env.producer_config()["sasl.password"] == PASSWORD

    path = tmp_path / "pw"
    path.write_text("from-file\n")
    from_file = KafkaSettings.from_mapping({**section, "sasl_password_file": str(path)},
                                           environ={"NETREADY_KAFKA_SASL_PASSWORD": PASSWORD})
    assert from_file.producer_config()["sasl.password"] == "from-file"

    with pytest.raises(ConfigError, match="needs sasl_username and a password"):
        KafkaSettings.from_mapping(section, environ={})


def test_from_mapping_extra_and_unknown_keys():
    settings = KafkaSettings.from_mapping({"extra": {"sasl.oauthbearer.method": "oidc",
                                                     "socket.timeout.ms": 30000}}, environ={})
    assert settings.consumer_config("g")["sasl.oauthbearer.method"] == "oidc"
    assert settings.consumer_config("g")["socket.timeout.ms"] == "30000"
    with pytest.raises(ConfigError, match="unknown \\[kafka\\] keys: bootstrap"):
        KafkaSettings.from_mapping({"bootstrap": "x"}, environ={})


# ------------------------------------------------------------------- librdkafka mapping

def test_sasl_ssl_fields_map_to_librdkafka_names():
    config = sasl_ssl(client_id="ingest-1").producer_config()
    assert {k: config[k] for k in ("bootstrap.servers", "security.protocol", "sasl.mechanism",
                                    "sasl.username", "sasl.password", "ssl.ca.location",
                                    "ssl.certificate.location", "ssl.key.location",
                                    "ssl.key.password", "client.id")} == {
        "bootstrap.servers": NO_BROKER, "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "netready", "sasl.password": PASSWORD,
        "ssl.ca.location": "/etc/ca.pem", "ssl.certificate.location": "/etc/client.pem",
        "ssl.key.location": "/etc/client.key", "ssl.key.password": KEY_PASSWORD,
        "client.id": "ingest-1"}


def test_plaintext_config_has_no_auth_keys():
    config = KafkaSettings().consumer_config("g")
    assert config["security.protocol"] == "PLAINTEXT"
    assert not [k for k in config if k.startswith(("sasl.", "ssl."))]


def test_defaults_and_overrides():
    settings = KafkaSettings()
    producer = settings.producer_config(linger_ms=5, **{"compression.type": "zstd"})
    assert {k: v for k, v in producer.items() if k in PRODUCER_DEFAULTS} == {
        **PRODUCER_DEFAULTS, "linger.ms": 5, "compression.type": "zstd"}
    assert producer["enable.idempotence"] is True and producer["acks"] == "all"
    consumer = settings.consumer_config("grp", partition_assignment_strategy=None)
    assert consumer["group.id"] == "grp" and "partition.assignment.strategy" not in consumer
    assert consumer["enable.auto.commit"] is False and consumer["enable.auto.offset.store"] is False
    assert consumer["auto.offset.reset"] == "earliest"
    assert settings.consumer_config("g")["partition.assignment.strategy"] == \
        CONSUMER_DEFAULTS["partition.assignment.strategy"] == "cooperative-sticky"
    on_delivery = lambda err, msg: None  # noqa: E731
    assert settings.producer_config(on_delivery=on_delivery)["on_delivery"] is on_delivery
    with pytest.raises(ConfigError):
        settings.consumer_config("")


def test_confluent_kafka_accepts_the_configs():
    for settings in (KafkaSettings(bootstrap_servers=NO_BROKER),
                     KafkaSettings(bootstrap_servers=NO_BROKER, security_protocol="SASL_PLAINTEXT",
                                   sasl_mechanism="SCRAM-SHA-256", sasl_username="u",
                                   sasl_password=PASSWORD)):
        Producer(settings.producer_config()).flush(0)
        Consumer(settings.consumer_config("netready-config-test")).close()


# ------------------------------------------------------------------- validation

@pytest.mark.parametrize("protocol", ["KERBEROS", "TLS", "ssl+sasl", ""])
def test_unknown_security_protocol(protocol):
    with pytest.raises(ConfigError, match="security_protocol"):
        KafkaSettings(security_protocol=protocol)


def test_protocol_and_mechanism_are_case_insensitive():
    settings = KafkaSettings(security_protocol="sasl_plaintext", sasl_mechanism="oauthbearer")
    assert (settings.security_protocol, settings.sasl_mechanism) == ("SASL_PLAINTEXT", "OAUTHBEARER")


def test_sasl_needs_a_supported_mechanism():
    with pytest.raises(ConfigError, match="needs sasl_mechanism"):
        KafkaSettings(security_protocol="SASL_SSL", sasl_username="u", sasl_password=PASSWORD)
    with pytest.raises(ConfigError, match="needs sasl_mechanism"):
        sasl_ssl(sasl_mechanism="GSSAPI")


def test_client_certificate_needs_key():
    with pytest.raises(ConfigError, match="go together"):
        KafkaSettings(security_protocol="SSL", ssl_certificate_location="/c.pem")


@pytest.mark.parametrize("key", ["Sasl.Mechanism", "sasl_oauthbearer_method", "sasl..x", ".x",
                                 "x y", "bootstrap.servers", "sasl.password", "group.id"])
def test_bad_extra_keys(key):
    with pytest.raises(ConfigError):
        KafkaSettings(extra={key: "v"})


def test_extra_is_read_only_and_sensitive_values_are_wrapped():
    settings = KafkaSettings(extra={"sasl.oauthbearer.client.secret": "s", "debug": "broker"})
    assert isinstance(settings.extra["sasl.oauthbearer.client.secret"], Secret)
    assert settings.extra["debug"] == "broker"
    with pytest.raises(TypeError):
        settings.extra["debug"] = "all"  # type: ignore[index]
