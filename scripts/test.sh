#!/usr/bin/env bash
# The full test suite: set up, start the local servers (Kafka, ClickHouse
# server, Alertmanager), run every test, stop the servers again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

started_stack=0
cleanup() {
    if [ "$started_stack" = 1 ]; then bash scripts/stack.sh down || true; fi
}
trap cleanup EXIT
if [ "${NETREADY_SKIP_STACK:-0}" != 1 ]; then
    bash scripts/stack.sh up
    started_stack=1
    export NETREADY_REQUIRE_STACK=1
fi
.venv/bin/python -m pytest -q --durations=25 "$@"
