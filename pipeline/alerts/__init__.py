"""Alerting on metro window verdicts: pure rules (`rules`), sinks (`sinks`), the faust service (`service`)."""
from __future__ import annotations

from .model import AlertEvent, WindowEvent
from .rules import Evaluator, RuleConfig

__all__ = ["AlertEvent", "Evaluator", "RuleConfig", "WindowEvent"]
