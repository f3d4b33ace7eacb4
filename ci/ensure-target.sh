#!/bin/sh
# Make sure the Rust standard library for the build target is installed.
# rustup can add it; without rustup, say what to do instead of failing obscurely.
set -eu
target=${1:?usage: ensure-target.sh TARGET}
sysroot=$(rustc --print sysroot)
if [ -d "$sysroot/lib/rustlib/$target" ]; then
    exit 0
fi
if command -v rustup >/dev/null 2>&1; then
    echo "ensure-target: adding the Rust target $target with rustup" >&2
    rustup target add "$target" && exit 0
fi
cat >&2 <<MSG
ensure-target: the Rust target $target is not installed, and rustup could not add it.
  With rustup:   rustup target add $target
  Without it:    install your distribution's Rust standard library for $target,
                 or build for the host instead:  make TARGET=\$(rustc -vV | sed -n 's/host: //p')
                 (a dynamically linked binary; fine for trying withlock out)
MSG
exit 1
