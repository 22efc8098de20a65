"""docker-compose.yml stays valid and pinned (validated by Debian's docker-compose; no engine needed)."""
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"


def test_compose_file_is_valid():
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed; scripts/setup.sh installs it")
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr


def test_images_are_pinned_and_ports_local():
    spec = yaml.safe_load(COMPOSE.read_text())
    for name, service in spec["services"].items():
        image = service.get("image")
        if image:
            assert ":" in image and not image.endswith(":latest"), f"{name} image not pinned: {image}"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
    assert {"kafka", "clickhouse", "grafana"} <= set(spec["services"])
