//! `--syslog[=FACILITY]`: one line per outcome in the system log, so that a
//! run that `-q` keeps silent (a skipped backup, a hung job) is never
//! invisible.
//!
//! A line is one datagram to the local log socket (`/dev/log`, which
//! syslogd, rsyslog, busybox syslogd and systemd-journald all serve) in the
//! classic format: `<PRI>withlock[PID]: TEXT`, without a timestamp (the
//! daemon stamps what it receives). PRI is the facility (cron unless
//! `--syslog=FACILITY` says) times 8 plus a severity per outcome.
//!
//! Logging never changes the outcome. The socket is not connected; each
//! line is one `sendto` with `MSG_DONTWAIT`, so a missing `/dev/log`, a dead
//! daemon or one too slow to read (a full queue: `EAGAIN`) costs one failed
//! call and the line is dropped; nothing waits, and nothing reaches the
//! job's exit status. With `-v` the first such failure is said on stderr.
//!
//! The text is the text withlock prints (a failure's line is its stderr
//! line), made one safe line of printable ASCII: any other byte is written
//! `\xNN`, so no control character, line break or terminal escape reaches
//! the log. A line is cut at 1024 bytes (RFC 3164's bound), marked "...".
//!
//! Without `--syslog` nothing here runs: [`begin`] and every other
//! function return at once. A build without the `syslog`
//! feature (`make FEATURES=`) refuses `--syslog`, and all of this is
//! compiled out.

use crate::cli::Options;
use crate::error::Failure;
use crate::exec::Argv;
use crate::signals::Ended;
use crate::sys::{self, Errno};
use crate::text::{Line, LineBuf};
use core::ffi::c_int;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering::SeqCst};

/// Severities, as syslog(3) numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// A failure: refused, cannot open, cannot run, a job stopped.
    Err = 3,
    /// A job that failed, a wait that expired.
    Warning = 4,
    /// A run skipped because the lock is busy; a holder replaced.
    Notice = 5,
    /// A job started, or ended with status 0.
    Info = 6,
}

/// Where the local log listens.
#[cfg(not(any(target_os = "macos", target_os = "freebsd")))]
const SOCKET: &[u8] = b"/dev/log";
#[cfg(target_os = "macos")]
const SOCKET: &[u8] = b"/var/run/syslog";
#[cfg(target_os = "freebsd")]
const SOCKET: &[u8] = b"/var/run/log";

/// The longest datagram sent (RFC 3164's bound).
const DATAGRAM_MAX: usize = 1024;
/// How much of LOCK and of the command a line repeats.
const LOCK_MAX: usize = 320;
const COMMAND_MAX: usize = 320;

/// What every line about this run names: the lock and the command, shown
/// once and kept for the job's lines.
struct Run {
    facility: u8,
    verbose: bool,
    lock: LineBuf<LOCK_MAX>,
    command: LineBuf<COMMAND_MAX>,
}

// All zero until `begin`: in .bss, no bytes in the binary.
#[cfg(feature = "syslog")]
static RUN_BUFFER: crate::once::TakeOnce<Run> = crate::once::TakeOnce::new(Run {
    facility: 0,
    verbose: false,
    lock: LineBuf::new(),
    command: LineBuf::new(),
});
/// The run, once [`begin`] has filled it; null without `--syslog`.
static RUN: AtomicPtr<Run> = AtomicPtr::new(ptr::null_mut());
/// The job's pid and when it started (boot clock), once it runs.
static JOB: AtomicU32 = AtomicU32::new(0);
static JOB_STARTED: AtomicU64 = AtomicU64::new(0);
/// The socket, once made (-1: not yet).
static SOCKET_FD: AtomicI32 = AtomicI32::new(-1);
/// A failure to log was said already (with `-v`).
static SAID: AtomicBool = AtomicBool::new(false);

/// With `--syslog[=FACILITY]` in `options`, log this run's outcomes: the
/// run locks `lock` (as the user gave it, or the path `--name` made) and
/// runs `argv`. Without it, nothing.
#[cfg_attr(not(feature = "syslog"), allow(unused_variables))]
pub fn begin(options: &Options, lock: &[u8], argv: Argv) {
    #[cfg(feature = "syslog")]
    if let Some(facility) = options.syslog {
        start(facility, lock.strip_suffix(b"\0").unwrap_or(lock), argv, options.verbose);
    }
}

#[cfg(feature = "syslog")]
#[cold]
#[inline(never)]
fn start(facility: u8, lock: &[u8], argv: Argv, verbose: bool) {
    let Some(run) = RUN_BUFFER.take() else { return };
    run.facility = facility;
    run.verbose = verbose;
    let shown = run.lock.line();
    shown.push_quoted(lock);
    if shown.truncated() {
        shown.truncate_to(LOCK_MAX - 8);
        shown.push(b"...");
    }
    let command = run.command.line();
    for (i, arg) in argv.iter().enumerate() {
        if i > 0 {
            command.push(b" ");
        }
        // As the holder record writes it: quoted and escaped when not plain.
        crate::record::push_arg(command, arg);
    }
    if command.truncated() {
        command.truncate_to(COMMAND_MAX - 8);
        command.push(b" ...");
    }
    RUN.store(run, SeqCst);
}

fn run() -> Option<&'static Run> {
    if !cfg!(feature = "syslog") {
        return None;
    }
    let run = RUN.load(SeqCst);
    // SAFETY: RUN is null or points to RUN_BUFFER's value, which `start`
    // filled before publishing it here and which nothing changes after.
    (!run.is_null()).then(|| unsafe { &*run })
}

