#!/usr/bin/env bash
# The base images the project's Dockerfile and compose file name, built here because no image registry is
# reachable: a minimal Debian from Debian's own mirror (debootstrap, imported), then local stand-ins carrying
# the names python:3.11-slim and postgres:17. Each is rebuilt only when its inputs change (a label holds
# their hash), and the debootstrapped root filesystems are kept in $CACHE, so a second run takes seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
CACHE="${AGENT_BACKEND_IMAGE_CACHE:-/var/cache/agent-backend-images}"
MIRROR="${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
PYTHON_TAG="python:3.11-slim"   # Backend/Dockerfile's FROM
POSTGRES_TAG="postgres:17"      # docker-compose.yml's postgres image

log() { echo "bases: $*"; }

# A Debian suite as a local image: debootstrap (minbase) once into the cache, trimmed the way Debian's
# slim images are (no docs, man pages, locales, package lists), then `docker import`.
debian_base() {
    local suite="$1" tag="agent-backend-base/debian:$1"
    if docker image inspect "$tag" > /dev/null 2>&1; then
        return
    fi
    local tarball="$CACHE/debian-$suite-minbase.tar"
    if [ ! -s "$tarball" ]; then
        command -v debootstrap > /dev/null || { echo "bases: debootstrap is not installed" >&2; exit 1; }
        local root
        root="$(mktemp -d /var/tmp/agent-backend-rootfs.XXXXXX)"
        log "debootstrap $suite from $MIRROR"
        debootstrap --variant=minbase "$suite" "$root" "$MIRROR" > "$CACHE/debootstrap-$suite.log" 2>&1 || {
            tail -n 20 "$CACHE/debootstrap-$suite.log" >&2
            exit 1
        }
        printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-exclude /usr/share/man/*' \
            'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' 'path-include /usr/share/locale/locale.alias' \
            > "$root/etc/dpkg/dpkg.cfg.d/slim"
        printf '%s\n' 'APT::Install-Recommends "false";' 'APT::Install-Suggests "false";' > "$root/etc/apt/apt.conf.d/slim"
        rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
            "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
        find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
        tar -C "$root" --numeric-owner -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
        rm -rf "$root"
    fi
    log "importing $tag"
    docker import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' "$tarball" "$tag" > /dev/null
}

# A stand-in image from images/<name>.Dockerfile, rebuilt when that file or what it copies changes.
standin() {
    local name="$1" tag="$2"
    shift 2
    local hash
    hash="$(cat "$here/$name.Dockerfile" "$@" | sha256sum | cut -c1-16)"
    if [ "$(docker image inspect -f '{{ index .Config.Labels "agent-backend.standin" }}' "$tag" 2> /dev/null)" = "$hash" ]; then
        log "$tag: cached"
        return
    fi
    log "building the stand-in $tag"
    docker build --quiet --network host --label "agent-backend.standin=$hash" -f "$here/$name.Dockerfile" -t "$tag" "$here" > /dev/null
}

mkdir -p "$CACHE"
debian_base bookworm
debian_base trixie
standin python "$PYTHON_TAG"
standin postgres "$POSTGRES_TAG" "$here/postgres-entrypoint.sh"
