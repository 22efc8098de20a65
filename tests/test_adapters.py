"""gNMIc and Telegraf adapters: worked examples per vendor shape, rejects, config, and fuzzing."""
from __future__ import annotations

import tomllib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.adapters import AdapterMapping, decode_adapter, decode_gnmic, decode_telegraf, parse_line
from pipeline.adapters.mapping import normalize_path, to_us
from pipeline.decode.chunk import DECODED_SCHEMA, DecodedChunk
from pipeline.errors import ConfigError
from pipeline.validate import Limits, validate

TS = 1_780_000_000_123_456_789  # 2026-05-28T20:26:40.123456789Z
TS_S = 1_780_000_000
OC_DELAY = "/interfaces/interface/state/delay/average"
SRPM = ("Cisco-IOS-XR-perf-meas-oper:performance-measurement/nodes/node/interfaces/interface-details/"
        "interface-detail/delay-measurement-session/last-advertisement-information/advertised-values/")


def gnmic(**section) -> AdapterMapping:
    return AdapterMapping.from_dict({"kind": "gnmic", **section})


def telegraf(**section) -> AdapterMapping:
    return AdapterMapping.from_dict({"kind": "telegraf", **section})


def rows(chunk: DecodedChunk) -> list[dict]:
    assert chunk.table.schema == DECODED_SCHEMA
    return chunk.table.to_pylist()


def reasons(chunk: DecodedChunk) -> list[str]:
    return [r.reason for r in chunk.rejects]


def oc_event(interface: str = "HundredGigE0/0/0/1", delay: object = "812", ts: object = TS, **tags) -> dict:
    return {"name": "link-delay", "timestamp": ts,
            "tags": {"source": "pe1.bj.example.net:57400", "subscription-name": "link-delay",
                     "interface_name": interface, **tags},
            "values": {"openconfig:" + OC_DELAY: delay, "/interfaces/interface/state/delay/min": "790"}}


OC = dict(rtt_key=OC_DELAY, link_tags=["interface_name"], metro_tag="source",
          metro_of_source={"pe1.bj.example.net:57400": "北京", "pe7.sh.example.net:57400": "上海"})


# --- gNMIc -------------------------------------------------------------------------------------

def test_gnmic_openconfig_delay_as_string_with_origin() -> None:
    payload = orjson.dumps(oc_event())
    chunk = decode_gnmic(payload, gnmic(**OC), source="gnmic-events[2]", position=4711)
    assert rows(chunk) == [{"ts_ns": TS, "metro": "北京", "router": "pe1.bj.example.net:57400",
                            "link": "HundredGigE0/0/0/1", "rtt_us": 812.0, "one_way_us": None,
                            "site": None, "dc": None}]
    assert chunk.positions.tolist() == [4711] and chunk.rejects == [] and chunk.source == "gnmic-events[2]"


def test_gnmic_cisco_srpm_suffix_match_in_us() -> None:
    event = {"name": "srpm", "timestamp": TS,
             "tags": {"source": "pe1-bj", "node_node": "0/RP0/CPU0",
                      "interface-detail_interface-name": "HundredGigE0/0/0/1", "metro": "北京",
                      "subscription-name": "srpm"},
             "values": {SRPM + "average": 812, SRPM + "minimum": 790, SRPM + "maximum": 901,
                        SRPM + "variance": 12}}
    mapping = gnmic(rtt_key="advertised-values/average", link_tags="interface-detail_interface-name",
                    one_way_key="advertised-values/minimum")
    [row] = rows(decode_gnmic(orjson.dumps(event), mapping, source="t", position=0))
    assert (row["metro"], row["router"], row["link"], row["rtt_us"], row["one_way_us"]) == (
        "北京", "pe1-bj", "HundredGigE0/0/0/1", 812.0, 790.0)
    # the full native path, module prefix and all, selects the same value exactly
    exact = gnmic(rtt_key="/" + SRPM + "average", link_tags="interface-detail_interface-name")
    assert rows(decode_gnmic(orjson.dumps(event), exact, source="t", position=0))[0]["rtt_us"] == 812.0


