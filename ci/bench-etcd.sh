#!/usr/bin/env bash
# ci/bench-etcd.sh: withlock's etcd mode against `etcdctl lock` (`make bench-etcd`).
#
#   bash ci/bench-etcd.sh PATH/TO/withlock
#
# Starts a throwaway single-member etcd on 127.0.0.1 (free ports, a temporary data
# directory; killed at the end) and measures, side by side:
#   1. the end-to-end time of one locked run of `true`, interleaved run by run:
#        withlock etcd://127.0.0.1:PORT/b true   vs   etcdctl --endpoints=... lock b true
#      (goal, issue 5: withlock takes at most a third of etcdctl's time);
#   2. failover: a holder is SIGKILLed while a waiter waits; how long until the waiter's
#      job starts, against the lease; and when the first job died (if it did);
#   3. the same when the holder is cut off (root only: the holder runs in a network
#      namespace whose link goes down), and when it is SIGTERMed (withlock revokes at once).
# While withlock has no etcd engine, its lines say "unsupported" and only etcdctl is measured.
#
# Needs etcd and etcdctl (Debian: etcd-server, etcd-client), and for 3. root and iproute2.
#
# Knobs (environment):
#   BENCH_ETCD_RUNS=40     runs of each tool in 1.
#   BENCH_ETCD_LEASE=3     lease/TTL in seconds for the failover holders (etcd's minimum is 2)
#   BENCH_ETCD_REPS=3      failover measurements per tool and case
#   BENCH_QUICK=1          small numbers, for a smoke run
set -euo pipefail

die() {
    printf 'bench-etcd: %s\n' "$*" >&2
    exit 2
}

