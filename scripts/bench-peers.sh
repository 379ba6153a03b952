#!/usr/bin/env bash
# The peer benchmark, `scripts/bench.sh --peers`: backupbox with incremental levels against
# restic and borg (what users pick instead) and `tar -I 'zstd -3 -T0'`, on a copy of a real
# tree (/usr/share is on every Debian host), all in one run, taking turns: a first backup, a
# second after 1 % of the files changed (appended to 1 file in 100, 100 added, 50 removed), a
# week of such days, the bytes stored, a restore of the newest state, and peak RSS. Ratios
# are ours / theirs; the section "Against restic and borg" of BENCHMARKS.md is replaced.
#
# Installs nothing. Needs: apt-get install restic borgbackup time zstd. Build first:
#   cargo build --release && scripts/bench.sh --peers
# Exit status: 0 all targets met, 1 a wrong restore or a broken run, 2 a target missed.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/bench.sh --peers [options]
  --tree DIR      the tree backed up, copied first      (default /usr/share)
  --rounds N      rounds, each on a fresh copy and fresh repositories; medians of them
                  (default 3)
  --days N        days of the week: a first backup, then N-1 days of 1 % changes (default 7)
  --work DIR      where copies, repositories and restores go (default: a new dir in /var/tmp)
  --bin PATH      the backupbox binary                  (default: target/release/backupbox)
  --out FILE      the report whose peer section is replaced (default: BENCHMARKS.md; - for none)
EOF
}

repo=$(cd "$(dirname "$0")/.." && pwd)
tree=/usr/share rounds=3 days=7 work_parent=/var/tmp
bin=$repo/target/release/backupbox out=$repo/BENCHMARKS.md
while (($#)); do
    case $1 in
    --peers) shift ;;
    --tree) tree=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --work) work_parent=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 1 ;;
    esac
done

die() { echo "bench-peers: $*" >&2; exit 1; }
[[ -x $bin ]] || die "no binary at $bin; run: cargo build --release"
for tool in restic borg zstd /usr/bin/time; do
    command -v "$tool" >/dev/null ||
        die "needs $tool; install the peers with: apt-get install restic borgbackup time zstd"
done
((rounds >= 1 && days >= 2)) || die "--rounds must be at least 1, --days at least 2"
[[ -d $tree ]] || die "no tree at $tree"

work=$(mktemp -d "$work_parent/backupbox-peers.XXXXXX")
trap 'rm -rf "$work"' EXIT
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$work/restic-cache
export BORG_BASE_DIR=$work/borg-home BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
tools=(ours restic borg tar)

# now_us, timed (sets wall_us and rss_kb), median, seconds, ratio.
source "$repo/scripts/bench-measure.sh"
mb() { printf '%d.%d' $(($1 / 1000000)) $((($1 / 100000) % 10)); }

# The commands, one function per tool and step, run from the round's folder.
backup_ours() { "$round/ours/backup_manager" --dir "$round/ours" run 0 --quiet; }
backup_restic() { cd "$round/src" && restic -r "$round/restic" backup -q share && sync -f "$round/restic"; }
backup_borg() { cd "$round/src" && borg create --compression zstd,3 "$round/borg::day$day" share && sync -f "$round/borg"; }
backup_tar() { tar -C "$round/src" -I 'zstd -3 -T0' -cf "$round/tar/day$day.tar.zst" share && sync "$round/tar/day$day.tar.zst"; }
restore_ours() { "$round/ours/backup_manager" --dir "$round/ours" restore share --to "$round/restored-ours" --quiet; }
restore_restic() { restic -r "$round/restic" restore latest --target "$round/restored-restic" -q && sync -f "$round/restored-restic"; }
restore_borg() { mkdir -p "$round/restored-borg" && cd "$round/restored-borg" && borg extract "$round/borg::day$last" && sync -f .; }
restore_tar() { mkdir -p "$round/restored-tar" && tar -C "$round/restored-tar" -I zstd -xf "$round/tar/day$last.tar.zst" && sync -f "$round/restored-tar"; }
export -f backup_ours backup_restic backup_borg backup_tar restore_ours restore_restic restore_borg restore_tar

