#!/usr/bin/env bash
# Stage extra CA certificates (e.g. a corporate TLS proxy's root) into docker/certs/ so
# the images trust them (docker/Dockerfile runs update-ca-certificates over that folder).
# Public certificates only: files holding a private key are refused. docker/certs/ is
# git-ignored except its .gitignore. With no source certificates, the folder is just left
# empty and the images use the normal public CA bundle.
#
# Environment:
#   CA_CERTS_SRC   directory searched (recursively) for *.crt files
#                  (default /usr/local/share/ca-certificates, Debian's place for extra CAs)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CA_CERTS_SRC="${CA_CERTS_SRC:-/usr/local/share/ca-certificates}"
DEST="$REPO_ROOT/docker/certs"

log() { printf '[stage-ca-certs] %s\n' "$*"; }
die() { printf '[stage-ca-certs] ERROR: %s\n' "$*" >&2; exit 1; }

mkdir -p "$DEST"
printf '*\n!.gitignore\n' >"$DEST/.gitignore"
# Start from a clean slate so removed source certificates do not linger.
find "$DEST" -mindepth 1 -maxdepth 1 ! -name .gitignore -exec rm -rf {} +

if [ ! -d "$CA_CERTS_SRC" ]; then
  log "no $CA_CERTS_SRC: no extra CA certificates staged (images use the public CA bundle)."
  exit 0
fi

n=0
while IFS= read -r -d '' f; do
  if grep -q 'PRIVATE KEY' "$f"; then
    die "$f contains a private key: refusing to stage it (only public CA certificates belong in an image)."
  fi
  grep -q 'BEGIN CERTIFICATE' "$f" || die "$f is not a PEM certificate (update-ca-certificates needs PEM *.crt files)."
  # Flatten sub-folders into unique names; update-ca-certificates only wants *.crt.
  rel="${f#"$CA_CERTS_SRC"/}"
  cp -- "$f" "$DEST/${rel//\//_}"
  chmod 0644 "$DEST/${rel//\//_}"
  n=$((n + 1))
done < <(find -L "$CA_CERTS_SRC" -type f -name '*.crt' -print0 | sort -z)

if [ "$n" -eq 0 ]; then
  log "no *.crt under $CA_CERTS_SRC: no extra CA certificates staged."
else
  log "staged $n CA certificate(s) from $CA_CERTS_SRC into ${DEST#"$REPO_ROOT"/}/:"
  find "$DEST" -maxdepth 1 -name '*.crt' -printf '  %f\n' | sort
fi
