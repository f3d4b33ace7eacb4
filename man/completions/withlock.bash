# bash completion for withlock(1)                                 -*- shell-script -*-
#
# Installed as .../share/bash-completion/completions/withlock, where bash-completion
# loads it the first time withlock is completed. It also works when merely sourced
# (`. withlock.bash`), without bash-completion; then the command after LOCK completes
# as a command name, and its arguments as files.

_withlock() {
    # Every option, once; a trailing '=' marks one that takes a value (DURATION, N);
    # --syslog takes one only attached (--syslog=FACILITY), and is listed bare.
    # Keep this list equal to `withlock --help`: ci/test-completions.sh checks it.
    local options=(
        -w= --wait= --timeout=
        -c= --command=
        -s --shared
        -q --quiet
        -v --verbose
        -E= --conflict-exit-code=
        --insecure
        --replace
        --max-runtime=
        --kill-after=
        --lease=
        --connect-timeout=
        --min-hold=
        --unlink
        --no-inherit
        --syslog
        --jitter=
        --fcntl
        --slots=
        --name=
        --status
        --json
        -h --help
        -V --version
    )
    local cur=${COMP_WORDS[COMP_CWORD]} i=1 word value= lock=0 named=0 o

    # Options come only before LOCK. Walk the words before the cursor to find LOCK;
    # `value` says what the word under the cursor is the value of, if anything.
    # bash splits `--wait=5` into `--wait`, `=`, `5` (COMP_WORDBREAKS has '=').
    while ((i < COMP_CWORD)); do
        word=${COMP_WORDS[i]}
        value=
        case $word in
        --)
            lock=$((i + 1))
            break
            ;;
        --?*)
            # With --name NAME there is no LOCK: the first word after the options
            # is the command.
            [[ ${word%%=*} == --name ]] && named=1
            if _withlock_valued "${word%%=*}" && [[ $word != *=* ]]; then
                value=$word
                if [[ ${COMP_WORDS[i + 1]} == = ]]; then ((i++)); fi
                if ((i + 1 < COMP_CWORD)); then ((i++)); value=; fi
            elif [[ $word != *=* && ${COMP_WORDS[i + 1]} == = ]]; then
                # An optional value, attached: --syslog=FACILITY.
                value=$word=
                ((i++))
                if ((i + 1 < COMP_CWORD)); then ((i++)); value=; fi
            fi
            ;;
        -?*)
            # A bundle such as -qw or -qw5: a value letter takes the rest of the
            # word, or the next word if nothing follows it.
            local j letter
            for ((j = 1; j < ${#word}; j++)); do
                letter=${word:j:1}
                if _withlock_valued "-$letter"; then
                    if ((j == ${#word} - 1)); then
                        value=-$letter
                        if ((i + 1 < COMP_CWORD)); then ((i++)); value=; fi
                    fi
                    break
                fi
            done
            ;;
        =) ;;
        *)
            lock=$((i - named))
            break
            ;;
        esac
        ((i++))
    done
    [[ $cur == = ]] && cur=

    if ((lock == 0)); then
        if [[ -n $value ]]; then
            # The value of -w/--wait/--timeout, or of -E.
            case $value in
            -w | --wait | --timeout) COMPREPLY=($(compgen -W 'forever' -- "$cur")) ;;
            --syslog=)
                COMPREPLY=($(compgen -W 'cron daemon user mail auth authpriv syslog lpr news uucp ftp
                    local0 local1 local2 local3 local4 local5 local6 local7' -- "$cur"))
                ;;
            *) COMPREPLY=() ;;
            esac
        elif ((named)) && [[ $cur != -* ]]; then
            COMPREPLY=($(compgen -c -- "$cur")) # the command, with --name
        elif [[ $cur == -* ]]; then
            local offer=()
            for o in "${options[@]}"; do
                # Long options that take a value are offered as --name=.
                [[ $o == --* || $o != *= ]] || o=${o%=}
                offer+=("$o")
            done
            COMPREPLY=($(compgen -W "${offer[*]}" -- "$cur"))
            if ((${#COMPREPLY[@]} == 1)) && [[ $COMPREPLY == *= ]]; then
                compopt -o nospace 2>/dev/null
            fi
        else
            _withlock_files
        fi
    elif ((COMP_CWORD == lock)); then
        _withlock_files
    elif declare -F _command_offset >/dev/null; then
        # bash-completion: complete the command, then its arguments, as if typed alone.
        _command_offset $((lock + 1))
    elif ((COMP_CWORD == lock + 1)); then
        COMPREPLY=($(compgen -c -- "$cur"))
    else
        _withlock_files
    fi
}

# Does option $1 (as typed, without '=VALUE') take a value? Reads the caller's `options`.
_withlock_valued() {
    local o
    for o in "${options[@]}"; do [[ $o == "$1=" ]] && return 0; done
    return 1
}

# LOCK, and arguments without a completion of their own: file names.
_withlock_files() {
    if declare -F _filedir >/dev/null; then
        _filedir
    else
        compopt -o filenames 2>/dev/null
        COMPREPLY=($(compgen -f -- "${COMP_WORDS[COMP_CWORD]}"))
    fi
}

complete -F _withlock withlock
