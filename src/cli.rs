//! The command line: `withlock [OPTIONS] LOCK COMMAND [ARGS...]`.
//!
//! Options are read only before LOCK. The first argument that is not an
//! option is LOCK, and everything after it is the command, which is never
//! looked at: `withlock L echo -v --help` runs `echo -v --help`. The parser
//! only returns indices into argv, so the command's arguments reach `execvp`
//! as the very same pointers withlock received (no copy, no re-join, no
//! encoding assumptions).
//!
//! Short options bundle like getopt's (`-qv`, `-qw5`); values go inline or in
//! the next argument (`-w5`, `-w 5`, `--wait=5`, `--wait 5`). Long options
//! must be spelled out in full: no prefix guessing.
//!
//! With `--name NAME` there is no LOCK argument: withlock picks the path
//! (see [`crate::named`]), and the first argument that is not an option is
//! COMMAND.

use crate::duration::{self, Wait};
use crate::error::UsageError;
use core::time::Duration;

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Help,
    Version,
    /// Lock `target` and run `argv[command..]` (or `-c STRING`).
    Run {
        options: Options,
        target: Target,
        command: usize,
    },
    /// `--status`: tell who holds each of `argv[first..]` (after the named
    /// lock, with `--name`).
    Status {
        options: Options,
        first: usize,
    },
}

/// What the lock is, as typed: decided here, once, for the checks below
/// and for everything after them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A lock file: the path `argv[i]`.
    Path(usize),
    /// `--name NAME`: where NAME is in argv.
    Name(ValueAt),
    /// A lock in etcd: the address `argv[i]` (see [`is_etcd`]).
    Etcd(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub wait: Wait,
    pub quiet: bool,
    pub verbose: bool,
    /// `-E N`: the exit code for a busy lock or an expired wait.
    pub conflict_exit_code: Option<u8>,
    pub insecure: bool,
    /// `--status`: report on locks instead of taking one.
    pub status: bool,
    /// `--json`: `--status` prints JSON.
    pub json: bool,
    /// `--replace`: stop the holder's job and take its place.
    pub replace: bool,
    /// `--kill-after`: from SIGTERM to SIGKILL when a job is stopped
    /// (`--replace`'s holder, a job past `--max-runtime`).
    pub kill_after: Option<core::time::Duration>,
    /// `--max-runtime`: stop the job's process group after this long.
    pub max_runtime: Option<core::time::Duration>,
    /// `--lease` (etcd): the lease's time to live.
    pub lease: Option<core::time::Duration>,
    /// `--connect-timeout` (etcd): how long connecting to an endpoint may take.
    pub connect_timeout: Option<core::time::Duration>,
    /// `--min-hold` (etcd): keep the lock at least this long after the start.
    pub min_hold: Option<core::time::Duration>,
    /// `--unlink`: remove the lock file at the end, still holding the lock.
    pub unlink: bool,
    /// `-s, --shared`: a shared (reader's) lock instead of an exclusive one.
    pub shared: bool,
    /// `--no-inherit`: only withlock holds the lock, not the job.
    pub no_inherit: bool,
    /// `--fcntl`: an OFD fcntl lock instead of flock (Linux).
    pub fcntl: bool,
    /// `-c STRING`: where STRING is in argv; run it with `/bin/sh -c`.
    pub shell: Option<ValueAt>,
    /// `--name NAME`: where NAME is in argv; lock it in withlock's directory.
    pub name: Option<ValueAt>,
    /// `--slots N`: up to N jobs at once, each in its own slot (0: not used).
    pub slots: u8,
    /// `--syslog[=FACILITY]`: log each outcome under this facility.
    #[cfg(feature = "syslog")]
    pub syslog: Option<u8>,
    /// `--jitter DURATION`: first sleep a random time up to this long.
    #[cfg(feature = "jitter")]
    pub jitter: Option<core::time::Duration>,
}

impl Options {
    /// The exit code for a busy lock or an expired wait: `-E N`, else 0
    /// with `-q`, else 75.
    pub fn conflict_code(&self) -> u8 {
        self.conflict_exit_code.unwrap_or(if self.quiet { 0 } else { crate::exit::BUSY })
    }

    /// Does withlock stay the job's parent rather than become the job?
    /// Every option that needs someone to watch the job says so here,
    /// whatever takes the lock (LOCK itself or a slot of it); an etcd lock
    /// always does (see `etcd::session`).
    pub fn stays_parent(&self) -> bool {
        self.unlink || self.no_inherit || self.max_runtime.is_some() || self.logs()
    }

    /// `--syslog`: are this run's outcomes logged? (Never, in a build
    /// without it: then the code that depends on it is left out.)
    pub fn logs(&self) -> bool {
        #[cfg(feature = "syslog")]
        return self.syslog.is_some();
        #[cfg(not(feature = "syslog"))]
        false
    }
}

