#!/usr/bin/env bash
# `make up`: when BASE_IMAGE is the local Debian base (set by `make env` on a machine that
# cannot pull the registry's images) and it does not exist yet, make it (debootstrap, root).
set -euo pipefail
cd "$(dirname "$0")/.."
# Unset: compose.yaml's default, a public image (nothing to make here).
base=$(python3 scripts/dotenv_value.py BASE_IMAGE '')
local_base=mltoy/debian-python:bookworm
if [ "$base" = "$local_base" ] && ! docker image inspect "$base" >/dev/null 2>&1; then
  echo "ensure-base-image: $base is missing: making it (debootstrap, about a minute)"
  IMAGE=$base scripts/make-base-image.sh
fi
