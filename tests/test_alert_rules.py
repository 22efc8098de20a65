"""Alert rules on synthetic window sequences: the exact windows at which alerts fire and resolve."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from pipeline.alerts.model import FIRING, RESOLVED, AlertEvent, WindowEvent, fingerprint
from pipeline.alerts.rules import (BUDGET_BURN, COVERAGE_DROP, COVERAGE_TARGET, NO_DATA, REGRESSION,
                                   BurnWindow, Evaluator, RuleConfig, burn_rate, firing_alerts)

T0 = 1_780_000_020 - 1_780_000_020 % 60  # a window boundary in 2026
W = 60
SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "alert.schema.json").read_text())
# Burn-rate rules off unless a test is about them (they would also react to bad windows).
NO_BURN = dict(page_burn=(), ticket_burn=())


def ev(metro: str, i: int, compliant: bool = True, samples: int = 1000, under: int | None = None,
       window_s: int = W, hop_s: int = W, policy: str = "p99-rtt") -> WindowEvent:
    if under is None:
        under = samples if compliant else int(samples * 0.9)
    start = T0 + i * hop_s
    return WindowEvent(metro=metro, policy=policy, window_start_s=start, window_end_s=start + window_s,
                       window_s=window_s, hop_s=hop_s, samples=samples, under_threshold=under,
                       compliant=compliant)


class Runner:
    """Feeds events through an Evaluator with JSON round-tripped state, like the service's tables."""

    def __init__(self, config: RuleConfig | None = None, roundtrip: bool = True):
        self.evaluator = Evaluator(config or RuleConfig(**NO_BURN))
        self.metros: dict[str, dict] = {}
        self.policies: dict[str, dict] = {}
        self.histories: dict[str, dict] = {}
        self.roundtrip = roundtrip
        self.log: list[tuple[int, AlertEvent]] = []  # (index of the event that caused it, alert)
        self.flaps: dict[str, int] = {}
        self.coverage: list[tuple[int, float]] = []
        self.n = 0

    def feed(self, event: WindowEvent) -> list[AlertEvent]:
        key = (event.policy, event.metro)
        out = self.evaluator.evaluate(event, self.metros.get(key), self.policies.get(event.policy),
                                      self.histories.get(event.policy))
        fix = (lambda d: json.loads(json.dumps(d))) if self.roundtrip else (lambda d: d)
        self.metros[key] = fix(out.metro_state)
        self.policies[event.policy] = fix(out.policy_state)
        self.histories[event.policy] = fix(out.history)
        for alert in out.alerts:
            self.log.append((self.n, alert))
        for name, count in out.flaps.items():
            self.flaps[name] = self.flaps.get(name, 0) + count
        self.coverage += out.coverage
        self.n += 1
        return out.alerts

    def of(self, name: str) -> list[tuple[int, AlertEvent]]:
        return [(i, a) for i, a in self.log if a.alertname == name]

    def transitions(self, name: str) -> list[tuple[int, str]]:
        return [(i, a.status) for i, a in self.log if a.alertname == name]


def run_metro(runner: Runner, pattern: str, metro: str = "北京", offset: int = 0) -> None:
    """One event per character: 'c' compliant, 'x' non-compliant, '.' no window."""
    for i, ch in enumerate(pattern):
        if ch != ".":
            runner.feed(ev(metro, offset + i, compliant=ch == "c"))


# ------------------------------------------------------------------ regression and hysteresis

def test_regression_fires_on_third_bad_window_and_resolves_on_fifth_good():
    r = Runner()
    run_metro(r, "ccc" + "x" * 6 + "c" * 8)
    assert r.transitions(REGRESSION) == [(5, FIRING), (13, RESOLVED)]
    fired, resolved = [a for _, a in r.of(REGRESSION)]
    assert fired.starts_at_s == T0 + 3 * W  # the first bad window's start
    assert fired.ends_at_s is None and fired.event_time_s == T0 + 6 * W
    assert resolved.ends_at_s == T0 + 14 * W and resolved.starts_at_s == fired.starts_at_s
    assert fired.labels == {"alertname": REGRESSION, "policy": "p99-rtt", "severity": "warning", "metro": "北京"}
    assert fired.fingerprint == resolved.fingerprint == fingerprint(fired.labels)
    assert "3 consecutive non-compliant" in fired.annotations["summary"]


