#!/usr/bin/env bash
# The whole test suite (`make test`): installs what the tests need on a fresh
# Debian machine, builds the static binary, and runs every test against it.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
step() { printf '\n== %s\n' "$*"; }

step "setup"
sh ci/ensure-target.sh "$target"
# Debian packages the tests and benchmark use: util-linux's flock and setpriv
# (interoperability, running as another user), musl-gcc for the C floor, strace.
need=()
command -v flock >/dev/null || need+=(util-linux)
command -v setpriv >/dev/null || need+=(util-linux)
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v objcopy >/dev/null || need+=(binutils)
command -v lckdo >/dev/null || need+=(moreutils)           # --fcntl interop
command -v with-lock-ex >/dev/null || need+=(chiark-utils-bin)
command -v strace >/dev/null || need+=(strace)                # holding a system call (signal races, long waits)
# etcd mode (tests/cli/etcd*.rs, ci/bench-etcd.sh): throwaway etcd servers, clusters and
# proxies, etcdctl as the reference client, and `ip netns` for other "hosts" to cut off.
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v ip >/dev/null || need+=(iproute2)
command -v socat >/dev/null || need+=(socat)                # the README's TLS tunnel
# --syslog (tests/cli/syslog.rs): busybox's syslogd, a real daemon each test starts on a
# /dev/log of its own, in a mount namespace (unshare, from util-linux).
command -v busybox >/dev/null || need+=(busybox)
command -v unshare >/dev/null || need+=(util-linux)
# The packaging and documentation checks: the three shells and bash-completion (the
# completions are loaded for real), man-db and groff (the man page must render without
# warnings), dpkg-deb and readelf (the release files).
[ -f /usr/share/bash-completion/bash_completion ] || need+=(bash-completion)
command -v zsh >/dev/null || need+=(zsh)
command -v fish >/dev/null || need+=(fish)
command -v man >/dev/null || need+=(man-db)
command -v groff >/dev/null || need+=(groff-base)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v readelf >/dev/null || need+=(binutils)
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

step "unit and integration tests (against $bin)"
# The etcd tests (tests/cli/etcd*.rs) mostly wait, for servers to start and leases to
# expire, so they run apart with more threads than cores (≈16 s instead of ≈47 s on 2
# cores); everything else with cargo's default.
WITHLOCK_BIN=$bin cargo test --locked --lib --test docs
WITHLOCK_BIN=$bin cargo test --locked --doc
WITHLOCK_BIN=$bin cargo test --locked --test cli -- --skip etcd
step "etcd tests: real etcd servers, clusters, proxies, network namespaces (against $bin)"
WITHLOCK_BIN=$bin cargo test --locked --test cli etcd -- --test-threads=8

step "portability: the code must compile for macOS and FreeBSD"
for other in x86_64-apple-darwin x86_64-unknown-freebsd; do
    if sh ci/ensure-target.sh "$other" 2>/dev/null; then
        cargo check --locked --quiet --target "$other" --lib --bins && echo "$other: ok"
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