/// Where an option's value starts in argv: `argv[index]`, from byte
/// `offset` (the value of `--command=STRING` or `-cSTRING` is a tail of its
/// argument, and like any tail of a C string, NUL-terminated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueAt {
    pub index: usize,
    pub offset: usize,
}

impl Options {
    pub const DEFAULT: Options = Options {
        wait: Wait::No,
        quiet: false,
        verbose: false,
        conflict_exit_code: None,
        insecure: false,
        status: false,
        json: false,
        replace: false,
        kill_after: None,
        max_runtime: None,
        lease: None,
        connect_timeout: None,
        min_hold: None,
        unlink: false,
        shared: false,
        no_inherit: false,
        fcntl: false,
        shell: None,
        name: None,
        slots: 0,
        #[cfg(feature = "syslog")]
        syslog: None,
        #[cfg(feature = "jitter")]
        jitter: None,
    };
}

/// From SIGTERM to SIGKILL (`--replace`, `--max-runtime`), unless `--kill-after` says.
pub const DEFAULT_KILL_AFTER: Duration = Duration::from_secs(10);

/// The most slots a LOCK may have (`--slots N`).
pub const MAX_SLOTS: u8 = 64;

/// The longest NAME accepted.
pub const MAX_NAME: usize = 200;

/// Is `name` a valid NAME? `Err` says why not. A NAME is 1 to 200 bytes, has
/// no `/`, and does not start with `.` (so it is never `.` or `..`, nor a
/// hidden file).
pub fn validate_name(name: &[u8]) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("--name needs a name")
    } else if name.len() > MAX_NAME {
        Err("--name NAME must be at most 200 bytes")
    } else if name.contains(&b'/') {
        Err("--name NAME must not contain '/' (give a path as LOCK instead)")
    } else if name[0] == b'.' {
        Err("--name NAME must not start with '.'")
    } else {
        Ok(())
    }
}

fn usage<'a, T>(problem: &'static str, culprit: Option<&'a [u8]>) -> Result<T, UsageError<'a>> {
    Err(UsageError { problem, culprit })
}

/// Which options take a value, and what to do with it.
#[derive(Clone, Copy)]
enum Valued {
    Shell,
    Wait,
    ConflictExitCode,
    KillAfter,
    MaxRuntime,
    Lease,
    ConnectTimeout,
    MinHold,
    Name,
    Slots,
    #[cfg(feature = "jitter")]
    Jitter,
}

enum Flag {
    Quiet,
    Verbose,
    Insecure,
    Status,
    Json,
    Replace,
    Unlink,
    Shared,
    NoInherit,
    Fcntl,
    /// Takes a value only inline: `--syslog=FACILITY`.
    #[cfg(feature = "syslog")]
    Syslog,
    Help,
    Version,
}

enum Opt {
    Flag(Flag),
    Valued(Valued),
}

fn long_option(name: &[u8]) -> Option<Opt> {
    Some(match name {
        b"wait" | b"timeout" => Opt::Valued(Valued::Wait),
        b"command" => Opt::Valued(Valued::Shell),
        b"conflict-exit-code" => Opt::Valued(Valued::ConflictExitCode),
        b"quiet" => Opt::Flag(Flag::Quiet),
        b"verbose" => Opt::Flag(Flag::Verbose),
        b"insecure" => Opt::Flag(Flag::Insecure),
        b"status" => Opt::Flag(Flag::Status),
        b"json" => Opt::Flag(Flag::Json),
        b"replace" => Opt::Flag(Flag::Replace),
        b"kill-after" => Opt::Valued(Valued::KillAfter),
        b"max-runtime" => Opt::Valued(Valued::MaxRuntime),
        b"lease" => Opt::Valued(Valued::Lease),
        b"connect-timeout" => Opt::Valued(Valued::ConnectTimeout),
        b"min-hold" => Opt::Valued(Valued::MinHold),
        b"unlink" => Opt::Flag(Flag::Unlink),
        b"shared" => Opt::Flag(Flag::Shared),
        b"no-inherit" => Opt::Flag(Flag::NoInherit),
        b"fcntl" => Opt::Flag(Flag::Fcntl),
        b"name" => Opt::Valued(Valued::Name),
        b"slots" => Opt::Valued(Valued::Slots),
        // A build without them does not know them (see help.rs).
        #[cfg(feature = "syslog")]
        b"syslog" => Opt::Flag(Flag::Syslog),
        #[cfg(feature = "jitter")]
        b"jitter" => Opt::Valued(Valued::Jitter),
        b"help" => Opt::Flag(Flag::Help),
        b"version" => Opt::Flag(Flag::Version),
        _ => return None,
    })
}

