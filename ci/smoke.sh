#!/usr/bin/env bash
# ci/smoke.sh: an installed withlock works: its version, and a real lock.
#
#   bash ci/smoke.sh BIN VERSION
#   WITHLOCK_RUNNER=qemu-arm bash ci/smoke.sh BIN VERSION    (a binary for another architecture)
#
# The lock lives in a private (0700) directory, as withlock requires: a holder keeps
# it, a second run is refused as busy (75, or 0 and silent with -q), and a waiter
# runs as soon as the holder is gone.
set -euo pipefail
bin=${1:?usage: smoke.sh BIN VERSION}
version=${2:?usage: smoke.sh BIN VERSION}
# The emulator that runs BIN, if any (its words are split).
read -r -a runner <<<"${WITHLOCK_RUNNER:-}"
withlock=("${runner[@]}" "$bin")

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

got=$("${withlock[@]}" --version) || fail "$bin --version exited $?"
[ "$got" = "withlock $version" ] || fail "$bin --version says '$got', not 'withlock $version'"

dir=$(mktemp -d)
holder=
cleanup() {
    [ -z "$holder" ] || kill "$holder" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
lock=$dir/job.lock

# A free lock: the job runs, and its status comes back.
out=$("${withlock[@]}" "$lock" sh -c 'echo ran; exit 3') && status=0 || status=$?
[ "$out" = ran ] && [ "$status" = 3 ] || fail "a free lock: output '$out', status $status (want 'ran', 3)"
[ "$(stat -c %a "$lock")" = 600 ] || fail "the lock file's mode is $(stat -c %a "$lock"), not 600"

# A held lock: the holder is one process (sh execs sleep), so killing it frees the lock.
"${withlock[@]}" "$lock" sh -c ": >'$dir/held'; exec sleep 60" &
holder=$!
for _ in $(seq 100); do [ -e "$dir/held" ] && break; sleep 0.05; done
[ -e "$dir/held" ] || fail "the holder never ran"
"${withlock[@]}" "$lock" touch "$dir/second" 2>"$dir/err" && status=0 || status=$?
[ "$status" = 75 ] || fail "a busy lock exited $status, not 75"
[ ! -e "$dir/second" ] || fail "a busy lock ran the job"
grep -q "$lock" "$dir/err" || fail "the busy message does not name the lock: $(cat "$dir/err")"
out=$("${withlock[@]}" -q "$lock" touch "$dir/second" 2>&1) && status=0 || status=$?
[ "$status" = 0 ] && [ -z "$out" ] && [ ! -e "$dir/second" ] ||
    fail "-q on a busy lock: status $status, output '$out' (want 0, nothing, no job)"

# A waiter runs once the holder is gone.
(sleep 0.3 && kill "$holder") &
"${withlock[@]}" -w 10 "$lock" touch "$dir/third" || fail "the waiter exited $?"
[ -e "$dir/third" ] || fail "the waiter did not run its job"
wait "$holder" 2>/dev/null || true
holder=
echo "smoke: $bin: version $version, a real lock (free, busy, -q, -w): ok"
