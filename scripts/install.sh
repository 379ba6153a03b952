#!/usr/bin/env bash
# Builds backupbox in release mode and installs it into a prefix with its two role links:
#   PREFIX/bin/backupbox, PREFIX/bin/backup_manager -> backupbox, PREFIX/bin/backup_service -> backupbox
# With --systemd, also installs scripts/backupbox.service and enables it.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/install.sh [--prefix DIR] [--static] [--no-build] [--bin FILE] [--systemd [--base DIR] [--keep N]]
  --prefix DIR  install into DIR/bin (default: /usr/local)
  --static      build and install the static-pie binary (no C library needed on the host,
                the lowest idle RSS; user and group names from /etc/passwd and /etc/group only)
  --no-build    install target/release/backupbox as it is
  --bin FILE    install FILE instead of target/release/backupbox (implies --no-build)
  --systemd     install backupbox.service into /etc/systemd/system, enable and start it
  --base DIR    the service's base directory (default: /var/lib/backupbox); created with
                an example plan if it has none
  --keep N      archives the service keeps per name (default 1)
USAGE
}

prefix=/usr/local
build=1
static=0
binary=
systemd=0
base=/var/lib/backupbox
keep=1
unit_dir=${BACKUPBOX_UNIT_DIR:-/etc/systemd/system}
while (($#)); do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --static) static=1; shift ;;
        --no-build) build=0; shift ;;
        --bin) binary=${2:?--bin needs a file}; build=0; shift 2 ;;
        --systemd) systemd=1; shift ;;
        --base) base=${2:?--base needs a directory}; shift 2 ;;
        --keep) keep=${2:?--keep needs a number}; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ $keep =~ ^[1-9][0-9]*$ ]] || { echo "install.sh: --keep takes a number from 1 up" >&2; exit 2; }
[[ $base == /* ]] || { echo "install.sh: --base must be an absolute path" >&2; exit 2; }

# A --bin FILE is relative to where the script was run; the default to the checkout.
[[ -z $binary || $binary == /* ]] || binary=$PWD/$binary
cd "$(dirname "$0")/.."
static_target=x86_64-unknown-linux-gnu
if ((static)); then
    binary=${binary:-target/$static_target/release/backupbox}
fi
binary=${binary:-target/release/backupbox}
if ((systemd)) && [[ ! -d /run/systemd/system ]]; then
    # Checked before installing anything: without systemd there is nothing to enable.
    echo "install.sh: systemd is not running on this host; use 'backup_manager start' instead" >&2
    exit 1
fi
if ((build && static)); then
    # glibc linked in (crt-static), position-independent so ASLR stays.
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$static_target"
elif ((build)); then
    cargo build --release --locked
fi
install -d "$prefix/bin"
install -m 0755 "$binary" "$prefix/bin/backupbox"
"$prefix/bin/backupbox" --install "$prefix/bin"
echo "installed $("$prefix/bin/backupbox" --version) into $prefix/bin"
if ((!systemd)); then
    exit 0
fi

if [[ ! -e $base/backup_schedules.txt ]]; then
    install -d -m 0750 "$base"
    install -m 0644 backup_schedules.txt "$base/backup_schedules.txt"
    echo "created $base with the example plan $base/backup_schedules.txt"
fi
if [[ ! -e $base/backupbox.toml.example && ! -e $base/backupbox.toml ]]; then
    install -m 0644 backupbox.toml.example "$base/backupbox.toml.example"
    echo "put the commented settings example in $base/backupbox.toml.example"
fi
unit=$unit_dir/backupbox.service
exec_start="$prefix/bin/backup_service --dir $base"
((keep > 1)) && exec_start+=" --keep $keep"
sed -e "s|^ExecStart=.*|ExecStart=$exec_start|" \
    -e "s|^ReadWritePaths=.*|ReadWritePaths=$base|" \
    scripts/backupbox.service >"$unit.new"
mv "$unit.new" "$unit"
echo "installed $unit (ExecStart=$exec_start)"
systemctl daemon-reload
systemctl enable --now backupbox.service
echo "enabled and started backupbox.service; see: systemctl status backupbox, journalctl -u backupbox"
