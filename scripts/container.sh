#!/usr/bin/env bash
# Builds the backupbox container image (Containerfile, FROM scratch) with podman or docker.
# The build context is made here, from this host, as nothing is pulled: rootfs/ holds the
# static binary and its role links, Debian's static busybox as /bin/sh with its applets (so
# hooks can run), /usr/share/zoneinfo without right/, /etc/passwd and /etc/group with root and
# nobody, and /tmp.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/container.sh [--tag NAME] [--tz ZONE] [--engine podman|docker] [--no-build] [--bin FILE]
  --tag NAME     the image's name (default: backupbox)
  --tz ZONE      the image's TZ, the zone of the plan's hh:mm and of the log stamps
                 (default: Etc/UTC); any name under /usr/share/zoneinfo
  --engine CMD   podman (default) or docker
  --no-build     use target/x86_64-unknown-linux-gnu/release/backupbox as it is
  --bin FILE     put FILE in the image (a static build; implies --no-build)
  BUSYBOX=FILE   the static busybox to use (default: /bin/busybox, from busybox-static)
USAGE
}

tag=backupbox
tz=Etc/UTC
engine=podman
install_args=(--static)
while (($#)); do
    case "$1" in
        --tag) tag=${2:?--tag needs a name}; shift 2 ;;
        --tz) tz=${2:?--tz needs a zone}; shift 2 ;;
        --engine) engine=${2:?--engine needs podman or docker}; shift 2 ;;
        --no-build) install_args+=(--no-build); shift ;;
        --bin) install_args+=(--bin "$(realpath "${2:?--bin needs a file}")"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "container.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."
zoneinfo=/usr/share/zoneinfo
[[ -f $zoneinfo/$tz ]] || { echo "container.sh: no zone $tz in $zoneinfo (apt-get install tzdata)" >&2; exit 1; }
busybox=${BUSYBOX:-/bin/busybox}
# ldd fails on a static executable: a dynamic busybox would not start in an empty image.
if [[ ! -x $busybox ]] || ldd "$busybox" >/dev/null 2>&1; then
    echo "container.sh: $busybox is not a static busybox: apt-get install busybox-static" >&2
    exit 1
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
rootfs=$context/rootfs
scripts/install.sh "${install_args[@]}" --prefix "$rootfs/usr/local"
install -D -m 0755 "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
    [[ -e $rootfs/bin/$applet ]] || ln -s busybox "$rootfs/bin/$applet"
done
install -d "$rootfs/usr/share"
tar -C "${zoneinfo%/*}" --exclude=zoneinfo/right -cf - zoneinfo | tar -C "$rootfs/usr/share" -xf -
install -d -m 0755 "$rootfs/etc" "$rootfs/data"
install -d -m 1777 "$rootfs/tmp"
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$rootfs/etc/group"
cp Containerfile "$context/Containerfile"
"$engine" build --build-arg "TZ=$tz" --tag "$tag" "$context"
