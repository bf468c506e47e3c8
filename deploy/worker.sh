#!/usr/bin/env bash
# Docker worker: make sure its work pool exists, then poll it for flow runs.
set -euo pipefail
: "${MLTOY_WORK_POOL:?MLTOY_WORK_POOL names the Docker work pool}"

"$(dirname "$0")/ensure-pool.sh"
# MLTOY_WORKER_LIMIT: at most this many of its runs at once (empty: no limit of its own;
# the deployments' concurrency limits apply either way). One per host: its cores.
limit=()
if [ -n "${MLTOY_WORKER_LIMIT:-}" ]; then limit=(--limit "$MLTOY_WORKER_LIMIT"); fi
# --with-healthcheck serves /health on :8080, which the compose healthcheck polls.
exec prefect worker start --pool "$MLTOY_WORK_POOL" --type docker --with-healthcheck \
  --name "worker-$(hostname)" "${limit[@]}"
