#!/usr/bin/env bash
# ci/test-deb.sh: `make release` builds a static binary and a .deb for each target, and one
# SHA256SUMS; the same commit built again elsewhere gives the same bytes; each .deb is
# lintian-clean and dpkg accepts it for its architecture (in a scratch dpkg database),
# where it works; the amd64 one installs on this system with `dpkg -i`, works (version,
# man page, a real lock, completions), and `dpkg -r` removes it all.
#
#   bash ci/test-deb.sh        (as root: it installs and removes the package withlock)
#
# Not root: the release files are checked, and installing is skipped, except under CI
# (CI=true), where skipping fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source ci/targets.sh

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
built=$PWD/target/x86_64-unknown-linux-musl/release/withlock
deb=withlock_${version}_amd64.deb
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# --- make release: a binary and a .deb per target, with good sums ----------------------------
release_start=$SECONDS
make --no-print-directory release >/dev/null
echo "release: make release took $((SECONDS - release_start)) s"
files=(SHA256SUMS)
for target in "${TARGETS[@]}"; do
    files+=("withlock-$version-$target" "withlock_${version}_$(deb_arch_for "$target").deb")
done
[ "$(ls dist | LC_ALL=C sort)" = "$(printf '%s\n' "${files[@]}" | LC_ALL=C sort)" ] ||
    fail "dist/ holds: $(ls dist)"
(cd dist && sha256sum --quiet -c SHA256SUMS) || fail "dist/SHA256SUMS does not match"
[ "$(awk '{print $2}' dist/SHA256SUMS | LC_ALL=C sort)" = "$(printf '%s\n' "${files[@]:1}" | LC_ALL=C sort)" ] ||
    fail "SHA256SUMS does not cover exactly the binaries and the .debs"

# Each binary: its target's static build, stripped, within the bound, and it runs here
# (natively or under qemu-user).
for target in "${TARGETS[@]}"; do
    bin=dist/withlock-$version-$target
    cmp -s "target/$target/release/withlock" "$bin" || fail "$bin is not the static build"
    ! readelf -lW "$bin" | grep -q INTERP || fail "$bin is dynamically linked"
    ! readelf -SW "$bin" | grep -q '\.symtab' || fail "$bin is not stripped"
    size=$(stat -c %s "$bin")
    # The release carries every optional part (the etcd engine too): its own, larger bound;
    # the 64 KB goal is for the build without them (make check-size).
    [ "$size" -le 131072 ] || fail "$bin is $size bytes, over the 128 KB bound for the full build"
    runner=$(runner_for "$target")
    got=$($runner "$bin" --version) || fail "$bin --version exited $?"
    [ "$got" = "withlock $version" ] || fail "$bin --version: $got"
    echo "release: $bin ($size bytes, static, stripped) runs${runner:+ under $runner}"
done

# The same commit builds the same files, byte for byte: the sources copied elsewhere and
# built from scratch (another path, an empty target directory) give the same SHA256SUMS.
copy=$scratch/withlock-copy
mkdir "$copy"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$copy"
repro_start=$SECONDS
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) make --no-print-directory -C "$copy" release >"$scratch/copy.log" 2>&1 ||
    fail "make release in a copy of the sources failed:
$(tail -n 20 "$scratch/copy.log")"
cmp -s dist/SHA256SUMS "$copy/dist/SHA256SUMS" || fail "a second make release, from scratch, built different files:
$(diff dist/SHA256SUMS "$copy/dist/SHA256SUMS")"
echo "release: built again from scratch in $copy ($((SECONDS - repro_start)) s): identical"

# --- the packages, as dpkg-deb and lintian see them ------------------------------------------
expected="-rwxr-xr-x root/root ./usr/bin/withlock
-rw-r--r-- root/root ./usr/share/bash-completion/completions/withlock
-rw-r--r-- root/root ./usr/share/doc/withlock/README.md.gz
-rw-r--r-- root/root ./usr/share/doc/withlock/changelog.gz
-rw-r--r-- root/root ./usr/share/doc/withlock/copyright
-rw-r--r-- root/root ./usr/share/fish/vendor_completions.d/withlock.fish
-rw-r--r-- root/root ./usr/share/lintian/overrides/withlock
-rw-r--r-- root/root ./usr/share/man/man1/withlock.1.gz
-rw-r--r-- root/root ./usr/share/zsh/vendor-completions/_withlock"
debs=()
for target in "${TARGETS[@]}"; do
    arch=$(deb_arch_for "$target")
    package=dist/withlock_${version}_$arch.deb
    debs+=("$package")
    field() { dpkg-deb -f "$package" "$1"; }
    [ "$(field Package)" = withlock ] || fail "$package: Package: $(field Package)"
    [ "$(field Version)" = "$version" ] || fail "$package: Version: $(field Version)"
    [ "$(field Architecture)" = "$arch" ] || fail "$package: Architecture: $(field Architecture)"
    for f in Maintainer Description Installed-Size Section Priority; do
        [ -n "$(field $f)" ] || fail "$package: the control file has no $f"
    done
    for f in Depends Pre-Depends Recommends; do
        [ -z "$(field $f)" ] || fail "$package: a static binary needs no $f: $(field $f)"
    done
    got=$(dpkg-deb -c "$package" | awk '$1 !~ /^d/ {print $1, $2, $6}' | LC_ALL=C sort -k3)
    [ "$got" = "$expected" ] || fail "$package holds:
$got
instead of:
$expected"
    bad_dirs=$(dpkg-deb -c "$package" | awk '$1 ~ /^d/ && ($1 != "drwxr-xr-x" || $2 != "root/root")')
    [ -z "$bad_dirs" ] || fail "$package: directories with odd modes or owners: $bad_dirs"
    contents=$scratch/contents-$arch
    dpkg-deb -x "$package" "$contents"
    cmp -s "target/$target/release/withlock" "$contents/usr/bin/withlock" ||
        fail "$package: the packaged binary is not $target's static build"
    zcat "$contents/usr/share/man/man1/withlock.1.gz" | cmp -s - man/withlock.1 || fail "$package: the man page differs"
    zcat "$contents/usr/share/doc/withlock/README.md.gz" | cmp -s - README.md || fail "$package: the README differs"
    grep -q '^License: Expat' "$contents/usr/share/doc/withlock/copyright" &&
        grep -q 'Permission is hereby granted' "$contents/usr/share/doc/withlock/copyright" ||
        fail "$package: the copyright file lacks the license"
    [ "$(zcat "$contents/usr/share/doc/withlock/changelog.gz" | sed -n 1p)" = "withlock ($version) unstable; urgency=medium" ] ||
        fail "$package: the changelog does not start with this version"

    # dpkg accepts it for its architecture, and only there: a scratch dpkg database
    # (--root), so this system's own is not touched. It runs from there.
    root=$scratch/root-$arch
    mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
    : >"$root/var/lib/dpkg/status"
    if [ "$arch" != "$(dpkg --print-architecture)" ]; then
        ! dpkg --root="$root" -i "$package" >/dev/null 2>&1 || fail "dpkg took $package without $arch configured"
        dpkg --root="$root" --add-architecture "$arch"
    fi
    dpkg --root="$root" -i "$package" >/dev/null || fail "dpkg --root -i $package failed"
    [ "$(dpkg --root="$root" -s "withlock:$arch" | sed -n 's/^Status: //p')" = "install ok installed" ] ||
        fail "dpkg did not install $package"
    WITHLOCK_RUNNER=$(runner_for "$target") bash ci/smoke.sh "$root/usr/bin/withlock" "$version" >/dev/null ||
        fail "$package: the installed binary does not work"
done
echo "packages: control fields, ${#debs[@]} x 9 files, modes and owners; dpkg installs each for its architecture only, and it works: ok"

# lintian, the Debian package checker, at its most pedantic: no tag at all. (It warns that
# it should not run as root; that is no tag.)
lintian_out=$(lintian --info --pedantic "${debs[@]}" 2>&1 | grep -v '^running with root privileges' || true)
[ -z "$lintian_out" ] || fail "lintian:
$lintian_out"
echo "lintian: ${debs[*]}: no tags"

# --- dpkg -i, use it, dpkg -r -----------------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
    [ "${CI:-}" != true ] || fail "CI must run this as root, to install the package"
    echo "deb: SKIPPED installing the package (not root)"
    exit 0
fi
if dpkg-query -W -f '${Status}' withlock 2>/dev/null | grep -q ' installed$'; then
    fail "the package withlock is already installed here; remove it first (dpkg -r withlock)"
fi
# No shell finds withlock's completions before the package is in (the control).
bash ci/test-completions.sh --absent "$built"

# Docker-style images tell dpkg to skip man pages and docs (path-exclude); this package's
# own are wanted here.
include=(--path-include='/usr/share/man/man1/withlock.1.gz' --path-include='/usr/share/doc/withlock/*')
installed=1
trap 'rm -rf "$scratch"; [ "$installed" = 0 ] || dpkg -r withlock >/dev/null 2>&1 || true' EXIT
dpkg "${include[@]}" -i "dist/$deb" >/dev/null
[ "$(dpkg-query -W -f '${Status}' withlock)" = "install ok installed" ] || fail "dpkg -i did not install withlock"
files=$(dpkg -L withlock | while read -r f; do [ -d "$f" ] || echo "$f"; done)
for f in $files; do [ -f "$f" ] || fail "dpkg -L lists $f, but it is not there"; done
echo "deb: dpkg -i installed $(echo "$files" | wc -l) files"

bash ci/smoke.sh /usr/bin/withlock "$version"
page=$(man -w withlock) || fail "man -w withlock finds nothing"
[ "$page" = /usr/share/man/man1/withlock.1.gz ] || fail "man -w withlock finds $page"
rendered=$(MANWIDTH=80 man --warnings withlock 2>"$scratch/warnings") || fail "man withlock failed"
[ ! -s "$scratch/warnings" ] || fail "man withlock warns: $(cat "$scratch/warnings")"
grep -q 'withlock - run a command' <<<"$rendered" || fail "man withlock shows no NAME line"
echo "deb: man -w withlock finds $page; it renders without warnings"
bash ci/test-completions.sh /usr/bin/withlock

dpkg -r withlock >/dev/null
installed=0
status=$(dpkg-query -W -f '${Status}' withlock 2>/dev/null || true)
case $status in *" installed") fail "dpkg -r left withlock installed: $status" ;; esac
for f in $files; do [ ! -e "$f" ] || fail "dpkg -r left $f behind"; done
! man -w withlock >/dev/null 2>&1 || fail "man -w withlock still finds $(man -w withlock)"
bash ci/test-completions.sh --absent "$built"
echo "deb: dpkg -r removed every file; build, install, use, remove: ok"