def test_two_bad_windows_do_not_fire():
    r = Runner()
    run_metro(r, "cc" + "xxc" * 5)
    assert r.transitions(REGRESSION) == []


def test_hysteresis_needs_five_consecutive_compliant_windows():
    r = Runner()
    run_metro(r, "c" + "xxx" + "cccc" + "x" + "ccccc")
    # fires at index 3; 4 good windows are not enough; the bad one restarts the count
    assert r.transitions(REGRESSION) == [(3, FIRING), (13, RESOLVED)]


def test_never_compliant_metro_is_not_a_regression():
    r = Runner()
    run_metro(r, "x" * 10)
    assert r.transitions(REGRESSION) == []


def test_gap_breaks_the_bad_streak():
    r = Runner()
    run_metro(r, "c" + "xx" + "." + "xx" + "c")
    assert r.transitions(REGRESSION) == []


def test_configurable_fire_and_clear_counts():
    r = Runner(RuleConfig(regression_fire_windows=1, regression_clear_windows=2, **NO_BURN))
    run_metro(r, "cxcc")
    assert r.transitions(REGRESSION) == [(1, FIRING), (3, RESOLVED)]


def test_replayed_events_never_fire_twice():
    r = Runner()
    run_metro(r, "c" + "xxxx")
    assert r.transitions(REGRESSION) == [(3, FIRING)]
    run_metro(r, "c" + "xxxx")  # the same windows again (at-least-once redelivery)
    assert r.transitions(REGRESSION) == [(3, FIRING)]
    assert r.metros[("p99-rtt", "北京")]["stale"] == 5


def test_other_window_families_are_ignored():
    r = Runner()
    for i in range(10):
        r.feed(ev("北京", i, compliant=i == 0, window_s=300, hop_s=60))
    assert r.log == [] and r.metros[("p99-rtt", "北京")]["windows"] == 0


# ------------------------------------------------------------------ no data

def test_no_data_is_distinct_from_regression_and_resolves_when_data_returns():
    r = Runner()
    for i in range(20):
        r.feed(ev("上海", i))
        if i < 3 or i >= 12:  # 北京 silent for windows 3..11
            r.feed(ev("北京", i))
    nodata = [(a.labels["metro"], a.status, a.event_time_s) for _, a in r.log if a.alertname == NO_DATA]
    # 北京's last window ends at T0+3W; silence > 300 s first when the clock reaches T0+9W (360 s)
    assert nodata == [("北京", FIRING, T0 + 9 * W), ("北京", RESOLVED, T0 + 13 * W)]
    fired = next(a for _, a in r.log if a.alertname == NO_DATA)
    assert fired.starts_at_s == T0 + 3 * W and "no window for 360 s" in fired.annotations["summary"]
    assert r.transitions(REGRESSION) == []


def test_exactly_300_s_of_silence_is_not_yet_no_data():
    r = Runner()
    r.feed(ev("北京", 0))
    for i in range(6):  # clock reaches T0 + 6W: 北京 silent for exactly 300 s
        r.feed(ev("上海", i))
    assert [a for _, a in r.log if a.alertname == NO_DATA] == []
    r.feed(ev("上海", 6))
    assert [a.status for _, a in r.log if a.alertname == NO_DATA] == [FIRING]


# ------------------------------------------------------------------ coverage

def feed_round(r: Runner, i: int, metros: list[str], bad: set[str] = frozenset()) -> None:
    for m in metros:
        r.feed(ev(m, i, compliant=m not in bad))


METROS = [f"m{k:02d}" for k in range(10)]


def test_coverage_drop_against_trailing_median():
    r = Runner(RuleConfig(coverage_target=0.0, **NO_BURN))
    for i in range(12):
        feed_round(r, i, METROS)
    for i in range(12, 15):
        feed_round(r, i, METROS, bad={"m00"})  # 0.9: exactly 10 points below the median 1.0
    for i in range(15, 19):
        feed_round(r, i, METROS)
    assert [c for _, c in r.coverage] == [1.0] * 12 + [0.9] * 3 + [1.0] * 4
    drop = [(a.status, a.event_time_s) for _, a in r.log if a.alertname == COVERAGE_DROP]
    # fires on the 2nd low window (index 13), clears on the 3rd good one (index 17)
    assert drop == [(FIRING, T0 + 14 * W), (RESOLVED, T0 + 18 * W)]
    fired = next(a for _, a in r.log if a.alertname == COVERAGE_DROP)
    assert fired.starts_at_s == T0 + 12 * W and "0.900 (9/10" in fired.annotations["summary"]
    assert "metro" not in fired.labels
    assert r.transitions(COVERAGE_TARGET) == []