/// Is `--syslog` on?
pub fn enabled() -> bool {
    run().is_some()
}

/// Write a diagnostic line (`withlock: ...`) to stderr if `to_stderr`, and
/// to the log (without the `withlock: `, which the tag says) if enabled.
pub fn emit(line: &mut Line, severity: Severity, to_stderr: bool) {
    if to_stderr {
        line.emit();
    }
    if enabled() {
        let text = line.as_bytes();
        log(severity, text.strip_prefix(b"withlock: ").unwrap_or(text));
    }
}

/// Log `failure`, already told in `line` (its stderr line), at the
/// severity its kind has.
pub fn failure(failure: &Failure, line: &mut Line) {
    let Some(run) = run() else { return };
    let severity = match failure {
        Failure::Busy | Failure::SlotsBusy { .. } => Severity::Notice,
        Failure::TimedOut(_) => Severity::Warning,
        _ => Severity::Err,
    };
    // These name the command only: say which lock the run was for.
    if matches!(failure, Failure::CannotRun { .. } | Failure::NotInPath) {
        line.push(b" (lock ").push(run.lock.as_bytes()).push(b")");
    }
    emit(line, severity, false);
}

/// The job (`job`) has started running the command.
pub fn started(job: u32) {
    let Some(run) = run() else { return };
    JOB.store(job, SeqCst);
    JOB_STARTED.store(crate::clock::boot_ns(), SeqCst);
    let mut buf = LineBuf::<DATAGRAM_MAX>::new();
    let line = buf.line();
    line.push(run.lock.as_bytes()).push(b": started pid ").push_u64(u64::from(job));
    line.push(b" (").push(run.command.as_bytes()).push(b")");
    log(Severity::Info, line.as_bytes());
}

/// The job has ended, as `ended` says.
pub fn ended(ended: Ended) {
    let Some(run) = run() else { return };
    let ran = crate::clock::boot_ns().saturating_sub(JOB_STARTED.load(SeqCst));
    let mut buf = LineBuf::<DATAGRAM_MAX>::new();
    let line = buf.line();
    line.push(run.lock.as_bytes()).push(b": pid ").push_u64(u64::from(JOB.load(SeqCst)));
    line.push(b" (").push(run.command.as_bytes()).push(b") ");
    let severity = match ended {
        Ended::Exited(status) if libc::WIFSIGNALED(status) => {
            let signal = libc::WTERMSIG(status);
            line.push(b"was killed by signal ").push_u64(signal as u64);
            if libc::WCOREDUMP(status) {
                line.push(b", core dumped,");
            }
            push_after(line, ran);
            Severity::Warning
        }
        Ended::Exited(status) => {
            let code = libc::WEXITSTATUS(status);
            line.push(b"exited with status ").push_u64(code as u64);
            push_after(line, ran);
            if code == 0 { Severity::Info } else { Severity::Warning }
        }
        Ended::TimedOut => {
            line.push(b"ran longer than --max-runtime and was stopped");
            push_after(line, ran);
            line.push(b" (exit 124)");
            Severity::Err
        }
        Ended::Lost => {
            line.push(b"was stopped");
            push_after(line, ran);
            line.push(b": the etcd lock was lost (exit 76)");
            Severity::Err
        }
    };
    log(severity, line.as_bytes());
}

/// " after 2.5s", " after 3m 12s": how long the job ran.
fn push_after(line: &mut Line, ns: u64) {
    crate::clock::push_measured(line.push(b" after "), ns);
}

/// Send `text` as one line at `severity`, if `--syslog` is on.
pub fn log(severity: Severity, text: &[u8]) {
    let Some(run) = run() else { return };
    let mut buf = LineBuf::<{ DATAGRAM_MAX + 4 }>::new();
    let line = buf.line();
    line.push(b"<").push_u64(u64::from(run.facility) * 8 + severity as u64).push(b">withlock[");
    line.push_u64(u64::try_from(sys::getpid()).unwrap_or(0)).push(b"]: ");
    line.push_printable(text);
    if line.truncated() {
        let cut = line.as_bytes().len() - 3;
        line.truncate_to(cut);
        line.push(b"...");
    }
    if let Err(errno) = send(line.as_bytes())
        && run.verbose
        && !SAID.swap(true, SeqCst)
    {
        let mut buf = crate::text::diagnostic();
        let line = buf.line();
        line.push(b"cannot write to the system log (").push(SOCKET).push(b"): ").push(errno.text());
        line.push(b"; lines for it are dropped");
        line.emit();
    }
}

/// One datagram to [`SOCKET`], never waiting.
fn send(datagram: &[u8]) -> Result<(), Errno> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = libc::MSG_DONTWAIT;
    sys::send_to_local(socket()?, datagram, flags, SOCKET)
}

/// The datagram socket, made once, close-on-exec: the job never gets it.
fn socket() -> Result<c_int, Errno> {
    let made = SOCKET_FD.load(SeqCst);
    if made >= 0 {
        return Ok(made);
    }
    // Kept for the process's life.
    let fd = sys::socket(libc::AF_UNIX, libc::SOCK_DGRAM, false)?.into_raw();
    SOCKET_FD.store(fd, SeqCst);
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_times_read_like_ages() {
        let after = |ns| crate::testing::shown(|line| push_after(line, ns));
        assert_eq!(after(12_000_000), " after 0.012s");
        assert_eq!(after(59_500_000_000), " after 59.5s");
        assert_eq!(after(1_997_654_321), " after 1.997s");
        assert_eq!(after(123_000_000_000), " after 2m 3s");
        assert_eq!(after(7_300_000_000_000), " after 2h 1m");
    }
}
