#!/usr/bin/env bash
# ci/bench.sh: withlock's benchmark (`make bench`).
#
#   bash ci/bench.sh PATH/TO/withlock [PATH/TO/LOCAL-ONLY/withlock]
#                   (the static musl release binary; the build without optional
#                   parts, `make FEATURES=`, whose size the 64 KiB goal is for)
#
# Measures, against util-linux flock(1) and a minimal C wrapper (the floor):
#   1. the cost of one run: a bare exec of /bin/true, then the same under each
#      locker, interleaved run by run by a small C driver (ci/bench/spawnloop.c);
#   2. the hand-off latency: holder's job exits -> a blocked waiter's job starts;
#   3. the CPU burnt by many waiters blocked on a held lock, and how long the
#      whole queue takes to drain once the holder lets go.
# The goals are judged with the lock files on $TMPDIR's file system; the cost
# of one run is also shown with them on tmpfs (/dev/shm), where withlock's own
# --name locks live, since the holder record's write costs more on a disk.
# It ends with a Markdown summary the README can paste.
#
# Needs musl-gcc (Debian: musl-tools) and util-linux flock. Helpers are built
# into target/bench/ (BENCH_BUILD_DIR); locks live in a private mktemp -d.
#
# Knobs (environment):
#   BENCH_QUICK=1            small numbers everywhere, for a smoke run
#   BENCH_ROUNDS=3           per-run cost: rounds ...
#   BENCH_RUNS=2000          ... of this many runs of each candidate
#   BENCH_HANDOFF_REPS=30    hand-off measurements per tool
#   BENCH_HANDOFF_HOLD_MS=200  how long the hand-off holder keeps the lock
#   BENCH_WAITERS=50         blocked waiters in the CPU test
#   BENCH_HOLD_MS=5000       how long the CPU-test holder keeps the lock
#   BENCH_STRICT=1           exit 1 if a goal is missed (default: report only)
#   BENCH_BUILD_DIR, BENCH_CC (musl-gcc), BENCH_FLOCK (flock), BENCH_TRUE (/bin/true)
set -euo pipefail

die() {
    printf 'bench: %s\n' "$*" >&2
    exit 2
}