def test_coverage_drop_needs_history_and_ten_points():
    r = Runner(RuleConfig(coverage_target=0.0, **NO_BURN))
    for i in range(5):
        feed_round(r, i, METROS, bad={"m00"} if i >= 2 else set())  # too little history
    assert r.transitions(COVERAGE_DROP) == []
    r = Runner(RuleConfig(coverage_target=0.0, coverage_drop_points=15, **NO_BURN))
    for i in range(20):
        feed_round(r, i, METROS, bad={"m00"} if i >= 12 else set())  # 10 < 15 points
    assert r.transitions(COVERAGE_DROP) == []


def test_coverage_below_target_path():
    r = Runner(RuleConfig(coverage_min_history=1000, **NO_BURN))
    for i in range(3):
        feed_round(r, i, METROS, bad={"m00", "m01"})  # 0.8 >= 0.75
    for i in range(3, 6):
        feed_round(r, i, METROS, bad={"m00", "m01", "m02"})  # 0.7
    for i in range(6, 9):
        feed_round(r, i, METROS, bad={"m00", "m01"})
    target = [(a.status, a.event_time_s) for _, a in r.log if a.alertname == COVERAGE_TARGET]
    assert target == [(FIRING, T0 + 5 * W), (RESOLVED, T0 + 9 * W)]
    assert r.transitions(COVERAGE_DROP) == []


def test_coverage_waits_for_all_known_metros_or_two_minutes():
    r = Runner()
    feed_round(r, -2, ["a", "b", "c"])  # the first two windows wait for time: the metro set fills up
    feed_round(r, -1, ["a", "b", "c"])
    assert r.coverage == []
    feed_round(r, 0, ["a", "b", "c"])
    assert r.coverage == [(T0 - 2 * W, 1.0)]  # ended 120 s before the clock (T0+W)
    r.feed(ev("a", 1))  # window -1 settles by time, window 0 is complete and not in the first 120 s
    assert [c for _, c in r.coverage] == [1.0, 1.0, 1.0]
    r.feed(ev("b", 1))
    assert len(r.coverage) == 3  # c has not reported window 1
    r.feed(ev("a", 2))
    assert len(r.coverage) == 3  # window 1 ended only 60 s ago
    r.feed(ev("a", 3))  # clock T0+4W: window 1 ended 120 s ago -> final with c missing
    assert r.coverage[3:] == [(T0 + W, pytest.approx(2 / 3))]
    r.feed(ev("c", 1))  # late for coverage: counted, not re-finalised
    assert len(r.coverage) == 4 and r.policies["p99-rtt"]["late_for_coverage"] == 1
    r.feed(ev("a", 4))  # window 2 ended 120 s ago: only a reported
    assert r.coverage[4:] == [(T0 + 2 * W, pytest.approx(1 / 3))]


def test_coverage_history_is_capped():
    r = Runner(RuleConfig(coverage_history_max=5, **NO_BURN))
    for i in range(12):
        feed_round(r, i, ["a"])
    hist = r.histories["p99-rtt"]
    assert hist["starts"] == [T0 + i * W for i in range(7, 12)] and len(hist["values"]) == 5


def test_coverage_history_keeps_only_the_trailing_period():
    r = Runner(RuleConfig(coverage_history_s=5 * W, **NO_BURN))
    for i in range(12):
        feed_round(r, i, ["a"])
    assert r.histories["p99-rtt"]["starts"] == [T0 + i * W for i in range(7, 12)]


# ------------------------------------------------------------------ burn rates

def test_burn_rate_is_exact_over_the_trailing_windows():
    ring = {"end": 0, "samples": [1000] * 60 + [1000] * 5, "under": [1000] * 60 + [800] * 5}
    assert burn_rate(ring, 5, 0.99) == pytest.approx(20.0)
    assert burn_rate(ring, 60, 0.99) == pytest.approx(5 * 200 / 60_000 / 0.01)
    assert burn_rate({"end": 0, "samples": [], "under": []}, 60, 0.99) == 0.0


