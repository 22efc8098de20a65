"""The `netready` command line."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__
from .config import Settings
from .errors import NetreadyError
from .windows import WindowSpec

EXIT_STRICT_REJECTS = 3


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


def _dump(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netready")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              envvar="NETREADY_CONFIG", help="TOML settings file (see README).")
@click.option("--clickhouse", envvar="NETREADY_CLICKHOUSE", metavar="URL",
              help="chdb:DIR (embedded, default chdb:netready-data/chdb) or clickhouse://user@host:9000/netready")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, clickhouse: str | None) -> None:
    """netready: is each metro inside the 1 ms computing circle, and is the country on track for 2028?"""
    settings = Settings.load(config_path)
    if clickhouse:
        settings.clickhouse = clickhouse
    ctx.obj = {"settings": settings}


def _warehouse(settings: Settings):
    from .warehouse import open_warehouse

    return open_warehouse(settings.clickhouse)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--window", "windows", multiple=True, metavar="LEN[/HOP]",
              help="Window family in seconds, repeatable (default: 60 and 300/60).")
@click.option("--lateness-s", type=click.IntRange(min=0), help="Allowed lateness behind the highest event time (default 30).")
@click.option("--metro", "metros", multiple=True, help="Registry of metros for coverage (default: every metro seen).")
@click.option("--reject-file", type=click.Path(dir_okay=False), help="Where rejected records go (JSON Lines).")
@click.option("--strict", is_flag=True, help="Exit with status 3 if any record was rejected.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def ingest(ctx, paths, windows, lateness_s, metros, reject_file, strict, as_json) -> None:
    """Replay telemetry files (JSON Lines, JSON, Avro, Arrow IPC, Parquet) and land the results."""
    from tqdm import tqdm

    from .ingest import ingest_paths

    settings = _settings(ctx)
    if windows:
        settings.windows = tuple(WindowSpec.parse(w) for w in windows)
    if lateness_s is not None:
        settings.lateness_s = lateness_s
    if metros:
        settings.metros = list(metros)
    if reject_file:
        settings.reject_path = Path(reject_file)
    with _warehouse(settings) as warehouse, tqdm(unit=" samples", unit_scale=True,
                                                 disable=None, file=sys.stderr) as bar:
        summary = ingest_paths(paths, warehouse, settings.ingest_config(), progress=bar.update)
    if as_json:
        _dump(summary.to_dict())
    else:
        _print_summary(summary.to_dict(), settings)
    if strict and summary.samples_rejected:
        ctx.exit(EXIT_STRICT_REJECTS)


def _print_summary(s: dict, settings: Settings) -> None:
    click.echo(f"read {s['samples_read']:,} samples in {s['elapsed_s']:.1f} s "
               f"({s['samples_per_s']:,}/s): {s['samples_accepted']:,} aggregated, "
               f"{s['samples_late']:,} late, {s['samples_rejected']:,} rejected")
    for reason, count in s["rejects_by_reason"].items():
        click.echo(f"  {reason:<16} {count:,}")
    if s["rejects_by_reason"]:
        click.echo(f"  (details in {settings.reject_path})")
    click.echo(f"landed {s['metro_window_rows']:,} metro windows, {s['link_window_rows']:,} link windows, "
               f"{s['coverage_window_rows']:,} coverage windows, {s['daily_rows']:,} metro days")


@main.command()
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default="netready-data/telemetry.jsonl",
              show_default=True, help="Output file; the extension picks the format.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "json", "arrow", "parquet", "avro"]))
@click.option("--metros", type=int, default=24, show_default=True)
@click.option("--routers", type=int, default=4, show_default=True, help="Routers per metro.")
@click.option("--links", type=int, default=8, show_default=True, help="Links per router.")
@click.option("--duration-s", type=float, default=3600, show_default=True)
@click.option("--interval-s", type=float, default=1.0, show_default=True, help="Probe interval per link.")
@click.option("--seed", type=int, default=0, show_default=True)
def simulate(out_path, fmt, metros, routers, links, duration_s, interval_s, seed) -> None:
    """Write realistic synthetic telemetry (diurnal load, an incident, disorder, late events)."""
    from .simulate import ScenarioConfig, generate
    from .writers import write_table

    config = ScenarioConfig(metros=metros, routers_per_metro=routers, links_per_router=links,
                            duration_s=duration_s, probe_interval_s=interval_s, seed=seed)
    table = generate(config)
    write_table(table, out_path, fmt)
    click.echo(f"wrote {table.num_rows:,} samples to {out_path}")


@main.command()
@click.option("--window", default="60", show_default=True, help="Window family to chart.")
@click.option("--png", "png_path", type=click.Path(dir_okay=False), default="netready-data/report.png",
              show_default=True)
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Metros shown in the readiness ranking (JSON has all).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def report(ctx, window, png_path, top, as_json) -> None:
    """Coverage trajectory vs the target, readiness ranking, per-metro compliance (text, PNG, JSON)."""
    from . import report as rep

    settings = _settings(ctx)
    with _warehouse(settings) as warehouse:
        built = rep.build(warehouse, settings.policy, WindowSpec.parse(window), settings.target,
                          settings.registry(), top)
    rep.render_png(built, png_path)
    if as_json:
        _dump({**built.to_dict(), "png": png_path})
    else:
        click.echo(rep.render_text(built))
        click.echo(f"\nchart: {png_path}")


@main.command()
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_context
def sql(ctx, query, fmt) -> None:
    """Run SQL against the configured ClickHouse (tables live in database `netready`)."""
    from .report import _table

    with _warehouse(_settings(ctx)) as warehouse:
        result = warehouse.query(query)
    if fmt == "json":
        _dump(result.to_pylist())
    elif fmt == "csv":
        import pyarrow.csv as pacsv

        buf = __import__("io").BytesIO()
        pacsv.write_csv(result, buf)
        click.echo(buf.getvalue().decode(), nl=False)
    else:
        click.echo(_table(result.column_names, [list(r.values()) for r in result.to_pylist()]))


@main.command()
@click.pass_context
def migrate(ctx) -> None:
    """Create or upgrade the netready schema (idempotent)."""
    from .warehouse.migrations import migrate as run

    with _warehouse(_settings(ctx)) as warehouse:
        applied = run(warehouse)
        click.echo(f"{warehouse.url_for_display}: ClickHouse {warehouse.server_version()}, "
                   f"applied {applied or 'nothing new'}")


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False), default="netready-data/demo", show_default=True)
@click.option("--metros", type=int, default=30, show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=14, show_default=True,
              help="Whole UTC days simulated, ending at the start of today (UTC).")
@click.option("--hours", type=float, help="Simulate this many hours instead of --days (dense 5 s probes, 60 s windows).")
@click.option("--interval-s", type=float, default=120.0, show_default=True, help="Probe interval per link (--days).")
@click.option("--trend-per-day", type=float, default=-0.006, show_default=True,
              help="Relative change of median RTT per day (negative: networks improve).")
@click.pass_context
def demo(ctx, data_dir, metros, days, hours, interval_s, trend_per_day) -> None:
    """Simulate, ingest and report in one go on the embedded ClickHouse.

    By default: 14 days of 16 links per metro probed every 120 s, aggregated in hourly windows
    (60 s windows would hold fewer samples than the policy's minimum), with a slow improvement
    trend, so the trajectory, forecast and readiness ranking have something to show.
    """
    import time

    from . import report as rep
    from .ingest import ingest_paths
    from .simulate import ScenarioConfig, generate, metro_profiles
    from .warehouse import open_warehouse
    from .windows import NS_PER_S
    from .writers import write_table

    settings = _settings(ctx)
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    telemetry = data / "telemetry.parquet"
    if hours is not None:
        click.echo(f"simulating {metros} metros for {hours:g} h ...")
        scenario = ScenarioConfig(metros=metros, duration_s=hours * 3600, probe_interval_s=5.0,
                                  trend_per_day=trend_per_day)
        window = WindowSpec(60, 60)
    else:
        # End at today's UTC midnight: validation refuses timestamps more than a day ahead of now.
        start_ns = (int(time.time()) // 86_400 - days) * 86_400 * NS_PER_S
        base = ScenarioConfig(metros=metros, routers_per_metro=2, links_per_router=8, start_ns=start_ns,
                              duration_s=days * 86_400.0, probe_interval_s=interval_s, chronic_share=0.3,
                              borderline_share=0.4, trend_per_day=trend_per_day, incidents=())
        victim = next((p.name for p in metro_profiles(base) if p.kind == "healthy"), None)
        incidents = ((victim, (days // 2) * 86_400.0 + 10 * 3600, 6 * 3600.0, 600.0),) if victim else ()
        scenario = ScenarioConfig(**{**base.__dict__, "incidents": incidents})
        window = WindowSpec(3600, 3600)
        settings.windows = (window,)
        click.echo(f"simulating {metros} metros for {days} days ({scenario.rows:,} samples, probes every "
                   f"{interval_s:g} s, median RTT trend {trend_per_day:+.1%}/day) ...")
    table = generate(scenario)
    write_table(table, telemetry)
    settings.reject_path = data / "rejects.jsonl"
    url = settings.clickhouse or f"chdb:{data / 'chdb'}"
    with open_warehouse(url) as warehouse:
        summary = ingest_paths([telemetry], warehouse, settings.ingest_config())
        _print_summary(summary.to_dict(), settings)
        built = rep.build(warehouse, settings.policy, window, settings.target, settings.registry())
    click.echo("")
    click.echo(rep.render_text(built))
    png = rep.render_png(built, data / "report.png")
    click.echo(f"\nchart: {png}\nexplore: netready --clickhouse {url} sql "
               "\"SELECT day, coverage, target_path, status, slack_days, forecast_date "
               "FROM netready.coverage_trajectory FINAL ORDER BY day\"")


@main.command(name="run")
@click.option("--bootstrap", help="Kafka bootstrap servers (default from config, NETREADY_KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:19092).")
@click.option("--topic", default="netready.telemetry", show_default=True)
@click.option("--group", "group_id", default="netready", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["auto", "json", "confluent", "avro", "arrow", "gnmic", "telegraf"]),
              default="auto", show_default=True, help="Message encoding; gnmic/telegraf need an [adapter] section.")
@click.option("--schema-registry", "schema_registry_url", metavar="URL",
              help="Confluent Schema Registry for Avro writer schemas (default: schemas/telemetry.avsc).")
@click.option("--windows-topic", default="netready.windows", show_default=True,
              help="Where per-metro window verdicts are published ('' to disable).")
@click.option("--dlq-topic", default="netready.dlq", show_default=True)
@click.option("--checkpoint-interval-s", type=click.FloatRange(min=0.1), default=5.0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("--max-backoff-s", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
              help="Longest wait between retries while ClickHouse is unreachable.")
@click.option("--metrics-port", type=int, help="Serve Prometheus /metrics on PORT.")
@click.option("--metrics-address", default="127.0.0.1", show_default=True,
              help="Address the metrics endpoint binds to (localhost unless you say otherwise).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@click.option("--drain", is_flag=True, help="Consume to the end of the assigned partitions, close every window, land, commit and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON.")
@click.pass_context
def run_worker(ctx, bootstrap, topic, group_id, fmt, schema_registry_url, windows_topic, dlq_topic, checkpoint_interval_s,
               batch_size, max_backoff_s, metrics_port, metrics_address, log_format, log_level, drain,
               as_json) -> None:
    """The streaming worker: Kafka in, windows into ClickHouse and onto the windows topic."""
    import dataclasses
    import logging

    from .kafka_access import check_access
    from .logs import configure_logging
    from .stream.worker import Worker, WorkerConfig

    configure_logging(log_format, getattr(logging, log_level.upper()))
    settings = _settings(ctx)
    kafka = settings.kafka_settings()
    if bootstrap:
        kafka = dataclasses.replace(kafka, bootstrap_servers=bootstrap)
    check_access(kafka)
    adapter = None
    if fmt in ("gnmic", "telegraf"):
        from .adapters import message_decoder

        adapter = message_decoder(fmt, settings.adapter or {})
    config = WorkerConfig(kafka=kafka, topic=topic, group_id=group_id, windows_topic=windows_topic or None,
                          dlq_topic=dlq_topic, fmt="auto" if adapter else fmt, adapter=adapter,
                          ingest=settings.ingest_config(), batch_size=batch_size,
                          checkpoint_interval_s=checkpoint_interval_s, drain=drain,
                          metrics_port=metrics_port, metrics_address=metrics_address,
                          schema_registry_url=schema_registry_url, max_backoff_s=max_backoff_s)
    with _warehouse(settings) as warehouse:
        summary = Worker(config, warehouse).run()
    if as_json:
        _dump(summary.to_dict())
    else:
        click.echo(f"worker stopped: {summary.to_dict()}")


@main.command()
@click.option("--bootstrap", help="Kafka bootstrap servers.")
@click.option("--topic", default="netready.telemetry", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["json", "json-array", "avro", "arrow"]), default="json",
              show_default=True)
@click.option("--rows-per-message", type=click.IntRange(min=1), default=1, show_default=True,
              help="Records per message for json-array and arrow.")
@click.option("--partitions", type=click.IntRange(min=1), default=4, show_default=True,
              help="Partitions if the topic has to be created.")
@click.option("--metros", type=int, default=24, show_default=True)
@click.option("--metro-name", "metro_names", multiple=True, metavar="NAME",
              help="Simulate metros with these names (repeatable; replaces --metros).")
@click.option("--routers", type=int, default=4, show_default=True)
@click.option("--links", type=int, default=8, show_default=True)
@click.option("--duration-s", type=float, default=600, show_default=True)
@click.option("--interval-s", type=float, default=1.0, show_default=True)
@click.option("--late-share", type=float, default=0.0005, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def produce(ctx, bootstrap, topic, fmt, rows_per_message, partitions, metros, metro_names, routers, links,
            duration_s, interval_s, late_share, seed, as_json) -> None:
    """Produce simulated telemetry to Kafka, keyed by metro (load tests and demos)."""
    import dataclasses

    from .kafka_access import check_access
    from .produce import create_topics
    from .produce import produce as run_producer
    from .simulate import ScenarioConfig

    kafka = _settings(ctx).kafka_settings()
    if bootstrap:
        kafka = dataclasses.replace(kafka, bootstrap_servers=bootstrap)
    check_access(kafka)
    scenario = ScenarioConfig(metros=list(metro_names) or metros, routers_per_metro=routers,
                              links_per_router=links, duration_s=duration_s, probe_interval_s=interval_s,
                              late_share=late_share, seed=seed)
    create_topics(kafka, {topic: partitions})
    summary = run_producer(kafka, topic, scenario, fmt, rows_per_message=rows_per_message)
    data = dataclasses.asdict(summary) if dataclasses.is_dataclass(summary) else dict(summary)
    if as_json:
        _dump(data)
    else:
        click.echo(f"produced {data}")


@main.command()
@click.option("--bootstrap", help="Kafka bootstrap servers (default from config or 127.0.0.1:19092).")
@click.option("--windows-topic", help="Input topic of window verdicts [netready.windows].")
@click.option("--alerts-topic", help="Output topic of alert transitions, '' to disable [netready.alerts].")
@click.option("--app-id", help="faust app id: consumer group and state topic prefix [netready-alerts].")
@click.option("--alertmanager", "alertmanager_url", envvar="NETREADY_ALERTMANAGER_URL", metavar="URL",
              help="Alertmanager base URL, e.g. http://127.0.0.1:9093 (API v2).")
@click.option("--webhook", "webhook_url", envvar="NETREADY_ALERT_WEBHOOK_URL", metavar="URL",
              help="Generic webhook receiving alert transitions as JSON.")
@click.option("--no-clickhouse", is_flag=True, help="Do not record alert history in netready.alerts.")
@click.option("--resend-interval-s", type=click.FloatRange(min=0.1), help="Re-send firing alerts every N s [60].")
@click.option("--web-host", help="Address the faust web server (/metrics, /alerts) binds to [127.0.0.1].")
@click.option("--web-port", type=click.IntRange(0, 65535), help="Port of the faust web server [6066].")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE", help="Static label on every alert, repeatable.")
@click.option("--rule", "rules", multiple=True, metavar="NAME=VALUE",
              help="Override a rule setting, e.g. regression_fire_windows=3 (repeatable; see docs/alerting.md).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.pass_context
def alerts(ctx, bootstrap, windows_topic, alerts_topic, app_id, alertmanager_url, webhook_url, no_clickhouse,
           resend_interval_s, web_host, web_port, labels, rules, log_level) -> None:
    """Alerting service (faust): window verdicts in; Alertmanager, webhook, Kafka and ClickHouse out."""
    import dataclasses

    from .alerts.config import from_mapping, rule_config
    from .alerts.service import run_service
    from .errors import ConfigError
    from .kafka_access import check_access

    settings = _settings(ctx)
    section = dict(settings.alerts or {})
    pairs = {}
    for item, what in [(x, "--label") for x in labels] + [(x, "--rule") for x in rules]:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} {item!r}: expected KEY=VALUE")
        pairs.setdefault(what, {})[key.strip()] = value.strip()
    config = from_mapping(section, kafka=settings.kafka_settings(), clickhouse_url=settings.clickhouse)
    if "--label" in pairs or "--rule" in pairs:
        merged = {**section.get("rules", {}), **{k: _rule_value(v) for k, v in pairs.get("--rule", {}).items()}}
        config.rules = rule_config(merged, {**section.get("labels", {}), **pairs.get("--label", {})})
    if bootstrap:
        config.kafka = dataclasses.replace(config.kafka, bootstrap_servers=bootstrap)
    for name, value in (("windows_topic", windows_topic), ("app_id", app_id), ("alertmanager_url", alertmanager_url),
                        ("webhook_url", webhook_url), ("resend_interval_s", resend_interval_s),
                        ("web_host", web_host), ("web_port", web_port), ("log_level", log_level)):
        if value is not None:
            setattr(config, name, value)
    if alerts_topic is not None:
        config.alerts_topic = alerts_topic or None
    if no_clickhouse:
        config.clickhouse_url = None
    check_access(config.kafka)
    run_service(config)


def _rule_value(text: str):
    try:
        return json.loads(text)  # numbers, lists of burn windows
    except ValueError:
        return text


@main.command()
@click.option("--policy", "policy_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The new policy: a sample-share or site-coverage JSON file (docs/policies.md).")
@click.option("--source-policy", help="Policy id of the stored windows to start from "
              "(default: the configured policy if stored, else the only stored one).")
@click.option("--from", "from_day", type=click.DateTime(["%Y-%m-%d"]), metavar="DAY",
              help="First UTC day (default: first stored).")
@click.option("--to", "to_day", type=click.DateTime(["%Y-%m-%d"]), metavar="DAY",
              help="Last UTC day, inclusive (default: last stored).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def recompute(ctx, policy_path, source_policy, from_day, to_day, as_json) -> None:
    """Re-judge stored metro windows under a new policy, from their histograms, with error bounds."""
    from .recompute import read_policy_file
    from .recompute import recompute as run_recompute

    settings = _settings(ctx)
    from .policy import SiteCoveragePolicy, load_policy

    if isinstance(load_policy(policy_path), SiteCoveragePolicy):
        _recompute_sites(settings, load_policy(policy_path), source_policy, from_day, to_day, as_json)
        return
    target = read_policy_file(policy_path)
    with _warehouse(settings) as warehouse:
        summary = run_recompute(warehouse, target,
                                source_policy or settings.policy.id, explicit_source=source_policy is not None,
                                first_day=from_day.date() if from_day else None,
                                last_day=to_day.date() if to_day else None,
                                registry=settings.registry(), target_config=settings.target)
    if as_json:
        _dump(summary.to_dict())
    else:
        click.echo(summary.render())


def _recompute_sites(settings, policy, source_policy, from_day, to_day, as_json) -> None:
    """A site-coverage policy judges stored link windows (see docs/policies.md)."""
    import calendar

    from .site_coverage import evaluate

    def day_s(day, end: bool) -> int | None:
        if day is None:
            return None
        return calendar.timegm(day.timetuple()) + (86_400 - 1 if end else 0)

    with _warehouse(settings) as warehouse:
        result = evaluate(warehouse, policy, source_policy or settings.policy.id,
                          first_s=day_s(from_day, False), last_s=day_s(to_day, True),
                          registry=settings.registry(), target=settings.target)
    summary = {"policy": result.policy_id, "base_policy": result.base_policy_id,
               "site_rows": result.site_rows.num_rows, "metro_window_rows": result.metro_rows.num_rows,
               "coverage_window_rows": result.coverage_rows, "daily_rows": result.daily_rows}
    if as_json:
        _dump(summary)
    else:
        click.echo(", ".join(f"{k} {v}" for k, v in summary.items()))


def run() -> None:
    try:
        code = main(standalone_mode=False)
    except NetreadyError as exc:
        click.echo(f"netready: error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    # Without standalone mode click returns the code of `ctx.exit(code)` instead of raising it.
    if isinstance(code, int) and code:
        sys.exit(code)