if [[ $# -ne 1 || $1 == -h || $1 == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
    exit 64
fi
if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    : "${BENCH_ETCD_RUNS:=8}" "${BENCH_ETCD_REPS:=1}"
fi
RUNS=${BENCH_ETCD_RUNS:-40}
LEASE=${BENCH_ETCD_LEASE:-3}
REPS=${BENCH_ETCD_REPS:-3}
for knob in RUNS LEASE REPS; do
    [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || die "BENCH_ETCD_$knob must be a positive integer, not '${!knob}'"
done
((LEASE >= 2)) || die "BENCH_ETCD_LEASE must be at least 2 (etcd's minimum TTL)"
((BASH_VERSINFO[0] >= 5)) || die "needs bash 5 (EPOCHREALTIME)"

PATH=$PATH:/usr/sbin:/sbin
for tool in etcd etcdctl awk sort mktemp; do
    command -v "$tool" >/dev/null || die "missing: $tool (Debian: apt-get install etcd-server etcd-client)"
done
WL=$1
[[ -f $WL && -x $WL ]] || die "$WL: no such executable (make build)"
WL=$(cd "$(dirname "$WL")" && pwd)/$(basename "$WL")
unset ETCDCTL_ENDPOINTS ETCDCTL_API

# --- Scratch space, servers, and cleaning up after ourselves ---------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/withlock-bench-etcd.XXXXXX")
chmod 0700 "$WORK"
BG_PIDS=()
ETCD_PID=
NETNS=
cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}" $ETCD_PID; do kill -9 "$pid" 2>/dev/null || true; done
    for pid in "${BG_PIDS[@]}" $ETCD_PID; do wait "$pid" 2>/dev/null || true; done
    if [[ -n $NETNS ]]; then
        for pid in $(ip netns pids "$NETNS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$NETNS" 2>/dev/null || true
        ip link del "${NETNS}h" 2>/dev/null || true
    fi
    rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_us() { echo "${EPOCHREALTIME/./}"; }
ms() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1000 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }
minmax() { sort -n | awk 'NR == 1 { a = $1 } { b = $1 } END { printf "%s %s\n", a, b }'; }

# An etcd on 127.0.0.1 (and on EXTRA_IP too, if set), on free ports: retried on a collision.
start_etcd() {
    local try client peer listen i
    for try in 1 2 3 4 5; do
        client=$((20000 + RANDOM % 20000)) peer=$((client + 1))
        listen=http://127.0.0.1:$client
        [[ -z ${EXTRA_IP:-} ]] || listen+=,http://$EXTRA_IP:$client
        rm -rf "$WORK/etcd"
        etcd --name b --data-dir "$WORK/etcd" --listen-client-urls "$listen" \
            --advertise-client-urls "http://127.0.0.1:$client" \
            --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
            --initial-cluster "b=http://127.0.0.1:$peer" --initial-cluster-state new \
            --initial-cluster-token "bench-$$-$client" --logger zap --log-outputs stderr 2>"$WORK/etcd.log" &
        ETCD_PID=$!
        for ((i = 0; i < 400; i++)); do
            if ! kill -0 "$ETCD_PID" 2>/dev/null; then break; fi
            if etcdctl --endpoints="127.0.0.1:$client" endpoint health >/dev/null 2>&1; then
                PORT=$client
                EP=127.0.0.1:$PORT
                return 0
            fi
            sleep 0.05
        done
        kill -9 "$ETCD_PID" 2>/dev/null || true
        wait "$ETCD_PID" 2>/dev/null || true
        ETCD_PID=
        grep -q 'address already in use' "$WORK/etcd.log" || { tail -5 "$WORK/etcd.log" >&2; die "etcd did not start"; }
    done
    die "etcd could not find free ports in 5 tries"
}

# Whether PID runs (a zombie does not).
job_alive() { [[ -r /proc/$1/stat ]] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

ctl() { etcdctl --endpoints="$EP" --dial-timeout=2s --command-timeout=5s "$@"; }
keys() { ctl get --prefix "$1/" --keys-only | grep -c . || true; }

echo "withlock etcd benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine:  $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null), $(getconf _NPROCESSORS_ONLN) CPUs, $(uname -sr)"
echo "withlock: $WL ($("$WL" -V 2>/dev/null || echo '?'))"
echo "etcd:     $(etcd --version | head -n 1), $(etcdctl version | head -n 1)"
start_etcd
echo "server:   single member on $EP (data in a temporary directory)"

# Does this withlock speak etcd? And does each tool really hold the lock while its job runs
# (a key under b/ seen from inside the job)? Otherwise we would time something that does not lock.
WL_OK=1
rc=0
"$WL" "etcd://$EP/b" true >"$WORK/wl.out" 2>&1 || rc=$?
if ((rc != 0)); then
    WL_OK=0
    echo "withlock: unsupported (withlock etcd://$EP/b true exited $rc: $(head -n 1 "$WORK/wl.out"))"
else
    probe="etcdctl --endpoints=$EP get --prefix b/ --keys-only | grep -q ."
    "$WL" "etcd://$EP/b" sh -c "$probe" || die "withlock held no key under b/ while its job ran"
fi
ctl lock b -- sh -c "etcdctl --endpoints=$EP get --prefix b/ --keys-only | grep -q ." >/dev/null ||
    die "etcdctl lock held no key under b/ while its job ran"
echo

# --- 1. One locked run ------------------------------------------------------------
echo "== 1. One locked run of true, end to end (bash EPOCHREALTIME around each run) =="
echo "$RUNS runs per tool, interleaved, alternating which goes first."
: >"$WORK/t-withlock"
: >"$WORK/t-etcdctl"
run_once() { # run_once TOOL -> appends µs to $WORK/t-TOOL
    local t0 t1 rc=0
    t0=$(now_us)
    case $1 in
        withlock) "$WL" "etcd://$EP/b" true || rc=$? ;;
        etcdctl) etcdctl --endpoints="$EP" lock b true >/dev/null || rc=$? ;;
    esac
    t1=$(now_us)
    ((rc == 0)) || die "$1 failed (exit $rc)"
    echo $((t1 - t0)) >>"$WORK/t-$1"
}
for ((i = 0; i < RUNS; i++)); do
    if ((i % 2)); then order=(etcdctl withlock); else order=(withlock etcdctl); fi
    for tool in "${order[@]}"; do
        [[ $tool == withlock && $WL_OK == 0 ]] || run_once "$tool"
    done
done
MED_CTL=$(median <"$WORK/t-etcdctl")
read -r MIN_CTL MAX_CTL < <(minmax <"$WORK/t-etcdctl")
printf '%-40s %10s %10s %10s\n' '' 'median ms' 'min ms' 'max ms'
if ((WL_OK)); then
    MED_WL=$(median <"$WORK/t-withlock")
    read -r MIN_WL MAX_WL < <(minmax <"$WORK/t-withlock")
    printf '%-40s %10s %10s %10s\n' "withlock etcd://.../b true" "$(ms "$MED_WL")" "$(ms "$MIN_WL")" "$(ms "$MAX_WL")"
else
    printf '%-40s %10s\n' "withlock etcd://.../b true" unsupported
fi
printf '%-40s %10s %10s %10s\n' "etcdctl lock b true" "$(ms "$MED_CTL")" "$(ms "$MIN_CTL")" "$(ms "$MAX_CTL")"
if ((WL_OK)); then
    ratio=$(awk -v a="$MED_WL" -v b="$MED_CTL" 'BEGIN { printf "%.2f", a / b }')
    verdict=$(awk -v r="$ratio" 'BEGIN { print (r <= 1 / 3 ? "met" : "MISSED") }')
    echo "withlock / etcdctl = $ratio (goal <= 0.33: $verdict)"
else
    echo "withlock / etcdctl: n/a (unsupported)"
fi
echo

# --- 2. and 3. Failover ---------------------------------------------------------------
# A holder (TOOL, lease LEASE s) runs `sleep 300` on lock f; a waiter (TOOL, waiting) is
# queued; then the holder is stopped by HOW (kill9, term, cut). Prints: µs from the event to
# the waiter's job start ("never" if that did not happen within LEASE + 10 s), and when the
# first job died (ms after the event, "-" if it still ran when the waiter started).
failover_once() { # failover_once TOOL HOW
    local tool=$1 how=$2 name=f$RANDOM holder waiter job_pid t0 t1 i ran_on ep=$EP prefix=() opts=()
    rm -f "$WORK/job.pid" "$WORK/started"
    if [[ $how == cut ]]; then
        ep=$EXTRA_IP:$PORT
        prefix=(ip netns exec "$NETNS")
        opts=(--insecure) # plain HTTP off loopback (a bench on one machine)
    fi
    local job=(sh -c 'echo $$ > "$1"; exec sleep 300' sh "$WORK/job.pid")
    case $tool in
        withlock) "${prefix[@]}" "$WL" "${opts[@]}" --lease "${LEASE}s" "etcd://$ep/$name" "${job[@]}" 2>/dev/null & ;;
        etcdctl) "${prefix[@]}" etcdctl --endpoints="$ep" lock --ttl="$LEASE" "$name" -- "${job[@]}" >/dev/null 2>&1 & ;;
    esac
    holder=$!
    BG_PIDS+=("$holder")
    for ((i = 0; i < 400; i++)); do [[ -s $WORK/job.pid ]] && break; sleep 0.025; done
    [[ -s $WORK/job.pid ]] || die "$tool: the holder's job never started"
    job_pid=$(<"$WORK/job.pid")
    case $tool in
        withlock) "$WL" -w 120 "etcd://$EP/$name" bash -c 'echo "${EPOCHREALTIME/./}" > "$1"' sh "$WORK/started" 2>/dev/null & ;;
        etcdctl) ctl lock "$name" -- bash -c 'echo "${EPOCHREALTIME/./}" > "$1"' sh "$WORK/started" >/dev/null 2>&1 & ;;
    esac
    waiter=$!
    BG_PIDS+=("$waiter")
    for ((i = 0; i < 400; i++)); do (($(keys "$name") >= 2)) && break; sleep 0.025; done
    t0=$(now_us)
    case $how in
        kill9) kill -9 "$holder" ;;
        term) kill -TERM "$holder" ;;
        cut) ip -n "$NETNS" link set "${NETNS}n" down ;;
    esac
    dead=
    for ((i = 0; i < (LEASE + 10) * 100; i++)); do
        [[ -n $dead ]] || job_alive "$job_pid" || dead=$(($(now_us) - t0))
        [[ -s $WORK/started ]] && break
        sleep 0.01
    done
    t1=never
    [[ ! -s $WORK/started ]] || t1=$(($(<"$WORK/started") - t0))
    [[ -n $dead ]] || job_alive "$job_pid" || dead=$(($(now_us) - t0))
    ran_on=-
    [[ -z $dead ]] || ran_on=$(ms "$dead")
    kill -9 "$job_pid" "$holder" 2>/dev/null || true
    wait "$waiter" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    BG_PIDS=()
    [[ $how != cut ]] || ip -n "$NETNS" link set "${NETNS}n" up
    echo "$t1 $ran_on"
}

