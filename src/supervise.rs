//! Staying the job's parent, for `--unlink` (the lock file is removed after
//! the job ends, while withlock still holds the lock, so a directory of lock
//! files shows exactly the jobs running now) and `--no-inherit` (only
//! withlock holds the lock, so a daemon the job leaves behind cannot pin it).
//!
//! This is the one mode that forks; the others exec the job directly. With
//! `--unlink` the job inherits the lock descriptor too, so the lock lives
//! until both have gone (and anything the job left holding it), and killing
//! the parent never lets a second job in. With `--no-inherit` the job does
//! not get the descriptor; to keep that promise, the job is killed when
//! withlock dies (Linux: the parent-death signal, SIGKILL; other systems
//! have no such signal, so there `--no-inherit` does not keep it). Signals sent to the parent by a process (kill,
//! systemctl stop) are passed on to the job; signals from the terminal
//! (Ctrl-C, Ctrl-\) already reach the job through its process group, so they
//! are not passed on twice. The parent's status is the job's, a death by
//! signal included. A signal that arrives while the job is being started is
//! held back until the job's pid is known, never lost.

use crate::cli::Options;
use crate::error::Failure;
use crate::exec::{self, Argv};
use crate::lock::Locked;
use crate::sys::{self, Errno};
use crate::text;
use core::ffi::{CStr, c_int};
use core::mem::MaybeUninit;
use core::ptr;
use core::sync::atomic::{AtomicI32, Ordering::SeqCst};

/// The signals passed on to the job.
const FORWARDED: [c_int; 6] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2];

/// The job's pid, for the handler.
static JOB: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward(signal: c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let (code, sender) = unsafe { ((*info).si_code, (*info).si_pid()) };
    let job = JOB.load(SeqCst);
    // si_code > 0: sent by the kernel (the terminal's Ctrl-C reaches the
    // whole foreground group, the job included). Only what a process sent
    // to us alone is passed on.
    if code <= 0 && job > 0 && sender != job {
        // SAFETY: kill is async-signal-safe and takes plain integers.
        unsafe { libc::kill(job, signal) };
    }
}

fn signal_set(signals: &[c_int]) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initializes the set; sigaddset takes valid signals.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for &signal in signals {
            libc::sigaddset(set.as_mut_ptr(), signal);
        }
        set.assume_init()
    }
}

/// Run the job as a child, remove the lock file when it ends, and return
/// its exit status (a job killed by a signal kills us the same way).
pub fn run(
    locked: &Locked,
    path: &CStr,
    argv: Argv,
    options: &Options,
    store_record: impl FnOnce(Option<u32>),
) -> Result<u8, Failure<'static>> {
    let verbose = options.verbose;
    // SAFETY: getpid cannot fail.
    let parent = unsafe { libc::getpid() };
    let forwarded = signal_set(&FORWARDED);
    let mut old_mask = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: valid sets; hold the forwarded signals back until the job's
    // pid is known.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &forwarded, old_mask.as_mut_ptr()) };
    // SAFETY: sigprocmask filled it.
    let old_mask = unsafe { old_mask.assume_init() };
    for signal in FORWARDED {
        // SAFETY: a zeroed sigaction is valid; the handler only reads its
        // arguments, an atomic, and calls kill, all async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = core::mem::zeroed();
            action.sa_sigaction =
                forward as extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            action.sa_mask = forwarded;
            libc::sigaction(signal, &action, ptr::null_mut());
        }
    }

    // SAFETY: withlock is single-threaded; the child only restores its mask
    // and execs (or reports and exits).
    let job = unsafe { libc::fork() };
    if job == -1 {
        return Err(Failure::System { call: "fork", errno: sys::errno() });
    }
    if job == 0 {
        // The child: exec resets the handlers; restore the caller's mask.
        // SAFETY: a valid saved mask.
        unsafe { libc::sigprocmask(libc::SIG_SETMASK, &old_mask, ptr::null_mut()) };
        if options.no_inherit {
            let_only_the_parent_hold(locked, parent);
        }
        let failure = exec::exec_command(argv);
        failure.report(b"", argv.iter().next().unwrap_or(b""), c"", false);
        // SAFETY: _exit takes a plain integer and never returns.
        unsafe { libc::_exit(c_int::from(failure.exit_code(0))) };
    }
    JOB.store(job, SeqCst);
    store_record(Some(job as u32));
    if verbose {
        say(
            b"started the job as pid ",
            Some(job as u32),
            b"; staying its parent to remove the lock file after it",
        );
    }
    // SAFETY: a valid saved mask; held-back signals are delivered now.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &old_mask, ptr::null_mut()) };

    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int to fill.
        if unsafe { libc::waitpid(job, &mut status, 0) } == job {
            break;
        }
        if sys::errno() != Errno(libc::EINTR) {
            return Err(Failure::System { call: "waitpid", errno: sys::errno() });
        }
    }

    // Remove the file while we still hold its lock, and only if it is still
    // the file we locked.
    if options.unlink
        && sys::lstat(path)
            .is_ok_and(|now| now.st_dev == locked.stat.st_dev && now.st_ino == locked.stat.st_ino)
    {
        // SAFETY: a valid C string.
        unsafe { libc::unlink(path.as_ptr()) };
        if verbose {
            say(b"the job ended; removed the lock file", None, b"");
        }
    }

    if libc::WIFSIGNALED(status) {
        die_like(libc::WTERMSIG(status));
    }
    Ok(libc::WEXITSTATUS(status) as u8)
}

/// In the child, for `--no-inherit`: close the lock's descriptor at exec,
/// and die with the parent, which alone holds the lock.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(unused_variables))]
fn let_only_the_parent_hold(locked: &Locked, parent: libc::pid_t) {
    // SAFETY: fcntl on our own descriptor with plain integer arguments.
    unsafe { libc::fcntl(locked.fd.raw(), libc::F_SETFD, libc::FD_CLOEXEC) };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number; getppid and
    // _exit cannot fail. If the parent died before the signal was armed, the
    // lock is gone already: run nothing (exit as for a busy lock).
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(c_int::from(crate::exit::BUSY));
        }
    }
}

/// End this process with `signal`, as the job ended, without a core dump
/// of our own.
fn die_like(signal: c_int) -> ! {
    let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    let only = signal_set(&[signal]);
    // SAFETY: plain calls with valid arguments; if the signal does not kill
    // us (it was ignored where we cannot undo it), exit as a shell would.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::signal(signal, libc::SIG_DFL);
        libc::sigprocmask(libc::SIG_UNBLOCK, &only, ptr::null_mut());
        libc::kill(libc::getpid(), signal);
        libc::_exit(128 + signal)
    }
}

#[cold]
#[inline(never)]
fn say(before: &[u8], pid: Option<u32>, after: &[u8]) {
    let mut buf = text::diagnostic();
    let line = buf.line();
    line.push(before);
    if let Some(pid) = pid {
        line.push_u64(u64::from(pid));
    }
    line.push(after);
    line.emit();
}
