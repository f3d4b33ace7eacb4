#!/usr/bin/env bash
# ci/test-completions.sh: bash, zsh and fish load withlock's completions from where
# they were installed, and complete exactly the options `withlock --help` lists.
#
#   bash ci/test-completions.sh BIN [SHARE]            the completions must work
#   bash ci/test-completions.sh --absent BIN [SHARE]   no shell may find them (a control)
#
# BIN is the installed withlock (its --help is the truth; its directory goes first on
# PATH). SHARE is an installed share/
# directory (such as DESTDIR/usr/local/share): bash-completion and fish are pointed at
# it through XDG_DATA_DIRS, zsh through $fpath (SHARE/zsh/site-functions). Without
# SHARE, each shell finds the files in its own default places (after `dpkg -i`).
#
# Each shell runs for real, in a private HOME: bash with bash-completion's loader
# (and once more with the file merely sourced, without bash-completion), zsh with
# compinit in a pseudo-terminal (ci/zsh-complete.zsh), fish with `complete -C`.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

absent=0
if [ "${1-}" = --absent ]; then absent=1; shift; fi
bin=${1:?usage: test-completions.sh [--absent] BIN [SHARE]}
share=${2-}
case $bin in /*) ;; *) bin=$repo/$bin ;; esac

sandbox=$(mktemp -d)
trap 'rm -rf "$sandbox"' EXIT
export HOME=$sandbox/home
mkdir -m 0700 "$HOME"
unset XDG_CONFIG_HOME XDG_DATA_HOME XDG_CACHE_HOME BASH_COMPLETION_USER_DIR
if [ -n "$share" ]; then
    export XDG_DATA_DIRS=$share:/usr/local/share:/usr/share
else
    unset XDG_DATA_DIRS
fi
zsh_dir=${share:+$share/zsh/site-functions}
# withlock must be a command, as it is once installed: fish loads no completions for
# a command it cannot find.
export PATH=$(dirname "$bin"):$PATH

# Fixtures: a lock directory with one file in it, for file-name completion.
mkdir -m 0700 "$sandbox/locks"
: >"$sandbox/locks/nightly.lock"
cd "$sandbox"

failures=0
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    failures=$((failures + 1))
}

# The options `withlock --help` lists, one a line, sorted: every -x and --long word
# before the description on the option lines (indented 2 to 6 spaces) of "Options:".
help_options() {
    "$bin" --help | awk '
        /^Options:/ { on = 1; next }
        on && /^$/ { exit }
        on && /^ +-/ && match($0, /^ +/) && RLENGTH <= 6 {
            head = $0; sub(/^ +/, "", head); sub(/  .*/, "", head)
            n = split(head, w, /[ ,\/]+/)
            for (i = 1; i <= n; i++) if (w[i] ~ /^--?[A-Za-z0-9]/) { sub(/[=[].*/, "", w[i]); print w[i] }
        }' | LC_ALL=C sort -u
}

