#!/bin/sh
# ensure-target.sh TARGET: make sure what the static build for TARGET needs is here (the
# Makefile calls it before each build), or say what to do.
#
#   x86_64-unknown-linux-musl, aarch64-unknown-linux-musl, i686-unknown-linux-musl:
#       the Rust standard library for TARGET (rustup target add), linked by rust-lld with
#       Rust's own musl start files and libc.a (.cargo/config.toml).
#   armv7-unknown-linux-musleabihf: rustup serves no standard library for it, so `core` is
#       built from source (-Zbuild-std=core) with the pinned nightly toolchain and its
#       rust-src, and it links against Debian's armhf musl (musl-dev:armhf).
#
# ensure-target.sh --toolchain TARGET prints the rustup toolchain to build TARGET with
# (empty: the default one). Other targets are not refused: what they need is up to you.
set -eu

# The nightly for armv7, pinned so that the same commit builds the same armv7 binary.
# WITHLOCK_NIGHTLY=TOOLCHAIN builds with another one instead (say, a newer nightly).
NIGHTLY_DATE=2026-05-20
NIGHTLY_RUSTC='rustc 1.97.0-nightly (e50aa6fba 2026-05-19)'
ARMHF_MUSL=/usr/lib/arm-linux-musleabihf

# Asking about a toolchain that is not installed must not download it.
export RUSTUP_AUTO_INSTALL=0

say() { printf 'ensure-target: %s\n' "$*" >&2; }
is_root_with_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

# The toolchain for armv7: the pinned nightly under its own name if installed, else the
# `nightly` toolchain (on this project's machines, that very build; if not, see below).
nightly() {
    if [ -n "${WITHLOCK_NIGHTLY:-}" ]; then
        echo "$WITHLOCK_NIGHTLY"
    elif rustc "+nightly-$NIGHTLY_DATE" -V >/dev/null 2>&1; then
        echo "nightly-$NIGHTLY_DATE"
    elif rustc +nightly -V >/dev/null 2>&1; then
        echo nightly
    else
        echo "nightly-$NIGHTLY_DATE"
    fi
}

if [ "${1:-}" = --toolchain ]; then
    target=${2:?usage: ensure-target.sh --toolchain TARGET}
    case $target in armv7-unknown-linux-musleabihf) nightly ;; esac
    exit 0
fi
target=${1:?usage: ensure-target.sh TARGET}

# rust-lld comes with rustup's toolchains (not with every distribution's rustc).
need_lld() {
    toolchain=$1
    lld="$(rustc ${toolchain:+"+$toolchain"} --print sysroot)/lib/rustlib/$(rustc ${toolchain:+"+$toolchain"} -vV | sed -n 's/^host: //p')/bin/rust-lld"
    [ -x "$lld" ] && return
    say "rust-lld, the linker for $target, is not in this Rust toolchain ($lld)."
    say "  Install Rust with rustup (https://rustup.rs), which ships it."
    exit 1
}

case $target in
armv7-unknown-linux-musleabihf)
    if [ ! -f "$ARMHF_MUSL/libc.a" ]; then
        if is_root_with_apt; then
            say "installing Debian's armhf musl (musl-dev:armhf) to link against"
            dpkg --add-architecture armhf
            apt-get update -q >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q musl-dev:armhf >/dev/null
        else
            say "$target links against Debian's armhf musl, which is not installed ($ARMHF_MUSL/libc.a)."
            say "  As root: dpkg --add-architecture armhf && apt-get update && apt-get install musl-dev:armhf"
            exit 1
        fi
    fi
    toolchain=$(nightly)
    # Not the pinned build (or none at all): install the pinned one if rustup can; if it
    # cannot, another nightly will do, said below.
    if [ -z "${WITHLOCK_NIGHTLY:-}" ] && [ "$(rustc "+$toolchain" -V 2>/dev/null)" != "$NIGHTLY_RUSTC" ] &&
        command -v rustup >/dev/null 2>&1; then
        say "installing the Rust toolchain nightly-$NIGHTLY_DATE, to build $target's core library"
        rustup toolchain install "nightly-$NIGHTLY_DATE" --profile minimal --component rust-src >&2 || true
        toolchain=$(nightly)
    fi
    if ! rustc "+$toolchain" -V >/dev/null 2>&1; then
        say "$target needs a nightly Rust toolchain with rust-src, to build its core library"
        say "  (rustup serves none for this target); the pinned one is $NIGHTLY_RUSTC:"
        say "    rustup toolchain install nightly-$NIGHTLY_DATE --profile minimal --component rust-src"
        say "  Or another nightly (the binary then differs from the release's):"
        say "    WITHLOCK_NIGHTLY=nightly make TARGET=$target"
        exit 1
    fi
    [ "$(rustc "+$toolchain" -V)" = "$NIGHTLY_RUSTC" ] ||
        say "note: building $target with $(rustc "+$toolchain" -V), not the pinned $NIGHTLY_RUSTC: its binary differs from the release's"
    sysroot=$(rustc "+$toolchain" --print sysroot)
    if [ ! -d "$sysroot/lib/rustlib/src/rust/library/core" ]; then
        say "adding rust-src to $toolchain, to build $target's core library"
        rustup component add rust-src --toolchain "$toolchain" >&2 || {
            say "could not add rust-src: rustup component add rust-src --toolchain $toolchain"
            exit 1
        }
    fi
    need_lld "$toolchain"
    exit 0
    ;;
esac

sysroot=$(rustc --print sysroot)
if [ ! -d "$sysroot/lib/rustlib/$target" ]; then
    if command -v rustup >/dev/null 2>&1; then
        say "adding the Rust target $target with rustup"
        rustup target add "$target" >&2 || true
    fi
    if [ ! -d "$sysroot/lib/rustlib/$target" ]; then
        cat >&2 <<MSG
ensure-target: the Rust target $target is not installed, and rustup could not add it.
  With rustup:   rustup target add $target
  Without it:    install your distribution's Rust standard library for $target,
                 or build for the host instead:  make TARGET=\$(rustc -vV | sed -n 's/host: //p')
                 (a dynamically linked binary; fine for trying withlock out)
MSG
        exit 1
    fi
fi
case $target in *-linux-musl*) need_lld "" ;; esac
