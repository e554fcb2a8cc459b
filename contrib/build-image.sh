#!/bin/sh
# Build the alertik image without a container registry: make the Debian base
# with debootstrap, import it under a local name, build with buildah.
#
#   contrib/build-image.sh [PLATFORM ...]     (default: linux/amd64)
#
# PLATFORM is linux/amd64, linux/arm64, linux/arm/v7 or linux/arm/v5. Needs
# root and Debian's buildah, podman, runc, debootstrap and (for the ARM
# platforms) qemu-user-static with binfmt_misc. Everything it makes stays under
# $WORK (default /var/tmp/alertik-image): the base root file systems, their
# tarballs and a containers.conf. The images are tagged
# localhost/alertik:$TAG-ARCH and gathered in the manifest list
# localhost/alertik:$TAG. See docs/CONTAINER.md.
#
# Environment:
#   WORK       where the bases and the containers.conf go
#   TAG        the image tag (default: local)
#   MIRROR     the Debian mirror (default: http://deb.debian.org/debian)
#   SUITES     the suites the base's apt uses (default: trixie trixie-updates,
#              plus trixie-security); set SUITES=trixie when a mirror's
#              update indexes are out of step with its Release files
#   PIP_CERT   a CA bundle for pip, behind a TLS-inspecting proxy
set -eu

WORK=${WORK:-/var/tmp/alertik-image}
TAG=${TAG:-local}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITES=${SUITES:-trixie trixie-updates}
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}
RELEASE=trixie
HERE=$(cd "$(dirname "$0")/.." && pwd)

[ "$(id -u)" = 0 ] || { echo "build-image: run as root (buildah, debootstrap)" >&2; exit 2; }
for tool in buildah podman debootstrap tar; do
    command -v "$tool" >/dev/null || { echo "build-image: $tool is missing (apt-get install $tool)" >&2; exit 2; }
done
[ $# -gt 0 ] || set -- linux/amd64

mkdir -p "$WORK"
# runc and cgroupfs work where systemd does not run; the default limits of
# files and processes can be above what an unprivileged sandbox allows.
export CONTAINERS_CONF="$WORK/containers.conf"
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=8192:8192"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF

base() {  # base DEBIAN_ARCH OCI_ARCH VARIANT: the local debian:trixie-slim
    arch=$1 name=localhost/debian:$RELEASE-slim-$1
    root="$WORK/rootfs-$arch"
    if ! buildah inspect --type image "$name" >/dev/null 2>&1; then
        if [ ! -x "$root/usr/bin/apt-get" ]; then
            echo "build-image: debootstrap $RELEASE for $arch" >&2
            nice -n 10 debootstrap --variant=minbase --arch="$arch" \
                "$RELEASE" "$root" "$MIRROR" >"$WORK/debootstrap-$arch.log" 2>&1 || {
                grep '^E:' "$WORK/debootstrap-$arch.log" >&2
                echo "build-image: debootstrap failed; the log is $WORK/debootstrap-$arch.log" >&2
                rm -rf "$root"
                exit 1
            }
        fi
        rm -f "$root/etc/apt/sources.list"
        {
            printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n' "$MIRROR" "$SUITES"
            printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
            if [ "$SUITES" != "$RELEASE" ]; then
                printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\n' "$SECURITY" "$RELEASE"
                printf 'Components: main\n'
                printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
            fi
        } >"$root/etc/apt/sources.list.d/debian.sources"
        rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
            "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*
        tar --numeric-owner -C "$root" -cf "$WORK/debian-$RELEASE-$arch.tar" .
        set -- --os linux --arch "$2"
        [ -z "$3" ] || set -- "$@" --variant "$3"
        podman import "$@" "$WORK/debian-$RELEASE-$arch.tar" "$name" >/dev/null
    fi
    echo "$name"
}

secret=""
[ -z "${PIP_CERT:-}" ] || secret="--secret id=pip-cert,src=$PIP_CERT"

images=""
for platform in "$@"; do
    case "$platform" in
        linux/amd64) debian=amd64 oci=amd64 variant="" ;;
        linux/arm64 | linux/arm64/v8) debian=arm64 oci=arm64 variant="" ;;
        linux/arm/v7) debian=armhf oci=arm variant=v7 ;;
        linux/arm/v5) debian=armel oci=arm variant=v5 ;;
        *) echo "build-image: $platform: not a platform of this image" >&2; exit 2 ;;
    esac
    from=$(base "$debian" "$oci" "$variant")
    image=localhost/alertik:$TAG-$debian
    echo "build-image: building $image for $platform from $from" >&2
    # shellcheck disable=SC2086  # $secret is two words or none
    nice -n 10 buildah build --layers --format docker --pull=never \
        --platform "$platform" --build-arg DEBIAN="$from" $secret \
        -t "$image" "$HERE" >"$WORK/build-$debian.log" 2>&1 || {
        tail -20 "$WORK/build-$debian.log" >&2
        echo "build-image: $platform failed; the log is $WORK/build-$debian.log" >&2
        exit 1
    }
    images="$images $image"
done

buildah manifest rm "localhost/alertik:$TAG" >/dev/null 2>&1 || true
buildah manifest create "localhost/alertik:$TAG" >/dev/null
for image in $images; do
    buildah manifest add "localhost/alertik:$TAG" "containers-storage:$image" >/dev/null
    echo "$image: $(podman image inspect --format '{{.Size}}' "$image") bytes"
done
echo "manifest list localhost/alertik:$TAG:$images"
