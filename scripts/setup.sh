#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian machine: system packages, a virtualenv in
# .venv, netready installed with its compiled kernel. Fails loudly if the
# kernel did not build: there is no pure-Python fallback.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

apt_install() {
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    if ((${#missing[@]})); then
        echo "setup: installing ${missing[*]}" >&2
        if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# A C++ compiler for the kernel; a CJK font so charts show Chinese metro names;
# docker-compose (no engine needed) so tests can validate docker-compose.yml;
# openssl so the security tests can make their CA and broker certificates.
if command -v apt-get >/dev/null; then
    apt_install g++ fonts-wqy-microhei docker-compose openssl
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel
.venv/bin/python -m pip install -q "cython>=3.0" "numpy>=1.26"
.venv/bin/python -m pip install -q --no-build-isolation -e ".[test]"
.venv/bin/python - <<'PY'
import pipeline._kernel as k
assert k.__file__.endswith(".so"), k.__file__
print(f"setup: compiled kernel ok ({k.__file__})")
PY
