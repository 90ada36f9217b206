#!/usr/bin/env bash
# Makes sure a PostgreSQL server is reachable on 127.0.0.1:5432 and prints a URL for the
# tests (WORKFLOW_TEST_PG_URL). Uses the server already running there (trust auth, as on the
# project's CI machines); otherwise installs Debian's postgresql, starts it, and gives the
# postgres user a password for TCP logins. Messages go to stderr; only the URL to stdout.
set -euo pipefail

port_open() {
  python3 - "$@" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("127.0.0.1", 5432))
except OSError:
    sys.exit(1)
PY
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi
}

if ! port_open; then
  echo "PostgreSQL: nothing on 127.0.0.1:5432; installing Debian's postgresql" >&2
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
  fi
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  pg_ctlcluster "$version" main start >&2 || service postgresql start >&2
  for _ in $(seq 1 60); do port_open && break; sleep 0.5; done
  port_open || { echo "PostgreSQL did not start" >&2; exit 1; }
fi

if command -v psql >/dev/null 2>&1 && psql -h 127.0.0.1 -U postgres -d postgres -w -Atc 'select 1' >/dev/null 2>&1; then
  echo "postgres://postgres@127.0.0.1:5432/postgres"
  exit 0
fi
# Password authentication over TCP (Debian's default): set a known password.
as_postgres "psql -q -c \"ALTER USER postgres PASSWORD 'workflow-ci'\"" >&2
echo "postgres://postgres:workflow-ci@127.0.0.1:5432/postgres"
