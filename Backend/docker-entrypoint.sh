#!/bin/sh
# Container start: wait for the database, apply the migrations, then run the given command (by default the
# health server). Every replica runs this; the runner's advisory lock makes concurrent applies safe, and a
# replica that finds the work done by another applies nothing. A failed step stops the container with the
# runner's own message (file, line, SQLSTATE) and its exit code, and the command never starts.
set -eu

log() { echo "entrypoint: $*" >&2; }

if [ "${MIGRATE_ON_START:-1}" = "1" ]; then
    log "waiting for the database (up to ${MIGRATE_WAIT_TIMEOUT:-60} s)"
    migrate wait --timeout "${MIGRATE_WAIT_TIMEOUT:-60}" || {
        code=$?
        log "the database did not become reachable (exit $code); not starting"
        exit "$code"
    }
    log "applying migrations"
    migrate apply || {
        code=$?
        log "migrations failed (exit $code); not starting."
        exit "$code"
    }
else
    log "MIGRATE_ON_START=$MIGRATE_ON_START: not applying migrations"
fi

if [ "$#" -eq 0 ]; then
    set -- migrate serve-health
fi
log "starting: $*"
exec "$@"
