#!/usr/bin/env bash
# Benchmarks backupbox against GNU tar on generated trees, checks every archive with
# `tar --compare`, measures the idle service, `list` and the binary, and writes BENCHMARKS.md.
#
# Uses public tools only: bash, GNU tar, /usr/bin/time and coreutils. Build first:
#   cargo build --release && scripts/bench.sh
# Exit status: 0 all targets met, 1 a wrong archive or a broken run, 2 a target missed.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/bench.sh [options]
  --small N       files in case (a), 64 B to 4 KiB in 200 dirs   (default 20000)
  --big MIB       size of the file in case (b), in MiB             (default 1024)
  --tiny N        files in case (c), 1 to 64 B in 1000 dirs       (default 200000)
  --mixed MIB     size of the half-random, half-text file, a multiple of 16 (default 1024)
  --runs N        timed runs of each command per case              (default 5)
  --no-scaling    skip (a) at 10x and (b) at 4x
  --cold          also time (a), (b), (c) from a cold page cache (root: drop_caches)
  --idle SECONDS  how long the idle service is watched             (default 120)
  --work DIR      where fixtures and archives go (default: a new dir in /var/tmp)
  --bin PATH      the backupbox binary        (default: target/release/backupbox)
  --static-bin PATH  the static-pie build, measured beside it when it exists
                  (default: target/x86_64-unknown-linux-gnu/release/backupbox)
  --out FILE      the report                  (default: BENCHMARKS.md; - for none)
  --peers         instead: the benchmark against restic and borg (scripts/bench-peers.sh;
                  --peers --help for its options)
EOF
}

repo=$(cd "$(dirname "$0")/.." && pwd)
# The peer benchmark is a script of its own, with its own options.
for arg in "$@"; do
    [[ $arg == --peers ]] && exec "$repo/scripts/bench-peers.sh" "$@"
done
small=20000 big_mib=1024 tiny=200000 mixed_mib=1024 runs=5 scaling=1 idle=120 cold=0
work_parent=/var/tmp bin=$repo/target/release/backupbox out=$repo/BENCHMARKS.md
static_bin=$repo/target/x86_64-unknown-linux-gnu/release/backupbox
while (($#)); do
    case $1 in
    --small) small=$2; shift 2 ;;
    --big) big_mib=$2; shift 2 ;;
    --tiny) tiny=$2; shift 2 ;;
    --mixed) mixed_mib=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --no-scaling) scaling=0; shift ;;
    --cold) cold=1; shift ;;
    --idle) idle=$2; shift 2 ;;
    --work) work_parent=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --static-bin) static_bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 1 ;;
    esac
done

die() { echo "bench: $*" >&2; exit 1; }
[[ -x $bin ]] || die "no binary at $bin; run: cargo build --release"
[[ -x /usr/bin/time ]] || die "needs /usr/bin/time (Debian package: time)"
tar --version | head -1 | grep -q 'GNU tar' || die "needs GNU tar"
((runs >= 1)) || die "--runs must be at least 1"
((mixed_mib >= 16 && mixed_mib % 16 == 0)) || die "--mixed must be a multiple of 16"
for tool in openssl awk zstd gzip; do
    command -v "$tool" >/dev/null || die "needs $tool"
done

