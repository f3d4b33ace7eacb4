//! Taking the kernel's lock on an open lock file: `flock(2)`, or with
//! `--fcntl` an OFD lock; exclusive, or shared with `--shared`.

use crate::cli::Options;
use crate::sys::{self, Errno};
use core::ffi::c_int;

/// The system call `take` makes, for messages.
pub fn lock_call(options: &Options) -> &'static str {
    if options.fcntl { "fcntl" } else { "flock" }
}

/// Take the lock on `fd` as `options` say (flock, or with `--fcntl` an OFD
/// lock; exclusive, or shared with `--shared`), waiting if `wait`. A busy
/// lock is `EWOULDBLOCK` either way.
pub fn take(options: &Options, fd: c_int, wait: bool) -> Result<(), Errno> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if options.fcntl {
        return sys::ofd_lock(fd, options.shared, wait);
    }
    let kind = if options.shared { libc::LOCK_SH } else { libc::LOCK_EX };
    sys::flock(fd, if wait { kind } else { kind | libc::LOCK_NB })
}
