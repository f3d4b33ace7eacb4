#!/usr/bin/env bash
# ci/test-man.sh: man/withlock.1 renders without a single warning, has the sections a
# reader looks for, and its NAME line is what whatis/apropos will show.
# (That it lists exactly the options of --help is tests/docs.rs's job.)
#
#   bash ci/test-man.sh
set -euo pipefail
cd "$(dirname "$0")/.."
page=man/withlock.1

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

# groff with every warning on, and man-db's own pipeline at several terminal widths.
warnings=$(groff -ww -man -Tutf8 -z "$page" 2>&1)
[ -z "$warnings" ] || fail "groff -ww -man warns about $page:
$warnings"
for width in 60 80 120; do
    warnings=$(MANWIDTH=$width man --warnings -l "$page" 2>&1 >/dev/null)
    [ -z "$warnings" ] || fail "man --warnings -l $page (MANWIDTH=$width) warns:
$warnings"
done
text=$(MANWIDTH=80 man -l "$page" 2>/dev/null)
echo "man: $page renders without warnings ($(wc -l <<<"$text") lines at 80 columns)"

# whatis/apropos read the NAME section through lexgrog.
whatis=$(lexgrog "$page") || fail "lexgrog cannot parse the NAME section of $page"
grep -q '"withlock - run a command' <<<"$whatis" || fail "lexgrog reads: $whatis"

# The sections a reader expects, in this order.
expected="NAME SYNOPSIS DESCRIPTION OPTIONS EXIT STATUS ENVIRONMENT FILES SECURITY LOGGING LOCKS IN ETCD NOTES EXAMPLES SEE ALSO"
got=$(sed -n 's/^\.SH "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$page" | grep -v -e '^AUTHORS$' -e '^BUGS$' | tr '\n' ' ')
[ "$got" = "$expected " ] || fail "$page has the sections: $got
instead of: $expected"

# The examples the issue asks for: a crontab line, a systemd timer, a shell snippet.
examples=$(sed -n '/^\.SH EXAMPLES/,/^\.SH /p' "$page")
grep -q '^\*/5 \* \* \* \* withlock' <<<"$examples" || fail "EXAMPLES has no crontab line"
grep -q '^\[Timer\]' <<<"$examples" && grep -q 'ExecStart=.*withlock' <<<"$examples" ||
    fail "EXAMPLES has no systemd service and timer"
grep -q "sh \\\\-c" <<<"$examples" || fail "EXAMPLES has no shell snippet"
echo "man: sections, whatis line and examples: ok"