work=$(mktemp -d "$work_parent/backupbox-bench.XXXXXX")
manager_pid_file=
cleanup() {
    if [[ -n $manager_pid_file && -s $manager_pid_file ]]; then
        "$work/base/backup_manager" --dir "$work/idle" stop >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The base directory of the backup system: archives land in $base/backups, next to GNU tar's.
base=$work/base
mkdir -p "$base/data"
ln -s "$bin" "$base/backup_manager"
manager=$base/backup_manager
ours_archive=$base/backups/bench.tar
gnu_archive=$base/gnu.tar
copy_out=$base/copy.bin

misses=()
report=()
spreads=()
note() { report+=("$*"); echo "$*"; }

# --- fixtures ------------------------------------------------------------------------------

# A pool of printable random bytes that file contents are cut from (bash builtins only, so
# that making 200,000 files costs no fork per file).
pool=$(head -c 6144 /dev/urandom | base64 -w0)

# make_tree DIR FILES DIRS MIN MAX: FILES files of MIN..MAX bytes spread over DIRS folders.
make_tree() {
    local dir=$1 files=$2 dirs=$3 min=$4 max=$5 i size offset
    for ((i = 0; i < dirs; i++)); do mkdir -p "$dir/d$i"; done
    for ((i = 0; i < files; i++)); do
        size=$((min + (i * 7919) % (max - min + 1)))
        offset=$(((i * 104729) % (${#pool} - size)))
        printf '%s' "${pool:offset:size}" >"$dir/d$((i % dirs))/f$i"
    done
}

make_big() {
    mkdir -p "$1"
    head -c "$(($2 * 1024 * 1024))" /dev/urandom >"$1/big.bin"
}

# make_mixed DIR MIB: DIR/mixed.bin, MIB MiB in 8 MiB stretches taking turns: random bytes
# (AES-CTR of zeros under a fixed key, the same on every machine) and text (words of a
# made-up vocabulary, Zipf-like, drawn by awk from a fixed seed; gzip takes it to 38 %).
make_mixed() {
    local dir=$1 mib=$2 i stretch=$((8 << 20))
    mkdir -p "$dir"
    # Process substitutions: the generators end on SIGPIPE once head has enough.
    head -c "$stretch" >"$work/text" < <(awk 'BEGIN {
        srand(12345)
        for (i = 0; i < 2000; i++) {
            w = ""; n = 2 + int(rand() * 8)
            for (j = 0; j < n; j++) w = w sprintf("%c", 97 + int(rand() * 26))
            vocabulary[i] = w
        }
        while (written < 8388608) {
            r = rand(); line = line vocabulary[int(2000 * r * r * r)] " "
            if (length(line) > 70) { print line; written += length(line) + 1; line = "" }
        }
    }')
    for ((i = 0; i < mib / 16; i++)); do
        head -c "$stretch" < <(openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f \
            -iv "$(printf '%032x' "$i")" </dev/zero 2>/dev/null)
        cat "$work/text"
    done >"$dir/mixed.bin"
    rm -f "$work/text"
}

warm() { find "$1" -type f -exec cat {} + >/dev/null; }

# --- measuring -----------------------------------------------------------------------------

# now_us, timed (sets wall_us and rss_kb), median, seconds, ratio.
source "$repo/scripts/bench-measure.sh"

# turns NAME...: "NAME RUN" lines for RUNS runs, each run starting one name further on, so that
# no command always goes first (right after the deletions and the sync) or always last.
turns() {
    local i k
    for ((i = 0; i < runs; i++)); do
        for ((k = 0; k < $#; k++)); do
            echo "${@:((i + k) % $# + 1):1} $i"
        done
    done
}

# samples SECONDS...: " 0.123 0.456", for the every-run lines.
samples() { local t out=; for t in "$@"; do out+=" $(seconds "$t")"; done; echo "$out"; }
mib() { printf '%d.%d' $(($1 / 1024)) $((($1 * 10 / 1024) % 10)); }
# ratio3 A B: A / B with three decimals, for archive sizes.
ratio3() { printf '%d.%03d' $(($1 / $2)) $(((($1 * 1000) / $2) % 1000)); }
# timing SAMPLES...: "median (min-max)" in seconds.
timing() {
    local sorted
    sorted=$(printf '%s\n' "$@" | sort -n)
    echo "$(seconds "$(median "$@")") ($(seconds "$(head -1 <<<"$sorted")")-$(seconds "$(tail -1 <<<"$sorted")"))"
}

# Archives are compared with the live tree; a fast wrong archive fails the benchmark.
check_archive() {
    local diff
    if ! diff=$(tar -C "$base" --compare -f "$1" 2>&1) || [[ -n $diff ]]; then
        echo "$diff" | head -20 >&2
        die "tar --compare found differences in $1"
    fi
}

# bench_case LABEL REL WITH_CP: alternates ours, tar && sync, plain tar (and cp && sync) on
# $base/data/REL, RUNS times each, and prints the medians. Sets case_* for the caller.
bench_case() {
    local label=$1 rel=data/$2 with_cp=$3 i
    local -a ours=() ours_rss=() gsync=() gsync_rss=() gnu=() gnu_rss=() cps=()
    printf '%s;03:00;bench\n' "$rel" >"$base/backup_schedules.txt"
    # Let the disk settle (writeback, discards of the previous case's deleted archives), so
    # that one case's leftovers do not slow the next.
    sync
    sleep 5
    warm "$base/$rel"
    local -a order=(ours gsync gnu)
    ((with_cp)) && order+=(copy)
    local step start end tar_rss
    while read -r -u 3 step i; do
        rm -f "$ours_archive" "$gnu_archive" "$copy_out"
        sync
        case $step in
        ours)
            timed "$manager" --dir "$base" run 0
            ours+=("$wall_us") ours_rss+=("$rss_kb")
            check_archive "$ours_archive"
            ;;
        gsync)
            start=$(now_us)
            timed tar -C "$base" -cf "$gnu_archive" "$rel"
            tar_rss=$rss_kb
            timed sync "$gnu_archive"
            end=$(now_us)
            gsync+=($((end - start))) gsync_rss+=("$tar_rss")
            check_archive "$gnu_archive"
            ;;
        gnu)
            timed tar -C "$base" -cf "$gnu_archive" "$rel"
            gnu+=("$wall_us") gnu_rss+=("$rss_kb")
            check_archive "$gnu_archive"
            ;;
        copy)
            start=$(now_us)
            timed cp "$base/$rel/big.bin" "$copy_out"
            timed sync "$copy_out"
            end=$(now_us)
            cps+=($((end - start)))
            cmp -s "$base/$rel/big.bin" "$copy_out" || die "cp made a wrong copy"
            ;;
        esac
    done 3< <(turns "${order[@]}")
    rm -f "$ours_archive" "$gnu_archive" "$copy_out"
    spreads+=("- $label: ours$(samples "${ours[@]}"); tar && sync$(samples "${gsync[@]}"); tar$(samples "${gnu[@]}")${cps:+; cp && sync$(samples "${cps[@]}")}")
    case_ours=$(median "${ours[@]}") case_ours_rss=$(median "${ours_rss[@]}")
    case_gsync=$(median "${gsync[@]}") case_gsync_rss=$(median "${gsync_rss[@]}")
    case_gnu=$(median "${gnu[@]}") case_gnu_rss=$(median "${gnu_rss[@]}")
    case_ratio=$(ratio "$case_ours" "$case_gsync")
    case_cp=
    local line
    line="| $label | $(seconds "$case_ours") | $(seconds "$case_gsync") | $(seconds "$case_gnu")"
    if ((with_cp)); then
        case_cp=$(median "${cps[@]}")
        line+=" | $(seconds "$case_cp")"
    else
        line+=" | –"
    fi
    line+=" | **$case_ratio** | $(mib "$case_ours_rss") | $(mib "$case_gsync_rss") |"
    note "$line"
}

# drop_caches: writes back and empties the page cache, so the next command reads from disk.
drop_caches() { sync && echo 3 >/proc/sys/vm/drop_caches; }

# cold_case LABEL REL IS_BIG: like bench_case, but every timed command starts from an empty
# page cache. Baselines: tar && sync, plain tar, and the read limit: four parallel readers
# (`find | xargs -P4 cat`), or for the big file `cat FILE`, and `cp && sync`. Sets cold_*.
cold_case() {
    local label=$1 rel=data/$2 big=$3 i step start end
    local -a ours=() gsync=() gnu=() limit=() cps=()
    local -a order=(ours gsync gnu limit)
    ((big)) && order+=(copy)
    printf '%s;03:00;bench\n' "$rel" >"$base/backup_schedules.txt"
    while read -r -u 3 step i; do
        rm -f "$ours_archive" "$gnu_archive" "$copy_out"
        drop_caches
        case $step in
        ours)
            timed "$manager" --dir "$base" run 0
            ours+=("$wall_us")
            check_archive "$ours_archive"
            ;;
        gsync)
            start=$(now_us)
            timed tar -C "$base" -cf "$gnu_archive" "$rel"
            timed sync "$gnu_archive"
            end=$(now_us)
            gsync+=($((end - start)))
            ;;
        gnu)
            timed tar -C "$base" -cf "$gnu_archive" "$rel"
            gnu+=("$wall_us")
            ;;
        limit)
            if ((big)); then
                timed cat "$base/$rel/big.bin"
            else
                timed bash -c 'find "$1" -type f -print0 | xargs -0 -P4 -n256 cat' _ "$base/$rel"
            fi
            limit+=("$wall_us")
            ;;
        copy)
            start=$(now_us)
            timed cp "$base/$rel/big.bin" "$copy_out"
            timed sync "$copy_out"
            end=$(now_us)
            cps+=($((end - start)))
            ;;
        esac
    done 3< <(turns "${order[@]}")
    rm -f "$ours_archive" "$gnu_archive" "$copy_out"
    spreads+=("- cold $label: ours$(samples "${ours[@]}"); tar && sync$(samples "${gsync[@]}"); tar$(samples "${gnu[@]}"); read limit$(samples "${limit[@]}")${cps:+; cp && sync$(samples "${cps[@]}")}")
    cold_ours=$(median "${ours[@]}") cold_gsync=$(median "${gsync[@]}")
    cold_gnu=$(median "${gnu[@]}") cold_limit=$(median "${limit[@]}") cold_cp=
    ((big)) && cold_cp=$(median "${cps[@]}")
    local cp_column=–
    [[ -n $cold_cp ]] && cp_column=$(seconds "$cold_cp")
    cold_lines+=("| $label | $(seconds "$cold_ours") | $(seconds "$cold_gsync") | $(seconds "$cold_gnu") | $(seconds "$cold_limit") | $cp_column | **$(ratio "$cold_ours" "$cold_gsync")** | $(ratio "$cold_ours" "$cold_limit") |")
}
cold_lines=()
if ((cold)) && ! { sync && echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
    echo "bench: can't drop the page cache (needs root, a writable /proc/sys/vm/drop_caches); cold cases not measured" >&2
    cold=0
    cold_refused=1
fi

# The forms compared: our setting, tar's option, the archive suffix.
compressor_of() {
    case $1 in
    zstd) tar_compress=(-I 'zstd -3 -T0') suffix=.tar.zst level=3 ;;
    gzip) tar_compress=(-z) suffix=.tar.gz level=6 ;;
    none) tar_compress=() suffix=.tar level=0 ;;
    esac
}