fn short_option(letter: u8) -> Option<Opt> {
    Some(match letter {
        b'w' => Opt::Valued(Valued::Wait),
        b'c' => Opt::Valued(Valued::Shell),
        b'E' => Opt::Valued(Valued::ConflictExitCode),
        b'q' => Opt::Flag(Flag::Quiet),
        b's' => Opt::Flag(Flag::Shared),
        b'v' => Opt::Flag(Flag::Verbose),
        b'h' => Opt::Flag(Flag::Help),
        b'V' => Opt::Flag(Flag::Version),
        _ => return None,
    })
}

/// Parse `args` (argv, with the program name at index 0).
pub fn parse<'a>(args: &impl Fn(usize) -> &'a [u8], count: usize) -> Result<Request, UsageError<'a>> {
    let mut options = Options::DEFAULT;
    let mut i = 1;
    while i < count {
        let arg = args(i);
        if arg == b"--" {
            i += 1;
            break;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (name, inline) = match long.iter().position(|&b| b == b'=') {
                Some(eq) => (&long[..eq], Some(&long[eq + 1..])),
                None => (long, None),
            };
            match long_option(name) {
                None => return usage("unknown option", Some(arg)),
                #[cfg(feature = "syslog")]
                Some(Opt::Flag(Flag::Syslog)) => {
                    // Its value is optional, so only inline: `--syslog daemon`
                    // would make "daemon" the LOCK, as getopt's `::` does.
                    let facility = match inline {
                        None => DEFAULT_FACILITY,
                        Some(name) => match facility(name) {
                            Some(code) => code,
                            None => return usage(BAD_FACILITY, Some(name)),
                        },
                    };
                    options.syslog = Some(facility);
                }
                Some(Opt::Flag(_)) if inline.is_some() => {
                    return usage("option takes no value", Some(arg));
                }
                Some(Opt::Flag(Flag::Help)) => return Ok(Request::Help),
                Some(Opt::Flag(Flag::Version)) => return Ok(Request::Version),
                Some(Opt::Flag(flag)) => set_flag(&mut options, flag),
                Some(Opt::Valued(which)) => {
                    let (value, at) = match inline {
                        Some(value) => (value, ValueAt { index: i, offset: arg.len() - value.len() }),
                        None => {
                            i += 1;
                            if i == count {
                                return usage("option needs a value", Some(arg));
                            }
                            (args(i), ValueAt { index: i, offset: 0 })
                        }
                    };
                    set_value(&mut options, which, value, at)?;
                }
            }
        } else if arg.len() > 1 && arg[0] == b'-' {
            // A bundle of short options; a valued one takes the rest.
            let mut at = 1;
            while at < arg.len() {
                match short_option(arg[at]) {
                    None => return usage("unknown option", Some(&arg[at..=at])),
                    Some(Opt::Flag(Flag::Help)) => return Ok(Request::Help),
                    Some(Opt::Flag(Flag::Version)) => return Ok(Request::Version),
                    Some(Opt::Flag(flag)) => set_flag(&mut options, flag),
                    Some(Opt::Valued(which)) => {
                        let (value, place) = if at + 1 < arg.len() {
                            (&arg[at + 1..], ValueAt { index: i, offset: at + 1 })
                        } else {
                            i += 1;
                            if i == count {
                                return usage("option needs a value", Some(&arg[at..=at]));
                            }
                            (args(i), ValueAt { index: i, offset: 0 })
                        };
                        set_value(&mut options, which, value, place)?;
                        break;
                    }
                }
                at += 1;
            }
        } else {
            break;
        }
        i += 1;
    }

    let lock = i;
    let target = if let Some(at) = options.name {
        Target::Name(at)
    } else if lock < count && is_etcd(args(lock)) {
        Target::Etcd(lock)
    } else {
        Target::Path(lock)
    };
    let etcd = matches!(target, Target::Etcd(_));
    if options.json && !options.status {
        return usage("--json goes with --status", None);
    }
    // --kill-after: whenever withlock stops a job (--replace), or stays its
    // parent and so may be asked to stop it.
    let stays_parent = options.stays_parent();
    if options.kill_after.is_some() && !options.replace && !stays_parent && !etcd {
        return usage(KILL_AFTER_ALONE, None);
    }
    if !etcd && (options.lease.is_some() || options.connect_timeout.is_some() || options.min_hold.is_some()) {
        return usage("--lease, --connect-timeout and --min-hold go with an etcd:// LOCK", None);
    }
    if etcd
        && (options.shared
            || options.replace
            || options.unlink
            || options.no_inherit
            || options.fcntl
            || options.name.is_some())
    {
        return usage(
            "an etcd:// LOCK does not go with --shared, --replace, --unlink, --no-inherit, --fcntl or --name",
            None,
        );
    }
    if etcd && options.slots > 0 {
        // N holders in etcd would need a semaphore of its own (etcdctl has
        // none); taking the one-holder lock instead would break the promise.
        return usage("--slots does not go with an etcd:// LOCK", None);
    }
    if options.fcntl && !cfg!(any(target_os = "linux", target_os = "android")) {
        // POSIX locks, the only fcntl locks here, drop when any descriptor on
        // the file closes, as the holder record's does.
        return usage("--fcntl needs Linux (open file description locks)", None);
    }
    if options.shared && (options.replace || options.unlink) {
        // Several holders share the lock: none may stop the others, and one
        // that removed the file would let an exclusive holder in beside them.
        return usage("--shared does not go with --replace or --unlink", None);
    }
    if options.slots > 0
        && (options.shared || options.replace || options.unlink || options.no_inherit || options.fcntl)
    {
        return usage(
            "--slots does not go with --shared, --replace, --unlink, --no-inherit or --fcntl",
            None,
        );
    }
    if options.status {
        // Options that would change how a lock is taken, or what a busy one
        // means, say nothing about who holds it: refused, not ignored.
        if options.replace
            || stays_parent
            || options.slots > 0
            || options.wait != Wait::No
            || options.shell.is_some()
            || options.quiet
            || options.conflict_exit_code.is_some()
            || options.shared
            || options.fcntl
            || jitter_given(&options)
        {
            return usage(ONLY_LOOKS, None);
        }
        if lock >= count && options.name.is_none() {
            return usage("missing LOCK for --status", None);
        }
        return Ok(Request::Status { options, first: lock });
    }
    if options.name.is_some() {
        // No LOCK: the first argument left is COMMAND.
        if options.shell.is_some() && lock < count {
            return usage("-c STRING is the command: give no COMMAND with --name", Some(args(lock)));
        }
        if options.shell.is_none() && lock >= count {
            return usage("missing COMMAND to run", None);
        }
        return Ok(Request::Run { options, target, command: lock });
    }
    if options.shell.is_some() {
        if lock >= count {
            return usage("missing LOCK", None);
        }
        if lock + 1 < count {
            return usage("-c STRING is the command: give no COMMAND after LOCK", Some(args(lock + 1)));
        }
    } else if lock >= count {
        return usage("missing LOCK and COMMAND", None);
    }
    if args(lock).is_empty() {
        return usage("LOCK is an empty path", None);
    }
    if options.shell.is_none() && lock + 1 >= count {
        return usage("missing COMMAND to run", None);
    }
    Ok(Request::Run { options, target, command: lock + 1 })
}