def test_gnmic_array_of_three_events() -> None:
    events = [oc_event("Hu0/0/0/1", "812"), oc_event("Hu0/0/0/2", 950.5, TS + 1),
              oc_event("Hu0/0/0/3", "1000", TS + 2, source="pe7.sh.example.net:57400")]
    chunk = decode_gnmic(orjson.dumps(events), gnmic(**OC), source="t", position=99)
    assert [(r["metro"], r["link"], r["rtt_us"], r["ts_ns"]) for r in rows(chunk)] == [
        ("北京", "Hu0/0/0/1", 812.0, TS), ("北京", "Hu0/0/0/2", 950.5, TS + 1),
        ("上海", "Hu0/0/0/3", 1000.0, TS + 2)]
    assert chunk.positions.tolist() == [99, 99, 99] and chunk.rejects == []


def test_gnmic_nokia_path_key_tags_in_ns() -> None:
    # Nokia SR OS OAM-PM TWAMP-Light; path keys become <elem>_<key> tags, the value is in ns here
    event = {"name": "oam-pm", "timestamp": TS,
             "tags": {"source": "sr1.gz", "session_session-name": "gz-sz-twl-1",
                      "measurement-interval_duration": "raw", "metro": "广州", "site": "GZ-POP-3"},
             "values": {"/state/oam-pm/session/ip/twamp-light/statistics/delay/measurement-interval/"
                        "delay-type/round-trip/average": "812345",
                        "/state/oam-pm/session/ip/twamp-light/statistics/delay/measurement-interval/"
                        "delay-type/forward/average": 400000}}
    mapping = gnmic(rtt_key="round-trip/average", one_way_key="forward/average",
                    link_tags=["session_session-name"], site_tag="site", dc_tag="dc", unit="ns")
    [row] = rows(decode_gnmic(orjson.dumps(event), mapping, source="t", position=0))
    assert row == {"ts_ns": TS, "metro": "广州", "router": "sr1.gz", "link": "gz-sz-twl-1",
                   "rtt_us": 812.345, "one_way_us": 400.0, "site": "GZ-POP-3", "dc": None}


def test_gnmic_link_from_several_tags_and_module_prefixed_value_names() -> None:
    event = {"name": "sr", "timestamp": TS,
             "tags": {"source": "pe2", "metro": "北京", "sr-policy_color": "100", "sr-policy_endpoint": "10.0.0.9"},
             "values": {"/oc-srte:segment-routing/te-policies/te-policy/state/delay": "1.2"}}
    mapping = gnmic(rtt_key="/segment-routing/te-policies/te-policy/state/delay",
                    link_tags=["sr-policy_color", "sr-policy_endpoint"], unit="ms")
    [row] = rows(decode_gnmic(orjson.dumps(event), mapping, source="t", position=0))
    assert (row["link"], row["rtt_us"]) == ("100/10.0.0.9", 1200.0)


def test_gnmic_bad_events_are_rejected_and_good_ones_survive() -> None:
    good = oc_event()
    no_iface = oc_event()
    del no_iface["tags"]["interface_name"]
    events = [good,
              {**good, "values": {"/interfaces/interface/state/counters/in-octets": "123"}},  # no latency
              no_iface,
              oc_event(delay="n/a"),
              oc_event(ts=1.78e18),
              oc_event(ts="2026-05-28T00:00:00Z"),
              {"name": "link-delay", "timestamp": TS, "tags": good["tags"], "deletes": [OC_DELAY]},
              oc_event(source="pe9.unknown:57400"),
              "not an event",
              {**good, "timestamp": None},
              {**good, "tags": ["source"]},
              oc_event(interface=42),
              good]
    payload = orjson.dumps(events)
    chunk = decode_gnmic(payload, gnmic(**OC), source="t", position=5)
    assert len(rows(chunk)) == 2
    assert reasons(chunk) == ["unmapped", "missing_field", "wrong_type", "bad_timestamp", "bad_timestamp",
                              "unmapped", "unmapped", "not_an_object", "missing_field", "wrong_type",
                              "wrong_type"]
    details = [r.detail for r in chunk.rejects]
    assert details[0].startswith("event 1: no value matches rtt_key") and "in-octets" in details[0]
    assert details[1] == "event 2: link: tag 'interface_name' is missing"
    assert "'pe9.unknown:57400' is not in metro_of_source" in details[6]
    assert all(r.raw == payload and r.position == 5 and r.source == "t" for r in chunk.rejects)