if [[ $# -lt 1 || $# -gt 2 || $1 == -h || $1 == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 64
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$ROOT/ci/bench

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    : "${BENCH_ROUNDS:=1}" "${BENCH_RUNS:=200}" "${BENCH_HANDOFF_REPS:=5}"
    : "${BENCH_WAITERS:=10}" "${BENCH_HOLD_MS:=1500}"
fi
ROUNDS=${BENCH_ROUNDS:-3}
RUNS=${BENCH_RUNS:-2000}
HANDOFF_REPS=${BENCH_HANDOFF_REPS:-30}
HANDOFF_HOLD_MS=${BENCH_HANDOFF_HOLD_MS:-200}
WAITERS=${BENCH_WAITERS:-50}
HOLD_MS=${BENCH_HOLD_MS:-5000}
STRICT=${BENCH_STRICT:-0}
BUILD=${BENCH_BUILD_DIR:-$ROOT/target/bench}
CC=${BENCH_CC:-musl-gcc}
TRUE_BIN=${BENCH_TRUE:-/bin/true}

for knob in ROUNDS RUNS HANDOFF_REPS HANDOFF_HOLD_MS WAITERS HOLD_MS; do
    [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$knob must be a positive integer, not '${!knob}'"
done
((HOLD_MS >= 1000)) || die "BENCH_HOLD_MS must be at least 1000"
((HANDOFF_HOLD_MS >= 50)) || die "BENCH_HANDOFF_HOLD_MS must be at least 50"

# --- What we need --------------------------------------------------------
missing=()
command -v "$CC" >/dev/null || missing+=("$CC (Debian: apt-get install musl-tools)")
FLOCK=${BENCH_FLOCK:-$(command -v flock || true)}
[[ -n $FLOCK && -x $FLOCK ]] || missing+=("flock (util-linux; Debian: apt-get install util-linux)")
for tool in awk sort mktemp timeout; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[[ -x $TRUE_BIN ]] || missing+=("$TRUE_BIN")
if ((${#missing[@]})); then
    printf 'bench: missing: %s\n' "${missing[@]}" >&2
    exit 2
fi

WL=$1
WL_LOCAL=${2:-$1}
[[ -f $WL_LOCAL ]] || die "$WL_LOCAL: no such file"
[[ -f $WL && -x $WL ]] || die "$WL: no such executable (build it first: cargo build --release --target x86_64-unknown-linux-musl)"
WL=$(cd "$(dirname "$WL")" && pwd)/$(basename "$WL")
FLOCK=$(cd "$(dirname "$FLOCK")" && pwd)/$(basename "$FLOCK")

# --- Scratch space, and cleaning up after ourselves ----------------------
BG_PIDS=()
WORK=
SHM=
cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${BG_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n $WORK ]]; then
        rm -rf -- "$WORK"
    fi
    if [[ -n $SHM ]]; then
        rm -rf -- "$SHM"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# withlock refuses lock files in world-writable directories (/tmp itself):
# mktemp -d makes a 0700 one, and /tmp above it is sticky, which is allowed.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/withlock-bench.XXXXXX")
chmod 0700 "$WORK"
LOCKS=$WORK/locks
mkdir -m 0700 "$LOCKS"

# --- Helpers ---------------------------------------------------------------
mkdir -p "$BUILD"
for prog in spawnloop floor stamp; do
    "$CC" -static -O2 -s -Wall -Wextra -o "$BUILD/$prog" "$SRC/$prog.c" ||
        die "could not build $SRC/$prog.c with $CC"
done
SPAWNLOOP=$BUILD/spawnloop
FLOOR=$BUILD/floor
STAMP=$BUILD/stamp

# Arithmetic on decimals: calc FORMAT EXPR [name=value...]
calc() {
    local fmt=$1 expr=$2
    shift 2
    local args=() kv
    for kv in "$@"; do args+=(-v "$kv"); done
    awk "${args[@]}" "BEGIN { printf \"$fmt\", $expr }"
}
us() { calc '%.1f' 'n / 1000' "n=$1"; }

# overheads FILE NAME: NAME[i] = candidate i's median over candidate 0's (the bare
# exec), in ns, from the "stats" lines spawnloop wrote to FILE.
overheads() {
    local -n into=$2
    local -A median
    local kind c a
    while read -r kind c a _; do
        if [[ $kind == stats ]]; then median[$c]=$a; fi
    done <"$1"
    for c in "${!median[@]}"; do
        into[$c]=$((median[$c] - median[0]))
    done
}
ms() { calc '%.2f' 'n / 1000000' "n=$1"; }

# Goals: goal VAR AWK_CONDITION name=value... sets VAR to ok or MISSED.
MISSED=0
goal() {
    local var=$1 expr=$2
    shift 2
    if [[ $(calc '%d' "($expr) ? 1 : 0" "$@") == 1 ]]; then
        printf -v "$var" ok
    else
        printf -v "$var" MISSED
        MISSED=$((MISSED + 1))
    fi
}

# Wait (up to 5 s) until someone holds LOCK; a probe that finds it free holds
# it for a moment only, and our holders all wait (-w), so probing is harmless.
wait_held() {
    local lock=$1 i rc
    for ((i = 0; i < 1000; i++)); do
        # Probe only once the holder has made the file: flock(1) would
        # otherwise create it, with its own mode.
        if [[ -e $lock ]]; then
            rc=0
            "$FLOCK" -n -E 99 "$lock" "$TRUE_BIN" || rc=$?
            [[ $rc == 99 ]] && return 0
        fi
        sleep 0.005
    done
    die "nobody took $lock within 5 s"
}

# Reap a background job, expecting exit 0.
reap() { # reap PID WHAT
    local rc=0
    wait "$1" || rc=$?
    ((rc == 0)) || die "$2 exited $rc"
}

bytes_kib() { calc '%.1f' 'b / 1024' "b=$1"; }

# --- Header and sanity -------------------------------------------------------
echo "withlock benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
NCPU=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')
KERNEL=$(uname -sr)
echo "machine:  ${CPU:-unknown CPU}, $NCPU CPUs, $KERNEL"
WL_VERSION=$("$WL" -V 2>/dev/null || echo '(no -V)')
echo "withlock: $WL ($WL_VERSION)"
echo "flock:    $FLOCK ($("$FLOCK" -V 2>/dev/null | head -n 1 || echo '?'))"
echo "floor:    $FLOOR (ci/bench/floor.c: open + flock(LOCK_EX|LOCK_NB) + execvp, $CC -static -O2 -s)"
echo "job:      $TRUE_BIN"
if command -v readelf >/dev/null && readelf -l "$WL" 2>/dev/null | grep -q 'INTERP'; then
    echo "warning:  $WL is dynamically linked; make bench means the static musl build"
fi

# Every candidate must run the job, and must really hold the lock while it
# runs (a probe from inside the job finds the lock busy): otherwise we would
# be timing something that does not lock.
for cand in withlock floor flock; do
    case $cand in
        withlock) bin=$WL ;;
        floor) bin=$FLOOR ;;
        flock) bin=$FLOCK ;;
    esac
    lock=$LOCKS/sanity-$cand
    "$bin" "$lock" "$TRUE_BIN" || die "$cand $lock $TRUE_BIN failed (exit $?)"
    rc=0
    "$bin" "$lock" "$FLOCK" -n -E 99 "$lock" "$TRUE_BIN" || rc=$?
    [[ $rc == 99 ]] || die "$cand: the lock was not held while the job ran (probe exit $rc)"
done
"$WL" "$LOCKS/sanity-busy" "$TRUE_BIN" || die "withlock $LOCKS/sanity-busy $TRUE_BIN failed (exit $?)"
rc=0
timeout 10 "$FLOCK" "$LOCKS/sanity-busy" "$WL" "$LOCKS/sanity-busy" "$TRUE_BIN" 2>/dev/null || rc=$?
[[ $rc == 75 ]] || echo "warning:  withlock on a lock held by flock(1) exited $rc, not 75"
echo

# --- 1. Cost of one run ------------------------------------------------------
echo "== 1. Cost of one run =="
echo "$SPAWNLOOP: posix_spawn + waitpid, each run timed alone (CLOCK_MONOTONIC);"
echo "the four candidates interleaved run by run, rotating order; $ROUNDS round(s) x $RUNS runs each."
echo "faults/run: page faults of the whole process (wrapper + the job it became), from wait4."
NAMES=(bare withlock floor flock)
LABELS=("$TRUE_BIN (bare exec)" "withlock L $TRUE_BIN" "floor L $TRUE_BIN" "flock L $TRUE_BIN")
"$SPAWNLOOP" "$ROUNDS" "$RUNS" \
    "$TRUE_BIN" \
    :: "$WL" "$LOCKS/run-withlock" "$TRUE_BIN" \
    :: "$FLOOR" "$LOCKS/run-floor" "$TRUE_BIN" \
    :: "$FLOCK" "$LOCKS/run-flock" "$TRUE_BIN" \
    >"$WORK/spawnloop.out" || die "the spawn loop failed (see above)"

declare -A MED MIN P10 P90 BEST ROUNDLIST RMED FAULTS
while read -r kind c a b c2 d _ f; do
    name=${NAMES[$c]}
    case $kind in
        round) # round CAND ROUND MEAN MEDIAN
            ROUNDLIST[$name]+="$(us "$b")/$(us "$c2") "
            RMED[$name,$a]=$c2
            if [[ -z ${BEST[$name]:-} ]] || ((b < BEST[$name])); then BEST[$name]=$b; fi
            ;;
        stats)
            MED[$name]=$a MIN[$name]=$b P10[$name]=$c2 P90[$name]=$d FAULTS[$name]=$f
            ;;
    esac