# What each shell offers for the command LINE (its last word is completed; a
# trailing space starts a new word), one candidate a line.
words() { # LINE -> COMP_WORDS for bash
    local -a w
    read -ra w <<<"$1"
    [ "${1% }" = "$1" ] || w+=("")
    printf '%s\0' "${w[@]}"
}
complete_bash() { # bash-completion's loader finds the file, as in an interactive shell
    local -a w
    mapfile -d '' w < <(words "$1")
    bash --norc --noprofile -c '
        . /usr/share/bash-completion/bash_completion
        __load_completion withlock || exit 0
        spec=$(complete -p withlock) || exit 0
        fn=${spec#*-F }; fn=${fn%% *}
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        "$fn" withlock "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf "%s\n" "${COMPREPLY[@]}"' withlock "${w[@]}" 2>/dev/null
}
complete_bash_plain() { # the file sourced into a bash without bash-completion
    local file
    local -a w
    file=$(bash_file) || return 0
    mapfile -d '' w < <(words "$1")
    bash --norc --noprofile -c '
        file=$1; shift
        . "$file"
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        _withlock withlock "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf "%s\n" "${COMPREPLY[@]}"' withlock "$file" "${w[@]}" 2>/dev/null
}
bash_file() {
    local d
    local IFS=:
    for d in ${XDG_DATA_DIRS:-/usr/local/share:/usr/share}; do
        [ -f "$d/bash-completion/completions/withlock" ] && { echo "$d/bash-completion/completions/withlock"; return 0; }
    done
    return 1
}
# zsh answers every line of $lines in one session (starting it costs most of the time),
# into $sandbox/zsh/N; complete_zsh reads the answer for its line.
zsh_answers() {
    mkdir -p "$sandbox/zsh"
    zsh -f "$repo/ci/zsh-complete.zsh" "$sandbox/zsh" "$zsh_dir" "${lines[@]}" >&2
}
complete_zsh() {
    local i
    for i in "${!lines[@]}"; do
        if [ "${lines[i]}" = "$1" ]; then
            [ -f "$sandbox/zsh/$((i + 1))" ] || return 1
            cat "$sandbox/zsh/$((i + 1))"
            return 0
        fi
    done
    echo "test-completions: '$1' is not in \$lines" >&2
    return 1
}
complete_fish() {
    WL_LINE=$1 fish -c 'complete -C $WL_LINE' | cut -f1
}

shells=(bash zsh fish)
[ "$absent" = 1 ] || shells+=(bash_plain)

# The command lines completed below.
lock=$sandbox/locks/nightly.lock
lines=(
    "withlock -"
    "withlock --wa"
    "withlock -w "
    "withlock -qw "
    "withlock -q -w 5 $sandbox/locks/ni"
    "withlock -q $lock ech"
    "withlock -q $lock ls --al"
    "withlock -- $lock echo --"
    "withlock $lock ls --al"
    "withlock --name job ech"
)
zsh_answers || fail "zsh did not answer"

# Every option --help lists, and nothing else (both directions).
want=$(help_options)
[ -n "$want" ] || { echo "FAIL: no options found in '$bin --help'" >&2; exit 1; }
for sh in "${shells[@]}"; do
    # zsh and fish list both spellings for "-"; bash offers --wait= for a value option.
    got=$(complete_$sh "withlock -" | sed 's/=$//' | grep '^-' | LC_ALL=C sort -u || true)
    if [ "$absent" = 1 ]; then
        [ -z "$got" ] || fail "$sh completes withlock's options, but its completion should not be installed: $(echo $got)"
        continue
    fi
    if [ "$got" != "$want" ]; then
        fail "$sh completes other options than 'withlock --help' lists:
$(diff <(echo "$want") <(echo "$got") | sed -n 's/^</  missing from the completion:/p; s/^>/  not in --help:/p')"
    else
        echo "$sh: completes the $(echo "$want" | wc -l) options of --help"
    fi
done
if [ "$absent" = 1 ]; then
    [ "$failures" = 0 ] && echo "completions: none found (as expected)"
    exit $((failures > 0))
fi

# One completion in one shell: the candidates for LINE must include each of WANT...
# and none of the words after "--not".
expect() {
    local sh=$1 line=$2; shift 2
    local got w negate=0
    got=$(complete_$sh "$line") || { fail "$sh: no answer for '$line'"; return; }
    for w in "$@"; do
        if [ "$w" = --not ]; then negate=1; continue; fi
        if grep -qxF -- "$w" <<<"$got"; then
            [ "$negate" = 0 ] || fail "$sh: '$line<Tab>' offers $w: $(echo $got | cut -c1-200)"
        else
            [ "$negate" = 1 ] || fail "$sh: '$line<Tab>' does not offer $w: $(echo $got | cut -c1-200)"
        fi
    done
}
for sh in "${shells[@]}"; do
    case $sh in
    bash*) wait_long=--wait= lockfile=$lock ;;
    zsh) wait_long=--wait lockfile=nightly.lock ;; # _files adds the name after its directory
    fish) wait_long=--wait lockfile=$lock ;;
    esac
    # A long option from its prefix, and only that one.
    expect "$sh" "withlock --wa" "$wait_long" --not --quiet
    # A duration: 'forever' is offered (bare, and after the bundle -qw).
    expect "$sh" "withlock -w " forever
    expect "$sh" "withlock -qw " forever
    # LOCK is a file name, also after an option and its value.
    expect "$sh" "withlock -q -w 5 $sandbox/locks/ni" "$lockfile" --not --quiet
    # After LOCK comes the command...
    expect "$sh" "withlock -q $lock ech" echo --not --quiet
    # ... with its own options, never withlock's: options come only before LOCK.
    expect "$sh" "withlock -q $lock ls --al" --not --wait --wait= --quiet
    expect "$sh" "withlock -- $lock echo --" --not --wait --wait= --quiet
    # With --name NAME there is no LOCK: the command comes right after (bash, zsh).
    case $sh in bash*|zsh) expect "$sh" "withlock --name job ech" echo --not --quiet ;; esac
    echo "$sh: values, LOCK, command: ok"
done
# ls's own options after the command, where the shell knows them (bash-completion, zsh, fish).
for sh in bash zsh fish; do
    expect "$sh" "withlock $lock ls --al" --all
done

if [ "$failures" -gt 0 ]; then
    echo "completions: $failures failure(s)" >&2
    exit 1
fi
echo "completions: bash, zsh, fish: ok"