def test_gnmic_missing_metro_tag_names_the_tag() -> None:
    chunk = decode_gnmic(orjson.dumps(oc_event()), gnmic(rtt_key=OC_DELAY, link_tags="interface_name"),
                         source="t", position=0)
    assert [(r.reason, r.detail) for r in chunk.rejects] == [("missing_field", "metro: tag 'metro' is missing")]


def test_gnmic_ambiguous_suffix_is_unmapped() -> None:
    chunk = decode_gnmic(orjson.dumps(oc_event()), gnmic(**{**OC, "rtt_key": "delay"}), source="t", position=0)
    assert reasons(chunk) == ["unmapped"]  # a suffix matches whole trailing elements: "delay" is inner
    chunk = decode_gnmic(orjson.dumps(oc_event()), gnmic(**{**OC, "rtt_key": "state/delay/min"}),
                         source="t", position=0)
    assert rows(chunk)[0]["rtt_us"] == 790.0
    event = oc_event()
    event["values"]["/interfaces/interface/state/jitter/average"] = 3
    chunk = decode_gnmic(orjson.dumps(event), gnmic(**{**OC, "rtt_key": "average"}), source="t", position=0)
    assert reasons(chunk) == ["unmapped"] and "matches 2 values" in chunk.rejects[0].detail


def test_gnmic_garbage_and_empty() -> None:
    for payload, reason in ((b"\x00\x01\xffgarbage", "invalid_utf8"), (b"\x00garbage", "malformed_json"),
                            (b"", "malformed_json"),
                            (b'{"name": ', "malformed_json"), (b'"event"', "not_an_object"),
                            (b"\xff\xfe{}", "invalid_utf8"), (b"42", "not_an_object")):
        chunk = decode_gnmic(payload, gnmic(**OC), source="t", position=3)
        assert rows(chunk) == [] and reasons(chunk) == [reason], payload
        assert chunk.rejects[0].raw == payload
    assert rows(decode_gnmic(b"[]", gnmic(**OC), source="t", position=3)) == []


def test_too_large_message_is_one_reject() -> None:
    payload = orjson.dumps([oc_event()] * 50)
    chunk = decode_gnmic(payload, gnmic(**OC), source="t", position=1, max_bytes=1000)
    assert reasons(chunk) == ["too_large"] and len(chunk.rejects[0].raw) <= 4096


# --- units -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, unit, us", [
    ("812", "us", 812.0), (812, "us", 812.0), (812.5, "us", 812.5),
    (812_345, "ns", 812.345), ("1000000", "ns", 1000.0), ("999999", "ns", 999.999),
    ("1.1", "ms", 1100.0), (1.1, "ms", 1100.0), (0.999, "ms", 999.0), (1, "ms", 1000.0),
    (0.001, "s", 1000.0), ("1e-3", "s", 1000.0), (0.0011, "s", 1100.0),
    ("n/a", "us", None), ("NaN", "ms", None), (True, "us", None), (None, "us", None), ([1], "ms", None),
])
def test_unit_conversion_is_exact_at_decimal_values(value, unit, us) -> None:
    assert to_us(value, unit) == us


def test_huge_values_become_infinite_for_validation_to_reject() -> None:
    assert to_us(10**400, "ms") == float("inf")
    assert to_us("1e400", "us") == float("inf")


def test_normalize_path() -> None:
    assert normalize_path("openconfig:/oc-if:interfaces/interface[name=Eth1/1:2]/state") == \
        "/interfaces/interface/state"
    assert normalize_path("Cisco-IOS-XR-perf-meas-oper:performance-measurement/nodes") == \
        "/performance-measurement/nodes"


# --- Telegraf ----------------------------------------------------------------------------------

PING = {"fields": {"average_response_ms": 0.812, "maximum_response_ms": 0.95, "minimum_response_ms": 0.7,
                   "packets_received": 5, "packets_transmitted": 5, "percent_packet_loss": 0,
                   "result_code": 0, "standard_deviation_ms": 0.05, "ttl": 63},
        "name": "ping", "tags": {"host": "probe-bj-1", "url": "10.20.0.1"}, "timestamp": TS_S}
