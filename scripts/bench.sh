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
  --runs N        timed runs of each command per case              (default 5)
  --no-scaling    skip (a) at 10x and (b) at 4x
  --cold          also time (a), (b), (c) from a cold page cache (root: drop_caches)
  --idle SECONDS  how long the idle service is watched             (default 120)
  --work DIR      where fixtures and archives go (default: a new dir in /var/tmp)
  --bin PATH      the backupbox binary        (default: target/release/backupbox)
  --out FILE      the report                  (default: BENCHMARKS.md; - for none)
EOF
}

repo=$(cd "$(dirname "$0")/.." && pwd)
small=20000 big_mib=1024 tiny=200000 runs=5 scaling=1 idle=120 cold=0
work_parent=/var/tmp bin=$repo/target/release/backupbox out=$repo/BENCHMARKS.md
while (($#)); do
    case $1 in
    --small) small=$2; shift 2 ;;
    --big) big_mib=$2; shift 2 ;;
    --tiny) tiny=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --no-scaling) scaling=0; shift ;;
    --cold) cold=1; shift ;;
    --idle) idle=$2; shift 2 ;;
    --work) work_parent=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
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

warm() { find "$1" -type f -exec cat {} + >/dev/null; }

# --- measuring -----------------------------------------------------------------------------

now_us() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }

# timed OUT_VAR COMMAND...: runs COMMAND under /usr/bin/time; sets wall_us and rss_kb.
wall_us=0 rss_kb=0
timed() {
    local start end
    start=$(now_us)
    /usr/bin/time -f %M -o "$work/rss" "$@" >/dev/null 2>"$work/stderr" || {
        cat "$work/stderr" >&2
        die "failed: $*"
    }
    end=$(now_us)
    wall_us=$((end - start))
    rss_kb=$(tail -1 "$work/rss")
}