fn set_flag(options: &mut Options, flag: Flag) {
    match flag {
        Flag::Quiet => options.quiet = true,
        Flag::Verbose => options.verbose = true,
        Flag::Insecure => options.insecure = true,
        Flag::Status => options.status = true,
        Flag::Json => options.json = true,
        Flag::Replace => options.replace = true,
        Flag::Unlink => options.unlink = true,
        Flag::Shared => options.shared = true,
        Flag::NoInherit => options.no_inherit = true,
        Flag::Fcntl => options.fcntl = true,
        // --syslog is taken with its value, where the long option is read.
        #[cfg(feature = "syslog")]
        Flag::Syslog => {}
        Flag::Help | Flag::Version => {}
    }
}

fn set_value<'a>(
    options: &mut Options,
    which: Valued,
    value: &'a [u8],
    at: ValueAt,
) -> Result<(), UsageError<'a>> {
    match which {
        Valued::Shell if value.is_empty() => return usage("-c needs a command line to run", None),
        Valued::Shell => options.shell = Some(at),
        Valued::Name => match validate_name(value) {
            Ok(()) => options.name = Some(at),
            Err(problem) => return usage(problem, Some(value)),
        },
        Valued::Wait => match duration::parse_wait(value) {
            Some(wait) => options.wait = wait,
            None => {
                return usage("bad duration for -w (examples: 10, 0.5, 250ms, 5m, 2h, forever)", Some(value));
            }
        },
        Valued::KillAfter => match duration::parse(value) {
            Some(after) => options.kill_after = Some(after),
            None => {
                return usage("bad duration for --kill-after (examples: 10, 0.5, 250ms, 1m)", Some(value));
            }
        },
        Valued::MaxRuntime => match duration::parse(value) {
            Some(limit) if !limit.is_zero() => options.max_runtime = Some(limit),
            _ => return usage("bad duration for --max-runtime (examples: 90, 30m, 2h)", Some(value)),
        },
        Valued::Lease | Valued::ConnectTimeout | Valued::MinHold => {
            let Some(d) = duration::parse(value).filter(|d| !d.is_zero()) else {
                return usage("bad duration (examples: 15, 2.5, 500ms, 1m)", Some(value));
            };
            match which {
                Valued::Lease => options.lease = Some(d),
                Valued::ConnectTimeout => options.connect_timeout = Some(d),
                _ => options.min_hold = Some(d),
            }
        }
        Valued::ConflictExitCode => match parse_exit_code(value) {
            Some(code) => options.conflict_exit_code = Some(code),
            None => return usage("bad exit code for -E (a number from 0 to 255)", Some(value)),
        },
        #[cfg(feature = "jitter")]
        Valued::Jitter => match duration::parse(value) {
            Some(most) => options.jitter = Some(most),
            None => return usage("bad duration for --jitter (examples: 30, 90s, 5m, 250ms)", Some(value)),
        },
        Valued::Slots => match parse_exit_code(value) {
            Some(n @ 1..=MAX_SLOTS) => options.slots = n,
            _ => return usage("bad number for --slots (from 1 to 64)", Some(value)),
        },
    }
    Ok(())
}

