#!/usr/bin/env bash
# Restores archives that other tools made, with backupbox and with GNU tar, and says which come
# out identical: GNU tar 1.34 in every --format (with and without --sparse, every pax sparse
# version) and bsdtar in each format it writes, of one tree holding a sparse file, pax times
# (1960 and 2300, with nanoseconds), an empty folder, a symlink, a hard link, a long name,
# other owners and a device. Run as root (owners, devices). Needs tar, bsdtar and the binary:
#   scripts/tar-corpus.sh [path/to/backupbox]
set -euo pipefail
bin=$(realpath "${1:-target/release/backupbox}")
work=$(mktemp -d)
trap '[ -n "${KEEP_CORPUS:-}" ] || rm -rf "$work"' EXIT
cd "$work"

mkdir -p src/d/sub src/d/empty
echo hello >src/d/a
truncate -s 1M src/d/sparse && printf END >>src/d/sparse
echo old >src/d/old && touch -d '1960-06-01 12:00:00.123456789' src/d/old
echo future >src/d/future && touch -d '2300-01-01 00:00:00.5' src/d/future
ln -s a src/d/link
ln src/d/a src/d/hard
long=src/d/sub/$(printf 'n%.0s' {1..150})
echo long >"$long"
chown 1234:5678 src/d/a
mknod src/d/null c 1 3 2>/dev/null || true

mkdir archives
for format in gnu oldgnu pax ustar v7; do
    tar --format=$format -cf archives/gnu-$format.tar -C src d 2>/dev/null || true
    tar --format=$format --sparse -cf archives/gnu-$format-sparse.tar -C src d 2>/dev/null || true
done
for version in 0.0 0.1 1.0; do
    tar --format=pax --sparse --sparse-version=$version -cf archives/gnu-pax-sparse-$version.tar -C src d
done
for format in pax paxr ustar v7 gnutar; do
    bsdtar --format=$format -cf archives/bsd-$format.tar -C src d 2>/dev/null || true
done

# What a restore made: type, mode, owner, size, mtime with nanoseconds, link target, and the
# blocks a sparse file takes, for every path.
describe() {
    (cd "$1" && find . -mindepth 1 -printf '%p %y %m %U:%G %s %b %T@ %l\n' | sort)
}

mkdir base && ln -s "$bin" base/backup_manager
# The same, with the mtime of directories left out.
without_dir_times() {
    awk '$2 == "d" { $7 = "-" } { print }'
}

same=0 dir_times=0 different=0 refused=0
for archive in archives/*.tar; do
    name=$(basename "$archive" .tar)
    mkdir -p base/backups "gnu/$name"
    cp "$archive" "base/backups/$name.tar"
    tar -xpf "$archive" -C "gnu/$name" 2>/dev/null || true
    if ! (cd base && ./backup_manager restore "$name" --to "$work/ours/$name" >/dev/null 2>"$work/err"); then
        echo "refused    $name: $(tail -1 "$work/err")"
        refused=$((refused + 1))
    elif diff <(describe "gnu/$name") <(describe "ours/$name") >"$work/diff"; then
        echo "identical  $name"
        same=$((same + 1))
    elif diff <(describe "gnu/$name" | without_dir_times) \
        <(describe "ours/$name" | without_dir_times) >/dev/null; then
        # GNU tar sets a directory's time when it meets a member outside it, and a member of
        # that directory that comes later (bsdtar's order) changes it again; backupbox sets
        # every directory's stored time once all is written.
        echo "dir times  $name: only directory mtimes differ (GNU tar left the extraction time)"
        dir_times=$((dir_times + 1))
    else
        echo "different  $name:"
        sed 's/^/    /' "$work/diff"
        different=$((different + 1))
    fi
done
echo "$same identical, $dir_times differing only in directory times, $different different, $refused refused (of $((same + dir_times + different + refused)))"
