#!/usr/bin/env bash
# Writes the registry's htpasswd (bcrypt) from the password file, then serves.
# HTPASSWD_USER: the one user; HTPASSWD_PASSWORD_FILE: a file holding its password (a
# compose secret: the password is in no environment variable and no `docker inspect`).
set -euo pipefail
: "${HTPASSWD_USER:?HTPASSWD_USER is required - the registry user}"
: "${HTPASSWD_PASSWORD_FILE:?HTPASSWD_PASSWORD_FILE is required - a file holding the registry password}"
password="$(cat "$HTPASSWD_PASSWORD_FILE")"
if [ -z "$password" ]; then
  echo "registry: error: $HTPASSWD_PASSWORD_FILE is empty: set REGISTRY_PASSWORD in .env" >&2
  exit 1
fi
umask 077
# -i: the password from stdin, never on a command line.
printf '%s' "$password" | htpasswd -niB "$HTPASSWD_USER" > /tmp/htpasswd
# Signs upload state between requests; one instance, so a random one per start is enough.
REGISTRY_HTTP_SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d '[:space:]')"
export REGISTRY_HTTP_SECRET
exec docker-registry serve /etc/mltoy-registry/config.yml
