#!/usr/bin/env bash
# Builds the project's virtualenv from the lock file: the only way the host env is made.
# Usage: scripts/setup-venv.sh [LOCK]   (env: VENV=.venv PYTHON=python3)
set -euo pipefail
cd "$(dirname "$0")/.."

LOCK=${1:-requirements-dev.lock}
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
# uv's one pin is the dev lock's (pyproject.toml's dev extra); the images read it there too.
UV_VERSION=$(sed -n 's/^uv==//p' requirements-dev.lock)

if ! command -v "$PYTHON" >/dev/null; then
  echo "setup: $PYTHON not found; install Python 3.11 (Debian 12: apt-get install python3)" >&2
  exit 1
fi
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$version" != "3.11" ]; then
  echo "setup: need Python 3.11 (the lock is for 3.11), $PYTHON is $version; set PYTHON=python3.11" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  else
    echo "setup: Python's venv module is missing; on Debian/Ubuntu: sudo apt-get install python3-venv" >&2
    exit 1
  fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
if [ "$("$VENV/bin/uv" --version 2>/dev/null)" != "uv $UV_VERSION" ]; then
  "$VENV/bin/python" -m pip --version >/dev/null 2>&1 || "$VENV/bin/python" -m ensurepip --upgrade >/dev/null
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
# uv trusts the system CA store (corporate TLS proxies add their CA there).
export UV_NATIVE_TLS=1
"$VENV/bin/uv" pip sync --quiet --compile-bytecode --python "$VENV/bin/python" "$LOCK"
"$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --no-deps --editable .
echo "setup: $VENV ready from $LOCK"
