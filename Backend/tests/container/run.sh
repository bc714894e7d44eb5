#!/usr/bin/env bash
# `make test-container`: the container path for real. Installs what is missing (Docker's engine, compose v2
# and buildx, debootstrap), starts a Docker engine of its own when none answers (unix socket only, no
# bridge network: containers use the host's network on loopback ports) and stops it at the end, builds the
# base images when not cached (images/bases.sh), then runs Backend/tests/container. Prints each step's time.
# Exit 77 (and one line saying why) when no engine can be had here, so that .ci/run can tell that from a
# failed test.
set -euo pipefail
cd "$(dirname "$0")/../../.."
PYTEST="${PYTEST:-.venv/bin/pytest}"
DOCKER_SOCKET=/var/run/docker.sock
ENGINE_LOG="${TMPDIR:-/tmp}/agent-backend-dockerd.log"
APT_LOG="${TMPDIR:-/tmp}/agent-backend-container-apt.log"
began=$SECONDS
step_began=$SECONDS

step() {
    echo "== $* (at ${SECONDS}s)"
    step_began=$SECONDS
}
done_step() { echo "   done in $((SECONDS - step_began)) s"; }
cannot() {
    echo "test-container: no container engine can be started here: $*" >&2
    exit 77
}

engine_answers() { docker info > /dev/null 2>&1; }

# compose v2 and buildx, which Debian bookworm does not package: Debian trixie's packages of them (Go
# binaries needing only libc 2.34+), fetched with apt itself from the machine's Debian mirror into a
# private apt state, so the system's package lists stay bookworm's.
install_cli_plugins() {
    local state mirror
    state="$(mktemp -d)"
    mirror="$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2> /dev/null | head -n 1)"
    mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/preferences.d"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror:-http://deb.debian.org/debian} trixie main" \
        > "$state/sources.list"
    local apt=(-o "Dir::Etc::SourceList=$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$state/lists" -o "Dir::Cache=$state/cache"
        -o Dir::Etc::Preferences=/dev/null -o "Dir::Etc::PreferencesParts=$state/preferences.d"
        -o APT::Sandbox::User=root) # the private state is root's; apt's _apt user could not write it
    # (called in an `||` list, where set -e does not apply: each step says its own failure)
    apt-get "${apt[@]}" update -qq || return 1
    (cd "$state" && apt-get "${apt[@]}" download docker-compose docker-buildx) || return 1
    dpkg -i "$state"/docker-compose_*.deb "$state"/docker-buildx_*.deb || return 1
    rm -rf "$state"
}

step "the container tools"
if ! engine_answers; then
    missing=()
    command -v dockerd > /dev/null || missing+=(docker.io)
    command -v debootstrap > /dev/null || missing+=(debootstrap)
    if [ "${#missing[@]}" -gt 0 ]; then
        [ "$(id -u)" = 0 ] || cannot "${missing[*]} not installed, and installing needs root"
        echo "   apt-get install ${missing[*]}"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
            > "$APT_LOG" 2>&1 || cannot "apt-get install ${missing[*]} failed (log: $APT_LOG)"
    fi
fi
command -v debootstrap > /dev/null || {
    [ "$(id -u)" = 0 ] || cannot "debootstrap not installed, and installing needs root"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap > "$APT_LOG" 2>&1 ||
        cannot "apt-get install debootstrap failed (log: $APT_LOG)"
}
if ! docker compose version > /dev/null 2>&1 || ! docker buildx version > /dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || cannot "docker compose v2 / buildx missing, and installing needs root"
    echo "   installing the compose v2 and buildx CLI plugins (Debian trixie's packages)"
    install_cli_plugins > "$APT_LOG" 2>&1 || cannot "could not install docker compose v2 / buildx (log: $APT_LOG)"
fi
echo "   $(docker compose version), buildx $(docker buildx version | cut -d' ' -f2)"
done_step

step "the Docker engine"
ours=""
if engine_answers; then
    echo "   one answers already on $(docker context inspect --format '{{.Endpoints.docker.Host}}' 2> /dev/null): using it, leaving it running"
else
    [ "$(id -u)" = 0 ] || cannot "no engine answers and starting dockerd needs root"
    # Unix socket only; no bridge network (its private addresses are not to be used here) and so no NAT
    # rules: every test container runs with host networking on loopback ports.
    dockerd --host "unix://$DOCKER_SOCKET" --bridge=none --iptables=false > "$ENGINE_LOG" 2>&1 &
    ours=$!
    stop_engine() {
        echo "== stopping the Docker engine (pid $ours)"
        kill -TERM "$ours" 2> /dev/null || true
        wait "$ours" 2> /dev/null || true
        echo "== test-container took $((SECONDS - began)) s"
    }
    trap stop_engine EXIT
    for _ in $(seq 1 60); do
        engine_answers && break
        kill -0 "$ours" 2> /dev/null || cannot "dockerd exited at start: $(tail -n 3 "$ENGINE_LOG")"
        sleep 0.5
    done
    engine_answers || cannot "dockerd did not answer within 30 s: $(tail -n 3 "$ENGINE_LOG")"
    echo "   dockerd $(docker version --format '{{.Server.Version}}') (pid $ours), log $ENGINE_LOG"
fi
done_step

step "the base images (python:3.11-slim and postgres:17 stand-ins)"
Backend/tests/container/images/bases.sh
done_step

step "the container tests"
set +e
RUN_CONTAINER_TESTS=1 "$PYTEST" Backend/tests/container -v --durations=0 -p no:cacheprovider
status=$?
set -e
done_step
[ -n "$ours" ] || echo "== test-container took $((SECONDS - began)) s"
exit "$status"