done <"$WORK/spawnloop.out"

row() { printf '%-24s %8s %8s %8s %8s %9s %11s %11s %7s\n' "$@"; }
echo
row candidate median p10 p90 min 'best rnd' overhead overhead faults
# (printf pads bytes, and µ is two: one more column for each µ.)
printf '%-24s %9s %9s %9s %9s %10s %12s %12s %7s\n' '' µs µs µs µs 'mean µs' 'median µs' 'best rnd µs' '/run'
for i in "${!NAMES[@]}"; do
    n=${NAMES[$i]}
    if [[ $n == bare ]]; then
        ovm='—' ovb='—'
    else
        ovm=$(us $((MED[$n] - MED[bare])))
        ovb=$(us $((BEST[$n] - BEST[bare])))
    fi
    row "${LABELS[$i]}" "$(us "${MED[$n]}")" "$(us "${P10[$n]}")" "$(us "${P90[$n]}")" \
        "$(us "${MIN[$n]}")" "$(us "${BEST[$n]}")" "$ovm" "$ovb" "${FAULTS[$n]}"
done
echo
echo "each round, mean/median (µs):"
for n in "${NAMES[@]}"; do
    printf '  %-9s %s\n' "$n" "${ROUNDLIST[$n]}"
done

OV_WL=$((MED[withlock] - MED[bare]))
OV_FLOOR=$((MED[floor] - MED[bare]))
OV_FLOCK=$((MED[flock] - MED[bare]))
OVB_WL=$((BEST[withlock] - BEST[bare]))
OVB_FLOOR=$((BEST[floor] - BEST[bare]))
OVB_FLOCK=$((BEST[flock] - BEST[bare]))
ratio() { # ratio A B -> A/B with 2 decimals, or n/a when B <= 0
    if (($2 > 0)); then calc '%.2f' 'a / b' "a=$1" "b=$2"; else echo 'n/a'; fi
}
R_FLOOR=$(ratio "$OV_WL" "$OV_FLOOR")
R_FLOCK=$(ratio "$OV_WL" "$OV_FLOCK")
if [[ $R_FLOOR == n/a ]]; then
    V_FLOOR='n/a (floor overhead <= 0: too noisy, raise BENCH_RUNS)'
    MISSED=$((MISSED + 1))
