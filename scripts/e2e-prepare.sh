#!/usr/bin/env bash
# Make this machine ready for the end-to-end suite, and build its images once.
# Prints the settings the suite must use (KEY=VALUE on stdout); progress goes to stderr.
#  - a Docker engine + Compose v2 (scripts/install-docker.sh);
#  - a Chromium for the UI tests (scripts/install-chromium.sh; without one they skip, saying why);
#  - the public base image if it can be pulled, else a local Debian one (debootstrap);
#  - the Docker socket proxy (docker/socket-proxy) and the Git server (docker/git-server),
#    always built here;
#  - MinIO if it can be pulled, else the locally built S3 stand-in (compose.standin.yaml);
#  - PostgreSQL likewise: the official image, else the local stand-in (docker/postgres-standin);
#  - the MLflow tracking server (docker/mlflow): the suite's stack runs with compose.mlflow.yaml.
#  - the GCS stand-in (docker/gcs-standin): the gs:// remote's test (tests/e2e/test_gcs_remote.py).
#  - the registry (docker/registry) and a second Docker engine (docker/engine-standin):
#    workers on two engines (tests/e2e/test_scale_out.py).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[e2e-prepare] %s\n' "$*" >&2; }
available() { docker image inspect "$1" >/dev/null 2>&1 || timeout 120 docker pull -q "$1" >/dev/null 2>&1; }

scripts/install-docker.sh >&2
scripts/install-chromium.sh >&2 || log "no Chromium: the UI tests (tests/e2e/test_ui.py) will skip"

# Image names and tags have one source: the defaults in compose.yaml (and, for the
# stand-ins and MLflow, compose.standin.yaml and compose.mlflow.yaml), read with
# `docker compose config --variables` (which needs no .env). MLTOY_IMAGE_TAG gives the
# images built here another tag, so several checkouts can share one engine; each name can
# also be set outright.
compose_default() {  # VARIABLE [OVERRIDE FILE]: the value compose uses when VARIABLE is unset
  local value
  value=$(docker compose -f compose.yaml ${2:+-f "$2"} config --variables |
    awk -v name="$1" '$1 == name { print $3 }')
  [ -n "$value" ] || { log "compose.yaml${2:+ + $2} gives $1 no default"; return 1; }
  echo "$value"
}
ours() {  # VARIABLE [OVERRIDE FILE]: compose's default for one of our images, retagged
  local image
  image=$(compose_default "$@")
  if [ -n "${MLTOY_IMAGE_TAG:-}" ]; then image=${image%:*}:$MLTOY_IMAGE_TAG; fi
  echo "$image"
}
MLTOY_IMAGE=${MLTOY_IMAGE:-$(ours MLTOY_IMAGE)}
PROXY_IMAGE=${PROXY_IMAGE:-$(ours PROXY_IMAGE)}
GIT_IMAGE=${GIT_IMAGE:-$(ours GIT_IMAGE)}
MLFLOW_IMAGE=${MLFLOW_IMAGE:-$(ours MLFLOW_IMAGE compose.mlflow.yaml)}
STANDIN_IMAGE=${STANDIN_IMAGE:-$(ours S3_IMAGE compose.standin.yaml)}
POSTGRES_STANDIN_IMAGE=${POSTGRES_STANDIN_IMAGE:-$(ours POSTGRES_IMAGE compose.standin.yaml)}
GCS_STANDIN_IMAGE=${GCS_STANDIN_IMAGE:-$(ours GCS_STANDIN_IMAGE tests/e2e/compose.gcs-emulator.yaml)}
REGISTRY_IMAGE=${REGISTRY_IMAGE:-$(ours REGISTRY_IMAGE compose.registry.yaml)}
# A second Docker engine for the scale-out test (no compose file names it).
ENGINE_STANDIN_IMAGE=${ENGINE_STANDIN_IMAGE:-mltoy/engine-standin:${MLTOY_IMAGE_TAG:-0.1.0}}
PUBLIC_BASE=${PUBLIC_BASE:-$(compose_default BASE_IMAGE)}
MINIO_IMAGE=${MINIO_IMAGE:-$(compose_default S3_IMAGE)}
OFFICIAL_POSTGRES=${OFFICIAL_POSTGRES:-$(compose_default POSTGRES_IMAGE)}
LOCAL_BASE=${LOCAL_BASE:-mltoy/debian-python:bookworm}

