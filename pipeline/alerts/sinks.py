"""Where alert transitions go: Alertmanager API v2, a generic webhook, the ClickHouse history.

Each sink has one coroutine, `send(alerts)`, which raises DeliveryError on failure. A
`RetryQueue` in front of each sink decouples it from the stream: the agent only enqueues,
and one background task per sink delivers in order, retrying a failed batch with
exponential back-off (capped, with jitter) and logging every failure. A sink outage
therefore never stalls nor crashes the service; a queue that overflows drops its oldest
batch (logged and counted), and Alertmanager is re-sent every firing alert periodically
anyway. The Kafka topic is not here: faust sends it with its own producer.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from abc import ABC, abstractmethod

import pyarrow as pa

from .exceptions import DeliveryError
from .metrics import METRICS
from .model import FIRING, AlertEvent, format_time

log = logging.getLogger("netready.alerts.sinks")

DEFAULT_TIMEOUT_S = 10.0


class Sink(ABC):
    name: str

    @abstractmethod
    async def send(self, alerts: list[AlertEvent]) -> None:
        """Deliver a batch, or raise DeliveryError."""

    async def close(self) -> None:
        pass


class _HttpSink(Sink):
    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.url = url
        self.timeout_s = timeout_s
        self._session = None

    async def _post(self, body) -> None:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        try:
            async with self._session.post(self.url, data=json.dumps(body, ensure_ascii=False).encode(),
                                          headers={"Content-Type": "application/json"}) as resp:
                if resp.status >= 300:
                    text = (await resp.text())[:200]
                    raise DeliveryError(f"{self.name}: HTTP {resp.status} from {self.url}: {text}")
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise DeliveryError(f"{self.name}: {type(exc).__name__} posting to {self.url}: {exc}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class AlertmanagerSink(_HttpSink):
    """POST /api/v2/alerts. Firing alerts carry endsAt = now + `firing_ttl_s` (as Prometheus
    does), so they expire if netready stops re-sending them; resolves carry their endsAt."""

    name = "alertmanager"

    def __init__(self, base_url: str, firing_ttl_s: float = 240.0, generator_url: str = "",
                 timeout_s: float = DEFAULT_TIMEOUT_S):
        super().__init__(base_url.rstrip("/") + "/api/v2/alerts", timeout_s)
        self.firing_ttl_s = firing_ttl_s
        self.generator_url = generator_url

    def body(self, alerts: list[AlertEvent], now_s: float | None = None) -> list[dict]:
        now_s = time.time() if now_s is None else now_s
        out = []
        for alert in alerts:
            if alert.status == FIRING:
                ends = int(now_s + self.firing_ttl_s)
            else:
                # event time may run ahead of the wall clock (replays of simulated data): a resolve
                # must take effect now, and Alertmanager refuses endsAt before startsAt.
                ends = max(alert.starts_at_s, min(alert.ends_at_s, int(now_s)))
            item = {"labels": dict(alert.labels), "annotations": dict(alert.annotations),
                    "startsAt": format_time(alert.starts_at_s), "endsAt": format_time(ends)}
            if self.generator_url:
                item["generatorURL"] = self.generator_url
            out.append(item)
        return out

    async def send(self, alerts: list[AlertEvent]) -> None:
        await self._post(self.body(alerts))


class WebhookSink(_HttpSink):
    """POST {"source": "netready", "version": 1, "alerts": [payload, ...]} (schemas/alert.schema.json)."""

    name = "webhook"

    async def send(self, alerts: list[AlertEvent]) -> None:
        await self._post({"source": "netready", "version": 1, "alerts": [a.to_payload() for a in alerts]})


def alerts_table(alerts: list[AlertEvent]) -> pa.Table:
    """Rows of `netready.alerts` (schemas/clickhouse/009_alerts.sql)."""
    ts = pa.timestamp("s", tz="UTC")
    as_time = lambda values: pa.array(values, type=pa.int64()).cast(ts)  # noqa: E731
    return pa.table({
        "fingerprint": pa.array([a.fingerprint for a in alerts], pa.string()),
        "alertname": pa.array([a.alertname for a in alerts], pa.string()),
        "status": pa.array([a.status for a in alerts], pa.string()),
        "metro": pa.array([a.labels.get("metro", "") for a in alerts], pa.string()),
        "policy": pa.array([a.labels.get("policy", "") for a in alerts], pa.string()),
        "severity": pa.array([a.labels.get("severity", "") for a in alerts], pa.string()),
        "starts_at": as_time([a.starts_at_s for a in alerts]),
        "ends_at": as_time([a.ends_at_s or 0 for a in alerts]),
        "event_time": as_time([a.event_time_s for a in alerts]),
        "flap_count": pa.array([a.flap_count for a in alerts], pa.uint32()),
        "labels": pa.array([json.dumps(a.labels, ensure_ascii=False, sort_keys=True) for a in alerts]),
        "annotations": pa.array([json.dumps(a.annotations, ensure_ascii=False, sort_keys=True) for a in alerts]),
        "summary": pa.array([a.annotations.get("summary", "") for a in alerts], pa.string()),
    })


class ClickHouseSink(Sink):
    """Inserts into `netready.alerts` (applying migrations once first), off the event loop."""

    name = "clickhouse"

    def __init__(self, url: str):
        self.url = url
        self._warehouse = None

    def _insert(self, table: pa.Table) -> None:
        from ..errors import NetreadyError
        from ..warehouse import open_warehouse
        from ..warehouse.migrations import migrate

        try:
            if self._warehouse is None:
                warehouse = open_warehouse(self.url)
                migrate(warehouse)
                self._warehouse = warehouse
            self._warehouse.insert("alerts", table)
        except NetreadyError as exc:
            if self._warehouse is not None:
                self._warehouse.close()
                self._warehouse = None
            raise DeliveryError(f"clickhouse: {exc}") from None

    async def send(self, alerts: list[AlertEvent]) -> None:
        await asyncio.to_thread(self._insert, alerts_table(alerts))

    async def close(self) -> None:
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None


class RetryQueue:
    """Ordered, retried delivery to one sink from a background task."""

    def __init__(self, sink: Sink, *, max_batches: int = 10_000, initial_backoff_s: float = 0.5,
                 max_backoff_s: float = 30.0):
        self.sink = sink
        self.max_batches = max_batches
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self._queue: asyncio.Queue[list[AlertEvent]] = asyncio.Queue()
        self._task: asyncio.Task | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, alerts: list[AlertEvent]) -> None:
        if not alerts:
            return
        if self._queue.qsize() >= self.max_batches:
            dropped = self._queue.get_nowait()
            METRICS.delivery_dropped.labels(self.sink.name).inc(len(dropped))
            log.error("%s: delivery queue full, dropped %d oldest alert(s)", self.sink.name, len(dropped))
        self._idle.clear()
        self._queue.put_nowait(alerts)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._queue.empty():
            batch = self._queue.get_nowait()
            backoff = self.initial_backoff_s
            attempt = 1
            while True:
                try:
                    await self.sink.send(batch)
                    METRICS.deliveries.labels(self.sink.name).inc(len(batch))
                    if attempt > 1:
                        log.info("%s: delivered after %d attempts", self.sink.name, attempt)
                    break
                except DeliveryError as exc:
                    METRICS.delivery_failures.labels(self.sink.name).inc()
                    log.warning("%s: delivery attempt %d failed (%s); retrying in %.1f s",
                                self.sink.name, attempt, exc, backoff)
                except Exception:  # a bug in a sink must not kill delivery for good
                    METRICS.delivery_failures.labels(self.sink.name).inc()
                    log.exception("%s: unexpected delivery error; retrying in %.1f s", self.sink.name, backoff)
                await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, self.max_backoff_s)
                attempt += 1
        self._idle.set()

    @property
    def pending(self) -> int:
        return self._queue.qsize() + (0 if self._idle.is_set() else 1)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until everything queued is delivered (True) or `timeout_s` passes (False)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except asyncio.TimeoutError:
            return False

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        await self.sink.close()
