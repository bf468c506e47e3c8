#!/usr/bin/env bash
# One-shot: register the deployments from the code in Git. Clones main from the stack's Git
# server (with the flows' read-only identity), seeds the DVC remote with the raw data, then
# registers the deployments of that clone's prefect.yaml (idempotent: a second run updates
# them; schedules and history stay).
set -euo pipefail
: "${MLTOY_IMAGE:?MLTOY_IMAGE names the image flow runs use}"
: "${MLTOY_NETWORK:?MLTOY_NETWORK names the network flow runs join}"
: "${MLTOY_SETTINGS_VOLUME:?MLTOY_SETTINGS_VOLUME names the remote-settings volume}"
: "${DVC_REMOTE_URL:?DVC_REMOTE_URL is the DVC remote (s3://... or gs://...)}"
: "${MLTOY_GIT_URL:?MLTOY_GIT_URL is the Git repository of the stack (flows clone it)}"
# Option B's task results (its stage cache) live beside the DVC remote by default.
export MLTOY_RESULTS_URL="${MLTOY_RESULTS_URL:-${DVC_REMOTE_URL%/*}/prefect-results}"
: "${PREFECT_UI_URL:?PREFECT_UI_URL is where a browser opens the Prefect UI}"
# MLflow tracking, set by compose.mlflow.yaml; empty (off) without it. prefect.yaml reads
# them all: an unset one would reach flow containers as its literal placeholder.
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-}"
export MLTOY_MLFLOW_UI_URL="${MLTOY_MLFLOW_UI_URL:-}"
export MLTOY_PROMOTION_METRIC="${MLTOY_PROMOTION_METRIC:-}"
# GCS (compose.gcs.yaml): an emulator's address (empty: Google's), and gcsfs's own default
# for its bucket-layout lookup (an emulator run turns it off: no emulator serves it).
export STORAGE_EMULATOR_HOST="${STORAGE_EMULATOR_HOST:-}"
export GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT="${GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT:-true}"
here="$(cd "$(dirname "$0")" && pwd)"

# Which deployment a push to main runs: a | b | both | none.
case "${MLTOY_PUSH_RUNS:-a}" in
  a) a=true b=false ;; b) a=false b=true ;; both) a=true b=true ;; none) a=false b=false ;;
  *) echo "deploy: error: MLTOY_PUSH_RUNS=$MLTOY_PUSH_RUNS: use a, b, both or none" >&2; exit 2 ;;
esac
export MLTOY_PUSH_TRIGGER_A=$a MLTOY_PUSH_TRIGGER_B=$b

src="$(mktemp -d)/project"
if ! git ls-remote --exit-code --heads "$MLTOY_GIT_URL" main >/dev/null; then
  echo "deploy: error: $MLTOY_GIT_URL has no main branch yet: push one (git push stack main;" \
    "make up does it for an empty repository), then run make deploy" >&2
  exit 1
fi
git clone --quiet --depth 1 --branch main "$MLTOY_GIT_URL" "$src"
cd "$src"
echo "deploy: registering the deployments of main at $(git log -1 --format='%h %s')"
dvc remote default --local storage

# The raw data: written from scikit-learn's copy, checked against its .dvc file, pushed.
python -m deploy.raw_data --push

"$here/ensure-pool.sh"
prefect --no-prompt deploy --all
python -m deploy.automations
prefect deployment ls