else
    goal V_FLOOR 'r <= 1.25' "r=$R_FLOOR"
fi
if [[ $R_FLOCK == n/a ]]; then
    V_FLOCK='n/a'
    MISSED=$((MISSED + 1))
else
    goal V_FLOCK 'r <= 0.125' "r=$R_FLOCK"
fi
echo
echo "overhead over the bare exec (medians): withlock $(us $OV_WL) µs, floor $(us $OV_FLOOR) µs, flock $(us $OV_FLOCK) µs"
echo "  withlock / floor = $R_FLOOR   (goal <= 1.25: $V_FLOOR)   [best-round means: $(ratio "$OVB_WL" "$OVB_FLOOR")]"
echo "  withlock / flock = $R_FLOCK   (goal <= 0.125 = 1/8: $V_FLOCK)   [best-round means: $(ratio "$OVB_WL" "$OVB_FLOCK")]"
spread=''
for ((r = 0; r < ROUNDS; r++)); do
    spread+="$(ratio $((RMED[withlock,$r] - RMED[bare,$r])) $((RMED[floor,$r] - RMED[bare,$r]))) "
done
echo "  withlock / floor, round by round (medians), to judge the noise: $spread"

# --syslog: the same loop, withlock with and without it. It stays the job's
# parent (a fork and a wait) and sends two datagrams. As root, with busybox,
# a real syslogd serves /dev/log (a private mount namespace where /dev is a
# directory of ours); otherwise whatever /dev/log this machine has, if any.
echo
echo "--syslog: withlock L $TRUE_BIN beside withlock --syslog L $TRUE_BIN, interleaved, $ROUNDS round(s) x $RUNS runs each."
SL_OUT=$WORK/spawnloop-syslog.out
SL_CANDS=(:: "$WL" "$LOCKS/run-plain" "$TRUE_BIN" :: "$WL" --syslog "$LOCKS/run-syslog" "$TRUE_BIN")
BUSYBOX=$(command -v busybox || true)
if [[ $(id -u) == 0 && -n $BUSYBOX ]] && command -v unshare >/dev/null; then
    SL_WHERE="a busybox syslogd on /dev/log (private mount namespace)"
    mkdir -m 0755 "$WORK/dev"
    : >"$WORK/dev/null"
    unshare --mount --propagation private sh -c '
        dev=$1 messages=$2 busybox=$3; shift 3
        mount --bind /dev/null "$dev/null" && mount --rbind "$dev" /dev || exit 97
        "$busybox" syslogd -n -O "$messages" & daemon=$!
        i=0; while [ ! -S /dev/log ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
        rc=0; "$@" || rc=$?
        kill $daemon; wait $daemon 2>/dev/null
        exit $rc' sh "$WORK/dev" "$WORK/messages" "$BUSYBOX" \
        "$SPAWNLOOP" "$ROUNDS" "$RUNS" "$TRUE_BIN" "${SL_CANDS[@]}" >"$SL_OUT" ||
        die "the --syslog spawn loop failed (see above)"
    SL_LINES=$(grep -c ' withlock\[' "$WORK/messages" || true)
    SL_WHERE+="; it logged $SL_LINES lines"
elif [[ -S /dev/log ]]; then
    SL_WHERE="this machine's /dev/log"
    "$SPAWNLOOP" "$ROUNDS" "$RUNS" "$TRUE_BIN" "${SL_CANDS[@]}" >"$SL_OUT" || die "the --syslog spawn loop failed"
else
    SL_WHERE="no /dev/log here: each line fails at once (ENOENT) and is dropped"
    "$SPAWNLOOP" "$ROUNDS" "$RUNS" "$TRUE_BIN" "${SL_CANDS[@]}" >"$SL_OUT" || die "the --syslog spawn loop failed"
fi
declare -A SL_OV
overheads "$SL_OUT" SL_OV
OV_PLAIN=${SL_OV[1]} OV_SYSLOG=${SL_OV[2]}
echo "log: $SL_WHERE"
echo "overhead over the bare exec (medians): withlock $(us $OV_PLAIN) µs, withlock --syslog $(us $OV_SYSLOG) µs: --syslog costs $(us $((OV_SYSLOG - OV_PLAIN))) µs per run"

# Where the lock file lives: the loop above used $TMPDIR's file system; withlock's
# own places for locks (--name: /run/withlock, $XDG_RUNTIME_DIR) are tmpfs. The
# record's write changes the file's inode on every run, which a disk file system
# (ext4: a journalled inode update) pays more for than tmpfs: the same loop, with
# the lock files in a private directory on /dev/shm, shows how much.
# (findmnt names ext4 as such; stat -f calls it ext2/ext3, by its magic number.)
FS_MAIN=$(findmnt -n -o FSTYPE -T "$LOCKS" 2>/dev/null || stat -f -c %T "$LOCKS" 2>/dev/null || echo unknown)
FS_ROW=''
if [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs && $FS_MAIN != tmpfs ]]; then
    SHM=$(mktemp -d /dev/shm/withlock-bench.XXXXXX)
    chmod 0700 "$SHM"
    echo
    echo "the same loop with the lock files on tmpfs ($SHM), beside those on $FS_MAIN ($LOCKS):"
    FS_OUT=$WORK/spawnloop-fs.out
    rc=0
    "$SPAWNLOOP" "$ROUNDS" "$RUNS" "$TRUE_BIN" \
        :: "$WL" "$LOCKS/fs-withlock" "$TRUE_BIN" :: "$FLOOR" "$LOCKS/fs-floor" "$TRUE_BIN" \
        :: "$WL" "$SHM/fs-withlock" "$TRUE_BIN" :: "$FLOOR" "$SHM/fs-floor" "$TRUE_BIN" >"$FS_OUT" || rc=$?
    rm -rf -- "$SHM"
    SHM=''
    ((rc == 0)) || die "the file-system spawn loop failed (see above)"
    declare -A FS_OV
    overheads "$FS_OUT" FS_OV
    FS_WL=${FS_OV[1]} FS_FLOOR=${FS_OV[2]} SHM_WL=${FS_OV[3]} SHM_FLOOR=${FS_OV[4]}
    echo "  on $FS_MAIN: withlock $(us $FS_WL) µs, floor $(us $FS_FLOOR) µs: $(ratio $FS_WL $FS_FLOOR)"
    echo "  on tmpfs: withlock $(us $SHM_WL) µs, floor $(us $SHM_FLOOR) µs: $(ratio $SHM_WL $SHM_FLOOR)"
    FS_ROW="| … the lock file on $FS_MAIN / on tmpfs, in one loop (not judged: for comparison) | $(us $FS_WL) / $(us $SHM_WL) µs | $(us $FS_FLOOR) / $(us $SHM_FLOOR) µs | — | withlock/floor = $(ratio $FS_WL $FS_FLOOR) / $(ratio $SHM_WL $SHM_FLOOR) |"
