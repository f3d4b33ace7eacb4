# fish completion for withlock(1).
#
# Installed as .../share/fish/vendor_completions.d/withlock.fish; fish loads it the
# first time withlock is completed.

# Every option, once: "LETTER LONG[,LONG...] [VALUE]|description"; "-" for no letter,
# and a VALUE word for an option that takes one.
# Keep this list equal to `withlock --help`: ci/test-completions.sh checks it.
set -g __withlock_options \
    'w wait,timeout DURATION|Wait at most DURATION for a busy lock (10, 0.5, 250ms, 5m, forever)' \
    'c command STRING|Run STRING with /bin/sh -c instead of COMMAND' \
    's shared|A shared lock: shared holders run together, never with an exclusive one' \
    'q quiet|A busy lock (or expired wait) exits 0, silently' \
    'v verbose|Say what withlock does, on stderr' \
    'E conflict-exit-code N|Exit with N (0-255) when the lock is busy' \
    '- insecure|Trust who could tamper: lock files others can write; plain HTTP to etcd off this host' \
    '- replace|If the lock is held, stop the process the kernel shows holding it' \
    '- max-runtime DURATION|Stop the process group of the command after this long, exit 124' \
    '- kill-after DURATION|SIGKILL this long after SIGTERM (--replace, --max-runtime, a stop request; 10s)' \
    '- lease DURATION|etcd: the time to live of the lease (15s)' \
    '- connect-timeout DURATION|etcd: give up on an endpoint after this (5s)' \
    '- min-hold DURATION|etcd: keep the lock this long after the start' \
    '- unlink|Remove the lock file when the command ends' \
    '- fcntl|An OFD fcntl lock instead of flock (NFS; excludes lckdo and with-lock-ex)' \
    '- no-inherit|Only withlock holds the lock, not the command (jobs that start daemons)' \
    '- syslog|Log each outcome to the system log (--syslog=FACILITY; cron unless given)' \
    '- jitter DURATION|First sleep a random time up to DURATION, holding nothing' \
    '- slots N|Up to N jobs at once, each in its own slot file LOCK.i (1-64)' \
    '- name NAME|Lock NAME in withlock''s own directory instead of a LOCK path' \
    '- status|Say who holds each LOCK or DIRECTORY of locks' \
    '- json|With --status: one JSON object per lock' \
    'h help|Show the help' \
    'V version|Show the version'

# The option names that take a value: -w --wait ... (from the list above).
function __withlock_valued
    for spec in $__withlock_options
        set -l f (string split ' ' -- (string split -m1 '|' -- $spec)[1])
        set -q f[3]; or continue
        test $f[1] != -; and echo -- -$f[1]
        printf -- '--%s\n' (string split , -- $f[2])
    end
end

# The position of LOCK among the words before the cursor (1 is withlock itself), or 0
# while it has not been typed: options come only before LOCK.
function __withlock_lock_index
    set -l words (commandline -opc)
    set -l valued (__withlock_valued)
    set -l i 2
    while test $i -le (count $words)
        set -l w $words[$i]
        switch $w
            case --
                math $i + 1
                return
            case '--*=*'
            case '--*'
                contains -- $w $valued; and set i (math $i + 1)
            case '-?*'
                # A bundle such as -qw takes the next word if it ends in a value letter.
                for letter in (string split '' -- (string sub -s 2 -- $w))
                    if contains -- -$letter $valued
                        test -$letter = (string sub -s -2 -- $w); and set i (math $i + 1)
                        break
                    end
                end
            case '*'
                echo $i
                return
        end
        set i (math $i + 1)
    end
    echo 0
end

function __withlock_before_lock
    test (__withlock_lock_index) -eq 0
end

function __withlock_at_lock
    set -l lock (__withlock_lock_index)
    test $lock -gt 0; and test (count (commandline -opc)) -lt $lock
end

# After LOCK: complete the command, then its arguments, as if typed alone.
function __withlock_command
    set -l lock (__withlock_lock_index)
    test $lock -gt 0; or return
    set -l words (commandline -opc)
    test (count $words) -ge $lock; or return
    set -l rest $words[(math $lock + 1)..-1] (commandline -ct)
    complete -C (string join ' ' -- (string escape -- $rest))
end

for spec in $__withlock_options
    set -l parts (string split -m1 '|' -- $spec)
    set -l f (string split ' ' -- $parts[1])
    set -l args -c withlock -n __withlock_before_lock -d $parts[2]
    test $f[1] != -; and set -a args -s $f[1]
    for long in (string split , -- $f[2])
        set -a args -l $long
    end
    if set -q f[3]
        set -a args -x
        # Only -w waits forever; --max-runtime and --kill-after take a real duration.
        test $f[1] = w; and set -a args -a forever
    end
    complete $args
end

complete -c withlock -n 'not __withlock_before_lock; and not __withlock_at_lock' -x -a '(__withlock_command)'