failover() { # failover HOW LABEL
    local how=$1 label=$2 tool r ms_list ran med t yes never
    echo "-- $label (lease/TTL $LEASE s, $REPS each)"
    printf '   %-10s %24s   %s\n' tool 'median ms' 'first job dead after ms (- : ran on)'
    for tool in withlock etcdctl; do
        if [[ $tool == withlock && $WL_OK == 0 ]]; then
            printf '   %-10s %24s\n' withlock unsupported
            continue
        fi
        ms_list=() ran=''
        for ((r = 0; r < REPS; r++)); do
            read -r t yes < <(failover_once "$tool" "$how")
            ms_list+=("$t")
            ran+="$yes "
        done
        never=$(printf '%s\n' "${ms_list[@]}" | grep -c never || true)
        if ((never)); then
            med="never ($never of $REPS, in $((LEASE + 10)) s)"
        else
            med=$(ms "$(printf '%s\n' "${ms_list[@]}" | median)")
        fi
        printf '   %-10s %24s   %s\n' "$tool" "$med" "$ran"
    done
}

echo "== 2. Failover: the holder dies or lets go while a waiter waits =="
echo "time from the event to the waiter's job start; the lease is ${LEASE} s"
failover kill9 "holder SIGKILLed (the lease must expire; withlock's job dies with it)"
failover term "holder SIGTERMed (withlock stops its job and revokes at once; etcdctl ignores SIGTERM while its job runs)"
echo

echo "== 3. Failover: the holder's host is cut off (network namespace, link down) =="
if [[ $(id -u) != 0 ]] || ! command -v ip >/dev/null; then
    echo "skipped: needs root and iproute2"
else
    idx=$((RANDOM % 16000))
    NETNS=wlb$idx
    ip netns add "$NETNS" || die "ip netns add $NETNS failed"
    ip link add "${NETNS}h" type veth peer name "${NETNS}n" netns "$NETNS"
    third=$((idx / 64)) fourth=$((idx % 64 * 4))
    EXTRA_IP=10.202.$third.$((fourth + 1))
    ip addr add "$EXTRA_IP/30" dev "${NETNS}h"
    ip link set "${NETNS}h" up
    ip -n "$NETNS" addr add "10.202.$third.$((fourth + 2))/30" dev "${NETNS}n"
    ip -n "$NETNS" link set "${NETNS}n" up
    ip -n "$NETNS" link set lo up
    kill -9 "$ETCD_PID"
    wait "$ETCD_PID" 2>/dev/null || true
    start_etcd
    failover cut "holder cut off (withlock must stop its job before the lease can expire)"
fi
