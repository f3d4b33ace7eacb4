//! Taking the lock: open (or create) the lock file, check it, `flock` it,
//! and make sure the path still names the file we locked.
//!
//! The lock is `flock(2)` on the whole file, exclusive, so withlock and
//! util-linux `flock(1)` exclude each other. It belongs to the open file
//! description, which the job inherits across `execve`: it is released only
//! when the last process holding that descriptor ends, never by a crash
//! leaving something behind.
//!
//! Lock files may be removed. A waiter can end up locking a file that was
//! unlinked (or replaced) while it waited, which no longer guards anything;
//! so after locking, withlock compares the path's device and inode with the
//! descriptor's and starts over if they differ. Removal is safe when the
//! remover holds the lock (or nobody does): then no one can be running under
//! the old file while a newcomer creates the new one.

use crate::cli::Options;
use crate::duration::Wait;
use crate::error::{Failure, Unsafe};
use crate::locate;
use crate::sys::{self, Errno, Fd, Kind};
use crate::text;
use crate::timer::{Deadline, Missed};
use core::ffi::CStr;

/// How the lock file is opened. Read-write, to keep the holder record in it
/// (read-only is enough for `flock`, and is what we fall back to where we
/// may not write: then there is no record). Creating gives 0600, because
/// anyone who can open the file could hold its lock. Never `O_TRUNC`; never
/// through a symlink; `O_NONBLOCK` and `O_NOCTTY` so that a FIFO or terminal
/// planted there cannot hang us or become our controlling terminal before it
/// is refused. Not close-on-exec: the job inherits this descriptor, and with
/// it the lock.
const LOCK_FILE_FLAGS: i32 = libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
const LOCK_FILE_MODE: libc::mode_t = 0o600;

/// A lock we hold.
pub struct Locked {
    pub fd: Fd,
    /// The file's status when we checked it.
    pub stat: libc::stat,
    /// Opened read-write: a holder record can be kept in it.
    pub writable: bool,
}

/// Take the lock on the file at `path` (resolved by `locate`) as `options`
/// say.
pub fn acquire(path: &CStr, options: &Options, lock: &[u8]) -> Result<Locked, Failure<'static>> {
    // Armed only once the lock turns out busy: an uncontended run pays for
    // no timer. Dropping it (on return) disarms it before the job starts.
    let mut deadline: Option<Deadline> = None;
    let mut announced = false;
    loop {
        let Some((fd, opened, writable)) = open_lock_file(path, options.insecure)? else {
            continue; // Removed as we opened it: open the name afresh.
        };
        let fd = match sys::flock(fd.raw(), libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => fd,
            Err(Errno(libc::EWOULDBLOCK)) => {
                if options.verbose && !announced {
                    announce_wait(lock, options.wait);
                }
                announced = true;
                match options.wait {
                    Wait::No => return Err(Failure::Busy),
                    Wait::Forever => block(fd)?,
                    Wait::For(limit) => {
                        let armed = match deadline {
                            Some(ref armed) => armed,
                            None => deadline.insert(
                                Deadline::start(limit)
                                    .map_err(|errno| Failure::System { call: "setitimer", errno })?,
                            ),
                        };
                        armed.lock(fd, libc::LOCK_EX).map_err(|missed| match missed {
                            Missed::Expired => Failure::TimedOut(limit),
                            Missed::Failed(errno) => Failure::System { call: "flock", errno },
                        })?
                    }
                }
            }
            Err(errno) => {
                return Err(Failure::System { call: "flock", errno });
            }
        };

        match sys::lstat(path) {
            Ok(now) if now.st_dev == opened.st_dev && now.st_ino == opened.st_ino => {
                return Ok(Locked { fd, stat: opened, writable });
            }
            Ok(_) | Err(Errno(libc::ENOENT)) => {
                if options.verbose {
                    say_replaced(lock);
                }
            }
            Err(errno) => {
                return Err(Failure::System { call: "lstat", errno });
            }
        }
    }
}

/// Open or create the lock file and refuse it if it is unsafe. `None` if
/// the file was removed between our open and our look at it (it has no
/// name left, so there is nothing to judge or lock: start over).
fn open_lock_file(path: &CStr, insecure: bool) -> Result<Option<(Fd, libc::stat, bool)>, Failure<'static>> {
    let opened = match sys::open(path, LOCK_FILE_FLAGS | libc::O_RDWR, LOCK_FILE_MODE) {
        // Not ours to write (root's file, a read-only file system): lock it
        // anyway, without a record.
        Err(Errno(libc::EACCES | libc::EPERM | libc::EROFS)) => {
            sys::open(path, LOCK_FILE_FLAGS | libc::O_RDONLY, LOCK_FILE_MODE).map(|fd| (fd, false))
        }
        other => other.map(|fd| (fd, true)),
    };
    let (fd, writable) = match opened {
        Ok(opened) => opened,
        // O_NOFOLLOW met a symlink (FreeBSD says EMLINK).
        Err(errno @ Errno(libc::ELOOP | libc::EMLINK)) => {
            return Err(match sys::lstat(path) {
                Ok(st) if Kind::of(&st) == Kind::Symlink => Failure::Refused { why: Unsafe::LockIsSymlink },
                _ => Failure::CannotOpen { errno, on_path: false },
            });
        }
        Err(errno) => {
            return Err(Failure::CannotOpen { errno, on_path: false });
        }
    };
    let st = sys::fstat(fd.raw()).map_err(|errno| Failure::System { call: "fstat", errno })?;
    if sys::links(&st) == 0 {
        return Ok(None);
    }
    locate::judge_lock_file(&st, insecure).map_err(|why| Failure::Refused { why })?;
    Ok(Some((fd, st, writable)))
}

/// Wait without limit. `EINTR` can only come from a stop and continue
/// here (no handlers are installed), so just wait again.
fn block(fd: Fd) -> Result<Fd, Failure<'static>> {
    loop {
        match sys::flock(fd.raw(), libc::LOCK_EX) {
            Ok(()) => return Ok(fd),
            Err(Errno(libc::EINTR)) => {}
            Err(errno) => {
                return Err(Failure::System { call: "flock", errno });
            }
        }
    }
}

// Messages are out of line, so their buffers stay off the fast path's stack.

#[cold]
#[inline(never)]
fn say_replaced(lock: &[u8]) {
    let mut buf = text::diagnostic();
    let line = buf.line();
    line.push_quoted(lock).push(b" was removed or replaced while we waited; locking the new one");
    line.emit();
}

#[cold]
#[inline(never)]
fn announce_wait(lock: &[u8], wait: Wait) {
    let mut buf = text::diagnostic();
    let line = buf.line();
    line.push_quoted(lock).push(b" is busy; ");
    match wait {
        Wait::No => line.push(b"not waiting"),
        Wait::Forever => line.push(b"waiting for it without limit"),
        Wait::For(limit) => line.push(b"waiting for it up to ").push_duration(limit),
    };
    line.emit();
}
