#!/usr/bin/env bash
# ci/test-local-only.sh: the build without optional parts (`make FEATURES=`, what
# `make check-size` builds into target/local-only/) keeps the promises the README and
# the man page make for it: a real lock works (ci/smoke.sh), and what it leaves out
# is refused with its documented exit status before anything is run or created —
# --status and --replace 64 ("built without"), --syslog and --jitter 64 (unknown
# options, which its --help does not list), an etcd:// address 69.
#
#   bash ci/test-local-only.sh BIN VERSION
set -euo pipefail
bin=${1:?usage: test-local-only.sh BIN VERSION}
version=${2:?usage: test-local-only.sh BIN VERSION}

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

bash "$(dirname "$0")/smoke.sh" "$bin" "$version"

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
lock=$dir/job.lock
ran=$dir/ran

# expect STATUS MESSAGE ARGS...: withlock ARGS exits STATUS, says MESSAGE on stderr,
# runs nothing and creates no lock file.
expect() {
    local want=$1 message=$2 status=0
    shift 2
    "$bin" "$@" 2>"$dir/err" && status=0 || status=$?
    [ "$status" = "$want" ] || fail "withlock $*: exit $status, not $want ($(cat "$dir/err"))"
    grep -qF -- "$message" "$dir/err" || fail "withlock $*: says '$(cat "$dir/err")', not '$message'"
    [ ! -e "$ran" ] || fail "withlock $*: the job ran"
    [ ! -e "$lock" ] || fail "withlock $*: the lock file was created"
}
expect 64 "built without --status" --status "$lock"
expect 64 "built without --replace" --replace "$lock" touch "$ran"
expect 64 "unknown option: '--syslog'" --syslog "$lock" touch "$ran"
expect 64 "unknown option: '--jitter'" --jitter 1s "$lock" touch "$ran"
# (Plain `make` builds every part; `make FEATURES=etcd` would leave the others out.)
expect 69 'built without etcd support (build it with `make`)' etcd://127.0.0.1:1/job touch "$ran"

help=$("$bin" --help)
for option in --syslog --jitter; do
    ! grep -q -- "$option" <<<"$help" || fail "--help lists $option, which this build does not know"
done
echo "local-only: $bin: a real lock; --status, --replace, --syslog, --jitter and etcd:// refused as documented: ok"