def burn_runner(**kwargs) -> Runner:
    return Runner(RuleConfig(regression_fire_windows=10_000, **kwargs))


def test_ticket_then_page_on_a_sustained_20x_burn():
    r = burn_runner()
    for i in range(60):
        r.feed(ev("北京", i, samples=1000, under=1000))
    for n in range(1, 31):
        r.feed(ev("北京", 59 + n, compliant=False, samples=1000, under=800))  # 20 % errors: burn 20
    burn = [(i - 59, a.labels["budget_alert"], a.labels["severity"]) for i, a in r.log if a.alertname == BUDGET_BURN]
    # ticket: 3d and 6h rates 20n/(60+n) > 1 first at n=4; page: 6h > 6 first at n=26 (30m is then 17.3)
    assert burn == [(4, "ticket", "warning"), (26, "page", "critical")]
    page = [a for _, a in r.log if a.labels.get("budget_alert") == "page"][0]
    assert "over 6h" in page.annotations["summary"]


def test_page_via_one_hour_and_five_minutes():
    r = burn_runner(page_burn=(BurnWindow(14.4, 3600, 300),), ticket_burn=())
    for i in range(60):
        r.feed(ev("北京", i, samples=1000, under=1000))
    for n in range(1, 61):
        r.feed(ev("北京", 59 + n, compliant=False, samples=1000, under=800))
    # 1h rate over 60 windows = n/3 > 14.4 first at n=44
    assert [(i - 59, a.status) for i, a in r.of(BUDGET_BURN)] == [(44, FIRING)]


def test_burn_resolves_when_the_short_window_recovers():
    r = burn_runner(page_burn=(BurnWindow(14.4, 3600, 300),), ticket_burn=())
    for n in range(60):
        r.feed(ev("北京", n, compliant=False, samples=1000, under=800))
    assert [(i, a.status) for i, a in r.of(BUDGET_BURN)] == [(0, FIRING)]
    for n in range(60, 70):
        r.feed(ev("北京", n, samples=1000, under=1000))
    # 5m: k bad of 5 -> burn 4k; <= 14.4 once at most 3 of the last 5 are bad: the 2nd good window
    assert [(i, a.status) for i, a in r.of(BUDGET_BURN)] == [(0, FIRING), (61, RESOLVED)]


def test_revision_replaces_counts_exactly():
    r = burn_runner(page_burn=(BurnWindow(14.4, 3600, 300),), ticket_burn=())
    for n in range(5):
        r.feed(ev("北京", n, samples=1000, under=1000))
    r.feed(ev("北京", 2, samples=1000, under=500))  # a later version of window 2
    ring = r.metros[("p99-rtt", "北京")]["ring"]
    assert ring["under"] == [1000, 1000, 500, 1000, 1000]


def test_ring_is_bounded():
    r = burn_runner(page_burn=(BurnWindow(14.4, 600, 300),), ticket_burn=())
    for n in range(30):
        r.feed(ev("北京", n))
    ring = r.metros[("p99-rtt", "北京")]["ring"]
    assert len(ring["samples"]) == 10 and ring["end"] == T0 + 29 * W
    r.feed(ev("北京", 1000))  # a long gap empties the ring rather than growing it
    assert r.metros[("p99-rtt", "北京")]["ring"]["samples"] == [0] * 9 + [1000]


# ------------------------------------------------------------------ flap suppression

def test_flapping_alert_is_held_firing_and_flaps_are_counted():
    r = Runner(RuleConfig(regression_fire_windows=1, regression_clear_windows=1, flap_max_changes=4,
                          flap_stable_s=900, **NO_BURN))
    run_metro(r, "c" + "xc" * 5 + "c" * 20)
    # raw changes at 1..10; the 6th change (index 6, a resolve) exceeds 4 -> held firing
    assert r.transitions(REGRESSION) == [(1, FIRING), (2, RESOLVED), (3, FIRING), (4, RESOLVED),
                                         (5, FIRING), (25, RESOLVED)]
    # raw clear since index 10 (window end T0+11W); stable for 900 s at T0+26W (index 25)
    assert r.flaps == {REGRESSION: 5}  # raw changes 6..10 were not passed on
    resolved = r.of(REGRESSION)[-1][1]
    assert resolved.flap_count == 5 and resolved.annotations["flap_count"] == "5"
    held = r.metros[("p99-rtt", "北京")]["alerts"]["regression"]
    assert held["firing"] is False and held["flaps"] == 5


