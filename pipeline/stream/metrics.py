"""Prometheus metrics of the streaming worker, with stable names (`netready_*`)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.samples = Counter("netready_samples", "Samples aggregated", registry=r)
        self.messages = Counter("netready_messages", "Kafka messages consumed", registry=r)
        self.rejects = Counter("netready_rejects", "Records rejected, by reason", ["reason"], registry=r)
        self.late = Counter("netready_late_samples", "Samples for windows already emitted", registry=r)
        self.windows = Counter("netready_windows_emitted", "Windows emitted and landed", registry=r)
        self.dlq = Counter("netready_dlq_messages", "Messages sent to the dead-letter topic", registry=r)
        self.sink_errors = Counter("netready_sink_errors", "Failed landings, by kind", ["kind"], registry=r)
        self.sink_retries = Counter("netready_sink_retries", "Landing retries after back-off", registry=r)
        self.paused = Gauge("netready_consumption_paused", "1 while consumption is paused for back-off",
                            registry=r)
        self.lag = Gauge("netready_consumer_lag", "High watermark minus next offset", ["partition"],
                         registry=r)
        self.checkpoints = Counter("netready_checkpoints", "Checkpoints stored and committed", registry=r)
        self.emit_delay = Histogram(
            "netready_window_emit_delay_seconds",
            "Wall time from a window's emission by the watermark to its row being queryable",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=r)

    def serve(self, port: int, address: str = "127.0.0.1") -> None:
        """Expose /metrics; localhost only unless an address is configured."""
        start_http_server(port, addr=address, registry=self.registry)
