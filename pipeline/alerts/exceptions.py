"""Errors of the alerting service, under the package's root error."""
from __future__ import annotations

from ..errors import NetreadyError


class AlertsError(NetreadyError):
    """Root of the alerting errors."""


class BadWindowEvent(AlertsError):
    """A window event that cannot be evaluated (logged and skipped, never fatal)."""


class DeliveryError(AlertsError):
    """One delivery attempt to Alertmanager, a webhook or ClickHouse failed (it is retried)."""