fi

# Sizes.
cp -- "$WL" "$WORK/withlock.stripped"
STRIP_NOTE=stripped
if command -v strip >/dev/null; then
    strip -- "$WORK/withlock.stripped" 2>/dev/null || STRIP_NOTE='as built (strip failed)'
else
    STRIP_NOTE='as built (no strip(1))'
fi
SZ_WL_FILE=$(stat -c %s -- "$WL")
SZ_WL=$(stat -c %s -- "$WORK/withlock.stripped")
SZ_FLOOR=$(stat -c %s -- "$FLOOR")
SZ_FLOCK=$(stat -c %s -- "$FLOCK")
link_kind() { # link_kind BINARY -> static / dynamic, + libc
    if command -v readelf >/dev/null && readelf -l "$1" 2>/dev/null | grep -q INTERP; then
        echo 'dynamic, + libc'
    else
        echo static
    fi
}
FLOCK_LINK=$(link_kind "$FLOCK")
WL_LINK=$(link_kind "$WL")
# The size goal is the build without optional parts' (as `make check-size`).
SZ_LOCAL=$(stat -c %s -- "$WL_LOCAL")
goal V_SIZE 's <= 65536' "s=$SZ_LOCAL"
echo
echo "sizes:"
echo "  withlock  $SZ_WL bytes = $(bytes_kib "$SZ_WL") KiB $STRIP_NOTE, $WL_LINK (file: $SZ_WL_FILE bytes)"
echo "  withlock without optional parts  $SZ_LOCAL bytes = $(bytes_kib "$SZ_LOCAL") KiB ($WL_LOCAL)   (goal <= 64 KiB: $V_SIZE)"
echo "  floor     $SZ_FLOOR bytes = $(bytes_kib "$SZ_FLOOR") KiB (static musl, stripped)"
echo "  flock(1)  $SZ_FLOCK bytes = $(bytes_kib "$SZ_FLOCK") KiB ($FLOCK_LINK)"
echo

