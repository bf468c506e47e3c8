#!/bin/sh
# The official postgres image's start-up contract, for the stand-in (see Dockerfile):
# on the first start (empty PGDATA) initdb with POSTGRES_USER/POSTGRES_PASSWORD, create
# POSTGRES_DB, allow password logins from the network; then run the server in the
# foreground. During the one-time set-up the server listens on its socket only, so a
# TCP healthcheck (pg_isready -h 127.0.0.1) does not pass before it is done.
set -eu

if [ "${1:-}" != "postgres" ]; then
  exec "$@"
fi

: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "postgres-standin: initialising $PGDATA for user $POSTGRES_USER, database $POSTGRES_DB"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  {
    echo "host all all all scram-sha-256"
  } >> "$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses=''" --wait --silent start
  if [ "$POSTGRES_DB" != "postgres" ]; then
    psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres \
      --set db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
  fi
  pg_ctl --pgdata="$PGDATA" --mode=fast --wait --silent stop
  echo "postgres-standin: initialised"
fi

exec "$@"
