#!/usr/bin/env bash
# Build a local Debian 12 (bookworm) base image with python3 for machines that reach no
# container registry (`docker pull` fails there). Use it with:
#   docker build --build-arg BASE_IMAGE=mltoy/debian-python:bookworm ...
# Skips the build when the image already exists. Needs root (debootstrap) and a running
# Docker engine (scripts/install-docker.sh).
#
# Environment:
#   IMAGE    image name:tag to create  (default mltoy/debian-python:bookworm)
#   SUITE    Debian suite              (default bookworm)
#   MIRROR   Debian mirror (http)      (default http://deb.debian.org/debian)
#   TMPDIR   where the temporary root filesystem is built (default /tmp)
set -euo pipefail

IMAGE="${IMAGE:-mltoy/debian-python:bookworm}"
SUITE="${SUITE:-bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
EXPECTED_PY="3.11"

log() { printf '[make-base-image] %s\n' "$*"; }
die() { printf '[make-base-image] ERROR: %s\n' "$*" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "no Docker engine answers: run scripts/install-docker.sh first."

check_python() {
  local v
  v="$(docker run --rm --network none "$IMAGE" python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')" \
    || die "python3 does not run in $IMAGE."
  case "$v" in
    "$EXPECTED_PY".*) log "python3 in $IMAGE is $v (ok)." ;;
    *) die "python3 in $IMAGE is $v, expected $EXPECTED_PY.x (the lock files target $EXPECTED_PY)." ;;
  esac
}

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE already exists; not rebuilding (docker rmi it to force)."
  check_python
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "building $IMAGE with debootstrap needs root. Run this as root, or build with the public base instead (no --build-arg BASE_IMAGE)."

if ! command -v debootstrap >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "debootstrap is missing and there is no apt-get to install it."
  log "installing debootstrap (apt-get)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends debootstrap
fi

ROOTFS="$(mktemp -d "${TMPDIR:-/tmp}/mltoy-rootfs.XXXXXX")"
cleanup() {
  # debootstrap mounts proc/sys inside the target while it works; never rm -rf through a mount.
  local m
  for m in $(awk -v d="$ROOTFS/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$ROOTFS"
}
trap cleanup EXIT

log "debootstrap $SUITE (minbase + python3, python3-venv, ca-certificates) into $ROOTFS ..."
start=$SECONDS
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$SUITE" "$ROOTFS" "$MIRROR" >"$ROOTFS.log" 2>&1 || {
  tail -n 30 "$ROOTFS.log" >&2
  rm -f "$ROOTFS.log"
  die "debootstrap failed."
}
rm -f "$ROOTFS.log"
log "debootstrap done in $((SECONDS - start))s."

# Leave no package caches / lists in the image (apt-get update restores the lists), and
# drop translations and man pages (~40 MB; /usr/share/doc stays: it holds the licenses).
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin \
  "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.cache \
  "$ROOTFS"/usr/share/locale/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* 2>/dev/null || true

find "$ROOTFS/var/log" -type f -delete
log "importing as $IMAGE ..."
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --change "LABEL org.opencontainers.image.description=\"Debian $SUITE minbase + python3 (debootstrap, made by scripts/make-base-image.sh)\"" \
  --message "debootstrap --variant=minbase $SUITE $MIRROR" \
  - "$IMAGE" >/dev/null
log "imported $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')) in $((SECONDS - start))s total."
check_python
