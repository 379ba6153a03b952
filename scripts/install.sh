#!/usr/bin/env bash
# Builds backupbox in release mode and installs it into a prefix with its two role links:
#   PREFIX/bin/backupbox, PREFIX/bin/backup_manager -> backupbox, PREFIX/bin/backup_service -> backupbox
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/install.sh [--prefix DIR] [--no-build]
  --prefix DIR  install into DIR/bin (default: /usr/local)
  --no-build    install target/release/backupbox as it is
USAGE
}

prefix=/usr/local
build=1
while (($#)); do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --no-build) build=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
if ((build)); then
    cargo build --release --locked
fi
install -d "$prefix/bin"
install -m 0755 target/release/backupbox "$prefix/bin/backupbox"
"$prefix/bin/backupbox" --install "$prefix/bin"
echo "installed $("$prefix/bin/backupbox" --version) into $prefix/bin"