# compressed_case FORM LABEL REL COLD: a FORM backup (zstd level 3 or gzip level 6) of
# $base/data/REL, ours against `tar -I 'zstd -3 -T0'` or `tar -z`, then `sync OUT`; RUNS times
# each, taking turns going first; from an empty page cache before every command when COLD.
# Every archive of ours and tar's first are read back with `tar --compare`. Adds a line to
# compressed_lines and sets case_ours, case_gnu, ours_size, gnu_size, case_ours_rss.
compressed_case() {
    local form=$1 label=$2 rel=data/$3 cold=$4 i step start end
    local -a ours=() ours_rss=() gnu=() order=(ours gnu) tar_compress
    local suffix level
    compressor_of "$form"
    local ours_out=$base/backups/bench$suffix gnu_out=$base/gnu$suffix
    printf '%s;03:00;bench\n' "$rel" >"$base/backup_schedules.txt"
    printf 'compress = "%s"\nlevel = %d\n' "$form" "$level" >"$base/backupbox.toml"
    # As in bench_case: the disk settles from the case before.
    sync
    sleep 5
    ((cold)) || warm "$base/$rel"
    while read -r -u 3 step i; do
        rm -f "$ours_out" "$gnu_out"
        if ((cold)); then drop_caches; else sync; fi
        case $step in
        ours)
            timed "$manager" --dir "$base" run 0
            ours+=("$wall_us") ours_rss+=("$rss_kb")
            check_archive "$ours_out"
            ours_size=$(stat -c %s "$ours_out")
            ;;
        gnu)
            start=$(now_us)
            timed tar -C "$base" "${tar_compress[@]}" -cf "$gnu_out" "$rel"
            timed sync "$gnu_out"
            end=$(now_us)
            gnu+=($((end - start)))
            ((i)) || check_archive "$gnu_out"
            gnu_size=$(stat -c %s "$gnu_out")
            ;;
        esac
    done 3< <(turns "${order[@]}")
    rm -f "$ours_out" "$gnu_out" "$base/backupbox.toml"
    local cache=warm
    ((cold)) && cache=cold
    case_ours=$(median "${ours[@]}") case_ours_rss=$(median "${ours_rss[@]}")
    case_gnu=$(median "${gnu[@]}")
    compressed_lines+=("| $form | $label | $cache | $(timing "${ours[@]}") | $(timing "${gnu[@]}") | **$(ratio "$case_ours" "$case_gnu")** | $(mib "$case_ours_rss") | $ours_size | $gnu_size | $(ratio3 "$ours_size" "$gnu_size") |")
}
compressed_lines=()