#[cfg(feature = "jitter")]
fn jitter_given(options: &Options) -> bool {
    options.jitter.is_some()
}
#[cfg(not(feature = "jitter"))]
fn jitter_given(_: &Options) -> bool {
    false
}

// The options a build without --syslog and --jitter lacks are not named.
#[cfg(any(feature = "syslog", feature = "jitter"))]
const ONLY_LOOKS: &str = "--status only looks: it does not go with -w, -c, -q, -E, --shared, --fcntl, --replace, \
                          --unlink, --no-inherit, --max-runtime, --slots, --syslog or --jitter";
#[cfg(not(any(feature = "syslog", feature = "jitter")))]
const ONLY_LOOKS: &str = "--status only looks: it does not go with -w, -c, -q, -E, --shared, --fcntl, --replace, \
                          --unlink, --no-inherit, --max-runtime or --slots";
#[cfg(feature = "syslog")]
const KILL_AFTER_ALONE: &str = "--kill-after goes with --replace, --max-runtime, --unlink, --no-inherit, --syslog \
                                or an etcd:// LOCK";
#[cfg(not(feature = "syslog"))]
const KILL_AFTER_ALONE: &str = "--kill-after goes with --replace, --max-runtime, --unlink, --no-inherit or an \
                                etcd:// LOCK";

#[cfg(feature = "syslog")]
const BAD_FACILITY: &str = "bad facility for --syslog (user, mail, daemon, auth, syslog, lpr, news, uucp, \
                            cron, authpriv, ftp, local0 to local7)";

/// The facilities `--syslog=FACILITY` takes, in the order of syslog(3)'s
/// numbers from 1, then `local0` to `local7` (16 to 23). (`kern`, 0, is
/// not among them: only the kernel logs as kern.)
#[cfg(feature = "syslog")]
const FACILITIES: &str = "user mail daemon auth syslog lpr news uucp cron authpriv ftp";

/// `--syslog` without a facility: cron, where cron's own lines go.
#[cfg(feature = "syslog")]
const DEFAULT_FACILITY: u8 = 9;

/// The facility called `name`: one of [`FACILITIES`], or `local0` to
/// `local7`.
#[cfg(feature = "syslog")]
fn facility(name: &[u8]) -> Option<u8> {
    if let [b'l', b'o', b'c', b'a', b'l', digit @ b'0'..=b'7'] = name {
        return Some(16 + digit - b'0');
    }
    let at = FACILITIES.as_bytes().split(|&b| b == b' ').position(|known| known == name)?;
    Some(at as u8 + 1)
}

/// Is LOCK an address in etcd rather than a file? A URL's scheme is
/// case-insensitive (RFC 3986), so `ETCD://` is one too, whatever the
/// address parser then says of the rest.
pub fn is_etcd(lock: &[u8]) -> bool {
    lock.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"etcd://"))
}

