#!/usr/bin/env bash
# The whole test suite (`make test`): installs what the tests need on a fresh
# Debian machine, builds the static binary for each target, and runs every test
# against the x86_64 one, then the end-to-end suite against each other target's
# binary on its own architecture: i686 natively, aarch64 and armv7 under qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/targets.sh

target=x86_64-unknown-linux-musl
step() { printf '\n== %s\n' "$*"; }
declare -A took=()

step "setup"
for t in "${TARGETS[@]}"; do
    sh ci/ensure-target.sh "$t"
done
# Debian packages the tests and benchmark use: util-linux's flock and setpriv
# (interoperability, running as another user), musl-gcc for the C floor, strace.
need=()
command -v flock >/dev/null || need+=(util-linux)
command -v setpriv >/dev/null || need+=(util-linux)
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v lckdo >/dev/null || need+=(moreutils)           # --fcntl interop
command -v with-lock-ex >/dev/null || need+=(chiark-utils-bin)
command -v strace >/dev/null || need+=(strace)                # holding a system call (signal races, long waits)
# etcd mode (tests/cli/etcd*.rs, ci/bench-etcd.sh): throwaway etcd servers, clusters and
# proxies, etcdctl as the reference client, and `ip netns` for other "hosts" to cut off.
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v ip >/dev/null || need+=(iproute2)
command -v socat >/dev/null || need+=(socat)                # the README's TLS tunnel
# The other architectures' binaries run under qemu-user (aarch64, armv7).
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v qemu-arm >/dev/null || need+=(qemu-user)
# --syslog (tests/cli/syslog.rs): busybox's syslogd, a real daemon each test starts on a
# /dev/log of its own, in a mount namespace (unshare, from util-linux).
command -v busybox >/dev/null || need+=(busybox)
command -v unshare >/dev/null || need+=(util-linux)
# The packaging and documentation checks: the three shells and bash-completion (the
# completions are loaded for real), man-db and groff (the man page must render without
# warnings), dpkg-deb and readelf (the release files), lintian (the .debs).
[ -f /usr/share/bash-completion/bash_completion ] || need+=(bash-completion)
command -v zsh >/dev/null || need+=(zsh)
command -v fish >/dev/null || need+=(fish)
command -v man >/dev/null || need+=(man-db)
command -v groff >/dev/null || need+=(groff-base)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v readelf >/dev/null || need+=(binutils)
command -v lintian >/dev/null || need+=(lintian)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing: ${need[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null; }
    else
        echo "missing: ${need[*]} (install them; as root this script uses apt-get)" >&2
        exit 1
    fi
fi

step "build the static binary"
make --no-print-directory build
bin=$PWD/target/$target/release/withlock
file "$bin" 2>/dev/null || true
make --no-print-directory check-size
sh ci/check-startup.sh "$bin"
step "the build without optional parts (make FEATURES=): a real lock, and what it leaves out refused"
# (It must say the version the full build says.)
bash ci/test-local-only.sh "$PWD/target/local-only/$target/release/withlock" "$("$bin" --version | sed 's/^withlock //')"

step "unit and integration tests (against $bin)"
# The etcd tests (tests/cli/etcd*.rs) mostly wait, for servers to start and leases to
# expire, so they run apart with more threads than cores (≈16 s instead of ≈47 s on 2
# cores); everything else with cargo's default.
WITHLOCK_BIN=$bin cargo test --locked --lib --test docs
WITHLOCK_BIN=$bin cargo test --locked --doc
start=$SECONDS
WITHLOCK_BIN=$bin cargo test --locked --test cli -- --skip etcd
took[$target]=$((SECONDS - start))
step "etcd tests: real etcd servers, clusters, proxies, network namespaces (against $bin)"
WITHLOCK_BIN=$bin cargo test --locked --test cli etcd -- --test-threads=8

# Under qemu-user some tests test the emulator, not withlock; they run on x86_64 and i686:
#   - qemu-user catches every signal whose default is fatal, for its own use, so one that
#     was ignored when withlock started is no longer ignored when the job is exec'd;
#   - qemu-user 7.2 refuses prctl(PR_SET_CHILD_SUBREAPER), by which withlock, staying the
#     job's parent, sees (and reaps) what the job leaves in its group;
#   - qemu-user needs descriptors and a thread of its own, so it cannot start under a
#     limit of 3 open files or of 1 process.
# The etcd tests run on x86_64 and, natively, on i686 (whose socket calls differ:
# socketcall); not under qemu-user.
qemu_skips=(
    job_env::job_inherits_no_blocked_or_ignored_signals_from_withlock
    max_runtime::an_ignored_sigint_stays_ignored_for_the_job
    max_runtime::a_grandchild_that_ignores_sigterm_is_killed_and_reaped_before_withlock_exits
    max_runtime::the_lock_is_held_until_the_whole_group_is_gone
    supervise::leftovers_in_the_jobs_group_are_stopped_at_max_runtime
    supervise::leftovers_that_end_in_time_leave_the_main_process_status
    supervise::no_inherit_sigterm_of_withlock_ends_the_jobs_whole_group_first
    supervise::unlink_keeps_the_file_while_a_leftover_holds_the_lock
    resources::no_descriptor_left_for_the_lock_file_is_a_resource_error_71
    slots::without_watchers_a_waiter_tries_the_slots_itself
)
for other in "${TARGETS[@]}"; do
    [ "$other" != "$target" ] || continue
    runner=$(runner_for "$other")
    other_bin=$PWD/target/$other/release/withlock
    step "$other: the static binary, and the end-to-end suite against it${runner:+ under $runner}"
    make --no-print-directory build TARGET="$other"
    make --no-print-directory check-size TARGET="$other"
    [ -n "$runner" ] || sh ci/check-startup.sh "$other_bin"
    skips=(--skip etcd)
    [ -z "$runner" ] || for name in "${qemu_skips[@]}"; do skips+=(--skip "$name"); done
    start=$SECONDS
    WITHLOCK_BIN=$other_bin WITHLOCK_RUNNER=$runner cargo test --locked --test cli -- "${skips[@]}"
    took[$other]=$((SECONDS - start))
    if [ "$other" = i686-unknown-linux-musl ]; then
        step "$other: the etcd tests (against $other_bin)"
        WITHLOCK_BIN=$other_bin cargo test --locked --test cli etcd -- --test-threads=8
        step "$other: the unit tests, on 32 bits"
        cargo test --locked --lib --target "$other"
    fi
done

step "portability: the code must compile for macOS and FreeBSD"
for other in x86_64-apple-darwin x86_64-unknown-freebsd; do
    if sh ci/ensure-target.sh "$other" 2>/dev/null; then
        # Not `cargo check && echo`: a failing && list does not stop a set -e script.
        cargo check --locked --quiet --target "$other" --lib --bins
        echo "$other: ok"
    else
        echo "$other: SKIPPED (rustup cannot add this target here)"
    fi
done

# Packaging and documentation: what a user installs, reads and types.
packaging_start=$SECONDS
step "man page: renders without warnings"
bash ci/test-man.sh
step "README: the shell examples run"
bash ci/test-readme.sh "$bin"
step "make install / make uninstall, into a DESTDIR"
bash ci/test-install.sh
step "make release, and the .deb: dpkg -i, use it, dpkg -r"
bash ci/test-deb.sh
echo "packaging and documentation checks: $((SECONDS - packaging_start)) s"

step "all tests passed"
for t in "${TARGETS[@]}"; do
    echo "end-to-end suite against $t: ${took[$t]} s"
done
