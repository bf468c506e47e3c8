#!/usr/bin/env bash
# Create the Docker work pool, or reset it, with the bundle's base job template
# (deploy/work_pool.py: what deployments and runs may set, what the pool fixes).
# Run by the worker at start and by the deploy step: a template changed through the
# API is put back at the next start (the socket proxy enforces it in between).
set -euo pipefail
: "${MLTOY_WORK_POOL:?MLTOY_WORK_POOL names the Docker work pool}"

template=$(mktemp --suffix=.json)
trap 'rm -f "$template"' EXIT
python -m deploy.work_pool >"$template"
# --overwrite: create it, or update the template of the pool that exists.
prefect --no-prompt work-pool create "$MLTOY_WORK_POOL" --type docker \
  --base-job-template "$template" --overwrite >/dev/null
echo "work pool $MLTOY_WORK_POOL: base job template applied"
