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
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def report(ctx, window, png_path, as_json) -> None:
    """Per-metro compliance and national coverage over time (terminal table and PNG chart)."""
    from . import report as rep

    settings = _settings(ctx)
    with _warehouse(settings) as warehouse:
        built = rep.build(warehouse, settings.policy, WindowSpec.parse(window))
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
@click.option("--hours", type=float, default=6.0, show_default=True)
@click.pass_context
def demo(ctx, data_dir, metros, hours) -> None:
    """Simulate, ingest and report in one go on the embedded ClickHouse."""
    from . import report as rep
    from .ingest import ingest_paths
    from .simulate import ScenarioConfig, generate
    from .warehouse import open_warehouse
    from .writers import write_table

    settings = _settings(ctx)
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    telemetry = data / "telemetry.parquet"
    click.echo(f"simulating {metros} metros for {hours:g} h ...")
    table = generate(ScenarioConfig(metros=metros, duration_s=hours * 3600, probe_interval_s=5.0))
    write_table(table, telemetry)
    settings.reject_path = data / "rejects.jsonl"
    url = settings.clickhouse or f"chdb:{data / 'chdb'}"
    with open_warehouse(url) as warehouse:
        summary = ingest_paths([telemetry], warehouse, settings.ingest_config())
        _print_summary(summary.to_dict(), settings)
        built = rep.build(warehouse, settings.policy, WindowSpec(60, 60))
    click.echo("")
    click.echo(rep.render_text(built))
    png = rep.render_png(built, data / "report.png")
    click.echo(f"\nchart: {png}\nexplore: netready --clickhouse {url} sql "
               "\"SELECT * FROM netready.coverage_daily FINAL\"")


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
