#!/usr/bin/env bash
# The main job on the embedded default: set up, simulate telemetry, ingest it
# into embedded ClickHouse (chdb) and print the coverage report + chart.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/netready demo "$@"
