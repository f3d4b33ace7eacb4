//! Signals while withlock waits for something: the handler and its
//! self-pipe, which signals are passed on to the job and which ask withlock
//! to stop, how the job ended, and ending the same way (the same signal, no
//! core).
//!
//! Every handled signal writes a byte to the self-pipe, so a loop waiting in
//! [`pause_until`] wakes for it without a race between a check and the wait.
//! While a job runs (see [`crate::supervise`]), the handler passes the
//! signal on to the job's process group, unless the group sent it.

use crate::error::Failure;
use crate::{clock, exit, sys, text};
use core::ffi::c_int;
use core::sync::atomic::{AtomicI32, Ordering::SeqCst};

/// The signals passed on to the job.
pub const FORWARDED: [c_int; 6] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2];
/// The signals withlock handles while the job runs: those, and SIGCHLD.
pub const HANDLED: [c_int; 7] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGCHLD];

/// The job's pid, which is also its process group's id (for the handler).
static JOB: AtomicI32 = AtomicI32::new(0);
/// The self-pipe: every handled signal writes to it, to wake a waiting loop.
static WAKE: [AtomicI32; 2] = [AtomicI32::new(-1), AtomicI32::new(-1)];
/// The last signal that would have ended withlock had it not caught it
/// (SIGTERM, SIGINT, SIGHUP, SIGQUIT), or 0: while there is no job (an etcd
/// lock's wait, `--min-hold`), it ends withlock.
static ASKED: AtomicI32 = AtomicI32::new(0);
/// The last stop request (SIGTERM or SIGINT), or 0: while the job runs, it
/// makes withlock see the job's group end (SIGKILL after `--kill-after`).
static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, sender) = unsafe { ((*info).si_code, (*info).si_pid()) };
    let job = JOB.load(SeqCst);
    if matches!(signal, libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGQUIT) {
        ASKED.store(signal, SeqCst);
    }
    if matches!(signal, libc::SIGTERM | libc::SIGINT) {
        STOP.store(signal, SeqCst);
    }
    // A signal a process of the job's group sent us is not bounced back.
    let from_job = code <= 0 && sender > 0 && sys::getpgid(sender) == Ok(job);
    if signal != libc::SIGCHLD && job > 0 && !from_job {
        // The job's group is not ours: whatever reached us, from the
        // terminal or a process, has not reached it.
        let _ = sys::kill(-job, signal);
    }
    // The pipe is non-blocking, so a full pipe (the loop is awake anyway)
    // cannot block the handler; write_all gives up on EAGAIN. (Every call
    // here is async-signal-safe.)
    sys::write_all(WAKE[1].load(SeqCst), &[0]);
}

/// The job's process group, to which the handler passes signals on.
pub fn set_job(job: libc::pid_t) {
    JOB.store(job, SeqCst);
}

/// Has a stop request (SIGTERM or SIGINT) arrived while the job ran?
pub fn stop_requested() -> bool {
    STOP.load(SeqCst) != 0
}

/// Catch `signal` with `on_signal`, unless it is ignored: an ignored
/// signal stays ignored, for us and for the job (a job started in the
/// background by a script ignores SIGINT, and so must its copy here).
pub fn handle(signal: c_int, mask: &libc::sigset_t) {
    let Ok(mut action) = sys::sigaction(signal, None) else { return };
    if action.sa_sigaction == libc::SIG_IGN && signal != libc::SIGCHLD {
        return;
    }
    // The handler only reads its arguments and atomics, and calls kill and
    // write, all async-signal-safe.
    action.sa_sigaction = on_signal as extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    action.sa_mask = *mask;
    let _ = sys::sigaction(signal, Some(&action));
}

/// In a child about to exec: the handled signals back to their default
/// action, so that one passed on before the exec acts on the job as it
/// would once the job runs, not run our handler (which would only wake a
/// loop that is not the job's). Ignored signals were never handled, and
/// stay ignored.
pub fn reset_handled() {
    for signal in HANDLED {
        if sys::sigaction(signal, None).is_ok_and(|action| action.sa_sigaction != libc::SIG_IGN) {
            sys::set_disposition(signal, libc::SIG_DFL);
        }
    }
}