# compressed_targets FORM LABEL COLD: the targets of the case just run.
compressed_targets() {
    local form=$1 label=$2 cold=$3 time_limit size_limit cache=warm
    ((cold)) && cache=cold
    case $form in
    zstd) time_limit=80 size_limit=1020 ;;
    gzip) time_limit=70 size_limit=1050 ;;
    esac
    target "$form $cache $label" "$(x100 "$case_ours" "$case_gnu")" "$time_limit" \
        "ours / tar = $(ratio "$case_ours" "$case_gnu"), target <= 0.$time_limit"
    ((cold)) || target "$form size $label" $(((ours_size * 1000) / gnu_size)) "$size_limit" \
        "ours / tar = $(ratio3 "$ours_size" "$gnu_size"), target <= ${size_limit:0:1}.${size_limit:1}"
}

# encrypted_case LABEL REL LIMIT: our zstd level 3 backup of $base/data/REL with and without
# `encrypt_to` (to a key made for the run), RUNS times each, taking turns; the first encrypted
# archive is decrypted with Debian's age and compared with `tar --compare`. The target: the
# encrypted median at most LIMIT % above the plain one, and peak RSS at most 2 MiB above.
encrypted_case() {
    local label=$1 rel=data/$2 limit=$3 i step
    local -a plain=() plain_rss=() sealed=() sealed_rss=()
    printf '%s;03:00;bench\n' "$rel" >"$base/backup_schedules.txt"
    sync
    sleep 5
    warm "$base/$rel"
    while read -r -u 3 step i; do
        rm -f "$base/backups/bench.tar.zst" "$base/backups/bench.tar.zst.age"
        sync
        case $step in
        plain)
            printf 'compress = "zstd"\n' >"$base/backupbox.toml"
            timed "$manager" --dir "$base" run 0
            plain+=("$wall_us") plain_rss+=("$rss_kb")
            ;;
        sealed)
            printf 'compress = "zstd"\nencrypt_to = ["%s"]\n' "$recipient" >"$base/backupbox.toml"
            timed "$manager" --dir "$base" run 0
            sealed+=("$wall_us") sealed_rss+=("$rss_kb")
            if ((i == 0)); then
                age -d -i "$work/age-key.txt" -o "$work/decrypted.tar.zst" \
                    "$base/backups/bench.tar.zst.age" || die "age -d failed on our archive"
                check_archive "$work/decrypted.tar.zst"
                rm -f "$work/decrypted.tar.zst"
            fi
            ;;
        esac
    done 3< <(turns plain sealed)
    rm -f "$base/backups/bench.tar.zst" "$base/backups/bench.tar.zst.age" "$base/backupbox.toml"
    local plain_median sealed_median rss_plain rss_sealed
    plain_median=$(median "${plain[@]}") sealed_median=$(median "${sealed[@]}")
    rss_plain=$(median "${plain_rss[@]}") rss_sealed=$(median "${sealed_rss[@]}")
    encrypted_lines+=("| $label | $(timing "${plain[@]}") | $(timing "${sealed[@]}") | **$(ratio "$sealed_median" "$plain_median")** | $(mib "$rss_plain") | $(mib "$rss_sealed") |")
    target "encrypted zstd $label" "$(x100 "$sealed_median" "$plain_median")" $((100 + limit)) \
        "encrypted / plain = $(ratio "$sealed_median" "$plain_median"), target <= 1.$(printf '%02d' "$limit")"
    target "peak RSS encrypted $label" $((rss_sealed - rss_plain)) 2048 \
        "+$(mib $((rss_sealed > rss_plain ? rss_sealed - rss_plain : 0))) MiB, target <= +2 MiB"
}
encrypted_lines=()

