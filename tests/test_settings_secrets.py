"""Settings and warehouse URLs never show a ClickHouse password (Kafka secrets: test_kafka_config.py)."""
from __future__ import annotations

import pytest

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.url import redact_url

PASSWORD = "Ch-pass-93!x"


@pytest.mark.parametrize("url, shown", [
    (f"clickhouse://writer:{PASSWORD}@db:9000/netready", "clickhouse://writer:***@db:9000/netready"),
    (f"clickhouses://writer:{PASSWORD}@db/netready?secure=1", "clickhouses://writer:***@db/netready?secure=1"),
    ("clickhouse://writer:p@ss@db:9000/netready", "clickhouse://writer:***@db:9000/netready"),
    ("clickhouse://writer@db:9000/netready", "clickhouse://writer@db:9000/netready"),
    ("chdb:netready-data/chdb", "chdb:netready-data/chdb"),
    (None, None),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_settings_repr_masks_the_clickhouse_password(tmp_path):
    config = tmp_path / "netready.toml"
    config.write_text(f'clickhouse = "clickhouse://writer:{PASSWORD}@db:9000/netready"\n'
                      '[kafka]\nsecurity_protocol = "SASL_SSL"\nsasl_mechanism = "SCRAM-SHA-512"\n'
                      f'sasl_username = "netready"\nsasl_password = "{PASSWORD}-kafka"\n')
    settings = Settings.load(config)
    for text in (repr(settings), str(settings), f"{settings}"):
        assert PASSWORD not in text and "writer:***@db" in text and "sasl_username='netready'" in text
    assert settings.clickhouse.endswith(f"{PASSWORD}@db:9000/netready")  # the real value is kept


def test_bad_warehouse_url_error_masks_the_password():
    with pytest.raises(ConfigError) as info:
        open_warehouse(f"postgres://writer:{PASSWORD}@db/netready")
    assert PASSWORD not in str(info.value) and "writer:***@db" in str(info.value)
