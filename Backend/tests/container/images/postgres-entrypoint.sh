#!/bin/sh
# The official postgres image's contract, in short: on an empty $PGDATA, initdb with POSTGRES_USER (default
# postgres) and POSTGRES_PASSWORD, create POSTGRES_DB (default: the user's name), accept password logins
# from anywhere; then run the server as the postgres user. PGPORT, when set, is the port (as for the real
# image, whose server and pg_isready both read it).
set -eu
if [ "${1:-}" = "postgres" ] && [ "$(id -u)" = "0" ]; then
    install -d -o postgres -g postgres -m 700 "$PGDATA"
    install -d -o postgres -g postgres -m 2775 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "${1:-}" = "postgres" ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?the database is uninitialized and POSTGRES_PASSWORD is not set}"
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --no-instructions > /dev/null
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "$db" != "postgres" ]; then
        pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start > /dev/null
        psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres -qc "CREATE DATABASE \"$db\""
        pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null
    fi
    echo "PostgreSQL init process complete; ready for start up."
fi
exec "$@"
