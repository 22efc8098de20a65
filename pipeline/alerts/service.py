"""`netready alerts`: a faust-streaming app evaluating the alert rules on `netready.windows`.

Topology:

1. agent `route` reads the windows topic (any number of partitions, raw JSON values), keeps
   the tumbling family only and forwards each event, keyed by policy, to the one-partition
   internal topic `<app_id>-windows-by-policy`. One partition gives every rule one event-time
   order across metros, which "no data" and national coverage need (they compare metros);
   the volume is one event per metro per minute, far below one partition's capacity.
   Each forward is acknowledged by the broker before the input event is (retried with
   backoff until it is), so a send failure can neither lose nor reorder an event.
2. agent `evaluate` applies `rules.Evaluator` with state in two changelog-backed tables:
   `metro-state` (key `["policy", "metro"]`) and `policy-state` (key policy, plus
   `policy + "\\x1fhistory"` for the coverage history, written only when it changes).

Delivery order per event: transitions go to the alerts topic (awaited until acknowledged)
and are queued for Alertmanager, the webhook and ClickHouse *before* the new state is
written, so a crash in between re-delivers (duplicates collapse: same fingerprint, status,
starts_at) rather than loses. On restart the tables are restored from their changelogs and
replayed events are recognised as stale by the rules, so nothing fires twice. Alertmanager
is re-sent every firing alert every `resend_interval_s`; on shutdown the delivery queues are
drained for up to `drain_timeout_s`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import ssl

import orjson

from ..kafka_config import KafkaSettings
from .config import ServiceConfig
from .exceptions import BadWindowEvent
from .faust_recovery import table_manager_class, watch_for_stalled_input
from .metrics import METRICS
from .model import AlertEvent, WindowEvent
from .rules import ALERT_NAMES, Evaluator, firing_alerts
from .sinks import AlertmanagerSink, ClickHouseSink, RetryQueue, WebhookSink

log = logging.getLogger("netready.alerts")
HISTORY_SUFFIX = "\x1fhistory"


def broker_urls(kafka: KafkaSettings) -> list[str]:
    return [f"kafka://{hp.strip()}" for hp in kafka.bootstrap_servers.split(",") if hp.strip()]


def broker_credentials(kafka: KafkaSettings):
    """faust credentials for the `[kafka]` security settings (None for PLAINTEXT)."""
    import faust

    protocol = kafka.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol.endswith("SSL"):
        context = ssl.create_default_context(cafile=kafka.ssl_ca_location)
        if kafka.ssl_certificate_location:
            password = kafka.ssl_key_password.reveal() if kafka.ssl_key_password else None
            context.load_cert_chain(kafka.ssl_certificate_location, kafka.ssl_key_location, password)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(username=kafka.sasl_username,
                                 password=kafka.sasl_password.reveal() if kafka.sasl_password else None,
                                 mechanism=kafka.sasl_mechanism or "PLAIN", ssl_context=context)


def _queues(cfg: ServiceConfig) -> dict[str, RetryQueue]:
    queues = {}
    if cfg.alertmanager_url:
        queues["alertmanager"] = RetryQueue(AlertmanagerSink(cfg.alertmanager_url, cfg.firing_ttl_s,
                                                             cfg.generator_url))
    if cfg.webhook_url:
        queues["webhook"] = RetryQueue(WebhookSink(cfg.webhook_url))
    if cfg.clickhouse_url:
        queues["clickhouse"] = RetryQueue(ClickHouseSink(cfg.clickhouse_url))
    return queues


async def send_acknowledged(topic, key: bytes, value: bytes, max_delay_s: float = 30.0,
                            ack_timeout_s: float = 30.0) -> None:
    """Send one message and wait for the broker's acknowledgement, retrying with backoff.

    The caller's input event is acknowledged (and its offset committed) only after this
    returns, so an unreachable broker stalls the service instead of dropping messages. An
    acknowledgement that does not come within `ack_timeout_s` is a failure too: the message
    is sent again (a duplicate is harmless: replayed window events are stale to the rules,
    repeated alert messages carry the same fingerprint and status).
    """
    delay_s = 0.5
    while True:
        try:
            await asyncio.wait_for(await topic.send(key=key, value=value), ack_timeout_s)
            return
        except Exception as exc:  # faust's ProducerSendError, aiokafka's KafkaError, a timeout
            log.warning("sending to %s failed (%s); retrying in %.1f s", topic.get_topic_name(), exc, delay_s)
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2, max_delay_s)


def durable_table_class():
    """A faust Table whose changelog writes can be awaited.

    faust sends table writes through a buffer whose flush gives up after 0.1 s without
    progress, so under load an offset commit can overtake the state written for the events
    it commits; a restart then restores older state than the offsets assume and events are
    lost to the rules. Awaiting each event's writes before taking the next keeps the
    changelog at least as fresh as the committed offsets.
    """
    import faust

    class DurableTable(faust.Table):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._unsent: list = []

        def send_changelog(self, *args, **kwargs):
            future = super().send_changelog(*args, **kwargs)
            self._unsent.append(future)
            return future

        async def changelog_written(self) -> None:
            unsent, self._unsent = self._unsent, []
            if unsent:
                await asyncio.gather(*unsent)

    return DurableTable


def build_app(cfg: ServiceConfig):
    """The faust app (not started)."""
    import faust

    app = faust.App(
        cfg.app_id, broker=broker_urls(cfg.kafka), broker_credentials=broker_credentials(cfg.kafka),
        store="memory://", autodiscover=False, web_enabled=cfg.web_enabled, web_bind=cfg.web_host,
        web_host=cfg.web_host, web_port=cfg.web_port, topic_partitions=1,
        topic_replication_factor=cfg.replication_factor, consumer_auto_offset_reset="earliest",
        producer_acks=-1, table_standby_replicas=0, broker_client_id=cfg.kafka.client_id + "-alerts",
        Table=durable_table_class(), TableManager=table_manager_class())
    windows = app.topic(cfg.windows_topic, key_serializer="raw", value_serializer="raw")
    by_policy = app.topic(f"{cfg.app_id}-windows-by-policy", partitions=1, internal=True,
                          key_serializer="raw", value_serializer="raw")
    alerts_topic = (app.topic(cfg.alerts_topic, partitions=1, key_serializer="raw", value_serializer="raw")
                    if cfg.alerts_topic else None)
    watch_for_stalled_input(app)
    metro_table = app.Table("metro-state", partitions=1)
    policy_table = app.Table("policy-state", partitions=1)
    evaluator = Evaluator(cfg.rules)
    window_s = cfg.rules.window_s
    queues: dict[str, RetryQueue] = {}

    @app.task
    async def start() -> None:
        queues.update(_queues(cfg))
        if alerts_topic is not None:
            await alerts_topic.maybe_declare()
        log.info("alerts: %s -> %s; sinks: %s", cfg.windows_topic, cfg.alerts_topic or "(no topic)",
                 ", ".join(queues) or "none")

    @app.agent(windows)
    async def route(stream):
        async for event in stream.events():
            value = event.value
            try:
                data = orjson.loads(value)
                family = int(data["window_s"]) == window_s and int(data["hop_s"]) == window_s
                policy = str(data["policy"]).encode()
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                METRICS.events.labels("undecodable").inc()
                log.warning("skipping undecodable window event at %s[%d]@%d",
                            event.message.topic, event.message.partition, event.message.offset)
                continue
            if not family:
                METRICS.events.labels("other_family").inc()
                continue
            await send_acknowledged(by_policy, policy, value)

    async def deliver(alerts: list[AlertEvent]) -> None:
        for alert in alerts:
            METRICS.transitions.labels(alert.alertname, alert.status).inc()
            log.info("alert %s %s %s: %s", alert.status, alert.alertname,
                     json.dumps(alert.labels, ensure_ascii=False), alert.annotations.get("summary", ""))
            if alerts_topic is not None:  # acknowledged before the state that produced it is recorded
                await send_acknowledged(alerts_topic, alert.fingerprint.encode(), orjson.dumps(alert.to_payload()))
        for queue in queues.values():
            queue.submit(alerts)

    @app.agent(by_policy)
    async def evaluate(stream):
        async for value in stream:
            try:
                event = WindowEvent.from_dict(orjson.loads(value))
            except (BadWindowEvent, orjson.JSONDecodeError) as exc:
                METRICS.events.labels("invalid").inc()
                log.warning("skipping window event: %s", exc)
                continue
            metro_key = json.dumps([event.policy, event.metro], ensure_ascii=False)
            history_key = event.policy + HISTORY_SUFFIX
            out = evaluator.evaluate(event, metro_table.get(metro_key), policy_table.get(event.policy),
                                     policy_table.get(history_key))
            METRICS.events.labels(out.ignored or "evaluated").inc()
            for name, count in out.flaps.items():
                METRICS.flaps.labels(name).inc(count)
            if out.alerts:
                await deliver(out.alerts)
            metro_table[metro_key] = out.metro_state
            policy_table[event.policy] = out.policy_state
            if out.history_changed:
                policy_table[history_key] = out.history
            await metro_table.changelog_written()
            await policy_table.changelog_written()

    def current_firing() -> list[AlertEvent]:
        firing = []
        for state in list(metro_table.values()):
            firing += firing_alerts(state)
        for key, state in list(policy_table.items()):
            if not key.endswith(HISTORY_SUFFIX):
                firing += firing_alerts(state)
        return firing

    @app.timer(interval=cfg.resend_interval_s)
    async def resend() -> None:
        firing = current_firing()
        for name in ALERT_NAMES:
            METRICS.firing.labels(name).set(sum(1 for a in firing if a.alertname == name))
        queue = queues.get("alertmanager")
        if queue is not None and firing:
            if queue.pending:
                log.info("alertmanager: %d deliveries pending; skipping this re-send", queue.pending)
            else:
                queue.submit(firing)

    @app.page("/metrics")
    async def metrics(web, request):
        return web.bytes(METRICS.render(), content_type="text/plain; version=0.0.4")

    @app.page("/alerts")
    async def firing_page(web, request):
        return web.json([a.to_payload() for a in current_firing()])

    @app.on_before_shutdown.connect
    async def drain(app, **kwargs) -> None:
        for name, queue in queues.items():
            if not await queue.drain(cfg.drain_timeout_s):
                log.error("%s: %d alert batch(es) undelivered at shutdown", name, queue.pending)
            await queue.close()

    return app


def run_service(cfg: ServiceConfig) -> None:
    """Run until SIGTERM/SIGINT (faust's worker stops gracefully: commits, drains, closes)."""
    from faust.worker import Worker

    app = build_app(cfg)
    worker = Worker(app, loglevel=cfg.log_level, redirect_stdouts=False)
    worker.execute_from_commandline()