PING_MAP = dict(rtt_key="average_response_ms", link_tags=["url"], unit="ms", metro_tag="host",
                metro_of_source={"probe-bj-1": "北京"})


def twamp(rtt_ms: object = 0.812, ts: object = TS_S, **tags) -> dict:
    return {"name": "twamp", "timestamp": ts,
            "tags": {"host": "pe1-bj", "metro": "北京", "link": "pe1-bj:et-0/0/1", "site": "BJ-A",
                     "dc": "BJ-DC2", **tags},
            "fields": {"rtt_avg": rtt_ms, "rtt_min": 0.7, "owd_fwd_avg": "0.39", "loss_pct": 0.0}}


TWAMP_MAP = dict(rtt_key="rtt_avg", one_way_key="owd_fwd_avg", link_tags="link", unit="ms",
                 site_tag="site", dc_tag="dc")


def test_telegraf_ping_json_in_ms() -> None:
    chunk = decode_telegraf(orjson.dumps(PING), telegraf(**PING_MAP), source="telegraf", position=17)
    assert rows(chunk) == [{"ts_ns": TS_S * 10**9, "metro": "北京", "router": "probe-bj-1",
                            "link": "10.20.0.1", "rtt_us": 812.0, "one_way_us": None, "site": None, "dc": None}]
    assert chunk.positions.tolist() == [17]


def test_telegraf_twamp_with_one_way_site_and_dc() -> None:
    [row] = rows(decode_telegraf(orjson.dumps(twamp()), telegraf(**TWAMP_MAP), source="t", position=0))
    assert row == {"ts_ns": TS_S * 10**9, "metro": "北京", "router": "pe1-bj", "link": "pe1-bj:et-0/0/1",
                   "rtt_us": 812.0, "one_way_us": 390.0, "site": "BJ-A", "dc": "BJ-DC2"}


def test_telegraf_batch_with_bad_metrics() -> None:
    bad_ts = twamp(ts="yesterday")
    no_link = twamp()
    del no_link["tags"]["link"]
    cpu = {"name": "cpu", "tags": {"host": "pe1-bj"}, "fields": {"usage_idle": 97.5}, "timestamp": TS_S}
    payload = orjson.dumps({"metrics": [twamp(0.5), cpu, bad_ts, no_link, twamp(rtt_ms=True),
                                        {"name": "twamp", "tags": {}}, twamp(1.5, TS_S + 1)]})
    chunk = decode_telegraf(payload, telegraf(**TWAMP_MAP), source="t", position=8)
    assert [(r["rtt_us"], r["ts_ns"]) for r in rows(chunk)] == [(500.0, TS_S * 10**9), (1500.0, (TS_S + 1) * 10**9)]
    assert reasons(chunk) == ["unmapped", "bad_timestamp", "missing_field", "wrong_type", "missing_field"]
    assert chunk.rejects[0].detail == "metric 1: no field 'rtt_avg' in metric 'cpu'; fields: usage_idle"
    assert chunk.rejects[2].detail == "metric 3: link: tag 'link' is missing"
    assert all(r.raw == payload and r.position == 8 for r in chunk.rejects)
    bad = decode_telegraf(b'{"metrics": {"name": "x"}}', telegraf(**TWAMP_MAP), source="t", position=0)
    assert reasons(bad) == ["wrong_type"]


