#!/usr/bin/env bash
# ci/test-install.sh: `make install` into a temporary DESTDIR puts the binary, the man
# page and the completions in their conventional places, and they work from there;
# `make uninstall` removes exactly those files. And `cargo install --path .` works.
#
#   bash ci/test-install.sh
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

prefix=/usr/local
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
built=$PWD/target/x86_64-unknown-linux-musl/release/withlock
destdir=$(mktemp -d)
cargo_root=$(mktemp -d)
trap 'rm -rf "$destdir" "$cargo_root"' EXIT
root=$destdir$prefix

make --no-print-directory -s install DESTDIR="$destdir" PREFIX="$prefix"

# Exactly these files, with these modes.
expected="0755 bin/withlock
0644 share/bash-completion/completions/withlock
0644 share/fish/vendor_completions.d/withlock.fish
0644 share/man/man1/withlock.1
0644 share/zsh/site-functions/_withlock"
got=$(cd "$root" && find . -type f -printf '%#m %P\n' | LC_ALL=C sort -k2)
[ "$got" = "$expected" ] || fail "make install installed:
$got
instead of:
$expected"
[ -z "$(find "$destdir" -type f -not -path "$root/*")" ] || fail "make install wrote outside PREFIX"
cmp -s "$built" "$root/bin/withlock" || fail "the installed binary is not the static build"
cmp -s man/withlock.1 "$root/share/man/man1/withlock.1" || fail "the installed man page differs"
echo "install: the 5 files, in place, with their modes"

# The installed binary runs, and takes a real lock.
bash ci/smoke.sh "$root/bin/withlock" "$version"

# man finds the page where it was installed, and renders it without a warning.
page=$(MANPATH=$root/share/man man -w withlock) || fail "man -w withlock finds nothing in $root/share/man"
[ "$page" = "$root/share/man/man1/withlock.1" ] || fail "man -w withlock found $page"
warnings=$(MANPATH=$root/share/man MANWIDTH=80 man --warnings withlock 2>&1 >/dev/null)
[ -z "$warnings" ] || fail "the installed man page renders with warnings: $warnings"
echo "install: man -w withlock finds $page"

# The shells find the completions there.
bash ci/test-completions.sh "$root/bin/withlock" "$root/share"

# uninstall removes exactly what install installed: nothing else in those directories.
: >"$root/bin/not-ours"
: >"$root/share/man/man1/not-ours.1"
make --no-print-directory -s uninstall DESTDIR="$destdir" PREFIX="$prefix"
left=$(cd "$destdir" && find . -type f | LC_ALL=C sort)
[ "$left" = "./usr/local/bin/not-ours
./usr/local/share/man/man1/not-ours.1" ] || fail "after make uninstall, these files are left: $left"
echo "uninstall: removed the 5 files, and nothing else"

# And no shell finds completions any more (the control for the test above).
bash ci/test-completions.sh --absent "$built" "$root/share"

# `cargo install --path .` still works with nothing but the Rust toolchain (a host
# build, dynamically linked: the binary alone).
cargo install --quiet --locked --path . --root "$cargo_root" 2>&1 | grep -v '^warning: be sure to add' || true
bash ci/smoke.sh "$cargo_root/bin/withlock" "$version"
echo "install/uninstall, cargo install: ok"