/// Catch the signals that ask withlock to stop, before there is a job (an
/// etcd lock's wait): [`asked_to_stop`] then tells, and [`pause_until`]
/// wakes. Ignored signals stay ignored.
pub fn catch_stop_signals() -> Result<c_int, Failure<'static>> {
    let wake = wake_pipe()?;
    let all = sys::signal_set(&FORWARDED);
    for signal in FORWARDED {
        handle(signal, &all);
    }
    Ok(wake)
}

/// The last signal that asked withlock to stop, if any.
pub fn asked_to_stop() -> Option<c_int> {
    Some(ASKED.load(SeqCst)).filter(|&signal| signal != 0)
}

/// The self-pipe's read end (made once), which a caught signal makes readable.
pub fn wake_pipe() -> Result<c_int, Failure<'static>> {
    let made = WAKE[0].load(SeqCst);
    if made >= 0 {
        return Ok(made);
    }
    let fds = sys::pipe(true).map_err(|errno| Failure::System { call: "pipe", errno })?;
    WAKE[1].store(fds[1], SeqCst);
    WAKE[0].store(fds[0], SeqCst);
    Ok(fds[0])
}

/// Sleep until a caught signal arrives, `fd` (if not -1) is readable, or
/// the boot clock reaches `until`; whether `fd` is readable.
pub fn pause_until(until: u64, fd: c_int) -> bool {
    let now = clock::boot_ns();
    let timeout = if until == u64::MAX {
        -1
    } else {
        // Round up: waking a little early would only spin.
        c_int::try_from(until.saturating_sub(now).div_ceil(1_000_000)).unwrap_or(c_int::MAX)
    };
    let wake = WAKE[0].load(SeqCst);
    let mut fds = [
        libc::pollfd { fd: wake, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd, events: libc::POLLIN, revents: 0 },
    ];
    // A negative fd is ignored by poll; EINTR is a signal, which is news.
    let ready = sys::poll(&mut fds, timeout).unwrap_or(0);
    if ready > 0 && fds[0].revents != 0 {
        let mut drain = [0u8; 64];
        // The pipe is non-blocking: empty is EAGAIN.
        while sys::read(wake, &mut drain).is_ok_and(|n| n > 0) {}
    }
    ready > 0 && fds[1].revents != 0
}

/// How the job ended (see [`crate::supervise`], which watches it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// By itself: its wait status.
    Exited(c_int),
    /// Stopped by withlock after `--max-runtime`.
    TimedOut,
    /// Stopped by withlock because its guard (an etcd lease) lost the lock.
    Lost,
}

impl Ended {
    /// withlock's exit status for a job that ended so: the job's own (see
    /// [`exit_like`]), 124 after `--max-runtime`, 76 for a lost lock.
    pub fn status(self) -> u8 {
        match self {
            Ended::Exited(status) => exit_like(status),
            Ended::TimedOut => exit::TIMED_OUT,
            Ended::Lost => exit::LEASE_LOST,
        }
    }
}

/// Exit as the job did: its code, or its death by the same signal. A job
/// that dumped core is said to have (the shell, seeing withlock die of the
/// signal without a core of its own, cannot show it), as timeout(1) does.
pub fn exit_like(status: c_int) -> u8 {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        if libc::WCOREDUMP(status) {
            text::say(b"the job was killed by signal ", Some(signal as u32), b" (core dumped)");
        }
        die_like(signal);
    }
    libc::WEXITSTATUS(status) as u8
}

/// End this process with `signal`, as the job ended, without a core dump
/// of our own.
pub fn die_like(signal: c_int) -> ! {
    let _ = sys::setrlimit(libc::RLIMIT_CORE as c_int, &libc::rlimit { rlim_cur: 0, rlim_max: 0 });
    // A core_pattern that pipes to a program (systemd-coredump, apport)
    // ignores RLIMIT_CORE: only this stops the dump.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = sys::prctl(libc::PR_SET_DUMPABLE, 0);
    sys::set_disposition(signal, libc::SIG_DFL);
    sys::sigprocmask(libc::SIG_UNBLOCK, &sys::signal_set(&[signal]));
    // If the signal does not kill us (it was ignored where we cannot undo
    // it), exit as a shell would.
    let _ = sys::kill(sys::getpid(), signal);
    sys::exit_now(128 + signal)
}