@pytest.mark.parametrize("section_unit, override, ts, expected_ns", [
    ("s", None, TS_S, TS_S * 10**9),
    ("ms", None, TS_S * 1000 + 123, TS_S * 10**9 + 123_000_000),
    ("1ms", None, TS_S * 1000 + 123, TS_S * 10**9 + 123_000_000),
    ("s", "ms", TS_S * 1000 + 123, TS_S * 10**9 + 123_000_000),
    ("s", "ns", TS, TS),
    ("us", None, TS // 1000, TS // 1000 * 1000),
    ("s", None, 1780000000.5, TS_S * 10**9 + 500_000_000),
    ("s", None, "2026-05-28T20:26:40.25+00:00", TS_S * 10**9 + 250_000_000),
])
def test_telegraf_timestamp_units(section_unit, override, ts, expected_ns) -> None:
    mapping = telegraf(**TWAMP_MAP, timestamp_unit=section_unit)
    chunk = decode_telegraf(orjson.dumps(twamp(ts=ts)), mapping, source="t", position=0, timestamp_unit=override)
    assert rows(chunk)[0]["ts_ns"] == expected_ns


def test_telegraf_seconds_taken_as_ms_is_caught_by_validation() -> None:
    # a mapping that says ms for a seconds producer lands in 1970: validation refuses it
    chunk = decode_telegraf(orjson.dumps(twamp()), telegraf(**TWAMP_MAP, timestamp_unit="ms"),
                            source="t", position=0)
    clean, rejects = validate(chunk, Limits(), now_ns=TS)
    assert clean.num_rows == 0 and [r.reason for r in rejects] == ["bad_timestamp"]


def test_telegraf_influx_line_protocol() -> None:
    payload = (b'twamp,host=pe1-bj,metro=\xe5\x8c\x97\xe4\xba\xac,link=pe1-bj:et-0/0/1,site=BJ\\ A '
               b'rtt_avg=0.812,owd_fwd_avg="0.39",loss=0i,ok=true,note="a, b=c \\"q\\"" 1780000000123456789\n'
               b"# a comment\n\n"
               b"cpu,host=pe1-bj usage_idle=97.5 1780000000000000000\n"
               b"twamp,host=pe1-bj,metro=x,link=y rtt_avg=bad 1\n"
               b"twamp,host=pe1-bj,metro=x,link=y rtt_avg=1\r\n")
    chunk = decode_telegraf(payload, telegraf(**TWAMP_MAP), source="t", position=3)
    assert rows(chunk) == [{"ts_ns": TS, "metro": "北京", "router": "pe1-bj", "link": "pe1-bj:et-0/0/1",
                            "rtt_us": 812.0, "one_way_us": 390.0, "site": "BJ A", "dc": None}]
    assert [(r.reason, r.detail.split(":")[0]) for r in chunk.rejects] == [
        ("unmapped", "line 4"), ("malformed_line", "line 5"), ("missing_field", "line 6")]
    assert parse_line('m,a\\,b=c\\ d f="x y",g=-2u') == {
        "name": "m", "tags": {"a,b": "c d"}, "fields": {"f": "x y", "g": -2}, "timestamp": None}
    for line in ("m", "m f=", 'm f="open', "m,t f=1", "m f=1 12.5", "m f=1 2 3", ",t=1 f=1"):
        with pytest.raises(ValueError):
            parse_line(line)


def test_decode_adapter_dispatches_and_rows_pass_validation() -> None:
    chunk = decode_adapter(orjson.dumps([oc_event()]), gnmic(**OC), source="t", position=0)
    clean, rejects = validate(chunk, Limits(), now_ns=TS)
    assert clean.num_rows == 1 and rejects == []
    chunk = decode_adapter(orjson.dumps(PING), telegraf(**PING_MAP), source="t", position=0)
    clean, rejects = validate(chunk, Limits(), now_ns=TS)
    assert clean.num_rows == 1 and rejects == []


# --- configuration -----------------------------------------------------------------------------

def test_mapping_from_toml() -> None:
    doc = tomllib.loads("""
        [adapter]
        kind = "telegraf"
        rtt_key = "rtt_avg"
        one_way_key = "owd_fwd_avg"
        link_tags = ["host", "peer"]
        metro_tag = "host"
        unit = "ms"
        timestamp_unit = "1ms"
        [adapter.metro_of_source]
        "pe1-bj" = "北京"
    """)
    mapping = AdapterMapping.from_dict(doc["adapter"])
    assert mapping.router_tag == "host" and mapping.link_tags == ("host", "peer")
    assert mapping.timestamp_unit == "ms" and mapping.timestamp_ns_per_unit == 1_000_000
    assert dict(mapping.metro_of_source) == {"pe1-bj": "北京"}
    assert gnmic(**OC).router_tag == "source" and gnmic(**OC).timestamp_ns_per_unit == 1
    hash(mapping)


@pytest.mark.parametrize("section, message", [
    ({"kind": "snmp", "rtt_key": "x", "link_tags": "l"}, "kind"),
    ({"kind": "gnmic", "rtt_key": "x", "link_tags": "l", "unit": "sec"}, "unit"),
    ({"kind": "gnmic", "rtt_key": "x", "link_tags": "l", "rtt_unit": "ms"}, "unknown key(s) rtt_unit"),
    ({"kind": "gnmic", "link_tags": "l"}, "rtt_key is required"),
    ({"kind": "gnmic", "rtt_key": "x"}, "link_tags is required"),
    ({"kind": "gnmic", "rtt_key": "x", "link_tags": []}, "link_tags"),
    ({"kind": "gnmic", "rtt_key": "x", "link_tags": ["a", 1]}, "link_tags"),
    ({"kind": "gnmic", "rtt_key": "x", "link_tags": "l", "timestamp_unit": "ms"}, "telegraf only"),
    ({"kind": "telegraf", "rtt_key": "x", "link_tags": "l", "timestamp_unit": "min"}, "timestamp_unit"),
    ({"kind": "gnmic", "rtt_key": "/", "link_tags": "l"}, "names no path element"),
    ({"kind": "gnmic", "rtt_key": "", "link_tags": "l"}, "rtt_key"),
    ({"kind": "gnmic", "rtt_key": 3, "link_tags": "l"}, "rtt_key must be a string"),
    ({"kind": "gnmic", "rtt_key": "x", "link_tags": "l", "metro_of_source": {"a": 1}}, "metro_of_source"),
    ({"kind": "gnmic", "rtt_key": "x", "link_tags": "l", "metro_of_source": ["a"]}, "metro_of_source"),
])
def test_mapping_validation(section, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AdapterMapping.from_dict(section)


def test_telegraf_bad_override_and_format_are_caller_errors() -> None:
    with pytest.raises(ConfigError):
        decode_telegraf(b"{}", telegraf(**TWAMP_MAP), source="t", position=0, timestamp_unit="minutes")
    with pytest.raises(ValueError):
        decode_telegraf(b"{}", telegraf(**TWAMP_MAP), source="t", position=0, fmt="csv")


# --- nothing a producer sends makes the decoders raise -----------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8) | st.sampled_from([OC_DELAY, "rtt_avg", "source", "interface_name", "metro"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["name", "timestamp", "tags", "values", "fields", "metrics", "source", "metro",
                         "interface_name", "link", "host", OC_DELAY, "rtt_avg", "x"]), inner, max_size=6),
    max_leaves=20)