# change DAY: 1 % of the files: an appended line to 1 file in 100, 100 new files, 50 removed.
change() {
    local day=$1 list=$work/files
    find "$round/src/share" -type f | LC_ALL=C sort >"$list"
    awk -v d="$day" 'NR % 100 == d % 100' "$list" | while IFS= read -r file; do
        printf 'changed on day %d\n' "$day" >>"$file"
    done
    mkdir -p "$round/src/share/bench-new-$day"
    for ((i = 0; i < 100; i++)); do printf 'new on day %d, %d\n' "$day" "$i" >"$round/src/share/bench-new-$day/$i"; done
    awk -v d="$day" 'NR % 100 == (d + 50) % 100 && removed++ < 50' "$list" | while IFS= read -r file; do rm -f "$file"; done
}

# The restored tree must be the tree of the last day, byte for byte, links as links.
check_restore() {
    local tool=$1 found
    found=$(find "$round/restored-$tool" -type d -name share -print -quit)
    [[ -n $found ]] || die "$tool restored no share/"
    diff -r --no-dereference "$round/src/share" "$found" >/dev/null ||
        die "$tool's restore differs from the tree it backed up"
}

declare -A first second later restore_t bytes peak
for tool in "${tools[@]}"; do
    first[$tool]= second[$tool]= later[$tool]= restore_t[$tool]= bytes[$tool]= peak[$tool]=
done
files=$(find "$tree" -type f 2>/dev/null | wc -l)
size=$(du -sb "$tree" 2>/dev/null | cut -f1)
last=$((days - 1))