def test_held_alert_shows_flapping_in_resent_annotations():
    r = Runner(RuleConfig(regression_fire_windows=1, regression_clear_windows=1, **NO_BURN))
    run_metro(r, "c" + "xc" * 4)
    firing = firing_alerts(r.metros[("p99-rtt", "北京")])
    assert [a.alertname for a in firing] == [REGRESSION]
    assert firing[0].annotations["flap_count"] == "3" and "held firing" in firing[0].annotations["flapping"]


def test_four_changes_within_the_hour_are_not_suppressed():
    r = Runner(RuleConfig(regression_fire_windows=1, regression_clear_windows=1, **NO_BURN))
    run_metro(r, "cxcxc")
    assert [s for _, s in r.transitions(REGRESSION)] == [FIRING, RESOLVED, FIRING, RESOLVED]
    assert r.flaps == {}


def test_changes_older_than_the_flap_window_do_not_count():
    r = Runner(RuleConfig(regression_fire_windows=1, regression_clear_windows=1, flap_window_s=5 * W, **NO_BURN))
    run_metro(r, "c" + "xcc" * 6)  # at most 4 changes in any 5 windows
    assert len(r.transitions(REGRESSION)) == 12 and r.flaps == {}


# ------------------------------------------------------------------ state and payloads

def test_state_round_trips_through_json_without_changing_any_decision():
    config = RuleConfig(coverage_target=0.85, regression_fire_windows=2)
    runs = []
    for roundtrip in (False, True):
        r = Runner(config, roundtrip=roundtrip)
        for i in range(40):
            bad = {"m00"} if 12 <= i < 20 else set()
            bad |= {"m01", "m02"} if 25 <= i < 30 else set()
            for m in METROS:
                if not (m == "m03" and 30 <= i < 37):
                    r.feed(ev(m, i, compliant=m not in bad, under=800 if m in bad else 1000))
        runs.append([(i, a.to_payload()) for i, a in r.log])
    assert runs[0] == runs[1]
    names = {p["alertname"] for _, p in runs[1]}
    assert names == {REGRESSION, NO_DATA, COVERAGE_DROP, COVERAGE_TARGET, BUDGET_BURN}


def test_payloads_match_the_schema_and_round_trip():
    r = Runner()
    run_metro(r, "ccc" + "x" * 6 + "c" * 8)
    assert r.log
    for _, alert in r.log:
        payload = alert.to_payload()
        jsonschema.validate(payload, SCHEMA, format_checker=jsonschema.FormatChecker())
        assert AlertEvent.from_payload(payload).to_payload() == payload
    assert r.of(REGRESSION)[0][1].to_payload()["ends_at"] is None


def test_static_labels_join_every_alert_and_the_fingerprint():
    r = Runner(RuleConfig(static_labels=(("run", "abc"),), **NO_BURN))
    run_metro(r, "cxxx")
    (_, alert), = r.of(REGRESSION)
    assert alert.labels["run"] == "abc"
    assert alert.fingerprint != fingerprint({k: v for k, v in alert.labels.items() if k != "run"})


def test_bad_window_event_is_refused():
    from pipeline.alerts.exceptions import BadWindowEvent

    good = {"metro": "a", "policy": "p", "window_start": "2026-06-10T08:00:00Z",
            "window_end": "2026-06-10T08:01:00Z", "window_s": 60, "hop_s": 60, "samples": 10,
            "under_threshold": 10, "compliant": True, "version": 1}
    assert WindowEvent.from_dict(good).window_end_s - WindowEvent.from_dict(good).window_start_s == 60
    for bad in ({**good, "under_threshold": 11}, {**good, "window_end": "2026-06-10T08:02:00Z"},
                {k: v for k, v in good.items() if k != "metro"}, {**good, "window_start": "yesterday"}):
        with pytest.raises(BadWindowEvent):
            WindowEvent.from_dict(bad)