MAPPINGS = [gnmic(**OC), telegraf(**TWAMP_MAP), telegraf(**PING_MAP)]


def _check(chunk: DecodedChunk, payload: bytes) -> None:
    assert chunk.table.schema == DECODED_SCHEMA
    assert len(chunk.positions) == chunk.table.num_rows
    assert all(r.raw == payload for r in chunk.rejects if r.reason != "too_large")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    for mapping in MAPPINGS:
        _check(decode_adapter(payload, mapping, source="fuzz", position=1), payload)
        if mapping.kind == "telegraf":
            _check(decode_telegraf(payload, mapping, source="fuzz", position=1, fmt="influx"), payload)


def _events(value, kind: str) -> int:
    """How many events or metrics a message holds: each must become one row or one reject."""
    if type(value) is list:
        return len(value)
    if kind == "telegraf" and type(value) is dict and "metrics" in value and "fields" not in value:
        return len(value["metrics"]) if type(value["metrics"]) is list else 1
    return 1


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_arbitrary_json_never_raises_nor_drops(value) -> None:
    payload = orjson.dumps(value)
    for mapping in MAPPINGS:
        chunk = decode_adapter(payload, mapping, source="fuzz", position=1)
        _check(chunk, payload)
        assert chunk.table.num_rows + len(chunk.rejects) == _events(value, mapping.kind)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=' ,="\\\nmtfrl1i0u.e-#', max_size=60))
def test_line_protocol_like_text_never_raises(text: str) -> None:
    payload = ("twamp,host=h,metro=m,link=l " + text).encode()
    _check(decode_telegraf(payload, telegraf(**TWAMP_MAP), source="fuzz", position=1, fmt="influx"), payload)
