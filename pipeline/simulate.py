"""Deterministic synthetic telemetry, for tests, benchmarks and demos.

Everything is drawn from numpy Generators seeded from `ScenarioConfig.seed`, so
a config names one exact data set. Metros fall in three classes so coverage is
neither 0 nor 100 %: healthy (p99 under 1 ms even at the evening peak),
borderline (compliant off-peak, not at the UTC+8 evening peak) and chronic
(median near or above 1 ms). On top come per-link offsets, rare spikes,
configured incidents and a share of samples of exactly 1000.0 µs (which is
not under a 1000 µs threshold).

Rows come out in arrival order, not event order: each sample is emitted
`U[0, jitter_s)` after its event time, and a `late_share` of them 120-600 s
later. Generation runs in chunks of whole probe rounds, each with its own
seeded Generator; a row is released once no later chunk can arrive before it,
so `generate` and `iter_batches` (any batch size) give the same rows in the
same order while `iter_batches` keeps memory bounded.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from pipeline.errors import ConfigError
from pipeline.records import CLEAN_SCHEMA
from pipeline.writers import EXTENSIONS, write_table

CITY_NAMES = (
    "北京", "上海", "广州", "深圳", "成都", "杭州", "武汉", "西安", "重庆", "南京",
    "天津", "苏州", "郑州", "长沙", "东莞", "青岛", "沈阳", "宁波", "昆明", "合肥",
    "佛山", "济南", "福州", "厦门", "哈尔滨", "长春", "大连", "石家庄", "南宁", "贵阳",
    "南昌", "太原", "乌鲁木齐", "兰州", "呼和浩特", "银川", "西宁", "拉萨", "海口", "无锡",
)
DEFAULT_START_NS = 1_795_132_800_000_000_000  # 2026-11-20T00:00:00Z
_NS_PER_S = 1_000_000_000
_NS_PER_H = 3600 * _NS_PER_S
_UTC_OFFSET_H = 8.0  # load follows local time in China
_PEAK_LOCAL_H = 20.5  # evening peak
_PEAK_WIDTH_H = 2.5
_SAMPLE_SIGMA = 0.15  # per-sample lognormal spread
_LINK_SIGMA = 0.06  # per-link lognormal offset
_ONE_WAY_SIGMA = 0.03  # asymmetry of one-way vs rtt/2
_SPIKE_MEAN_US = 1500.0
_MEDIAN_US = {"healthy": (250.0, 500.0), "borderline": (560.0, 640.0), "chronic": (900.0, 1300.0)}
_CHUNK_ROWS = 1 << 20  # rows per generation chunk (rounded to whole probe rounds)


class Incident(NamedTuple):
    """Extra latency on every link of one metro during `[start, start + duration)` of event time."""

    metro: str
    start_offset_s: float
    duration_s: float
    added_rtt_us: float


class MetroProfile(NamedTuple):
    """What the generator intends for one metro; lets tests predict compliance."""

    name: str
    kind: str  # "healthy" | "borderline" | "chronic"
    median_rtt_us: float


@dataclass(frozen=True)
class ScenarioConfig:
    """One reproducible scenario. `incidents=None` means one default incident mid-run; `()` means none."""

    metros: int | Sequence[str] = 10
    routers_per_metro: int = 4
    links_per_router: int = 8
    start_ns: int = DEFAULT_START_NS
    duration_s: float = 3600.0
    probe_interval_s: float = 1.0
    seed: int = 0
    incidents: Sequence[Incident | tuple[str, float, float, float]] | None = None
    exact_threshold_share: float = 0.001
    jitter_s: float = 2.0
    late_share: float = 0.0005
    late_delay_s: tuple[float, float] = (120.0, 600.0)
    chronic_share: float = 0.2
    borderline_share: float = 0.1
    diurnal_amplitude: float = 0.3
    spike_share: float = 0.001
    one_way_missing_share: float = 0.05  # share of links whose probe reports no one-way value
    trend_per_day: float = 0.0  # relative change of every median RTT per day (-0.02: 2 % faster each day)

    def __post_init__(self) -> None:
        if self.routers_per_metro < 1 or self.links_per_router < 1:
            raise ConfigError("routers_per_metro and links_per_router must be at least 1")
        if self.probe_interval_s <= 0 or self.duration_s < self.probe_interval_s:
            raise ConfigError("need 0 < probe_interval_s <= duration_s")
        if self.jitter_s <= 0:
            raise ConfigError("jitter_s must be positive")
        if not -1.0 < self.trend_per_day < 1.0:
            raise ConfigError("trend_per_day must lie in (-1, 1)")
        lo, hi = self.late_delay_s
        if not 0 <= lo < hi:
            raise ConfigError("late_delay_s must be (low, high) with 0 <= low < high")
        shares = (self.exact_threshold_share, self.late_share, self.chronic_share,
                  self.borderline_share, self.spike_share, self.one_way_missing_share)
        if not all(0.0 <= s <= 1.0 for s in shares) or self.chronic_share + self.borderline_share > 1:
            raise ConfigError("shares must lie in [0, 1] and chronic + borderline <= 1")
        names = metro_names(self)
        if len(set(names)) != len(names) or not names:
            raise ConfigError("metro names must be unique and non-empty")
        known = set(names)
        for inc in self.incidents or ():
            if Incident(*inc).metro not in known:
                raise ConfigError(f"incident names unknown metro {Incident(*inc).metro!r}")

    @property
    def interval_ns(self) -> int:
        return round(self.probe_interval_s * _NS_PER_S)

    @property
    def samples_per_link(self) -> int:
        return round(self.duration_s * _NS_PER_S) // self.interval_ns

    @property
    def links(self) -> int:
        return len(metro_names(self)) * self.routers_per_metro * self.links_per_router

    @property
    def rows(self) -> int:
        return self.links * self.samples_per_link


def metro_names(config: ScenarioConfig) -> list[str]:
    """Explicit names as given; a count takes Chinese cities first, then `metro-NNN`."""
    if isinstance(config.metros, str):
        raise ConfigError("metros must be a count or a list of names, not one string")
    if not isinstance(config.metros, int):
        return list(config.metros)
    if config.metros < 1:
        raise ConfigError("metros must be at least 1")
    extra = [f"metro-{i + 1:03d}" for i in range(len(CITY_NAMES), config.metros)]
    return list(CITY_NAMES[: config.metros]) + extra


def metro_profiles(config: ScenarioConfig) -> list[MetroProfile]:
    """Class and median RTT per metro, in name order; classes are assigned by a seeded shuffle."""
    names = metro_names(config)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(0,)))
    n = len(names)
    n_chronic = round(n * config.chronic_share)
    n_border = round(n * config.borderline_share)
    kinds = np.array(["chronic"] * n_chronic + ["borderline"] * n_border
                     + ["healthy"] * (n - n_chronic - n_border))
    kinds = kinds[rng.permutation(n)]
    lo = np.array([_MEDIAN_US[k][0] for k in kinds])
    hi = np.array([_MEDIAN_US[k][1] for k in kinds])
    medians = rng.uniform(lo, hi)
    return [MetroProfile(name, str(k), float(m)) for name, k, m in zip(names, kinds, medians)]


def scenario_incidents(config: ScenarioConfig) -> list[Incident]:
    """Configured incidents, or by default +600 µs on the first healthy metro for the middle sixth."""
    if config.incidents is not None:
        return [Incident(*inc) for inc in config.incidents]
    profiles = metro_profiles(config)
    victim = next((p.name for p in profiles if p.kind == "healthy"), profiles[0].name)
    length_s = config.duration_s / 6
    return [Incident(victim, config.duration_s / 2 - length_s / 2, length_s, 600.0)]


@dataclass(frozen=True)
class _Plan:
    """Per-link constants and the string dictionaries rows index into."""

    link_median_us: np.ndarray  # float64 per link
    link_phase_ns: np.ndarray  # int64 per link, offset of its probe within a round
    link_has_one_way: np.ndarray  # bool per link
    incidents: list[tuple[int, int, int, float]]  # metro index, start ns, end ns, added µs
    metro: pa.Array
    router: pa.Array
    link: pa.Array
    site: pa.Array
    dc: pa.Array


def _plan(config: ScenarioConfig) -> _Plan:
    profiles = metro_profiles(config)
    names = [p.name for p in profiles]
    per_metro = config.routers_per_metro * config.links_per_router
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(1,)))
    n_links = config.links
    medians = np.repeat([p.median_rtt_us for p in profiles], per_metro)
    routers = [f"{m}-r{r:02d}" for m in names for r in range(config.routers_per_metro)]
    index = {name: i for i, name in enumerate(names)}
    incidents = [
        (index[inc.metro], config.start_ns + round(inc.start_offset_s * _NS_PER_S),
         config.start_ns + round((inc.start_offset_s + inc.duration_s) * _NS_PER_S), inc.added_rtt_us)
        for inc in scenario_incidents(config)
    ]
    return _Plan(
        link_median_us=medians * np.exp(rng.normal(0.0, _LINK_SIGMA, n_links)),
        link_phase_ns=rng.integers(0, config.interval_ns, n_links, dtype=np.int64),
        link_has_one_way=rng.random(n_links) >= config.one_way_missing_share,
        incidents=incidents,
        metro=pa.array(names, pa.string()),
        router=pa.array(routers, pa.string()),
        link=pa.array([f"et-0/0/{k}" for k in range(config.links_per_router)] * len(routers),
                      pa.string()),
        site=pa.array([f"{m}-ap{r:02d}" for m in names for r in range(config.routers_per_metro)],
                      pa.string()),
        dc=pa.array([f"{m}-dc01" for m in names], pa.string()),
    )


# A chunk of rows is a dict of equal-length numpy columns; link_id indexes the plan.
_Cols = dict[str, np.ndarray]


def _diurnal_load(ts_ns: np.ndarray, amplitude: float) -> np.ndarray:
    local_h = (ts_ns / _NS_PER_H + _UTC_OFFSET_H) % 24.0
    from_peak_h = (local_h - _PEAK_LOCAL_H + 12.0) % 24.0 - 12.0
    return 1.0 + amplitude * np.exp(-0.5 * (from_peak_h / _PEAK_WIDTH_H) ** 2)


def _sample_rounds(config: ScenarioConfig, plan: _Plan, first: int, stop: int,
                   rng: np.random.Generator) -> _Cols:
    """Probe rounds [first, stop) for every link, in (round, link) order, with emission times.

    Columns are computed as (round, link) matrices by broadcasting, then flattened.
    """
    n_links = len(plan.link_median_us)
    shape = (stop - first, n_links)
    n = shape[0] * n_links
    round_ns = config.start_ns + np.arange(first, stop, dtype=np.int64) * config.interval_ns
    ts_ns = (round_ns[:, None] + plan.link_phase_ns).ravel()

    # Load varies over hours, so one value per round is exact enough.
    load = _diurnal_load(round_ns, config.diurnal_amplitude)
    if config.trend_per_day:  # gradual upgrades (or decay): a compounding factor per day of event time
        load = load * (1.0 + config.trend_per_day) ** ((round_ns - config.start_ns) / (24 * _NS_PER_H))
    noise = np.exp(rng.normal(0.0, _SAMPLE_SIGMA, shape))
    rtt_us = (plan.link_median_us * load[:, None] * noise).ravel()
    spikes = rng.random(n) < config.spike_share
    rtt_us[spikes] += rng.exponential(_SPIKE_MEAN_US, int(spikes.sum()))
    per_metro = config.routers_per_metro * config.links_per_router
    for metro_id, start_ns, end_ns, added_us in plan.incidents:
        links = slice(metro_id * per_metro, (metro_id + 1) * per_metro)
        metro_ts_ns = ts_ns.reshape(shape)[:, links]
        rtt_us.reshape(shape)[:, links][(metro_ts_ns >= start_ns) & (metro_ts_ns < end_ns)] += added_us
    rtt_us = np.round(rtt_us, 3)  # probes report whole nanoseconds
    rtt_us[rng.random(n) < config.exact_threshold_share] = 1000.0

    one_way_us = np.round(rtt_us * 0.5 * np.exp(rng.normal(0.0, _ONE_WAY_SIGMA, n)), 3)
    one_way_us.reshape(shape)[:, ~plan.link_has_one_way] = np.nan

    delay_ns = rng.integers(0, round(config.jitter_s * _NS_PER_S), n, dtype=np.int64)
    late = rng.random(n) < config.late_share
    lo_s, hi_s = config.late_delay_s
    delay_ns[late] = rng.integers(round(lo_s * _NS_PER_S), round(hi_s * _NS_PER_S),
                                  int(late.sum()), dtype=np.int64)
    link_id = np.broadcast_to(np.arange(n_links, dtype=np.int32), shape).ravel()
    return {"ts_ns": ts_ns, "emit_ns": ts_ns + delay_ns, "link_id": link_id,
            "rtt_us": rtt_us, "one_way_us": one_way_us}


def _take(cols: _Cols, index: np.ndarray | slice) -> _Cols:
    return {k: v[index] for k, v in cols.items()}


def _concat(parts: list[_Cols]) -> _Cols:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _arrival_chunks(config: ScenarioConfig, plan: _Plan) -> Iterator[_Cols]:
    """Rows in (emit_ns, round, link) order, released chunk by chunk.

    Pending rows precede fresh ones in that order on ties, so a stable sort of
    pending + fresh keeps the global order. After rounds [.., stop) every future
    row has event time, hence emission time, >= the start of round `stop`.
    """
    rounds = config.samples_per_link
    per_chunk = max(1, _CHUNK_ROWS // len(plan.link_median_us))
    pending: _Cols | None = None
    for chunk, first in enumerate(range(0, rounds, per_chunk)):
        stop = min(first + per_chunk, rounds)
        rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(2, chunk)))
        fresh = _sample_rounds(config, plan, first, stop, rng)
        merged = fresh if pending is None else _concat([pending, fresh])
        merged = _take(merged, np.argsort(merged["emit_ns"], kind="stable"))
        if stop == rounds:
            yield merged
            return
        cut = int(np.searchsorted(merged["emit_ns"], config.start_ns + stop * config.interval_ns))
        pending = _take(merged, slice(cut, None))
        yield _take(merged, slice(0, cut))


def _to_batch(config: ScenarioConfig, plan: _Plan, cols: _Cols) -> pa.RecordBatch:
    link_id = cols["link_id"]
    router_id = pa.array(link_id // config.links_per_router)
    metro_id = pa.array(link_id // (config.links_per_router * config.routers_per_metro))
    one_way_us = cols["one_way_us"]

    def names(ids: pa.Array, dictionary: pa.Array) -> pa.Array:
        # Decoding a dictionary array is several times faster than `take` for strings.
        return pa.DictionaryArray.from_arrays(ids, dictionary).cast(pa.string())

    return pa.RecordBatch.from_arrays(
        [
            pa.array(cols["ts_ns"], pa.int64()),
            names(metro_id, plan.metro),
            names(router_id, plan.router),
            names(pa.array(link_id), plan.link),
            pa.array(cols["rtt_us"], pa.float64()),
            pa.array(one_way_us, pa.float64(), mask=np.isnan(one_way_us)),
            names(router_id, plan.site),
            names(metro_id, plan.dc),
        ],
        schema=CLEAN_SCHEMA,
    )


def generate(config: ScenarioConfig) -> pa.Table:
    """The whole scenario as one CLEAN_SCHEMA table (one chunk per generation chunk), in arrival order."""
    plan = _plan(config)
    batches = [_to_batch(config, plan, cols) for cols in _arrival_chunks(config, plan)]
    return pa.Table.from_batches(batches, schema=CLEAN_SCHEMA)


def iter_batches(config: ScenarioConfig, rows_per_batch: int = 65_536) -> Iterator[pa.RecordBatch]:
    """The rows of `generate(config)` in the same order, as batches of `rows_per_batch` (last may be short)."""
    if rows_per_batch < 1:
        raise ConfigError("rows_per_batch must be at least 1")
    plan = _plan(config)
    carry: _Cols | None = None
    for released in _arrival_chunks(config, plan):
        cols = released if carry is None else _concat([carry, released])
        full = len(cols["ts_ns"]) // rows_per_batch * rows_per_batch
        for start in range(0, full, rows_per_batch):
            yield _to_batch(config, plan, _take(cols, slice(start, start + rows_per_batch)))
        carry = _take(cols, slice(full, None))
    if carry is not None and len(carry["ts_ns"]):
        yield _to_batch(config, plan, carry)


def write_scenario(config: ScenarioConfig, out_dir: str | Path, fmt: str = "parquet") -> Path:
    """Generate and write the scenario to `out_dir/netready-sim-seed<seed>.<fmt>`; returns the path."""
    if fmt not in EXTENSIONS:
        raise ConfigError(f"unknown format {fmt!r}; expected one of {sorted(EXTENSIONS)}")
    path = Path(out_dir) / f"netready-sim-seed{config.seed}.{EXTENSIONS[fmt]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table(generate(config), path, fmt)
    return path
