#!/usr/bin/env bash
# The one test command (README, .ci/run): installs the tools the suite needs, then runs every
# test. Tests that need root, a mount namespace or a bootable systemd-nspawn are marked
# #[ignore = "needs …"]; they run (--include-ignored) once this script has checked that the
# machine has what they need, and always under CI, where a machine without it fails them.
# Arguments go to the test binaries (a name filter, --nocapture, …).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null && [ -f "$HOME/.cargo/env" ]; then
    . "$HOME/.cargo/env"
fi

# Tools that are no Debian package (`pip:` in the list) go into a virtualenv under target/,
# from PyPI, whose bin/ leads the PATH of the tests.
venv=$PWD/target/test-tools/venv
export PATH="$venv/bin:$PATH"

packages=() pip_packages=()
while read -r tool package _; do
    case "$tool" in '' | '#'*) continue ;; esac
    command -v "$tool" >/dev/null && continue
    case "$package" in
    pip:*) pip_packages+=("${package#pip:}") ;;
    *) packages+=("$package") ;;
    esac
done <scripts/test-tools.txt
# The virtualenv needs Debian's python3-venv.
if ((${#pip_packages[@]})) && ! python3 -c 'import ensurepip' 2>/dev/null; then
    packages+=(python3-venv)
fi

if ((${#packages[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "scripts/test.sh: installing ${packages[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
    else
        echo "scripts/test.sh: the tests need these Debian packages; install them first:" >&2
        echo "  apt-get install ${packages[*]}" >&2
        exit 1
    fi
fi

if ((${#pip_packages[@]})); then
    echo "scripts/test.sh: installing ${pip_packages[*]} from PyPI into $venv" >&2
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q "${pip_packages[@]}"
fi

# Why the root-only tests can't run here; empty when they can.
cannot_run_ignored() {
    [ "$(id -u)" = 0 ] || { echo "not root"; return; }
    unshare --mount --propagation private true 2>/dev/null || { echo "no mount namespace"; return; }
    [ -x /lib/systemd/systemd ] || { echo "no systemd in this tree to boot"; return; }
    systemd-nspawn -q -D / --volatile=yes --register=no --keep-unit true >/dev/null 2>&1 ||
        echo "systemd-nspawn can't start a container here"
}

ignored=()
if [ -n "${CI:-}" ]; then
    ignored=(--include-ignored)
elif why=$(cannot_run_ignored) && [ -z "$why" ]; then
    ignored=(--include-ignored)
else
    echo "scripts/test.sh: $why: the tests marked 'needs …' are ignored (cargo lists them)" >&2
fi

if ((${#ignored[@]})); then
    # The container test's image holds the static release build: built here, before the
    # tests, so that the build does not compete with them for the CPUs.
    scripts/install.sh --static --prefix target/test-tools/static >/dev/null
    export BACKUPBOX_STATIC_BIN=$PWD/target/test-tools/static/bin/backupbox
fi

cargo test --locked -- "${ignored[@]}" "$@"
