//! `--help`, `--version`, and the short usage hint after a usage error.

use crate::sys;

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
    "Takes an exclusive flock(2) lock on the file LOCK (created, mode 0600, if\n",
    "missing) and then becomes COMMAND, which keeps the lock until it and\n",
    "everything it started with the lock's descriptor have exited. COMMAND and\n",
    "its arguments are run as given, without a shell. Options are read only\n",
    "before LOCK; '--' ends them.\n",
    "\n",
    "Options:\n",
    "  -w, --wait, --timeout DURATION\n",
    "                            wait at most DURATION for a busy lock; DURATION is\n",
    "                            seconds (0.5, 10) or has a unit (250ms, 5m, 2h);\n",
    "                            'forever' waits without limit. Default: do not wait\n",
    "  -c, --command STRING      run STRING with /bin/sh -c instead of COMMAND (a shell\n",
    "                            snippet: 'cd /srv && ./sync'); COMMAND never goes\n",
    "                            through a shell\n",
    "  -s, --shared              take a shared lock: any number of shared holders run\n",
    "                            together, never with an exclusive one\n",
    "  -q, --quiet               a busy lock (or expired wait) exits 0, silently\n",
    "  -v, --verbose             say what withlock does, on stderr\n",
    "  -E, --conflict-exit-code N\n",
    "                            exit with N (0-255) when the lock is busy\n",
    "      --insecure            allow a lock file in a directory others can write\n",
    "                            or owned by someone else (symlinks are still\n",
    "                            refused, nothing is ever truncated)\n",
    "      --replace             if the lock is held, stop its holder's job (SIGTERM,\n",
    "                            then SIGKILL) and run COMMAND in its place\n",
    "      --kill-after DURATION\n",
    "                            with --replace: SIGKILL after this long (10s)\n",
    "      --unlink              remove the lock file when COMMAND ends, while\n",
    "                            still holding the lock\n",
    "      --name NAME           lock NAME in withlock's own directory instead of a\n",
    "                            LOCK path (then no LOCK is given): /run/withlock\n",
    "                            for root, else $XDG_RUNTIME_DIR/withlock or\n",
    "                            /tmp/withlock-UID, created if missing. NAME: up to\n",
    "                            200 bytes, no '/', not starting with '.'\n",
    "      --status              say who holds each LOCK (or each lock file in a\n",
    "                            DIRECTORY, or --name NAME); exit 0 if all are free,\n",
    "                            75 if any is held\n",
    "      --json                with --status: one JSON object per lock\n",
    "  -h, --help                show this help\n",
    "  -V, --version             show the version\n",
    "\n",
    "Exit status:\n",
    "  COMMAND's own    COMMAND ran (a death by signal is passed on as the same signal)\n",
    "  75               the lock is busy, or -w expired (0 with -q, N with -E N)\n",
    "  64               usage error\n",
    "  73               the lock file cannot be opened or created\n",
    "  77               the lock file or its location is unsafe (see --insecure)\n",
    "  126              COMMAND cannot be executed\n",
    "  127              COMMAND not found\n",
    "  71               other system error\n",
    "\n",
    "Safety: LOCK's directory must be writable only by you or root, and the path to\n",
    "it safe from others; no symlink is followed to the lock file (see withlock(1)).\n",
    "\n",
    "Examples:\n",
    "  withlock -q /run/lock/jobs/backup.lock rsync -a /srv/ /backup/\n",
    "  withlock -w 10m ~/.cache/mirror.lock ./sync-mirror --full\n",
    "  withlock -q --name backup rsync -a /srv/ /backup/\n",
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
