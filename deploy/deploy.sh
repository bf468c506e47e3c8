#!/usr/bin/env bash
# One-shot: seed the DVC remote with the raw data, then register the deployments of
# prefect.yaml (idempotent: a second run updates them; schedules and history stay).
set -euo pipefail
cd "${MLTOY_PROJECT_DIR:-/app}"
: "${MLTOY_IMAGE:?MLTOY_IMAGE names the image flow runs use}"
: "${MLTOY_NETWORK:?MLTOY_NETWORK names the network flow runs join}"
: "${MLTOY_SETTINGS_VOLUME:?MLTOY_SETTINGS_VOLUME names the remote-settings volume}"
: "${DVC_REMOTE_URL:?DVC_REMOTE_URL is the DVC remote (s3://... or gs://...)}"
# Option B's task results (its stage cache) live beside the DVC remote by default.
export MLTOY_RESULTS_URL="${MLTOY_RESULTS_URL:-${DVC_REMOTE_URL%/*}/prefect-results}"

# The raw data: written from scikit-learn's copy, checked against its .dvc file, pushed.
python -m deploy.raw_data --push

"$(dirname "$0")/ensure-pool.sh"
prefect --no-prompt deploy --all
python -m deploy.automations
prefect deployment ls
