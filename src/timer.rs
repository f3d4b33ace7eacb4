//! A deadline for a blocking `flock`: no polling, and no lost wake-up.
//!
//! Waiting for a busy lock is one blocking `flock(LOCK_EX)`: the kernel wakes
//! the waiter the moment the holder lets go. To give up after `-w DURATION`,
//! a one-shot `ITIMER_REAL` raises SIGALRM, whose handler is installed
//! without `SA_RESTART` so the blocked call returns `EINTR`.
//!
//! A flag alone would leave a race: the alarm could land after the flag is
//! checked but before `flock` starts to block, and the wait would never end.
//! So the handler also *closes the descriptor being locked*. Wherever the
//! alarm lands, the wait ends: a `flock` not yet started fails with `EBADF`,
//! one in progress fails with `EINTR`, and one that had just succeeded loses
//! its lock with the descriptor, which the waiter notices when it takes the
//! descriptor back. The descriptor is shared with the handler through an
//! atomic, and whoever swaps it out owns it.
//!
//! Dropping the [`Deadline`] cancels the timer and restores SIGALRM's
//! disposition and the signal mask, because all three survive `execve` and
//! the job must not inherit them.

use crate::sys::{self, Errno, Fd};
use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering::SeqCst};
use core::time::Duration;

/// The descriptor being waited on, or -1.
static WATCHED: AtomicI32 = AtomicI32::new(-1);
static EXPIRED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_alarm(_signal: c_int) {
    EXPIRED.store(true, SeqCst);
    let fd = WATCHED.swap(-1, SeqCst);
    if fd >= 0 {
        // close(2) is async-signal-safe.
        sys::close(fd);
    }
}

/// Why a wait with a deadline ended without the lock.
pub enum Missed {
    Expired,
    Failed(Errno),
}

/// An armed deadline; see the module docs.
pub struct Deadline {
    old_action: libc::sigaction,
    old_mask: libc::sigset_t,
}

impl Deadline {
    /// Arm a deadline `after` from now.
    pub fn start(after: Duration) -> Result<Deadline, Errno> {
        EXPIRED.store(false, SeqCst);

        // SAFETY: an all-zero sigaction is a valid value (no flags, empty
        // mask on every supported system), which we then fill in.
        let mut action: libc::sigaction = unsafe { core::mem::zeroed() };
        // The handler only touches atomics and calls close, both
        // async-signal-safe. No SA_RESTART: the blocked flock must return EINTR.
        action.sa_sigaction = on_alarm as extern "C" fn(c_int) as libc::sighandler_t;
        action.sa_mask = sys::signal_set(&[]);
        let old_action = sys::sigaction(libc::SIGALRM, Some(&action))?;

        // The caller may have blocked SIGALRM; the deadline needs it.
        let old_mask = sys::sigprocmask(libc::SIG_UNBLOCK, &sys::signal_set(&[libc::SIGALRM]));
        let deadline = Deadline { old_action, old_mask };
        sys::set_alarm(after)?;
        Ok(deadline)
    }

    /// Block in `lock` (a blocking lock call on a descriptor) until `fd` is
    /// locked or the deadline passes. On success the descriptor comes back;
    /// otherwise it is closed.
    pub fn lock(&self, fd: Fd, lock: impl Fn(c_int) -> Result<(), Errno>) -> Result<Fd, Missed> {
        let fd = fd.into_raw();
        WATCHED.store(fd, SeqCst);
        let outcome = loop {
            if EXPIRED.load(SeqCst) {
                break Err(Missed::Expired);
            }
            match lock(fd) {
                Ok(()) => break Ok(()),
                // EINTR: the alarm or another signal; EBADF: the alarm closed
                // the descriptor before flock began. The loop's check decides.
                Err(Errno(libc::EINTR)) => {}
                Err(Errno(libc::EBADF)) if EXPIRED.load(SeqCst) => {}
                Err(errno) => break Err(Missed::Failed(errno)),
            }
        };
        // Take the descriptor back; if the handler took it first, it closed
        // it, and with it any lock we had just gained.
        match (WATCHED.swap(-1, SeqCst), outcome) {
            (-1, _) => Err(Missed::Expired),
            (fd, Ok(())) => Ok(Fd::from_raw(fd)),
            (fd, Err(missed)) => {
                sys::close(fd);
                Err(missed)
            }
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        // Restoring what `start` saved cannot fail in a way we could act on.
        sys::cancel_alarm();
        let _ = sys::sigaction(libc::SIGALRM, Some(&self.old_action));
        sys::sigprocmask(libc::SIG_SETMASK, &self.old_mask);
    }
}
