#!/usr/bin/env bash
# A worker of this stack on another Docker host (compose.worker-host.yaml), run from the
# stack's host with its .env:
#   make worker-join WORKER_HOST=ssh://user@host2     (docker -H syntax; ssh needs only
#                                                      Docker and SSH access on host2)
#   make worker-leave WORKER_HOST=ssh://user@host2
# Join: logs that engine in to the stack's registry (a temporary client config, removed
# after), copies the flows' settings volume (bucket-scoped S3 key, DVC remote, Git
# identity) to it, and brings up the socket proxy and the worker there, pulling their
# images. MLTOY_WORKER_LIMIT caps the runs that worker takes at once (its host's cores).
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:-join}
: "${WORKER_HOST:?WORKER_HOST is the other host Docker engine, e.g. ssh://user@host2 (docker -H syntax)}"
value() { python3 scripts/dotenv_value.py "$@"; }
image=$(value MLTOY_IMAGE mltoy/bundle:0.1.0)
registry=${image%%/*}
volume=$(value MLTOY_SETTINGS_VOLUME mltoy-remote-settings)
project="$(value COMPOSE_PROJECT_NAME mltoy)-worker"
config=$(mktemp -d)
trap 'rm -rf "$config"' EXIT
# The CLI looks for plugins (compose) in its config directory too.
plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
if [ -d "$plugins" ]; then ln -s "$plugins" "$config/cli-plugins"; fi
remote() { docker --config "$config" -H "$WORKER_HOST" "$@"; }
compose() {
  DOCKER_CONFIG="$config" DOCKER_HOST="$WORKER_HOST" \
    docker compose -p "$project" --env-file .env -f compose.worker-host.yaml "$@"
}

if [ "$action" = leave ]; then
  compose down --remove-orphans --timeout 10
  remote volume rm "$volume" >/dev/null
  echo "worker-join: the worker on $WORKER_HOST is gone (its images stay)"
  exit 0
fi

case "$registry" in
  *.*|*:*) ;;
  *) echo "worker-join: error: MLTOY_IMAGE=$image is in no registry: add compose.registry.yaml" \
       "and name the images in it (docs/scale-out.md)" >&2; exit 2 ;;
esac
# (It warns that the credentials are stored unencrypted: in $config, removed at exit.)
if ! said=$(value REGISTRY_PASSWORD "" | remote login --username "$(value REGISTRY_USER mltoy)" \
  --password-stdin "$registry" 2>&1); then
  echo "worker-join: error: $WORKER_HOST cannot log in to $registry: $said" >&2
  exit 1
fi
remote pull --quiet "$image" >/dev/null
# The settings, as the stack's remote-init wrote them (files and modes), into a volume of
# the same name there.
remote volume create "$volume" >/dev/null
docker run --rm --network none -v "$volume:/from:ro" --entrypoint tar "$image" -C /from -c . |
  remote run --rm -i --network none -v "$volume:/run/mltoy" --entrypoint tar "$image" \
    -C /run/mltoy -x -p
# The group of that engine's socket, for its (non-root) socket proxy.
gid=$(remote run --rm --network none -v /var/run/docker.sock:/docker.sock:ro \
  --entrypoint stat "$image" -c %g /docker.sock)
DOCKER_GID=$gid compose up -d --wait --quiet-pull
echo "worker-join: a worker on $WORKER_HOST polls pool $(value MLTOY_WORK_POOL mltoy-docker)" \
  "(limit: ${MLTOY_WORKER_LIMIT:-none})"