# --- 2. Hand-off latency -------------------------------------------------------
echo "== 2. Hand-off: the holder's job exits -> the waiter's job starts =="
echo "holder: TOOL -w 10 L stamp $HANDOFF_HOLD_MS (sleeps, prints CLOCK_MONOTONIC ns = t0, exits);"
echo "waiter, started once the lock is held: TOOL -w 10 L stamp (prints t1 as it starts)."
echo "latency = t1 - t0; $HANDOFF_REPS tries per tool, tools alternating."

handoff_once() { # handoff_once BIN TAG -> prints t1 - t0 in ns
    local bin=$1 tag=$2
    local lock=$LOCKS/handoff-$tag t0f=$WORK/t0 t1f=$WORK/t1 h w t0 t1
    rm -f -- "$t0f" "$t1f"
    "$bin" -w 10 "$lock" "$STAMP" "$HANDOFF_HOLD_MS" >"$t0f" &
    h=$!
    BG_PIDS+=("$h")
    wait_held "$lock"
    "$bin" -w 10 "$lock" "$STAMP" >"$t1f" &
    w=$!
    BG_PIDS+=("$w")
    reap "$h" "$tag hand-off holder"
    reap "$w" "$tag hand-off waiter"
    BG_PIDS=()
    read -r t0 <"$t0f"
    read -r t1 <"$t1f"
    ((t1 > t0)) || die "$tag hand-off: the waiter ran before the holder let go (t1 - t0 = $((t1 - t0)) ns)"
    echo $((t1 - t0))
}

: >"$WORK/handoff-withlock"
: >"$WORK/handoff-flock"
for ((i = 0; i < HANDOFF_REPS; i++)); do
    if ((i % 2 == 0)); then order=(withlock flock); else order=(flock withlock); fi
    for tag in "${order[@]}"; do
        if [[ $tag == withlock ]]; then bin=$WL; else bin=$FLOCK; fi
        handoff_once "$bin" "$tag" >>"$WORK/handoff-$tag"
    done
done

declare -A HO_MED HO_MAX HO_MIN HO_MEAN
for tag in withlock flock; do
    read -r "HO_MIN[$tag]" "HO_MED[$tag]" "HO_MEAN[$tag]" "HO_MAX[$tag]" < <(sort -n "$WORK/handoff-$tag" |
        awk '{ v[NR] = $1; s += $1 } END { printf "%d %d %d %d\n", v[1], v[int((NR + 1) / 2)], s / NR, v[NR] }')
done
goal V_HO 'm < 2000000' "m=${HO_MED[withlock]}"
echo
printf '%-10s %10s %10s %10s %10s\n' tool 'median ms' 'min ms' 'mean ms' 'max ms'
for tag in withlock flock; do
    printf '%-10s %10s %10s %10s %10s\n' "$tag" "$(ms "${HO_MED[$tag]}")" "$(ms "${HO_MIN[$tag]}")" \
        "$(ms "${HO_MEAN[$tag]}")" "$(ms "${HO_MAX[$tag]}")"
done
echo "withlock median < 2 ms: $V_HO"
echo

# --- 3. Blocked waiters ----------------------------------------------------------
echo "== 3. $WAITERS waiters blocked on a held lock =="
echo "holder: TOOL -w 60 L stamp $HOLD_MS; then $WAITERS x 'TOOL -w 60 L stamp' (a /bin/true that prints"
echo "its start time). CPU per waiter from /proc/PID/schedstat (ns on CPU) and /proc/PID/stat"
echo "utime+stime (clock ticks), read once all are blocked and again 300 ms before the release."

