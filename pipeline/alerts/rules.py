"""Alert rules over per-metro window verdicts: pure functions of (event, state), no I/O.

Only the tumbling family (`window_s == hop_s == RuleConfig.window_s`, 60 s by default) is
evaluated; events of other families are ignored. Events are taken in event-time order per
metro: an event whose window starts at or before the last one evaluated for its metro is a
replay or a revision; it updates the exact burn-rate counts but triggers no transition,
so replaying a topic into restored state never fires twice.

State is three kinds of small JSON-able dicts, which the service keeps in faust tables:

- per (policy, metro) (`new_metro_state`): compliance streaks, a ring of per-window counts
  for burn rates, and the metro's alert states (regression, burn page, burn ticket);
- per policy (`new_policy_state`): the event-time clock (newest window end of any metro),
  each metro's last window end (for "no data"), windows awaiting coverage, the no-data and
  coverage alert states;
- per policy, the coverage history (`new_history`), kept apart because it is the large,
  slow-changing part (one value per finalised window, 7 days, capped).

Rules (defaults in RuleConfig):

- NetreadyMetroComplianceRegression: a metro that has been compliant at least once is
  non-compliant for `regression_fire_windows` consecutive windows; resolves after
  `regression_clear_windows` consecutive compliant windows (hysteresis). A missing window
  breaks both streaks: silence is evidence of neither.
- NetreadyMetroNoData: no window for a metro while the newest window end of any metro of the
  policy is more than `no_data_s` past the metro's last window end; resolves when it reports.
- NetreadyCoverageDrop / NetreadyCoverageBelowTarget: national coverage of a window =
  compliant metros / metros seen so far, final once every known metro reported that window or
  the clock is `coverage_settle_s` past its end (only the latter during the first
  `coverage_settle_s` of data, while the set of known metros fills up). Drop: coverage at least `coverage_drop_points`
  below the median of the trailing `coverage_history_s` (needs `coverage_min_history` windows).
  Target: coverage below `coverage_target`. Both fire after `coverage_fire_windows`
  consecutive windows and clear after `coverage_clear_windows`.
- NetreadyMetroErrorBudgetBurn (multi-window multi-burn-rate, as Sloth/Pyrra): budget =
  1 - required_share; burn rate over a span = (1 - sum(under) / sum(samples)) / budget, from
  exact sums of per-window counts. Page (severity critical) when 1 h and 5 min > 14.4 or
  6 h and 30 min > 6; ticket (severity warning) when 1 d and 2 h > 3 or 3 d and 6 h > 1.

Flap suppression applies to every alert: when the raw rule resolves an alert whose raw state
changed more than `flap_max_changes` times within `flap_window_s`, the alert is held firing
until the raw state has stayed clear for `flap_stable_s`. Every raw change not passed on
counts as a flap (`flap_count` annotation and payload field).

Timestamps: `starts_at` is when the condition began (first bad window's start, the silent
metro's last window end, the first bad coverage window's start); `ends_at` and `event_time`
are the end of the window whose arrival decided the transition.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from .model import FIRING, RESOLVED, AlertEvent, WindowEvent, format_time

REGRESSION = "NetreadyMetroComplianceRegression"
NO_DATA = "NetreadyMetroNoData"
COVERAGE_DROP = "NetreadyCoverageDrop"
COVERAGE_TARGET = "NetreadyCoverageBelowTarget"
BUDGET_BURN = "NetreadyMetroErrorBudgetBurn"
ALERT_NAMES = (REGRESSION, NO_DATA, COVERAGE_DROP, COVERAGE_TARGET, BUDGET_BURN)

STATE_VERSION = 1
_EPS = 1e-9  # ratios compared at threshold: 0.9 is "10 points below 1.0" despite float error


@dataclass(frozen=True)
class BurnWindow:
    """Fire when the burn rate over both spans exceeds `factor`."""

    factor: float
    long_s: int
    short_s: int


PAGE_BURN = (BurnWindow(14.4, 3600, 300), BurnWindow(6.0, 6 * 3600, 1800))
TICKET_BURN = (BurnWindow(3.0, 86400, 7200), BurnWindow(1.0, 3 * 86400, 6 * 3600))


@dataclass(frozen=True)
class RuleConfig:
    window_s: int = 60
    regression_fire_windows: int = 3
    regression_clear_windows: int = 5
    no_data_s: int = 300
    coverage_settle_s: int = 120
    coverage_drop_points: float = 10.0
    coverage_target: float = 0.75
    coverage_history_s: int = 7 * 86400
    coverage_history_max: int = 7 * 1440
    coverage_min_history: int = 10
    coverage_fire_windows: int = 2
    coverage_clear_windows: int = 3
    required_share: float = 0.99
    page_burn: tuple[BurnWindow, ...] = PAGE_BURN
    ticket_burn: tuple[BurnWindow, ...] = TICKET_BURN
    flap_max_changes: int = 4
    flap_window_s: int = 3600
    flap_stable_s: int = 900
    max_pending_windows: int = 64
    static_labels: tuple[tuple[str, str], ...] = ()  # e.g. (("env", "prod"),), added to every alert

    def __post_init__(self) -> None:
        for name in ("window_s", "regression_fire_windows", "regression_clear_windows", "no_data_s",
                     "flap_max_changes", "flap_window_s", "coverage_fire_windows", "coverage_clear_windows",
                     "coverage_history_max", "max_pending_windows"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer")
        if not 0 < self.required_share < 1:
            raise ValueError("required_share must be in (0, 1)")
        for burn in (*self.page_burn, *self.ticket_burn):
            if burn.long_s % self.window_s or burn.short_s % self.window_s or burn.short_s > burn.long_s:
                raise ValueError(f"burn spans must be multiples of window_s with short <= long: {burn}")

    @property
    def ring_slots(self) -> int:
        """Per-window counts kept per metro: enough for the longest burn-rate span."""
        spans = [b.long_s for b in (*self.page_burn, *self.ticket_burn)] or [self.window_s]
        return max(spans) // self.window_s


# ------------------------------------------------------------------ state constructors

def new_alert_state() -> dict:
    return {"raw": False, "raw_since": None, "firing": False, "held": False, "starts_at": None,
            "changes": [], "flaps": 0, "labels": {}, "annotations": {}}


def new_metro_state() -> dict:
    return {"v": STATE_VERSION, "last_start": None, "last_end": None, "ever_compliant": False,
            "bad_streak": 0, "good_streak": 0, "bad_since": None, "windows": 0, "stale": 0,
            "ring": {"end": None, "samples": [], "under": []},
            "alerts": {"regression": new_alert_state(), "burn_page": new_alert_state(),
                       "burn_ticket": new_alert_state()}}


def new_policy_state() -> dict:
    return {"v": STATE_VERSION, "clock": None, "first_end": None, "metros": {}, "pending": {},
            "finalized_through": None,
            "late_for_coverage": 0, "nodata": {},
            "coverage": {"drop": new_alert_state(), "target": new_alert_state(),
                         "drop_streak": 0, "drop_clear": 0, "target_streak": 0, "target_clear": 0,
                         "drop_since": None, "target_since": None}}


def new_history() -> dict:
    return {"starts": [], "values": []}


@dataclass
class Outcome:
    """What one event changed: the new states and the alert transitions to deliver."""

    metro_state: dict
    policy_state: dict
    history: dict
    history_changed: bool = False
    alerts: list[AlertEvent] = field(default_factory=list)
    flaps: dict[str, int] = field(default_factory=dict)  # alertname -> flaps added by this event
    ignored: str | None = None  # why the event was not evaluated ("family", "stale")
    coverage: list[tuple[int, float]] = field(default_factory=list)  # windows finalised now


# ------------------------------------------------------------------ the evaluator

class Evaluator:
    def __init__(self, config: RuleConfig | None = None):
        self.config = config or RuleConfig()

    def evaluate(self, event: WindowEvent, metro_state: dict | None, policy_state: dict | None,
                 history: dict | None) -> Outcome:
        """Apply one window event. The given dicts are updated in place and returned in Outcome."""
        cfg = self.config
        out = Outcome(metro_state or new_metro_state(), policy_state or new_policy_state(),
                      history or new_history())
        if event.window_s != cfg.window_s or event.hop_s != cfg.window_s:
            out.ignored = "family"
            return out
        ms, ps = out.metro_state, out.policy_state
        ps["clock"] = max(ps["clock"] or event.window_end_s, event.window_end_s)
        _ring_put(ms["ring"], event, cfg)
        if ms["last_start"] is not None and event.window_start_s <= ms["last_start"]:
            ms["stale"] += 1
            out.ignored = "stale"
            self._coverage(event, out, revision=True)
            return out
        self._regression(event, out)
        self._burn(event, out)
        ms["last_start"], ms["last_end"] = event.window_start_s, event.window_end_s
        ms["windows"] += 1
        ps["metros"][event.metro] = event.window_end_s
        self._no_data(event, out)
        self._coverage(event, out, revision=False)
        return out

    # -------------------------------------------------------------- per-metro rules

    def _labels(self, policy: str, metro: str | None, severity: str, **extra: str) -> dict[str, str]:
        labels = dict(self.config.static_labels)
        labels.update({"policy": policy, "severity": severity, **extra})
        if metro is not None:
            labels["metro"] = metro
        return labels

    def _regression(self, event: WindowEvent, out: Outcome) -> None:
        cfg, ms = self.config, out.metro_state
        if ms["last_start"] is not None and event.window_start_s != ms["last_start"] + cfg.window_s:
            ms["bad_streak"] = ms["good_streak"] = 0  # a gap is evidence of neither
        if event.compliant:
            ms["good_streak"] += 1
            ms["bad_streak"] = 0
            ms["ever_compliant"] = True
        elif ms["ever_compliant"]:
            ms["bad_streak"] += 1
            ms["good_streak"] = 0
            if ms["bad_streak"] == 1:
                ms["bad_since"] = event.window_start_s
        alert = ms["alerts"]["regression"]
        raw = alert["raw"]
        if not raw and ms["bad_streak"] >= cfg.regression_fire_windows:
            raw = True
        elif raw and ms["good_streak"] >= cfg.regression_clear_windows:
            raw = False
        share = event.under_threshold / event.samples if event.samples else 0.0
        if raw:
            summary = (f"{event.metro}: {ms['bad_streak']} consecutive non-compliant {cfg.window_s} s windows "
                       f"(latest share under threshold {share:.4f}, {event.under_threshold}/{event.samples} samples)")
        else:
            summary = (f"{event.metro}: compliant again for {ms['good_streak']} consecutive {cfg.window_s} s "
                       f"windows (latest share {share:.4f})")
        description = (f"Metro {event.metro} was compliant under policy {event.policy} and has been non-compliant "
                       f"for >= {cfg.regression_fire_windows} consecutive windows; clears after "
                       f"{cfg.regression_clear_windows} consecutive compliant windows.")
        self._step(out, alert, raw, event.window_end_s, ms["bad_since"] or event.window_start_s, REGRESSION,
                   self._labels(event.policy, event.metro, "warning"),
                   {"summary": summary, "description": description})

    def _burn(self, event: WindowEvent, out: Outcome) -> None:
        cfg, ms = self.config, out.metro_state
        rates = {}
        for burn in (*cfg.page_burn, *cfg.ticket_burn):
            for span in (burn.long_s, burn.short_s):
                if span not in rates:
                    rates[span] = burn_rate(ms["ring"], span // cfg.window_s, cfg.required_share)
        for key, windows, severity, kind in (("burn_page", cfg.page_burn, "critical", "page"),
                                             ("burn_ticket", cfg.ticket_burn, "warning", "ticket")):
            hits = [b for b in windows if rates[b.long_s] > b.factor and rates[b.short_s] > b.factor]
            shown = hits[0] if hits else (windows[0] if windows else None)
            if shown is None:
                continue
            summary = (f"{event.metro}: error budget burn rate {rates[shown.long_s]:.2f} over "
                       f"{_span(shown.long_s)} and {rates[shown.short_s]:.2f} over {_span(shown.short_s)} "
                       f"(threshold {shown.factor:g}, budget {1 - cfg.required_share:.4g})")
            description = (f"{kind} burn-rate alert on the share of samples under threshold of metro "
                           f"{event.metro} (SLO {cfg.required_share:g}); rates: "
                           + ", ".join(f"{_span(s)}={r:.2f}" for s, r in sorted(rates.items())))
            alert = ms["alerts"][key]
            self._step(out, alert, bool(hits), event.window_end_s, event.window_start_s, BUDGET_BURN,
                       self._labels(event.policy, event.metro, severity, budget_alert=kind),
                       {"summary": summary, "description": description})

    # -------------------------------------------------------------- per-policy rules

    def _no_data(self, event: WindowEvent, out: Outcome) -> None:
        cfg, ps = self.config, out.policy_state
        clock = ps["clock"]
        for metro, last_end in sorted(ps["metros"].items()):
            alert = ps["nodata"].get(metro)
            silent_s = clock - last_end
            raw = silent_s > cfg.no_data_s
            if alert is None:
                if not raw:
                    continue
                alert = ps["nodata"][metro] = new_alert_state()
            if raw:
                summary = (f"{metro}: no window for {silent_s} s of event time (last window ended "
                           f"{_iso(last_end)}; other metros report up to {_iso(clock)})")
            else:
                summary = f"{metro}: reporting again (window ending {_iso(last_end)})"
            self._step(out, alert, raw, clock, last_end, NO_DATA,
                       self._labels(event.policy, metro, "warning"),
                       {"summary": summary,
                        "description": f"No data is not a regression: metro {metro} sent no {cfg.window_s} s "
                                       f"window for more than {cfg.no_data_s} s while other metros did."})
            if not alert["firing"] and not alert["raw"] and not alert["changes"]:
                del ps["nodata"][metro]  # keep the state small: nothing to remember

    def _coverage(self, event: WindowEvent, out: Outcome, revision: bool) -> None:
        cfg, ps = self.config, out.policy_state
        key = str(event.window_start_s)
        done = ps["finalized_through"]
        if done is not None and event.window_start_s <= done:
            if not revision:
                ps["late_for_coverage"] += 1
        else:
            ps["pending"].setdefault(key, {})[event.metro] = bool(event.compliant)
        known = set(ps["metros"])
        if ps["first_end"] is None:
            ps["first_end"] = event.window_end_s
        for start_key in sorted(ps["pending"], key=int):
            start = int(start_key)
            reported = ps["pending"][start_key]
            settled = ps["clock"] - (start + cfg.window_s) >= cfg.coverage_settle_s
            overflow = len(ps["pending"]) > cfg.max_pending_windows
            # "every known metro reported" means little until the service has seen a
            # settle period of data: before that, the known set is still filling up.
            complete = known <= set(reported) and start + cfg.window_s - ps["first_end"] >= cfg.coverage_settle_s
            if not (complete or settled or overflow):
                break  # finalise in window order
            del ps["pending"][start_key]
            ps["finalized_through"] = start
            compliant = sum(1 for metro, ok in reported.items() if ok and metro in known)
            total = len(known | set(reported))
            self._coverage_window(event, out, start, compliant, total)

    def _coverage_window(self, event: WindowEvent, out: Outcome, start: int, compliant: int, total: int) -> None:
        cfg, cs, hist = self.config, out.policy_state["coverage"], out.history
        coverage = compliant / total if total else 0.0
        out.coverage.append((start, coverage))
        horizon = start - cfg.coverage_history_s
        values = [v for s, v in zip(hist["starts"], hist["values"]) if s > horizon]
        median = statistics.median(values) if values else None
        end = start + cfg.window_s
        drop_bad = (median is not None and len(values) >= cfg.coverage_min_history
                    and coverage <= median - cfg.coverage_drop_points / 100 + _EPS)
        target_bad = coverage < cfg.coverage_target - _EPS
        numbers = f"{coverage:.3f} ({compliant}/{total} metros compliant) in window {_iso(start)}"
        med = f"{median:.3f}" if median is not None else "n/a"
        for kind, bad, name, text in (
                ("drop", drop_bad, COVERAGE_DROP,
                 f"National coverage {numbers} is {cfg.coverage_drop_points:g}+ points below its trailing "
                 f"median {med}" if drop_bad else f"National coverage {numbers}, trailing median {med}"),
                ("target", target_bad, COVERAGE_TARGET,
                 f"National coverage {numbers} is below the target {cfg.coverage_target:g}" if target_bad
                 else f"National coverage {numbers} meets the target {cfg.coverage_target:g}")):
            if bad:
                cs[f"{kind}_streak"] += 1
                cs[f"{kind}_clear"] = 0
                if cs[f"{kind}_streak"] == 1:
                    cs[f"{kind}_since"] = start
            else:
                cs[f"{kind}_clear"] += 1
                cs[f"{kind}_streak"] = 0
            alert = cs[kind]
            raw = alert["raw"]
            if not raw and cs[f"{kind}_streak"] >= cfg.coverage_fire_windows:
                raw = True
            elif raw and cs[f"{kind}_clear"] >= cfg.coverage_clear_windows:
                raw = False
            self._step(out, alert, raw, end, cs[f"{kind}_since"] or start, name,
                       self._labels(event.policy, None, "warning"),
                       {"summary": text, "coverage": f"{coverage:.6f}", "median": med,
                        "description": "Coverage = compliant metros / metros seen so far, per "
                                       f"{cfg.window_s} s window."})
        hist["starts"].append(start)
        hist["values"].append(round(coverage, 6))
        keep = next((i for i, s in enumerate(hist["starts"]) if s > horizon), len(hist["starts"]))
        keep = max(keep, len(hist["starts"]) - cfg.coverage_history_max)
        del hist["starts"][:keep], hist["values"][:keep]
        out.history_changed = True

    # -------------------------------------------------------------- the state machine shared by all rules

    def _step(self, out: Outcome, alert: dict, raw: bool, t: int, starts_at: int, name: str,
              labels: dict[str, str], annotations: dict[str, str]) -> None:
        """Move one alert given its raw (rule) state at event time `t`; append a transition if any."""
        cfg = self.config
        changed = raw != alert["raw"]
        if changed:
            alert["raw"], alert["raw_since"] = raw, t
            recent = [c for c in alert["changes"] if c > t - cfg.flap_window_s] + [t]
            alert["changes"] = recent[-(2 * cfg.flap_max_changes + 2):]
        status = None
        if raw and not alert["firing"]:
            alert.update(firing=True, held=False, starts_at=starts_at)
            status = FIRING
        elif not raw and alert["firing"]:
            recent = [c for c in alert["changes"] if c > t - cfg.flap_window_s]
            if alert["held"] and t - alert["raw_since"] >= cfg.flap_stable_s:
                status = RESOLVED
            elif not alert["held"] and len(recent) <= cfg.flap_max_changes:
                status = RESOLVED
            else:
                alert["held"] = True
                if changed:
                    self._flap(out, alert, name)
        elif raw and changed and alert["held"]:
            self._flap(out, alert, name)  # fired again while held: not passed on
        if alert["firing"] or status:
            annotations = {**annotations, "flap_count": str(alert["flaps"])}
            if alert["held"]:
                annotations["flapping"] = (f"held firing: raw state changed {len(alert['changes'])} times "
                                           f"within {_span(cfg.flap_window_s)}")
            alert["labels"], alert["annotations"] = {"alertname": name, **labels}, annotations
        if status == RESOLVED:
            alert.update(firing=False, held=False)
        if status:
            out.alerts.append(AlertEvent(alertname=name, labels=labels, annotations=annotations, status=status,
                                         starts_at_s=alert["starts_at"], event_time_s=t,
                                         ends_at_s=t if status == RESOLVED else None, flap_count=alert["flaps"]))

    @staticmethod
    def _flap(out: Outcome, alert: dict, name: str) -> None:
        alert["flaps"] += 1
        out.flaps[name] = out.flaps.get(name, 0) + 1


# ------------------------------------------------------------------ helpers

def _ring_put(ring: dict, event: WindowEvent, cfg: RuleConfig) -> None:
    """Store the event's counts in its slot (a revision replaces the slot: counts stay exact)."""
    slots = cfg.ring_slots
    start = event.window_start_s
    if ring["end"] is None:
        ring["end"], ring["samples"], ring["under"] = start, [event.samples], [event.under_threshold]
        return
    ahead = (start - ring["end"]) // cfg.window_s
    if ahead > 0:
        pad = min(ahead, slots)
        ring["samples"].extend([0] * pad)
        ring["under"].extend([0] * pad)
        ring["samples"][-1], ring["under"][-1] = event.samples, event.under_threshold
        ring["end"] = start
        del ring["samples"][:-slots], ring["under"][:-slots]
        return
    back = -ahead
    if back < len(ring["samples"]):
        ring["samples"][-1 - back], ring["under"][-1 - back] = event.samples, event.under_threshold


def burn_rate(ring: dict, slots: int, required_share: float) -> float:
    """(1 - under/samples) / (1 - required_share) over the newest `slots` windows; 0 without samples."""
    samples = sum(ring["samples"][-slots:])
    if samples == 0:
        return 0.0
    under = sum(ring["under"][-slots:])
    return (1 - under / samples) / (1 - required_share)


def firing_alerts(state: dict) -> list[AlertEvent]:
    """The alerts currently firing in a metro or policy state (for periodic re-sending)."""
    alerts = []
    nested = [*state.get("alerts", {}).values(), *state.get("nodata", {}).values()]
    coverage = state.get("coverage", {})
    nested += [coverage[k] for k in ("drop", "target") if k in coverage]
    for alert in nested:
        if alert["firing"] and alert["labels"]:
            labels = dict(alert["labels"])
            name = labels.pop("alertname")
            alerts.append(AlertEvent(alertname=name, labels=labels, annotations=dict(alert["annotations"]),
                                     status=FIRING, starts_at_s=alert["starts_at"], ends_at_s=None,
                                     event_time_s=alert["raw_since"] or alert["starts_at"],
                                     flap_count=alert["flaps"]))
    return alerts


def _span(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def _iso(value_s: int) -> str:
    return format_time(value_s)
