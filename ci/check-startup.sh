#!/bin/sh
# The default path's code and constants must fit the first 64 KB of the image
# (src/static.ld puts them there): the kernel maps an image 64 KB at a time
# around each page fault, and each such window withlock touches on its way to
# the job's exec costs 10-14 us per run. A module on that path that is renamed
# or added and not listed in src/static.ld shows here as a larger Rss.
#
# How: strace holds withlock at its execve of the job (delay_enter), and the
# resident size of its executable mapping is read from /proc/PID/smaps.
# Usage: ci/check-startup.sh BINARY
set -eu
bin=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
chmod 700 "$dir"
strace -o /dev/null -e trace=execve -e inject=execve:delay_enter=2000000:when=1 \
    "$bin" "$dir/lock" /bin/true &
strace_pid=$!
rss=
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    sleep 0.1
    pid=$(pgrep -P "$strace_pid" -x withlock || true)
    [ -n "$pid" ] || continue
    rss=$(awk '/ r-xp .*withlock$/ { f = 1 } f && /^Rss:/ { print $2; exit }' "/proc/$pid/smaps" 2>/dev/null || true)
    [ -z "$rss" ] || break
done
wait "$strace_pid"
if [ -z "$rss" ]; then
    echo "check-startup: could not see $bin at its exec of the job" >&2
    exit 1
fi
echo "start-up path: $rss kB of $bin's code mapped at the job's exec (goal: 64)"
if [ "$rss" -gt 64 ]; then
    echo "check-startup: the default path touches code outside the first 64 KB: list its module in src/static.ld" >&2
    exit 1
fi
