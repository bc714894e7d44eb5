#!/bin/sh
# Container start: wait for the database, apply the migrations, then run the given command (by default the
# health server). A command that needs no database (`migrate --help`, `migrate --version`, `migrate new`,
# `migrate lint`, a bare `migrate`) runs at once, without either step. Every replica runs this; the runner's
# advisory lock makes concurrent applies safe, and a replica that finds the work done by another applies
# nothing. A failed step stops the container with the
# runner's own message (file, line, SQLSTATE) and its exit code, and the command never starts.
set -eu

log() { echo "entrypoint: $*" >&2; }

needs_database() {
    [ "$#" -eq 0 ] && return 0 # the default command, the health server
    [ "$1" = "migrate" ] || return 0 # another program: it may well use the database
    shift
    [ "$#" -eq 0 ] && return 1 # the usage
    [ "$1" = "--version" ] && return 1 # (after a command, --version is an option: `baseline --version N`)
    for arg in "$@"; do
        case "$arg" in -h | --help) return 1 ;; esac
    done
    case "$1" in new | lint) return 1 ;; esac
    return 0
}

if ! needs_database "$@"; then
    exec "$@"
fi

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
