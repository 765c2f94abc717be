#!/bin/sh
# Entrypoint of the audit-app's PostgreSQL (runbooks sandbox), run by busybox sh as the postgres user.
# First start: initdb (trust auth: it is a sandbox), the audit_app database and schema (/etc/audit-app/init.sql),
# then the server in the foreground on 127.0.0.1:$PGPORT. Later starts (docker restart) keep the data.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${PGPORT:=5432}"
: "${PG_MAX_CONNECTIONS:=50}"
marker="$PGDATA/audit-app.initialized"

if [ ! -f "$marker" ]; then
  # No marker: never initialised, or a first start that died half-way. Start over.
  rm -rf "$PGDATA"
  echo "audit-app-postgres: initdb $PGDATA"
  initdb -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync --no-instructions >/dev/null
  echo "include '/etc/audit-app/postgresql.conf'" >>"$PGDATA/postgresql.conf"
  # Set up over the unix socket only, so nobody connects to a half-made database.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c port=$PGPORT" -w -t 60 -s start
  psql -X -q -v ON_ERROR_STOP=1 -U postgres -d postgres -f /etc/audit-app/init.sql
  pg_ctl -D "$PGDATA" -m fast -w -s stop
  touch "$marker"
  echo "audit-app-postgres: database audit_app ready"
fi

exec postgres -D "$PGDATA" -c listen_addresses=127.0.0.1 -c port="$PGPORT" -c max_connections="$PG_MAX_CONNECTIONS" "$@"