# ------------------------------------------------------------------ delivery (no servers needed)

def _alert(status: str = FIRING) -> AlertEvent:
    return AlertEvent(alertname=REGRESSION, labels={"metro": "北京", "policy": "p", "severity": "warning"},
                      annotations={"summary": "s", "description": "d", "flap_count": "0"}, status=status,
                      starts_at_s=T0, ends_at_s=T0 + 600 if status == RESOLVED else None, event_time_s=T0 + 600)


def test_alertmanager_body_firing_expires_and_resolve_takes_effect_now():
    from pipeline.alerts.sinks import AlertmanagerSink

    sink = AlertmanagerSink("http://am:9093/", firing_ttl_s=240, generator_url="https://g")
    assert sink.url == "http://am:9093/api/v2/alerts"
    firing, resolved = sink.body([_alert(), _alert(RESOLVED)], now_s=T0 + 300)
    assert firing["labels"]["alertname"] == REGRESSION and firing["generatorURL"] == "https://g"
    assert firing["startsAt"] == "2026-05-28T20:27:00Z" and firing["endsAt"] == "2026-05-28T20:36:00Z"
    assert resolved["endsAt"] == "2026-05-28T20:32:00Z"  # event time ahead of the wall clock: now


def test_retry_queue_backs_off_until_the_sink_recovers_and_never_raises():
    import asyncio

    from pipeline.alerts.exceptions import DeliveryError
    from pipeline.alerts.sinks import RetryQueue, Sink

    class Flaky(Sink):
        name = "flaky"

        def __init__(self):
            self.calls, self.got = 0, []

        async def send(self, alerts):
            self.calls += 1
            if self.calls <= 3:
                raise DeliveryError("down") if self.calls < 3 else RuntimeError("bug")
            self.got.append([a.status for a in alerts])

    async def main():
        sink = Flaky()
        queue = RetryQueue(sink, initial_backoff_s=0.01, max_backoff_s=0.02)
        queue.submit([_alert()])
        queue.submit([_alert(RESOLVED)])
        assert await queue.drain(5)
        await queue.close()
        return sink

    sink = asyncio.run(main())
    assert sink.calls == 5 and sink.got == [[FIRING], [RESOLVED]]  # in order, after 3 failures


def test_webhook_posts_schema_payloads():
    import asyncio

    from aiohttp import web

    from pipeline.alerts.sinks import WebhookSink

    async def main():
        received = []

        async def hook(request):
            received.append(await request.json())
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        sink = WebhookSink(f"http://127.0.0.1:{port}/hook")
        await sink.send([_alert(), _alert(RESOLVED)])
        await sink.close()
        await runner.cleanup()
        return received

    (body,) = asyncio.run(main())
    assert body["source"] == "netready" and [a["status"] for a in body["alerts"]] == [FIRING, RESOLVED]
    for payload in body["alerts"]:
        jsonschema.validate(payload, SCHEMA)


def test_alerts_section_of_the_config():
    from pipeline.alerts.config import from_mapping
    from pipeline.errors import ConfigError
    from pipeline.kafka_config import KafkaSettings

    cfg = from_mapping({"alertmanager_url": "http://am:9093", "alerts_topic": "", "resend_interval_s": 30,
                        "labels": {"env": "prod"}, "rules": {"regression_fire_windows": 4,
                                                             "page_burn": [[14.4, 3600, 300]]}},
                       kafka=KafkaSettings(), clickhouse_url="clickhouse://h/netready")
    assert cfg.alerts_topic is None and cfg.clickhouse_url == "clickhouse://h/netready"
    assert cfg.rules.regression_fire_windows == 4 and cfg.rules.static_labels == (("env", "prod"),)
    assert cfg.rules.page_burn == (BurnWindow(14.4, 3600, 300),) and cfg.firing_ttl_s == 120
    assert from_mapping(None, kafka=KafkaSettings(), clickhouse_url=None).web_host == "127.0.0.1"
    for bad in ({"nope": 1}, {"rules": {"nope": 1}}, {"labels": {"metro": "x"}}, {"web_port": "80"},
                {"rules": {"regression_fire_windows": 0}}):
        with pytest.raises(ConfigError):
            from_mapping(bad, kafka=KafkaSettings(), clickhouse_url=None)