for ((r = 0; r < rounds; r++)); do
    round=$work/round$r
    export round
    mkdir -p "$round/src" "$round/ours" "$round/tar"
    cp -a "$tree" "$round/src/share" 2>/dev/null || true
    ln -s "$bin" "$round/ours/backup_manager"
    printf '%s;03:30;share\n' "$round/src/share" >"$round/ours/backup_schedules.txt"
    printf 'compress = "zstd"\nincremental = true\nfull_every = %d\nkeep = %d\n' "$days" "$days" \
        >"$round/ours/backupbox.toml"
    restic -r "$round/restic" init -q --repository-version 2 >/dev/null
    borg init -e none "$round/borg" >/dev/null
    declare -A round_peak=()
    for ((day = 0; day < days; day++)); do
        export day last
        ((day == 0)) || change "$day"
        sync
        for ((k = 0; k < ${#tools[@]}; k++)); do
            tool=${tools[(r + day + k) % ${#tools[@]}]}
            timed bash -c "backup_$tool"
            ((rss_kb > ${round_peak[$tool]:-0})) && round_peak[$tool]=$rss_kb
            case $day in
            0) first[$tool]+=" $wall_us" ;;
            1) second[$tool]+=" $wall_us" ;;
            *) later[$tool]+=" $wall_us" ;;
            esac
            echo "round $r day $day $tool $(seconds "$wall_us") s, $((rss_kb / 1024)) MiB" >&2
        done
    done
    for tool in "${tools[@]}"; do
        case $tool in
        ours) stored=$(du -sb "$round/ours/backups" | cut -f1) ;;
        tar) stored=$(du -sb "$round/tar" | cut -f1) ;;
        *) stored=$(du -sb "$round/$tool" | cut -f1) ;;
        esac
        bytes[$tool]+=" $stored"
        peak[$tool]+=" ${round_peak[$tool]}"
    done
    sync
    for ((k = 0; k < ${#tools[@]}; k++)); do
        tool=${tools[(r + k) % ${#tools[@]}]}
        timed bash -c "restore_$tool"
        restore_t[$tool]+=" $wall_us"
        check_restore "$tool"
        echo "round $r restore $tool $(seconds "$wall_us") s" >&2
    done
done

# med NAME TOOL: the median of an array's samples for a tool.
med() { local -n samples=$1; median ${samples[$2]}; }
misses=()
# target WHAT OURS THEIRS NUMERATOR DENOMINATOR: ours/theirs at most NUMERATOR/DENOMINATOR.
target() {
    if (($2 * $5 > $3 * $4)); then misses+=("$1: $(ratio "$2" "$3") > $(ratio "$4" "$5")"); fi
}
target "first backup vs restic" "$(med first ours)" "$(med first restic)" 1 2
target "level-1 after 1 % vs restic's second backup" "$(med second ours)" "$(med second restic)" 3 10
target "bytes stored after the week vs restic" "$(med bytes ours)" "$(med bytes restic)" 13 10
target "restore vs restic" "$(med restore_t ours)" "$(med restore_t restic)" 1 1
target "peak RSS vs restic" "$(med peak ours)" "$(med peak restic)" 1 4

row() {
    local what=$1 array=$2 unit=$3 tool line value
    line="| $what |"
    for tool in "${tools[@]}"; do
        value=$(med "$array" "$tool")
        case $unit in
        s) line+=" $(seconds "$value") |" ;;
        MB) line+=" $(mb "$value") |" ;;
        MiB) line+=" $((value / 1024)) |" ;;
        esac
    done
    for tool in restic borg tar; do
        line+=" $(ratio "$(med "$array" ours)" "$(med "$array" "$tool")") |"
    done
    echo "$line"
}
section=$(
    echo "## Against restic and borg"
    echo
    echo "A run of \`scripts/bench.sh --peers\` on $(date -u '+%Y-%m-%d %H:%M') UTC, backupbox $("$bin" --version | awk '{print $2}') (commit $(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)), $(restic version | awk '{print $1, $2}'), $(borg --version), $(tar --version | head -1)."
    echo
    echo "- Tree: a copy of $tree, $files files, $(mb "$size") MB. Rounds: $rounds, each on a fresh copy with fresh repositories; medians of the rounds. Each day the four take turns going first."
    echo "- Ours: \`compress = \"zstd\"\`, \`incremental = true\`, \`full_every = $days\`, \`keep = $days\`; \`backup_manager run 0\` (it fsyncs the archive). restic: a repository of version 2 (compression auto), \`restic backup\` then \`sync -f REPO\`. borg: \`borg init -e none\`, \`borg create --compression zstd,3\` then \`sync -f REPO\`. tar: \`tar -I 'zstd -3 -T0' -cf\` a full every day, then \`sync\`."
    echo "- Each day after the first: a line appended to 1 file in 100, 100 files added, 50 removed. Restores: the newest state into an empty folder, then \`sync -f\` (ours syncs itself); each is compared with the tree by \`diff -r --no-dereference\`, and all restored trees stay until the run ends."
    echo
    echo "| | ours | restic | borg | tar | ours / restic | ours / borg | ours / tar |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
    row "first backup (s)" first s
    row "second, after 1 % changed (s)" second s
    ((days > 2)) && row "each later day, median (s)" later s
    row "stored after $days days (MB)" bytes MB
    row "restore of the newest state (s)" restore_t s
    row "peak RSS of a backup (MiB)" peak MiB
    echo
    echo "Targets (issue 27): first backup ≤ 0.5× restic, a level-1 after 1 % ≤ 0.3× restic's second backup, bytes after a week ≤ 1.3× restic's repository, restore ≤ 1.0× restic, peak RSS ≤ 1/4 of restic's: $(if ((${#misses[@]})); then printf 'missed: %s; ' "${misses[@]}"; else echo "all met."; fi)"
)
echo "$section"
if [[ $out != - ]]; then
    # Everything else in the report is bench.sh's; only this section is replaced.
    kept=$(awk '/^## Against restic and borg/ {skip = 1; next} /^## / {skip = 0} !skip' "$out" 2>/dev/null || true)
    printf '%s\n\n%s\n' "${kept%$'\n'}" "$section" >"$out"
fi
((${#misses[@]} == 0)) || exit 2