# restore_case FORM LABEL REL: our FORM archive of $base/data/REL, made once, restored into a
# new empty folder by `restore bench --to DIR && sync` and by `tar -xf ARCHIVE -C DIR && sync`,
# RUNS times each, taking turns. Restored trees stay until the benchmark ends: deleting
# hundreds of thousands of files on a disk mounted with `discard` slowed whichever command
# ran next by several times. Our first restore is compared with the archive.
restore_case() {
    local form=$1 label=$2 rel=data/$3 i step start end into
    local -a ours=() gnu=() order=(ours gnu) tar_compress
    local suffix level
    compressor_of "$form"
    printf '%s;03:00;bench\n' "$rel" >"$base/backup_schedules.txt"
    printf 'compress = "%s"\n' "$form" >"$base/backupbox.toml"
    "$manager" --dir "$base" run 0 >/dev/null 2>&1 || die "the backup for the restore case failed"
    local archive=$base/backups/bench$suffix
    sync
    sleep 5
    warm "$base/backups"
    while read -r -u 3 step i; do
        into=$work/restored/$form-$3/$step.$i
        mkdir -p "$into"
        sync
        start=$(now_us)
        case $step in
        ours) timed "$manager" --dir "$base" restore bench --to "$into" ;;
        gnu) timed tar "${tar_compress[@]}" -xf "$archive" -C "$into" ;;
        esac
        timed sync
        end=$(now_us)
        case $step in
        ours) ours+=($((end - start))) ;;
        gnu) gnu+=($((end - start))) ;;
        esac
    done 3< <(turns "${order[@]}")
    local diff
    if ! diff=$(tar -C "$work/restored/$form-$3/ours.0" --compare -f "$archive" 2>&1) || [[ -n $diff ]]; then
        echo "$diff" | head -20 >&2
        die "the restored tree differs from $archive"
    fi
    rm -f "$base/backupbox.toml"
    case_ours=$(median "${ours[@]}") case_gnu=$(median "${gnu[@]}")
    restore_lines+=("| restore | $form | $label | $(timing "${ours[@]}") | $(timing "${gnu[@]}") | **$(ratio "$case_ours" "$case_gnu")** |")
    target "restore $form $label" "$(x100 "$case_ours" "$case_gnu")" 100 \
        "ours / (tar -xf && sync) = $(ratio "$case_ours" "$case_gnu"), target <= 1.00"
}
restore_lines=()

# verify_case FORM LABEL REL: `verify bench` against `tar -tf` on our FORM archive of
# $base/data/REL (the archive left by the case before is rewritten in FORM), warm.
verify_case() {
    local form=$1 label=$2 rel=data/$3 i step
    local -a ours=() gnu=() order=(ours gnu) tar_compress
    local suffix level
    compressor_of "$form"
    printf '%s;03:00;bench\n' "$rel" >"$base/backup_schedules.txt"
    printf 'compress = "%s"\n' "$form" >"$base/backupbox.toml"
    "$manager" --dir "$base" run 0 >/dev/null 2>&1 || die "the backup for the verify case failed"
    local archive=$base/backups/bench$suffix
    warm "$base/backups"
    while read -r -u 3 step i; do
        case $step in
        ours)
            timed "$manager" --dir "$base" verify bench
            ours+=("$wall_us")
            ;;
        gnu)
            timed tar "${tar_compress[@]}" -tf "$archive"
            gnu+=("$wall_us")
            ;;
        esac
    done 3< <(turns "${order[@]}")
    rm -f "$base/backups/bench".tar* "$base/backupbox.toml"
    case_ours=$(median "${ours[@]}") case_gnu=$(median "${gnu[@]}")
    restore_lines+=("| verify | $form | $label | $(timing "${ours[@]}") | $(timing "${gnu[@]}") | **$(ratio "$case_ours" "$case_gnu")** |")
    target "verify $form $label" "$(x100 "$case_ours" "$case_gnu")" 100 \
        "ours / (tar -tf) = $(ratio "$case_ours" "$case_gnu"), target <= 1.00"
}

# target LABEL VALUE_X100 LIMIT_X100 TEXT: records whether VALUE <= LIMIT.
target() {
    if (($2 <= $3)); then
        targets+=("| $1 | $4 | met |")
    else
        targets+=("| $1 | $4 | **missed** |")
        misses+=("$1")
    fi
}
x100() { echo $((($1 * 100) / $2)); }
targets=()

# --- run -----------------------------------------------------------------------------------

echo "bench: fixtures in $work"
make_tree "$base/data/small" "$small" 200 64 4096
make_big "$base/data/big" "$big_mib"
make_tree "$base/data/tiny" "$tiny" 1000 1 64
make_mixed "$base/data/mixed" "$mixed_mib"

header="| case | ours | tar && sync | tar | cp && sync | ours / (tar && sync) | ours peak RSS MiB | tar peak RSS MiB |"
rule="| --- | --- | --- | --- | --- | --- | --- | --- |"
note "## Archiving, median of $runs runs (seconds)"
note ""
note "$header"
note "$rule"

bench_case "(a) $small files, 64 B-4 KiB" small 0
a_ours=$case_ours a_rss=$case_ours_rss
target "(a) small files" "$(x100 "$case_ours" "$case_gsync")" 100 \
    "ours / (tar && sync) = $case_ratio, target <= 1.00"
# cold_targets LABEL: the cold targets of a tree case.
cold_targets() {
    target "cold $1 vs tar" "$(x100 "$cold_ours" "$cold_gsync")" 70 \
        "ours / (tar && sync) = $(ratio "$cold_ours" "$cold_gsync"), target <= 0.70"
    target "cold $1 vs read limit" "$(x100 "$cold_ours" "$cold_limit")" 125 \
        "ours / (4 parallel readers) = $(ratio "$cold_ours" "$cold_limit"), target <= 1.25"
}
if ((cold)); then
    cold_case "(a) $small files, 64 B-4 KiB" small 0
    cold_targets "(a)"