/// A decimal number from 0 to 255.
fn parse_exit_code(text: &[u8]) -> Option<u8> {
    // At most three digits: "0007" is more likely a typo than a code.
    if text.len() > 3 {
        return None;
    }
    crate::text::parse_u64(text).and_then(|n| u8::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;
    use std::vec::Vec;

    fn parse_strs(argv: &[&str]) -> Result<Request, UsageError<'static>> {
        let owned: Vec<&'static [u8]> =
            argv.iter().map(|s| &*std::boxed::Box::leak(std::boxed::Box::from(s.as_bytes()))).collect();
        let owned: &'static [&'static [u8]] = std::boxed::Box::leak(owned.into_boxed_slice());
        parse(&|i| owned[i], owned.len())
    }

    fn run(options: Options, lock: usize) -> Result<Request, UsageError<'static>> {
        Ok(Request::Run { options, target: Target::Path(lock), command: lock + 1 })
    }

    fn problem(argv: &[&str]) -> &'static str {
        parse_strs(argv).expect_err("should be a usage error").problem
    }

    #[test]
    fn plain_lock_and_command() {
        assert_eq!(parse_strs(&["withlock", "L", "echo", "-v", "--help"]), run(Options::DEFAULT, 1));
    }

    #[test]
    fn options_only_before_lock() {
        let quiet = Options { quiet: true, ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "-q", "L", "-v", "x"]), run(quiet, 2));
        assert_eq!(parse_strs(&["withlock", "--", "-L", "cmd"]), run(Options::DEFAULT, 2));
        assert_eq!(parse_strs(&["withlock", "-q", "--", "--", "cmd"]), run(quiet, 3));
        assert_eq!(parse_strs(&["withlock", "-", "cmd"]), run(Options::DEFAULT, 1));
    }

    #[test]
    fn values_inline_and_separate() {
        let five = Options { wait: Wait::For(Duration::from_secs(5)), ..Options::DEFAULT };
        for argv in [
            &["withlock", "-w", "5", "L", "c"][..],
            &["withlock", "-w5", "L", "c"],
            &["withlock", "--wait", "5", "L", "c"],
            &["withlock", "--wait=5", "L", "c"],
            &["withlock", "--timeout=5s", "L", "c"],
        ] {
            let lock = argv.len() - 2;
            assert_eq!(parse_strs(argv), run(five, lock), "{argv:?}");
        }
        let bundled = Options { quiet: true, verbose: true, wait: Wait::Forever, ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "-qvwforever", "L", "c"]), run(bundled, 2));
        let code = Options { conflict_exit_code: Some(3), ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "-E3", "L", "c"]), run(code, 2));
        assert_eq!(parse_strs(&["withlock", "--conflict-exit-code", "3", "L", "c"]), run(code, 3));
        let insecure = Options { insecure: true, ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "--insecure", "L", "c"]), run(insecure, 2));
    }

    #[test]
    fn help_and_version_win() {
        assert_eq!(parse_strs(&["withlock", "-h"]), Ok(Request::Help));
        assert_eq!(parse_strs(&["withlock", "-q", "--help", "--bogus"]), Ok(Request::Help));
        assert_eq!(parse_strs(&["withlock", "-V"]), Ok(Request::Version));
        assert_eq!(parse_strs(&["withlock", "--version"]), Ok(Request::Version));
        // After LOCK, --help belongs to the command.
        assert_eq!(parse_strs(&["withlock", "L", "--help"]), run(Options::DEFAULT, 1));
    }

    #[test]
    fn usage_errors() {
        assert_eq!(problem(&["withlock"]), "missing LOCK and COMMAND");
        assert_eq!(problem(&[]), "missing LOCK and COMMAND");
        assert_eq!(problem(&["withlock", "L"]), "missing COMMAND to run");
        assert_eq!(problem(&["withlock", "", "c"]), "LOCK is an empty path");
        assert_eq!(problem(&["withlock", "--bogus", "L", "c"]), "unknown option");
        assert_eq!(problem(&["withlock", "--wai", "5", "L", "c"]), "unknown option");
        assert_eq!(problem(&["withlock", "-Z", "L", "c"]), "unknown option");
        assert_eq!(problem(&["withlock", "-qZ", "L", "c"]), "unknown option");
        assert_eq!(problem(&["withlock", "-w"]), "option needs a value");
        assert_eq!(problem(&["withlock", "--wait"]), "option needs a value");
        assert_eq!(problem(&["withlock", "--quiet=yes", "L", "c"]), "option takes no value");
        assert!(problem(&["withlock", "-w", "soon", "L", "c"]).starts_with("bad duration"));
        assert!(problem(&["withlock", "-w", "-1", "L", "c"]).starts_with("bad duration"));
        assert!(problem(&["withlock", "-E", "256", "L", "c"]).starts_with("bad exit code"));
        assert!(problem(&["withlock", "-E", "", "L", "c"]).starts_with("bad exit code"));
        assert!(problem(&["withlock", "-E", "-1", "L", "c"]).starts_with("bad exit code"));
        assert!(problem(&["withlock", "-E", "0x1", "L", "c"]).starts_with("bad exit code"));
    }

    #[test]
    fn status_replace_and_unlink() {
        let status = Options { status: true, ..Options::DEFAULT };
        assert_eq!(
            parse_strs(&["withlock", "--status", "A", "B"]),
            Ok(Request::Status { options: status, first: 2 })
        );
        let json = Options { json: true, ..status };
        assert_eq!(
            parse_strs(&["withlock", "--status", "--json", "A"]),
            Ok(Request::Status { options: json, first: 3 })
        );
        assert_eq!(problem(&["withlock", "--status"]), "missing LOCK for --status");
        assert_eq!(problem(&["withlock", "--json", "L", "c"]), "--json goes with --status");
        for other in
            [&["--replace"][..], &["-w", "5"], &["-c", "ls"], &["-q"], &["-E", "3"], &["-s"], &["--fcntl"]]
        {
            let argv: Vec<&str> =
                ["withlock", "--status"].iter().chain(other).chain(&["L"]).copied().collect();
            assert_eq!(problem(&argv).split(':').next(), Some("--status only looks"), "{other:?}");
        }
        // -v changes nothing (there is nothing to say about taking a lock), and is accepted.
        assert!(parse_strs(&["withlock", "--status", "-v", "L"]).is_ok());
        let replace = Options { replace: true, kill_after: Some(Duration::from_secs(3)), ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "--replace", "--kill-after=3", "L", "c"]), run(replace, 3));
        // (--syslog is named only where it is built in.)
        assert_eq!(problem(&["withlock", "--kill-after", "3", "L", "c"]), KILL_AFTER_ALONE);
        #[cfg(feature = "syslog")]
        assert_eq!(
            KILL_AFTER_ALONE,
            "--kill-after goes with --replace, --max-runtime, --unlink, --no-inherit, --syslog or an etcd:// LOCK"
        );
        assert!(
            problem(&["withlock", "--replace", "--kill-after", "x", "L", "c"]).starts_with("bad duration")
        );
        let unlink = Options { unlink: true, ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "--unlink", "L", "c"]), run(unlink, 2));
    }

    #[test]
    fn shared_locks() {
        let shared = Options { shared: true, ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "-s", "L", "c"]), run(shared, 2));
        assert_eq!(parse_strs(&["withlock", "--shared", "L", "c"]), run(shared, 2));
        assert_eq!(parse_strs(&["withlock", "-sq", "L", "c"]), run(Options { quiet: true, ..shared }, 2));
        assert_eq!(
            problem(&["withlock", "-s", "--replace", "L", "c"]),
            "--shared does not go with --replace or --unlink"
        );
        assert_eq!(
            problem(&["withlock", "-s", "--unlink", "L", "c"]),
            "--shared does not go with --replace or --unlink"
        );
    }

    #[test]
    fn shell_snippets() {
        let at = |index, offset| Options { shell: Some(ValueAt { index, offset }), ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "-c", "cd / && ls", "L"]), run(at(2, 0), 3));
        assert_eq!(parse_strs(&["withlock", "-cls", "L"]), run(at(1, 2), 2));
        assert_eq!(parse_strs(&["withlock", "-qcls", "L"]), run(Options { quiet: true, ..at(1, 3) }, 2));
        assert_eq!(parse_strs(&["withlock", "--command=ls -l", "L"]), run(at(1, 10), 2));
        assert_eq!(parse_strs(&["withlock", "--command", "ls", "L"]), run(at(2, 0), 3));
        assert_eq!(
            problem(&["withlock", "-c", "ls", "L", "extra"]),
            "-c STRING is the command: give no COMMAND after LOCK"
        );
        assert_eq!(problem(&["withlock", "-c", "ls"]), "missing LOCK");
        assert_eq!(problem(&["withlock", "-c", "", "L"]), "-c needs a command line to run");
        assert_eq!(problem(&["withlock", "-c"]), "option needs a value");
    }

    #[test]
    fn named_locks() {
        let at = |index, offset| Options { name: Some(ValueAt { index, offset }), ..Options::DEFAULT };
        let run_named = |options: Options, command| {
            Ok(Request::Run { options, target: Target::Name(options.name.unwrap()), command })
        };
        assert_eq!(parse_strs(&["withlock", "--name", "backup", "rsync", "-a"]), run_named(at(2, 0), 3));
        assert_eq!(parse_strs(&["withlock", "--name=backup", "rsync"]), run_named(at(1, 7), 2));
        assert_eq!(
            parse_strs(&["withlock", "--name=b", "-c", "ls"]),
            run_named(Options { shell: Some(ValueAt { index: 3, offset: 0 }), ..at(1, 7) }, 4)
        );
        assert_eq!(
            parse_strs(&["withlock", "--status", "--name", "b"]),
            Ok(Request::Status { options: Options { status: true, ..at(3, 0) }, first: 4 })
        );
        assert_eq!(
            parse_strs(&["withlock", "--status", "--name", "b", "L"]),
            Ok(Request::Status { options: Options { status: true, ..at(3, 0) }, first: 4 })
        );
        assert_eq!(problem(&["withlock", "--name", "b"]), "missing COMMAND to run");
        assert_eq!(
            problem(&["withlock", "--name", "b", "-c", "ls", "x"]),
            "-c STRING is the command: give no COMMAND with --name"
        );
        assert_eq!(problem(&["withlock", "--name"]), "option needs a value");
        assert_eq!(problem(&["withlock", "--name=", "c"]), "--name needs a name");
        for bad in ["a/b", "/x", ".", "..", ".hidden", &"x".repeat(201)] {
            assert!(problem(&["withlock", "--name", bad, "c"]).starts_with("--name NAME must"), "{bad}");
        }
        assert!(parse_strs(&["withlock", "--name", &"x".repeat(200), "c"]).is_ok());
        assert!(parse_strs(&["withlock", "--name", "-x_y.z", "c"]).is_ok());
    }

    #[test]
    fn slots() {
        let three = Options { slots: 3, ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "--slots", "3", "L", "c"]), run(three, 3));
        assert_eq!(parse_strs(&["withlock", "--slots=3", "L", "c"]), run(three, 2));
        let all = Options { slots: 64, wait: Wait::Forever, quiet: true, ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "-qw", "forever", "--slots", "64", "L", "c"]), run(all, 5));
        for bad in ["0", "65", "100", "", "x", "-1", "3s", "0003"] {
            assert_eq!(
                problem(&["withlock", "--slots", bad, "L", "c"]),
                "bad number for --slots (from 1 to 64)"
            );
        }
        for other in ["-s", "--shared", "--replace", "--unlink", "--no-inherit", "--fcntl"] {
            let problem = problem(&["withlock", "--slots", "2", other, "L", "c"]);
            assert!(problem.starts_with("--slots does not go with"), "{other}: {problem}");
        }
        assert!(problem(&["withlock", "--status", "--slots", "2", "L"]).contains("--slots"));
        assert!(
            problem(&["withlock", "--slots", "2", "etcd://127.0.0.1:2379/x", "c"]).starts_with("--slots")
        );
        assert_eq!(problem(&["withlock", "--slots"]), "option needs a value");
    }

    #[test]
    #[cfg(feature = "syslog")]
    fn facilities_by_name() {
        assert_eq!(facility(b"cron"), Some(9));
        assert_eq!(facility(b"daemon"), Some(3));
        assert_eq!(facility(b"local7"), Some(23));
        assert_eq!(facility(b"user"), Some(1));
        assert_eq!(facility(b"ftp"), Some(11));
        assert_eq!(facility(b"local0"), Some(16));
        for bad in [
            &b""[..],
            b"kern",
            b"CRON",
            b"local8",
            b"local",
            b"local00",
            b"9",
            b"cron ",
            b"cron\0",
            b"user mail",
        ] {
            assert_eq!(facility(bad), None, "{bad:?}");
        }
        assert_eq!(facility(b"cron"), Some(DEFAULT_FACILITY));
    }

    #[test]
    #[cfg(all(feature = "syslog", feature = "jitter"))]
    fn syslog_and_jitter() {
        let cron = Options { syslog: Some(9), ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "--syslog", "L", "c"]), run(cron, 2));
        let daemon = Options { syslog: Some(3), ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "--syslog=daemon", "L", "c"]), run(daemon, 2));
        // The value is only ever inline: here "daemon" is LOCK.
        assert_eq!(parse_strs(&["withlock", "--syslog", "daemon", "c"]), run(cron, 2));
        for bad in ["--syslog=", "--syslog=kern", "--syslog=Cron", "--syslog=local8", "--syslog=3"] {
            assert!(problem(&["withlock", bad, "L", "c"]).starts_with("bad facility for --syslog"), "{bad}");
        }
        let jitter = Options { jitter: Some(Duration::from_secs(300)), ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "--jitter", "5m", "L", "c"]), run(jitter, 3));
        assert_eq!(parse_strs(&["withlock", "--jitter=5m", "L", "c"]), run(jitter, 2));
        let zero = Options { jitter: Some(Duration::ZERO), ..Options::DEFAULT };
        assert_eq!(parse_strs(&["withlock", "--jitter", "0", "L", "c"]), run(zero, 3));
        for bad in ["forever", "-1", "", "soon", "1d"] {
            assert!(
                problem(&["withlock", "--jitter", bad, "L", "c"]).starts_with("bad duration for --jitter")
            );
        }
        for only_looks in [&["--syslog"][..], &["--jitter", "1"]] {
            let mut argv = std::vec!["withlock", "--status"];
            argv.extend_from_slice(only_looks);
            argv.push("L");
            assert!(problem(&argv).starts_with("--status only looks"), "{argv:?}");
        }
        // Every facility the message offers is one.
        for name in FACILITIES.split(' ') {
            assert!(BAD_FACILITY.contains(name), "{name}");
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(parse_exit_code(b"0"), Some(0));
        assert_eq!(parse_exit_code(b"255"), Some(255));
        assert_eq!(parse_exit_code(b"007"), Some(7));
        assert_eq!(parse_exit_code(b"256"), None);
        assert_eq!(parse_exit_code(b"1000"), None);
    }
}
