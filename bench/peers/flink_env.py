"""The PyFlink peer's environment, built on demand outside the repo.

A virtualenv under ~/.cache/netready/peers/flink/venv with the pinned `apache-flink`
(requirements-flink.txt; it brings its own Flink runtime jars and needs a Java 11+ `java`), and
the Kafka SQL connector jar resolved from Maven Central by Maven through pom-flink.xml into
~/.cache/netready/peers/flink/jars. Both are reused while the pinned versions stay the same;
a version bump gets a fresh directory because the marker file records what was installed.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-flink.txt"
POM = HERE / "pom-flink.xml"
CACHE = Path(os.environ.get("NETREADY_PEERS_CACHE", Path.home() / ".cache" / "netready" / "peers")) / "flink"


class FlinkUnavailable(RuntimeError):
    """The PyFlink peer cannot run here; the message says why (it goes into the results)."""


def versions() -> tuple[str, str]:
    """(apache-flink version, connector version) as pinned in the repo."""
    flink = re.search(r"^apache-flink==(\S+)", REQUIREMENTS.read_text(), re.M).group(1)
    connector = re.search(r"<connector.version>(.+?)</connector.version>", POM.read_text()).group(1)
    return flink, connector


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise FlinkUnavailable(f"{what} failed ({proc.returncode}): {(proc.stderr or proc.stdout)[-2000:]}")


def ensure(log=print) -> tuple[Path, Path]:
    """(python of the PyFlink venv, connector jar); installs what is missing."""
    flink, connector = versions()
    if shutil.which("java") is None:
        raise FlinkUnavailable("no `java` on PATH (PyFlink needs Java 11 or later)")
    venv = CACHE / "venv"
    python = venv / "bin" / "python"
    marker = venv / "netready-installed.txt"
    if not (marker.exists() and marker.read_text().strip() == flink):
        log(f"#   installing apache-flink=={flink} into {venv} (first run only; ~700 MB)")
        shutil.rmtree(venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(venv)], "python -m venv")
        _run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
             f"pip install apache-flink=={flink}")
        marker.write_text(flink + "\n")
    jar = CACHE / "jars" / f"flink-sql-connector-kafka-{connector}.jar"
    if not jar.exists():
        if shutil.which("mvn") is None:
            raise FlinkUnavailable("no `mvn` on PATH to fetch flink-sql-connector-kafka")
        log(f"#   fetching flink-sql-connector-kafka {connector} with Maven")
        _run(["mvn", "-q", "-f", str(POM), "dependency:copy-dependencies",
              f"-DoutputDirectory={jar.parent}"], "mvn dependency:copy-dependencies")
        if not jar.exists():
            raise FlinkUnavailable(f"Maven did not produce {jar}")
    return python, jar
