# The measuring shared by scripts/bench.sh and scripts/bench-peers.sh, sourced by both: they
# set $work (for the files GNU time writes) and define die before calling these.

now_us() { local t=${EPOCHREALTIME/./}; echo "${t#0}"; }

# timed COMMAND...: runs COMMAND under /usr/bin/time; sets wall_us and rss_kb.
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