if available "$PUBLIC_BASE"; then
  base=$PUBLIC_BASE
else
  log "$PUBLIC_BASE cannot be pulled (no registry?): using a local Debian base"
  IMAGE=$LOCAL_BASE scripts/make-base-image.sh >&2
  base=$LOCAL_BASE
fi

scripts/stage-ca-certs.sh >&2
log "building $MLTOY_IMAGE on $base"
docker build -q -f docker/Dockerfile --build-arg BASE_IMAGE="$base" \
  --build-arg LOCK_SHA256="$(sha256sum requirements.lock | cut -c1-64)" -t "$MLTOY_IMAGE" . >&2
log "building the Docker socket proxy $PROXY_IMAGE on $base"
docker build -q -f docker/socket-proxy/Dockerfile --build-arg BASE_IMAGE="$base" \
  -t "$PROXY_IMAGE" . >&2
log "building the Git server $GIT_IMAGE on $base"
docker build -q -f docker/git-server/Dockerfile --build-arg BASE_IMAGE="$base" \
  -t "$GIT_IMAGE" . >&2
log "building the MLflow server $MLFLOW_IMAGE on $base"
docker build -q -f docker/mlflow/Dockerfile --build-arg BASE_IMAGE="$base" \
  -t "$MLFLOW_IMAGE" . >&2
# No GCS here: the gs:// remote is tested against an emulator (tests/e2e/test_gcs_remote.py).
log "building the GCS stand-in $GCS_STANDIN_IMAGE on $base"
docker build -q -f docker/gcs-standin/Dockerfile --build-arg BASE_IMAGE="$base" \
  -t "$GCS_STANDIN_IMAGE" . >&2
# Workers on another host (tests/e2e/test_scale_out.py): the registry, and a second engine.
log "building the registry $REGISTRY_IMAGE and the second engine $ENGINE_STANDIN_IMAGE on $base"
docker build -q -f docker/registry/Dockerfile --build-arg BASE_IMAGE="$base" \
  -t "$REGISTRY_IMAGE" . >&2
docker build -q -f docker/engine-standin/Dockerfile --build-arg BASE_IMAGE="$base" \
  -t "$ENGINE_STANDIN_IMAGE" . >&2

# The official image if it can be pulled, else the stand-in built here (same contract:
# compose.yaml needs only the image name). Prints the image to use.
official_or_standin() {  # OFFICIAL STANDIN DOCKERFILE WHAT
  if available "$1"; then
    echo "$1"
  else
    log "$1 cannot be pulled: building the $4 stand-in $2"
    docker build -q -f "$3" --build-arg BASE_IMAGE="$base" -t "$2" . >&2
    echo "$2"
  fi
}

S3_IMAGE=$(official_or_standin "$MINIO_IMAGE" "$STANDIN_IMAGE" docker/s3-standin/Dockerfile S3)
echo "S3_IMAGE=$S3_IMAGE"
# The suite's one stack has MLflow on (its tests need it; tests/e2e/test_mlflow_setting.py
# shows the default stack without it is unchanged).
if [ "$S3_IMAGE" = "$MINIO_IMAGE" ]; then
  echo "COMPOSE_FILES=compose.yaml:compose.mlflow.yaml"
else
  echo "COMPOSE_FILES=compose.yaml:compose.standin.yaml:compose.mlflow.yaml"
fi
POSTGRES_IMAGE=$(official_or_standin "$OFFICIAL_POSTGRES" "$POSTGRES_STANDIN_IMAGE" \
  docker/postgres-standin/Dockerfile PostgreSQL)
echo "POSTGRES_IMAGE=$POSTGRES_IMAGE"
echo "BASE_IMAGE=$base"
echo "MLTOY_IMAGE=$MLTOY_IMAGE"
echo "PROXY_IMAGE=$PROXY_IMAGE"
echo "GIT_IMAGE=$GIT_IMAGE"
echo "MLFLOW_IMAGE=$MLFLOW_IMAGE"
echo "GCS_STANDIN_IMAGE=$GCS_STANDIN_IMAGE"
echo "REGISTRY_IMAGE=$REGISTRY_IMAGE"
echo "ENGINE_STANDIN_IMAGE=$ENGINE_STANDIN_IMAGE"
