//! Descriptors 0, 1 and 2 are open before withlock opens anything.
//!
//! A caller may start withlock with stdin, stdout or stderr closed (cron,
//! daemons, `>&-`). The next `open` would then return that number: the lock
//! file would become the job's stdout (its output overwriting the holder
//! record) or stdin (the job reading the record), and withlock's own
//! messages would land in the lock file. So, as OpenSSH, s6 and musl (for
//! setuid programs) do, each closed one of the three is opened on
//! `/dev/null` first. The job gets them as they are: it reads end-of-file
//! and writes into nothing where the caller gave it nothing.
//!
//! The check is one `poll` with no timeout, which reports `POLLNVAL` for a
//! closed descriptor and costs about as much as any one system call.

use crate::sys::{self, Errno};
use core::ffi::c_int;

/// Open `/dev/null` on each of descriptors 0-2 that is closed. On failure,
/// the descriptor that could not be filled and why; nothing else may be
/// opened then.
pub fn ensure_open() -> Result<(), (c_int, Errno)> {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // A timeout of 0 never blocks; a failure (-1) asks each one alone.
    let ready = sys::poll(&mut fds, 0).map_or(-1, |n| n as i32);
    if ready == 0 {
        return Ok(()); // The usual case: all three are open, nothing to report.
    }
    for pollfd in &fds {
        // A descriptor open on a hung-up terminal or a broken pipe reports
        // POLLHUP or POLLERR: open, and left alone.
        let closed = if ready < 0 { is_closed(pollfd.fd) } else { pollfd.revents & libc::POLLNVAL != 0 };
        if !closed {
            continue;
        }
        // The lowest free number is this one: those below it are open.
        let flags = libc::O_RDWR | libc::O_NOCTTY;
        match sys::open(c"/dev/null", flags, 0) {
            Ok(null) if null.raw() == pollfd.fd => {
                let _ = null.into_raw(); // Stays open, for us and the job.
            }
            Ok(_) => return Err((pollfd.fd, Errno(libc::EBADF))),
            Err(errno) => return Err((pollfd.fd, errno)),
        }
    }
    Ok(())
}

/// Ask about one descriptor, if `poll` failed (it should not: no memory for
/// three entries?).
#[cold]
fn is_closed(fd: c_int) -> bool {
    sys::fstat(fd).err() == Some(Errno(libc::EBADF))
}

/// Say that descriptor `fd` was closed and could not be filled (on stderr,
/// if that is open).
#[cold]
#[inline(never)]
pub fn report(fd: c_int, errno: Errno) {
    let mut buf = crate::text::diagnostic();
    let line = buf.line();
    line.push(b"descriptor ").push_u64(u64::try_from(fd).unwrap_or(0));
    line.push(b" is closed, and /dev/null cannot be opened in its place: ").push(errno.text());
    line.push(b" (start withlock with descriptors 0, 1 and 2 open)");
    line.emit();
}