# Sum the CPU of the given pids into S_NS (schedstat: ns on CPU) and S_TICKS
# (utime + stime); S_STATES gets their states, S_WCHAN where they sleep.
cpu_sample() {
    local pid line rest sched wchan k
    local -A wchans=()
    local -a f
    S_NS=0 S_TICKS=0 S_STATES='' S_WCHAN=''
    for pid in "$@"; do
        read -r line <"/proc/$pid/stat" || die "waiter $pid is gone"
        rest=${line##*) }
        read -ra f <<<"$rest"
        S_TICKS=$((S_TICKS + f[11] + f[12]))
        S_STATES+=${f[0]}
        read -r sched _ <"/proc/$pid/schedstat" || die "no /proc/$pid/schedstat"
        S_NS=$((S_NS + sched))
        wchan=$(<"/proc/$pid/wchan") || wchan='?'
        k=${wchan:-?}
        wchans[$k]=$((${wchans[$k]:-0} + 1))
    done
    for k in "${!wchans[@]}"; do S_WCHAN+="${wchans[$k]} x $k, "; done
    S_WCHAN=${S_WCHAN%, }
}

# True when every pid sleeps (state S) and is still named NAME (not yet
# exec'd into its job).
all_asleep() { # all_asleep NAME PID...
    local name=$1 pid comm line rest
    shift
    for pid in "$@"; do
        read -r comm <"/proc/$pid/comm" || die "waiter $pid died early"
        read -r line <"/proc/$pid/stat" || die "waiter $pid died early"
        rest=${line##*) }
        [[ ${rest%% *} == S && $comm == "$name" ]] || return 1
    done
}

declare -A CPU_BLOCKED CPU_TOTAL CPU_TICKS WAIT_FIRST WAIT_LAST WCHAN_OF BLOCKED_NS
blocked_once() { # blocked_once BIN TAG
    local bin=$1 tag=$2
    local lock=$LOCKS/blocked-$tag relf=$WORK/release-$tag wf=$WORK/waiters-$tag
    local start now left i h pid a rel
    local -a pids=()
    : >"$wf"
    start=$("$STAMP")
    "$bin" -w 60 "$lock" "$STAMP" "$HOLD_MS" >"$relf" &
    h=$!
    BG_PIDS+=("$h")
    wait_held "$lock"
    for ((i = 0; i < WAITERS; i++)); do
        "$bin" -w 60 "$lock" "$STAMP" >>"$wf" &
        pids+=("$!")
        BG_PIDS+=("$!")
    done
    # Until every waiter sleeps in the kernel, up to 3 s.
    for ((i = 0; i < 300; i++)); do
        all_asleep "$(basename "$bin")" "${pids[@]}" && break
        sleep 0.01
    done
    all_asleep "$(basename "$bin")" "${pids[@]}" || die "$tag: waiters did not all block within 3 s"
    cpu_sample "${pids[@]}"
    a=$S_NS
    now=$("$STAMP")
    left=$((start + HOLD_MS * 1000000 - 300000000 - now))
    ((left > 0)) || die "$tag: waiters took too long to start; raise BENCH_HOLD_MS"
    sleep "$(calc '%.3f' 'n / 1e9' "n=$left")"
    cpu_sample "${pids[@]}"
    [[ $S_STATES =~ ^S+$ ]] || die "$tag: not every waiter was asleep at the second sample ($S_STATES)"
    now=$("$STAMP")
    reap "$h" "$tag holder"
    for pid in "${pids[@]}"; do reap "$pid" "$tag waiter"; done
    BG_PIDS=()
    read -r rel <"$relf"
    ((rel > now)) || die "$tag: the holder let go before the second sample; raise BENCH_HOLD_MS"
    [[ $(wc -l <"$wf") -eq $WAITERS ]] || die "$tag: not all $WAITERS waiters ran their job"
    CPU_BLOCKED[$tag]=$((S_NS - a))
    CPU_TOTAL[$tag]=$S_NS
    CPU_TICKS[$tag]=$S_TICKS
    WCHAN_OF[$tag]=$S_WCHAN
    BLOCKED_NS[$tag]=$left
    read -r "WAIT_FIRST[$tag]" "WAIT_LAST[$tag]" < <(sort -n "$wf" |
        awk -v r="$rel" 'NR == 1 { f = $1 } { l = $1 } END { printf "%d %d\n", f - r, l - r }')
}

blocked_once "$WL" withlock
blocked_once "$FLOCK" flock
BLOCKED_SECS=$(calc '%.1f' 'n / 1e9' "n=${BLOCKED_NS[withlock]}")

goal V_CPU 'c < 1000000' "c=${CPU_BLOCKED[withlock]}"
echo
printf '%-10s %16s %18s %14s %16s %16s\n' tool 'CPU while' 'CPU incl. start-up' 'utime+stime' 'first job after' 'all jobs done'
printf '%-10s %17s %19s %14s %16s %16s\n' '' 'blocked µs' 'µs (schedstat)' 'ticks' 'release ms' 'after release ms'
for tag in withlock flock; do
    printf '%-10s %16s %18s %14s %16s %16s\n' "$tag" "$(us "${CPU_BLOCKED[$tag]}")" "$(us "${CPU_TOTAL[$tag]}")" \
        "${CPU_TICKS[$tag]}" "$(ms "${WAIT_FIRST[$tag]}")" "$(ms "${WAIT_LAST[$tag]}")"
done
echo "(totals over all $WAITERS waiters; blocked for ~${BLOCKED_SECS} s between the samples; 1 tick = $((1000 / $(getconf CLK_TCK))) ms)"
echo "waiters were sleeping in: withlock ${WCHAN_OF[withlock]}; flock ${WCHAN_OF[flock]}"
echo "withlock CPU while blocked < 1 ms in total: $V_CPU"
echo

# --- Summary ------------------------------------------------------------------------
SUMMARY=$BUILD/summary.md
{
    echo "Measured by \`make bench\` (ci/bench.sh) on $(date -u '+%Y-%m-%d'): ${CPU:-unknown CPU}, $NCPU CPUs, $KERNEL."
    echo "Job: \`$TRUE_BIN\`, whose bare exec costs $(us "${MED[bare]}") µs here; floor: a C program that only opens, flocks and execs (static musl)."
    echo
    echo "| | withlock | floor (C) | util-linux flock(1) | goal |"
    echo "|---|---|---|---|---|"
    echo "| cost per run over a bare exec (median of $((ROUNDS * RUNS))) | $(us $OV_WL) µs | $(us $OV_FLOOR) µs | $(us $OV_FLOCK) µs | ≤ 1.25 × floor, ≤ 1/8 × flock(1) |"
    echo "| … as a ratio | — | withlock/floor = $R_FLOOR | withlock/flock = $R_FLOCK | $V_FLOOR / $V_FLOCK |"
    [[ -z $FS_ROW ]] || echo "$FS_ROW"
    echo "| … with \`--syslog\` (stays the job's parent, two lines to $SL_WHERE) | $(us $OV_SYSLOG) µs (without: $(us $OV_PLAIN) µs in the same loop) | — | — | paid only with \`--syslog\` |"
    echo "| binary size | $(bytes_kib "$SZ_WL") KiB ($WL_LINK); $(bytes_kib "$SZ_LOCAL") KiB without optional parts | $(bytes_kib "$SZ_FLOOR") KiB (static) | $(bytes_kib "$SZ_FLOCK") KiB ($FLOCK_LINK) | ≤ 64 KiB without optional parts: $V_SIZE |"
    echo "| hand-off, holder exits → waiter's job starts (median / max of $HANDOFF_REPS) | $(ms "${HO_MED[withlock]}") / $(ms "${HO_MAX[withlock]}") ms | — | $(ms "${HO_MED[flock]}") / $(ms "${HO_MAX[flock]}") ms | median < 2 ms: $V_HO |"
    echo "| CPU used by $WAITERS waiters while blocked ~$BLOCKED_SECS s | $(us "${CPU_BLOCKED[withlock]}") µs | — | $(us "${CPU_BLOCKED[flock]}") µs | ≈ 0: $V_CPU |"
    echo "| … all $WAITERS queued jobs done after the release | $(ms "${WAIT_LAST[withlock]}") ms | — | $(ms "${WAIT_LAST[flock]}") ms | |"
} >"$SUMMARY"
echo "== Summary (also in ${SUMMARY#"$ROOT"/}) =="
echo
cat "$SUMMARY"
echo
if ((MISSED)); then
    echo "bench: $MISSED goal(s) missed"
    if [[ $STRICT == 1 ]]; then exit 1; fi
else
    echo "bench: all goals met"
fi
