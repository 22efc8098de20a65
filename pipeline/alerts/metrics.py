"""Prometheus metrics of the alert service (served at /metrics by the faust web server)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class AlertMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("netready_alert_window_events_total", "Window events read", ["outcome"], registry=r)
        self.transitions = Counter("netready_alert_transitions_total", "Alert state transitions",
                                   ["alertname", "status"], registry=r)
        self.flaps = Counter("netready_alert_flaps_total",
                             "Raw alert state changes held back by flap suppression", ["alertname"], registry=r)
        self.firing = Gauge("netready_alerts_firing", "Alerts currently firing", ["alertname"], registry=r)
        self.deliveries = Counter("netready_alert_deliveries_total", "Alerts delivered", ["sink"], registry=r)
        self.delivery_failures = Counter("netready_alert_delivery_failures_total", "Failed delivery attempts",
                                         ["sink"], registry=r)
        self.delivery_dropped = Counter("netready_alert_delivery_dropped_total",
                                        "Alerts dropped from a full delivery queue", ["sink"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)


METRICS = AlertMetrics()
