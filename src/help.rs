//! `--help`, `--version`, and the short usage hint after a usage error.

use crate::sys;

// The options of an optional part that this build leaves out (`make
// FEATURES=`) are not listed, and cost it nothing: each part's lines come
// from a macro that is empty without it.
#[cfg(feature = "syslog")]
macro_rules! syslog_help {
    () => {
        concat!(
            "      --syslog[=FACILITY]   log each outcome to the system log (/dev/log,\n",
            "                            facility cron), also with -q; withlock stays\n",
            "                            COMMAND's parent\n",
        )
    };
}
#[cfg(not(feature = "syslog"))]
macro_rules! syslog_help {
    () => {
        ""
    };
}
#[cfg(feature = "jitter")]
macro_rules! jitter_help {
    () => {
        "      --jitter DURATION     first sleep a random time up to DURATION\n"
    };
}
#[cfg(not(feature = "jitter"))]
macro_rules! jitter_help {
    () => {
        ""
    };
}
#[cfg(all(feature = "syslog", feature = "jitter"))]
macro_rules! cron_example {
    () => {
        "  withlock -q --syslog --jitter 5m --name report make-report\n"
    };
}
#[cfg(not(all(feature = "syslog", feature = "jitter")))]
macro_rules! cron_example {
    () => {
        ""
    };
}

pub const HELP: &str = concat!(
    "withlock ",
    env!("CARGO_PKG_VERSION"),
    ": run COMMAND only if no other process holds LOCK.\n",
    "\n",
    "Usage: withlock [OPTIONS] LOCK COMMAND [ARGS...]\n",
    "       withlock [OPTIONS] -c STRING LOCK\n",
    "       withlock [OPTIONS] --name NAME COMMAND [ARGS...]\n",
    "       withlock --status [--json] LOCK|DIRECTORY...\n",
    "\n",
    "Locks the file LOCK (flock(2); created, mode 0600, if missing) and becomes\n",
    "COMMAND, run as given, without a shell. The lock lasts while COMMAND, or what\n",
    "it started with the lock's descriptor, runs. Options come only before LOCK.\n",
    "LOCK may also be etcd://HOST:PORT[,HOST:PORT...]/NAME: the lock `etcdctl lock\n",
    "NAME` takes, kept alive while COMMAND runs; COMMAND is stopped if it is lost.\n",
    "\n",
    "Options:\n",
    "  -w, --wait, --timeout DURATION\n",
    "                            wait at most DURATION (10, 0.5, 250ms, 5m, 2h,\n",
    "                            forever) for a busy lock; default: do not wait\n",
    "  -c, --command STRING      run STRING with /bin/sh -c (then no COMMAND)\n",
    "  -s, --shared              a shared lock: shared holders run together, never\n",
    "                            with an exclusive one\n",
    "      --fcntl               an OFD fcntl lock instead of flock(2) (Linux): works\n",
    "                            on NFS, excludes lckdo and with-lock-ex, not flock\n",
    "  -q, --quiet               a busy lock (or expired wait) exits 0, silently\n",
    "  -v, --verbose             say what withlock does, on stderr\n",
    "  -E, --conflict-exit-code N\n",
    "                            exit with N (0-255) when the lock is busy\n",
    "      --insecure            trust who could tamper: skip the checks on who may\n",
    "                            write LOCK's directory and own the file (symlinks\n",
    "                            are still refused); etcd: plain HTTP off this host\n",
    "      --replace             stop the holder's job (TERM, then KILL) and run\n",
    "                            COMMAND in its place\n",
    "      --max-runtime DURATION\n",
    "                            stop COMMAND's process group (TERM, then KILL)\n",
    "                            when it has run this long, and exit 124\n",
    "      --kill-after DURATION\n",
    "                            from TERM to KILL when withlock stops COMMAND\n",
    "                            (default 10s) or an etcd lock is lost (default:\n",
    "                            a third of --lease)\n",
    "      --lease DURATION      etcd: the lease's time to live (default 15s)\n",
    "      --connect-timeout DURATION\n",
    "                            etcd: give up on an endpoint after this (5s)\n",
    "      --min-hold DURATION   etcd: keep the lock this long after the start,\n",
    "                            even if COMMAND ends sooner (once per schedule)\n",
    "      --unlink              remove LOCK when COMMAND ends, still holding it\n",
    "      --no-inherit          only withlock holds the lock, not COMMAND (for jobs\n",
    "                            that start daemons); COMMAND's group dies with it\n",
    syslog_help!(),
    jitter_help!(),
    "      --slots N             up to N (1-64) jobs at once, each in its own slot:\n",
    "                            LOCK.0 to LOCK.N-1, and WITHLOCK_SLOT=0 to N-1\n",
    "      --name NAME           lock NAME in withlock's directory instead of LOCK:\n",
    "                            /run/withlock (root), $XDG_RUNTIME_DIR/withlock\n",
    "                            or /tmp/withlock-UID\n",
    "      --status              say who holds each LOCK, DIRECTORY of locks or\n",
    "                            --name NAME; exit 0 if all are free, 75 if one is\n",
    "                            held, 69 if one cannot be seen\n",
    "      --json                with --status: one JSON object per lock\n",
    "  -h, --help                show this help\n",
    "  -V, --version             show the version\n",
    "\n",
    "Exit status: COMMAND's own (its death by a signal is passed on), or\n",
    "  75   LOCK is busy, or -w expired (0 with -q, N with -E N)\n",
    "  64   usage error               73   cannot open or create the lock file\n",
    "  77   unsafe lock location      126  COMMAND cannot be executed\n",
    "  127  COMMAND not found         71   out of descriptors or memory,\n",
    "                                      or another system error\n",
    "  124  --max-runtime stopped COMMAND\n",
    "  69   etcd cannot be reached    76   etcd lock lost: COMMAND stopped\n",
    "\n",
    "Examples:\n",
    "  withlock -q /run/lock/jobs/backup.lock rsync -a /srv/ /backup/\n",
    "  withlock -q --name backup rsync -a /srv/ /backup/\n",
    cron_example!(),
    "  withlock -w 30 -c 'cd /srv/db && ./vacuum' /run/lock/jobs/db.lock\n",
    "\n",
    "See withlock(1) for more.\n",
);

pub fn print_help() {
    sys::write_all(1, HELP.as_bytes());
}

pub fn print_version() {
    sys::write_all(1, concat!("withlock ", env!("CARGO_PKG_VERSION"), "\n").as_bytes());
}

/// After a usage error: the synopsis and where to read more.
pub fn usage_hint() {
    sys::write_all(
        2,
        concat!(
            "Usage: withlock [OPTIONS] LOCK COMMAND [ARGS...]\n",
            "Try 'withlock --help' for more information.\n"
        )
        .as_bytes(),
    );
}
