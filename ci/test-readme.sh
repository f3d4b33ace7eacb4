#!/usr/bin/env bash
# ci/test-readme.sh: the README's shell examples work, as written.
#
#   bash ci/test-readme.sh [BIN]     (BIN: the withlock to test; default: the static build)
#
# Every ```sh block of README.md is run, in order, with `sh -e`, in a sandbox:
#   - HOME is a fresh private directory, with ~/.cache and ~/src/site/Makefile;
#   - /run/lock/jobs/ is replaced by the sandbox's own run/lock/jobs/ (made 0755, as
#     root would make the real one), the one substitution made in the text;
#   - PATH starts with ~/.local/bin (where the "Try it" block installs withlock), then
#     BIN, then stand-ins for the jobs the examples start (rsync; ./report and
#     `make publish` are files in the sandbox), each of which records that it ran;
#   - a line that is just `make test` is skipped: it is what runs this script;
#   - blocks with a line that starts with `make` run in the repository, as a newcomer
#     would; the others in a scratch directory (where ./report is).
# The test fails if a block exits non-zero, if a stand-in was never run (the README
# changed: update the list below), or if no block was found.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin=${1:-$repo/target/x86_64-unknown-linux-musl/release/withlock}
case $bin in /*) ;; *) bin=$repo/$bin ;; esac
[ -x "$bin" ] || { echo "test-readme: no withlock at $bin (run make first)" >&2; exit 1; }

sandbox=$(mktemp -d)
trap 'rm -rf "$sandbox"' EXIT
# cargo and rustup keep their homes under the real HOME: keep them there.
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo} RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
export HOME=$sandbox/home
unset XDG_RUNTIME_DIR XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME
mkdir -m 0700 "$HOME" "$HOME/.cache" "$sandbox/work"
mkdir -p -m 0755 "$sandbox/run/lock/jobs" "$sandbox/bin" "$sandbox/stubs"
ln -s "$bin" "$sandbox/bin/withlock"
export PATH=$HOME/.local/bin:$sandbox/bin:$sandbox/stubs:$PATH
ran=$sandbox/ran
: >"$ran"

# The stand-ins: each appends its name and arguments to $ran.
stand_ins="rsync report publish"
printf '#!/bin/sh\necho "rsync $*" >>%s\n' "$ran" >"$sandbox/stubs/rsync"
printf '#!/bin/sh\necho "report $*" >>%s\n' "$ran" >"$sandbox/work/report"
chmod 0755 "$sandbox/stubs/rsync" "$sandbox/work/report"
mkdir -p "$HOME/src/site"
printf 'publish:\n\techo "publish $$PWD" >>%s\n' "$ran" >"$HOME/src/site/Makefile"

# The ```sh blocks, one file each, named after their first line in README.md.
mkdir "$sandbox/blocks"
awk -v dir="$sandbox/blocks" '
    /^```/ && open { open = 0; close(file); next }
    /^```sh *$/ { open = 1; file = sprintf("%s/%04d.sh", dir, NR + 1); printf "" > file; next }
    open { print > file }' README.md
blocks=$(ls "$sandbox/blocks")
[ -n "$blocks" ] || { echo "FAIL: no \`\`\`sh block in README.md" >&2; exit 1; }

failures=0
for name in $blocks; do
    block=$sandbox/blocks/$name
    line=$((10#${name%.sh}))
    sed -i -e "s|/run/lock/jobs/|$sandbox/run/lock/jobs/|g" -e 's|^make test$|: make test, skipped|' "$block"
    dir=$sandbox/work
    grep -q '^make ' "$block" && dir=$repo
    if (cd "$dir" && sh -e "$block") >"$sandbox/out" 2>&1; then
        echo "README.md block at line $line: ok"
    else
        status=$?
        failures=$((failures + 1))
        {
            echo "FAIL: README.md block at line $line exited $status (run in $dir):"
            sed 's/^/    | /' "$block"
            echo "  output:"
            sed 's/^/    > /' "$sandbox/out"
        } >&2
    fi
done

# What the README says of the "Try it" install under ~/.local: man finds the page once
# ~/.local/bin is on PATH; bash-completion and fish find the completions by themselves.
if [ -x "$HOME/.local/bin/withlock" ]; then
    page=$(man -w withlock 2>/dev/null || true)
    [ "$page" = "$HOME/.local/share/man/man1/withlock.1" ] || {
        echo "FAIL: after the Try-it install, man -w withlock finds '$page'" >&2
        failures=$((failures + 1))
    }
    bash --norc --noprofile -c '. /usr/share/bash-completion/bash_completion
        __load_completion withlock && complete -p withlock' >/dev/null 2>&1 || {
        echo "FAIL: after the Try-it install, bash-completion does not find the completion" >&2
        failures=$((failures + 1))
    }
    fish -c 'complete -C "withlock --wa"' | grep -q '^--wait' || {
        echo "FAIL: after the Try-it install, fish does not complete withlock --wa" >&2
        failures=$((failures + 1))
    }
    echo "README: after the Try-it install, man, bash-completion and fish find withlock's files"
else
    echo "FAIL: no README block installed withlock into ~/.local/bin" >&2
    failures=$((failures + 1))
fi

for stand_in in $stand_ins; do
    grep -q "^$stand_in\\b" "$ran" || {
        echo "FAIL: no README example ran '$stand_in' (remove its stand-in from ci/test-readme.sh if it is gone)" >&2
        failures=$((failures + 1))
    }
done
if [ "$failures" -gt 0 ]; then
    echo "readme: $failures failure(s)" >&2
    exit 1
fi
echo "readme: $(echo "$blocks" | wc -l) shell blocks ran; the jobs ran: $(cut -d' ' -f1 "$ran" | sort -u | tr '\n' ' ')"