median() { printf '%s\n' "$@" | sort -n | sed -n "$((($# + 1) / 2))p"; }
seconds() { printf '%d.%03d' $(($1 / 1000000)) $((($1 / 1000) % 1000)); }
ratio() { printf '%d.%02d' $(($1 / $2)) $(((($1 * 100) / $2) % 100)); }
# samples SECONDS...: " 0.123 0.456", for the every-run lines.
samples() { local t out=; for t in "$@"; do out+=" $(seconds "$t")"; done; echo "$out"; }
mib() { printf '%d.%d' $(($1 / 1024)) $((($1 * 10 / 1024) % 10)); }

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
    # Each run starts the rotation at the next command, so no command always runs first
    # (right after the deletions and the sync) or always last.
    local -a order=(ours gsync gnu)
    ((with_cp)) && order+=(copy)
    local k step start end tar_rss
    for ((i = 0; i < runs; i++)); do
        for ((k = 0; k < ${#order[@]}; k++)); do
            step=${order[(i + k) % ${#order[@]}]}
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
        done
    done
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
    local label=$1 rel=data/$2 big=$3 i k step start end
    local -a ours=() gsync=() gnu=() limit=() cps=()
    local -a order=(ours gsync gnu limit)
    ((big)) && order+=(copy)
    printf '%s;03:00;bench\n' "$rel" >"$base/backup_schedules.txt"
    # Four readers ahead, whatever the disk says: virtio disks report themselves rotational
    # (queue/rotational = 1) even on SSD-backed hosts, which makes the default one reader.
    printf 'read_threads = 4\n' >"$base/backupbox.toml"
    for ((i = 0; i < runs; i++)); do
        for ((k = 0; k < ${#order[@]}; k++)); do
            step=${order[(i + k) % ${#order[@]}]}
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
        done
    done
    rm -f "$ours_archive" "$gnu_archive" "$copy_out" "$base/backupbox.toml"
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

# zstd_case LABEL REL: a zstd level-3 backup of $base/data/REL, ours against
# `tar -I 'zstd -3 -T0' -cf OUT && sync OUT`, RUNS times each, alternating. Prints the medians
# and sizes; sets case_ours_rss for the caller.
zstd_case() {
    local label=$1 rel=data/$2 i start end ours_size gnu_size
    local -a ours=() ours_rss=() gnu=()
    local ours_zst=$base/backups/bench.tar.zst gnu_zst=$base/gnu.tar.zst
    printf '%s;03:00;bench\n' "$rel" >"$base/backup_schedules.txt"
    printf 'compress = "zstd"\nlevel = 3\n' >"$base/backupbox.toml"
    sync
    warm "$base/$rel"
    for ((i = 0; i < runs; i++)); do
        rm -f "$ours_zst" "$gnu_zst"
        sync
        timed "$manager" --dir "$base" run 0
        ours+=("$wall_us") ours_rss+=("$rss_kb")
        check_archive "$ours_zst"
        ours_size=$(stat -c %s "$ours_zst")
        rm -f "$ours_zst"
        sync
        start=$(now_us)
        timed tar -C "$base" -I 'zstd -3 -T0' -cf "$gnu_zst" "$rel"
        timed sync "$gnu_zst"
        end=$(now_us)
        gnu+=($((end - start)))
        check_archive "$gnu_zst"
        gnu_size=$(stat -c %s "$gnu_zst")
    done
    rm -f "$ours_zst" "$gnu_zst" "$base/backupbox.toml"
    case_ours=$(median "${ours[@]}") case_ours_rss=$(median "${ours_rss[@]}")
    case_gnu=$(median "${gnu[@]}")
    note "| $label | $(seconds "$case_ours") | $(seconds "$case_gnu") | $(ratio "$case_ours" "$case_gnu") | $(mib "$case_ours_rss") | $ours_size | $gnu_size |"
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
rm -rf "$base/data/tiny"

max_rss=$((a_rss > b_rss ? a_rss : b_rss))
max_rss=$((c_rss > max_rss ? c_rss : max_rss))

if ((${#cold_lines[@]})); then
    note ""
    note "## Cold page cache, median of $runs runs (seconds; caches dropped before every command; ours with read_threads = 4)"
    note ""
    note "| case | ours | tar && sync | tar | read limit | cp && sync | ours / (tar && sync) | ours / read limit |"
    note "| --- | --- | --- | --- | --- | --- | --- | --- |"
    for line in "${cold_lines[@]}"; do note "$line"; done
elif ((${cold_refused:-0})); then
    note ""
    note "## Cold page cache: not measured (the page cache could not be dropped here)"
fi

note ""
note "## zstd level 3, median of $runs runs (seconds; sizes in bytes, of the last run)"
note ""
note "| case | ours | tar -I 'zstd -3 -T0' && sync | ratio | ours peak RSS MiB | ours size | tar size |"
note "| --- | --- | --- | --- | --- | --- | --- |"
zstd_case "(a) $small files" small
zstd_a_rss=$case_ours_rss
zstd_case "(b) one $big_mib MiB file" big
zstd_rss=$((case_ours_rss > zstd_a_rss ? case_ours_rss : zstd_a_rss))
target "peak RSS of a zstd run" "$zstd_rss" $((32 * 1024)) \
    "$(mib "$zstd_rss") MiB at most, target <= 32 MiB"

if ((scaling)); then
    rm -rf "$base/data/small"
    make_tree "$base/data/small" "$((small * 10))" 2000 64 4096
    bench_case "(a) x10: $((small * 10)) files" small 0
    a10_ours=$case_ours a10_rss=$case_ours_rss
    rm -rf "$base/data/small"
    rm -rf "$base/data/big"
    make_big "$base/data/big" "$((big_mib * 4))"
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
target "idle service RSS" "$idle_rss" 2560 "$idle_rss KiB, target <= 2560 KiB"
# The minute tick is one wake-up a minute; the target allows one more.
target "idle wake-ups" "$wakeups_x100" 200 \
    "$((wakeups_x100 / 100)).$(printf %02d $((wakeups_x100 % 100)))/min, target <= 2/min"
target "list on 10k lines" "$list_us" 10000 "$(seconds "$list_us") s, target <= 0.010 s"
target "release binary" "$binary_bytes" 2000000 "$binary_bytes bytes, target <= 2 MB"

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
        echo "Reproduce: \`cargo build --release && scripts/bench.sh\` (about 10 minutes)."
    } >"$out"
    echo "bench: wrote $out"
fi

if ((${#misses[@]})); then
    echo "bench: targets missed: ${misses[*]}" >&2
    exit 2
fi
