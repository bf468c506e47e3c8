#!/usr/bin/env bash
# Docker worker: make sure its work pool exists, then poll it for flow runs.
set -euo pipefail
: "${MLTOY_WORK_POOL:?MLTOY_WORK_POOL names the Docker work pool}"

"$(dirname "$0")/ensure-pool.sh"
# --with-healthcheck serves /health on :8080, which the compose healthcheck polls.
exec prefect worker start --pool "$MLTOY_WORK_POOL" --type docker --with-healthcheck \
  --name "worker-$(hostname)"