fi

bench_case "(b) one $big_mib MiB file" big 1
b_ours=$case_ours b_rss=$case_ours_rss
target "(b) big file vs tar" "$(x100 "$case_ours" "$case_gsync")" 80 \
    "ours / (tar && sync) = $case_ratio, target <= 0.80"
target "(b) big file vs cp" "$(x100 "$case_ours" "$case_cp")" 115 \
    "ours / (cp && sync) = $(ratio "$case_ours" "$case_cp"), target <= 1.15"
if ((cold)); then
    cold_case "(b) one $big_mib MiB file" big 1
    target "cold (b) vs cp" "$(x100 "$cold_ours" "$cold_cp")" 110 \
        "ours / (cp && sync) = $(ratio "$cold_ours" "$cold_cp"), target <= 1.10"
fi

bench_case "(c) $tiny files, 1-64 B" tiny 0
c_rss=$case_ours_rss
target "(c) tiny files" "$(x100 "$case_ours" "$case_gsync")" 100 \
    "ours / (tar && sync) = $case_ratio, target <= 1.00"
if ((cold)); then
    cold_case "(c) $tiny files, 1-64 B" tiny 0
    cold_targets "(c)"
fi

max_rss=$((a_rss > b_rss ? a_rss : b_rss))
max_rss=$((c_rss > max_rss ? c_rss : max_rss))

