#!/usr/bin/env bash
# Create the Docker work pool unless it exists (`work-pool create` fails if it does).
set -euo pipefail
: "${MLTOY_WORK_POOL:?MLTOY_WORK_POOL names the Docker work pool}"

if prefect work-pool inspect "$MLTOY_WORK_POOL" >/dev/null 2>&1; then
  echo "work pool $MLTOY_WORK_POOL exists"
elif ! prefect work-pool create "$MLTOY_WORK_POOL" --type docker; then
  # Another container may have created it in the meantime: fine if it exists now.
  prefect work-pool inspect "$MLTOY_WORK_POOL" >/dev/null
fi
