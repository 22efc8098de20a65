"""Retryable or fatal: ClickHouse failures as the worker sees them, and what it does with each."""
from __future__ import annotations

import logging
import socket

import pytest
from clickhouse_driver import errors

from pipeline.errors import ConfigError, SinkError
from pipeline.kafka_config import KafkaSettings
from pipeline.stream.worker import Worker, WorkerConfig
from pipeline.warehouse.classify import is_retryable, sink_error
from pipeline.warehouse.server import TIMEOUT_S, ServerWarehouse

NO_SPACE_18_16 = ("DB::ErrnoException. DB::ErrnoException: Cannot write to file /var/lib/clickhouse/data/"
                  "netready/metro_window/tmp_insert_201911_7_7_0/primary.idx, errno: 28, strerror: No space "
                  "left on device. Stack trace:\n\n0. clickhouse-server(StackTrace::StackTrace()+0x16)")


@pytest.mark.parametrize("code, message", [
    (252, "DB::Exception: Too many parts (6). Merges are processing significantly slower than inserts."),
    (243, "DB::Exception: Cannot reserve 1.00 MiB, not enough space."),
    (75, NO_SPACE_18_16),
    (1000, "Poco::Exception. Code: 1000, e.code() = 28, e.displayText() = File access error: "
           "no space left on device"),
    (202, "DB::Exception: Too many simultaneous queries. Maximum: 100."),
    (210, "DB::NetException: Connection reset by peer"),
    (159, "DB::Exception: Timeout exceeded: elapsed 5.0 seconds"),
])
def test_transient_server_errors_are_retryable(code, message):
    assert is_retryable(code, message)
    error = sink_error(errors.ServerException(message, code), "clickhouse://u@h:9000/netready")
    assert error.retryable and f"ClickHouse error {code}:" in str(error)
    assert "\n" not in str(error) and "StackTrace" not in str(error)  # the first line only


@pytest.mark.parametrize("code, message", [
    (16, "DB::Exception: No such column mean_us in table metro_window."),
    (60, "DB::Exception: Table netready.metro_window doesn't exist."),
    (81, "DB::Exception: Database netready doesn't exist."),
    (53, "DB::Exception: Type mismatch for column links."),
    (62, "DB::Exception: Syntax error: failed at position 1."),
    (192, "DB::Exception: Unknown user writer."),
    (193, "DB::Exception: Wrong password for user writer."),
    (164, "DB::Exception: analyst: Cannot execute query in readonly mode."),
    (75, "DB::ErrnoException: Cannot write to file x, errno: 5, strerror: Input/output error"),
])
def test_errors_an_operator_must_fix_are_fatal(code, message):
    assert not is_retryable(code, message)
    assert not sink_error(errors.ServerException(message, code), "x").retryable


def test_client_side_type_mismatch_is_fatal_with_its_code():
    exc = errors.TypeMismatchError('Type mismatch in VALUES section. Expected String got '
                                   "<class 'int'>: 5 for column \"links\".")
    error = sink_error(exc, "x")
    assert not error.retryable
    assert str(error).startswith("ClickHouse client error 53: Type mismatch") and "links" in str(error)


@pytest.mark.parametrize("exc", [ConnectionResetError(104, "reset"), socket.timeout("timed out"), EOFError(),
                                 errors.NetworkError("Code: 210. Connection refused"),
                                 errors.SocketTimeoutError("Code: 209. timed out"),
                                 errors.UnexpectedPacketFromServerError("Code: 102. unexpected")])
def test_broken_connections_are_retryable_and_name_the_server_without_secrets(exc):
    error = sink_error(exc, "clickhouse://writer@db:9000/netready")
    assert error.retryable
    assert "clickhouse://writer@db:9000/netready" in str(error) and type(exc).__name__ in str(error)


def test_other_exceptions_are_not_classified():
    with pytest.raises(TypeError):
        sink_error(ValueError("a bug, not a ClickHouse failure"), "x")


def test_url_sets_the_socket_timeout():
    assert ServerWarehouse.from_url("clickhouse://u@h:9000/netready")._client.connection.send_receive_timeout \
        == TIMEOUT_S
    warehouse = ServerWarehouse.from_url("clickhouse://u:secret@h:9000/netready?timeout_s=2.5")
    assert warehouse._client.connection.send_receive_timeout == 2.5
    assert "secret" not in repr(warehouse)
    for bad in ("abc", "0", "-1", "99999"):
        with pytest.raises(ConfigError, match="timeout_s"):
            ServerWarehouse.from_url(f"clickhouse://u@h:9000/netready?timeout_s={bad}")


class _FailingWarehouse:
    url_for_display = "test"


def _worker() -> Worker:
    # No broker is contacted: the consumer and producer connect only when polled.
    return Worker(WorkerConfig(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"), max_backoff_s=0.2),
                  _FailingWarehouse())


def _metric(worker: Worker, name: str, **labels) -> float:
    return worker.metrics.registry.get_sample_value(name, labels) or 0.0


def test_worker_stops_on_a_fatal_error_says_fatal_and_counts_it(caplog):
    worker = _worker()
    calls = []

    def land():
        calls.append(1)
        raise SinkError("ClickHouse client error 53: Type mismatch for column \"links\"", retryable=False)

    with caplog.at_level(logging.CRITICAL, logger="netready.worker"):
        with pytest.raises(SinkError, match="Type mismatch"):
            worker._with_retry(land)
    assert len(calls) == 1  # not retried
    assert _metric(worker, "netready_sink_errors_total", kind="fatal") == 1
    assert _metric(worker, "netready_sink_retries_total") == 0
    assert any(r.levelno == logging.CRITICAL and "fatal" in r.getMessage() and "links" in r.getMessage()
               for r in caplog.records)
    worker.consumer.close()


def test_worker_backs_off_on_retryable_errors_then_resumes(caplog):
    worker = _worker()
    calls = []

    def land():
        calls.append(1)
        if len(calls) <= 2:
            raise SinkError("ClickHouse error 252: Too many parts (6).", retryable=True)

    with caplog.at_level(logging.WARNING, logger="netready.worker"):
        worker._with_retry(land)
    assert len(calls) == 3
    assert _metric(worker, "netready_sink_errors_total", kind="retryable") == 2
    assert _metric(worker, "netready_sink_retries_total") == 2
    assert _metric(worker, "netready_consumption_paused") == 0
    text = caplog.text
    assert text.count("consumption paused") == 2 and "consumption resumed" in text
    worker.consumer.close()


def test_worker_waits_for_a_server_that_is_down_at_start(monkeypatch):
    import pipeline.stream.worker as worker_module

    attempts = []

    def migrate(warehouse):
        attempts.append(1)
        if len(attempts) <= 2:
            raise SinkError("ClickHouse unreachable at test: ConnectionRefusedError", retryable=True)

    monkeypatch.setattr(worker_module, "migrate", migrate)
    worker = _worker()
    worker._migrate()
    assert len(attempts) == 3 and worker.summary.sink_retries == 2
    assert _metric(worker, "netready_sink_errors_total", kind="retryable") == 2
    worker.consumer.close()


def test_worker_stops_at_start_on_a_fatal_migration_error(monkeypatch):
    import pipeline.stream.worker as worker_module

    def migrate(warehouse):
        raise SinkError("ClickHouse error 164: Cannot execute query in readonly mode", retryable=False)

    monkeypatch.setattr(worker_module, "migrate", migrate)
    worker = _worker()
    with pytest.raises(SinkError, match="readonly"):
        worker._migrate()
    assert _metric(worker, "netready_sink_errors_total", kind="fatal") == 1
    worker.consumer.close()