if ((${#cold_lines[@]})); then
    note ""
    note "## Cold page cache, median of $runs runs (seconds; caches dropped before every command; ours with the default read_threads)"
    note ""
    note "| case | ours | tar && sync | tar | read limit | cp && sync | ours / (tar && sync) | ours / read limit |"
    note "| --- | --- | --- | --- | --- | --- | --- | --- |"
    for line in "${cold_lines[@]}"; do note "$line"; done
elif ((${cold_refused:-0})); then
    note ""
    note "## Cold page cache: not measured (the page cache could not be dropped here)"
fi

# Compression: zstd level 3 and gzip level 6 on (a), the mixed file and (c), warm and cold.
zstd_rss=0
for compressed in "small|(a) $small files" "mixed|$mixed_mib MiB mixed file" "tiny|(c) $tiny files"; do
    rel=${compressed%%|*} label=${compressed#*|}
    for form in zstd gzip; do
        for cache in 0 $( ((cold)) && echo 1); do
            compressed_case "$form" "$label" "$rel" "$cache"
            compressed_targets "$form" "$label" "$cache"
            if [[ $form == zstd && $rel == small && $cache == 0 ]]; then
                zstd_a_ours=$case_ours zstd_a_rss=$case_ours_rss
            fi
            if [[ $form == zstd ]] && ((case_ours_rss > zstd_rss)); then zstd_rss=$case_ours_rss; fi
        done
    done
done
# Encryption: zstd level 3 with and without encrypt_to, on (a) and the mixed file.
encrypted_measured=0
if command -v age-keygen >/dev/null && command -v age >/dev/null; then
    age-keygen -o "$work/age-key.txt" 2>/dev/null
    recipient=$(age-keygen -y "$work/age-key.txt")
    encrypted_case "(a) $small files" small 5
    encrypted_case "$mixed_mib MiB mixed file" mixed 40
    encrypted_measured=1
else
    echo "bench: age and age-keygen (Debian package age) are not installed; encryption not measured" >&2
fi
rm -rf "$base/data/mixed"
target "peak RSS of a zstd run" "$zstd_rss" $((32 * 1024)) \
    "$(mib "$zstd_rss") MiB at most, target <= 32 MiB"
note ""
note "## Compression, median (min-max) of $runs runs (seconds; sizes in bytes, of the last run)"
note ""
note "Ours: \`compress = \"zstd\"\` level 3 or \`\"gzip\"\` level 6, default threads ($(nproc) here) and read_threads." \
    "Theirs: \`tar -I 'zstd -3 -T0' -cf OUT DIR && sync OUT\` and \`tar -czf OUT DIR && sync OUT\`."
note ""
note "| form | case | cache | ours | tar && sync | ours / tar | ours peak RSS MiB | ours size | tar size | size ratio |"
note "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for line in "${compressed_lines[@]}"; do note "$line"; done

note ""
if ((encrypted_measured)); then
    note "## Encryption, median (min-max) of $runs runs (seconds, warm)"
    note ""
    note "Both ours, \`compress = \"zstd\"\` level 3, without and with \`encrypt_to = [one age X25519 recipient]\`; the encrypted archive is decrypted with \`age -d\` and checked with \`tar --compare\`."
    note ""
    note "| case | zstd | zstd + age | encrypted / plain | peak RSS MiB, plain | peak RSS MiB, encrypted |"
    note "| --- | --- | --- | --- | --- | --- |"
    for line in "${encrypted_lines[@]}"; do note "$line"; done
else
    note "## Encryption: not measured (install Debian's age)"
fi

# Restore and verify, plain and zstd.
for form in none zstd; do
    restore_case "$form" "(a) $small files" small
    restore_case "$form" "(c) $tiny files" tiny
    verify_case "$form" "(b) one $big_mib MiB file" big
done
rm -rf "$base/data/tiny"
note ""
note "## Restore and verify, median (min-max) of $runs runs (seconds, warm archive)"
note ""
note "Restore: \`restore bench --to NEW_DIR && sync\` against \`tar -xf ARCHIVE -C NEW_DIR && sync\` (\`--zstd\` for zstd), the same archive." \
    "Verify: \`verify bench\` against \`tar -tf ARCHIVE\`."
note ""
note "| command | form | case | ours | tar | ours / tar |"
note "| --- | --- | --- | --- | --- | --- |"
for line in "${restore_lines[@]}"; do note "$line"; done

if ((scaling)); then
    # The cases before leave millions of deletions for the disk to discard, which slows it for
    # tens of seconds: each size gets a fresh fixture and its own settle time, and (a) at 1x is
    # timed again here, so the ratio compares the two sizes on the same disk, not two disks.
    settle_scaling() { sync; sleep 30; }
    rm -rf "$base/data/small"
    make_tree "$base/data/small" "$small" 200 64 4096
    settle_scaling
    bench_case "(a) 1x again, beside x10: $small files" small 0
    a_ours=$case_ours a_rss=$case_ours_rss
    rm -rf "$base/data/small"
    make_tree "$base/data/small" "$((small * 10))" 2000 64 4096
    settle_scaling
    bench_case "(a) x10: $((small * 10)) files" small 0
    a10_ours=$case_ours a10_rss=$case_ours_rss
    compressed_case zstd "(a) x10: $((small * 10)) files" small 0
    zstd_a10_ours=$case_ours zstd_a10_rss=$case_ours_rss
    rm -rf "$base/data/small"
    rm -rf "$base/data/big"
    make_big "$base/data/big" "$((big_mib * 4))"
    settle_scaling
    bench_case "(b) x4: one $((big_mib * 4)) MiB file" big 1
    b4_ours=$case_ours b4_rss=$case_ours_rss
    rm -rf "$base/data/big"
    max_rss=$((a10_rss > max_rss ? a10_rss : max_rss))
    max_rss=$((b4_rss > max_rss ? b4_rss : max_rss))

    note ""
    note "## Scaling of ours (linear time: x10 and x4; flat memory: 1.00)"
    note ""
    note "| case | time 1x | time Nx | time ratio | peak RSS 1x MiB | peak RSS Nx MiB | RSS ratio |"
    note "| --- | --- | --- | --- | --- | --- | --- |"
    note "| (a) files x10 | $(seconds "$a_ours") | $(seconds "$a10_ours") | $(ratio "$a10_ours" "$a_ours") | $(mib "$a_rss") | $(mib "$a10_rss") | $(ratio "$a10_rss" "$a_rss") |"
    note "| (b) size x4 | $(seconds "$b_ours") | $(seconds "$b4_ours") | $(ratio "$b4_ours" "$b_ours") | $(mib "$b_rss") | $(mib "$b4_rss") | $(ratio "$b4_rss" "$b_rss") |"
    note "| zstd (a) files x10 | $(seconds "$zstd_a_ours") | $(seconds "$zstd_a10_ours") | $(ratio "$zstd_a10_ours" "$zstd_a_ours") | $(mib "$zstd_a_rss") | $(mib "$zstd_a10_rss") | $(ratio "$zstd_a10_rss" "$zstd_a_rss") |"
    target "zstd RSS flat, (a) 1x to 10x" "$(x100 "$zstd_a10_rss" "$zstd_a_rss")" 110 \
        "$(mib "$zstd_a_rss") MiB to $(mib "$zstd_a10_rss") MiB, target within 10 %"
    # Flat: growing the tree tenfold may not grow peak memory by more than 10 %.
    target "RSS flat, (a) 1x to 10x" "$(x100 "$a10_rss" "$a_rss")" 110 \
        "$(mib "$a_rss") MiB to $(mib "$a10_rss") MiB, target within 10 %"
    target "RSS flat, (b) 1x to 4x" "$(x100 "$b4_rss" "$b_rss")" 110 \
        "$(mib "$b_rss") MiB to $(mib "$b4_rss") MiB, target within 10 %"
fi
target "peak RSS of run" "$max_rss" $((10 * 1024)) "$(mib "$max_rss") MiB at most, target <= 10 MiB"

# --- the idle service ----------------------------------------------------------------------

mkdir -p "$work/idle"
# A schedule twelve hours away, so that the service only waits.
printf 'data;%s;idle\n' "$(date -d '+12 hours' +%H:%M)" >"$work/idle/backup_schedules.txt"
manager_pid_file=$work/idle/logs/backup_service.pid
"$manager" --dir "$work/idle" start >/dev/null
service_pid=$(tr -d '\n' <"$manager_pid_file")
status_field() { sed -n "s/^$1:[[:space:]]*\([0-9]*\).*/\1/p" "/proc/$service_pid/status"; }
sleep 2
switches_before=$(status_field voluntary_ctxt_switches)
sleep "$idle"
switches_after=$(status_field voluntary_ctxt_switches)
idle_rss=$(status_field VmRSS)
"$manager" --dir "$work/idle" stop >/dev/null
manager_pid_file=
wakeups_x100=$((((switches_after - switches_before) * 6000) / idle))

# idle_rss_of BIN: the median VmRSS and Pss (KiB) of BIN's idle service over 5 starts, as
# "VMRSS PSS".
idle_rss_of() {
    local i pid dir vm=() pss=()
    for i in 1 2 3 4 5; do
        dir=$work/idle-$i
        mkdir -p "$dir"
        ln -sf "$1" "$dir/backup_manager"
        cp "$work/idle/backup_schedules.txt" "$dir/"
        "$dir/backup_manager" --dir "$dir" start >/dev/null
        pid=$(tr -d '\n' <"$dir/logs/backup_service.pid")
        sleep 2
        vm+=("$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$pid/status")")
        pss+=("$(sed -n 's/^Pss:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$pid/smaps_rollup")")
        "$dir/backup_manager" --dir "$dir" stop >/dev/null
        rm -rf "$dir"
    done
    echo "$(median "${vm[@]}") $(median "${pss[@]}")"
}
build_lines=()
read -r dynamic_rss dynamic_pss < <(idle_rss_of "$bin")
build_lines+=("| dynamic (glibc shared) | $(stat -c %s "$bin") | $dynamic_rss | $dynamic_pss |")
if [[ -x $static_bin ]]; then
    read -r static_rss static_pss < <(idle_rss_of "$static_bin")
    build_lines+=("| static-pie (\`scripts/install.sh --static\`) | $(stat -c %s "$static_bin") | $static_rss | $static_pss |")
    target "idle service RSS, static build" "$static_rss" 2560 "$static_rss KiB, target <= 2560 KiB"
fi

# --- list and the binary -------------------------------------------------------------------

mkdir -p "$work/list"
for ((i = 0; i < 10000; i++)); do
    printf 'data/folder%d;%02d:%02d;name%d\n' "$i" $((i % 24)) $((i % 60)) "$i"
done >"$work/list/backup_schedules.txt"
list_times=()
for ((i = 0; i < 21; i++)); do
    timed "$manager" --dir "$work/list" list
    list_times+=("$wall_us")
done
list_us=$(median "${list_times[@]}")
binary_bytes=$(stat -c %s "$bin")

note ""
note "## Service and binary"
note ""
note "| measure | value |"
note "| --- | --- |"
note "| idle service RSS (VmRSS) | $idle_rss KiB |"
note "| idle service wake-ups (voluntary context switches) per minute, over ${idle} s | $((wakeups_x100 / 100)).$(printf %02d $((wakeups_x100 % 100))) |"
note "| \`backup_manager list\`, 10,000-line plan, median of 21 | $((list_us / 1000)).$(printf %03d $((list_us % 1000))) ms |"
note "| release binary, stripped | $binary_bytes bytes |"
note ""
note "Idle service, median of 5 starts (KiB):"
note ""
note "| build | binary bytes | VmRSS | Pss |"
note "| --- | --- | --- | --- |"
for line in "${build_lines[@]}"; do note "$line"; done
target "idle service RSS" "$idle_rss" 2560 "$idle_rss KiB, target <= 2560 KiB"
# The minute tick is one wake-up a minute; the target allows one more.
target "idle wake-ups" "$wakeups_x100" 200 \
    "$((wakeups_x100 / 100)).$(printf %02d $((wakeups_x100 % 100)))/min, target <= 2/min"
target "list on 10k lines" "$list_us" 10000 "$(seconds "$list_us") s, target <= 0.010 s"
target "release binary" "$binary_bytes" 2500000 "$binary_bytes bytes, target <= 2.5 MB"

note ""
note "## Every run, in the order run (seconds)"
note ""
for line in "${spreads[@]}"; do note "$line"; done
note ""
note "## Targets"
note ""
note "| target | measured | result |"
note "| --- | --- | --- |"
for line in "${targets[@]}"; do note "$line"; done

if [[ $out != - ]]; then
    # The section of `--peers` is that benchmark's, kept as it is.
    peers=$(awk '/^## / {keep = /^## Against restic and borg/} keep' "$out" 2>/dev/null || true)
    {
        echo "# Benchmarks"
        echo
        echo "A real run of \`scripts/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'),"
        echo "$("$bin" --version 2>/dev/null | head -1)."
        echo
        echo "- Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)," \
            "$(free -g | awk '/^Mem:/ {print $2}') GiB RAM, Linux $(uname -r)," \
            "fixtures on $(df -T "$work" | awk 'NR == 2 {print $2}')"
        echo "- $(tar --version | head -1)"
        echo "- Ours: \`backup_manager run 0\` with the plan line \`data/<case>;03:00;bench\`;" \
            "it writes \`backups/bench.tar\`, fsyncs it and renames it into place."
        echo "- Durability baseline: \`tar -C BASE -cf OUT data/<case> && sync OUT\`;" \
            "plain \`tar -cf\` for reference; for (b) \`cp SRC OUT && sync OUT\`, the limit."
        echo "- Each timed command starts warm (files read once beforehand), with no archive at" \
            "its output path and after a global \`sync\`; the commands take turns going first;" \
            "each case starts after a \`sync\` and 5 s for the disk to settle;" \
            "every archive is checked with \`tar --compare\`."
        echo "- Peak RSS is GNU time's %M. Idle service: VmRSS and voluntary context switches" \
            "from /proc/PID/status. \`list\` is wall time from bash's EPOCHREALTIME, process start included."
        echo
        printf '%s\n' "${report[@]}"
        echo
        echo "Reproduce: \`cargo build --release && scripts/bench.sh$( ((cold)) && echo " --cold")\` (about $( ((cold)) && echo 40 || echo 20) minutes)."
        if [[ -n $peers ]]; then
            echo
            echo "$peers"
        fi
    } >"$out"
    echo "bench: wrote $out"
fi

if ((${#misses[@]})); then
    echo "bench: targets missed: ${misses[*]}" >&2
    exit 2
fi
