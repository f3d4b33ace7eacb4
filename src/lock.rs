//! Taking the lock: open (or create) the lock file, check it, `flock` it,
//! and make sure the path still names the file we locked.
//!
//! The lock is `flock(2)` on the whole file, exclusive (or shared with
//! `--shared`), so withlock and util-linux `flock(1)` exclude each other.
//! Shared holders keep no holder record: there are several of them. It belongs to the open file
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
use crate::sys::{self, Errno, Fd, Kind};
use crate::text;
use crate::timer::{Deadline, Missed};
use crate::{flock, locate};
use core::ffi::CStr;

/// How the lock file is opened: read-write, so that the holder record can
/// be written through the lock's own descriptor (a second one costs a tenth
/// of withlock's time). But the job inherits this descriptor, and a file
/// open for writing cannot be executed: an executable lock file (a script
/// that locks itself, flock(1)'s idiom) is opened read-only instead, as is
/// one we may not write (then there is no record). Never `O_TRUNC`; never
/// through a symlink; `O_NONBLOCK` and `O_NOCTTY` so that a FIFO or terminal
/// swapped in after our look cannot hang us or become our controlling
/// terminal before it is refused. Not close-on-exec: the job inherits this
/// descriptor, and with it the lock.
const LOCK_FILE_FLAGS: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
/// A lock file we create is 0600 whatever the umask: anyone who can open
/// it could hold its lock, and a umask that takes the owner's write bit
/// would silently stop the records.
const LOCK_FILE_MODE: libc::mode_t = 0o600;

/// A lock we hold.
pub struct Locked {
    pub fd: Fd,
    /// The file's status once locked (its size tells the record whether
    /// there is anything to read first).
    pub stat: libc::stat,
    /// `fd` is open read-write: the record can go through it.
    pub writable: bool,
}

impl Locked {
    /// Where the holder record goes.
    pub fn record_target(&self) -> crate::record::Target<'_> {
        crate::record::Target { fd: &self.fd, stat: &self.stat, writable: self.writable }
    }
}

/// Take the lock on the file at `path` (resolved by `locate`) as `options`
/// say.
pub fn acquire(path: &CStr, options: &Options, lock: &[u8]) -> Result<Locked, Failure<'static>> {
    // Armed only once the lock turns out busy: an uncontended run pays for
    // no timer. Dropping it (on return) disarms it before the job starts.
    let mut deadline: Option<Deadline> = None;
    let mut announced = false;
    #[cfg(feature = "replace")]
    let mut replaced = false;
    loop {
        let Some((fd, opened, writable)) = open_lock_file(path, options)? else {
            continue; // Removed as we opened it: open the name afresh.
        };
        let fd = match flock::take(options, fd.raw(), false) {
            Ok(()) => fd,
            #[cfg(feature = "replace")]
            Err(Errno(libc::EWOULDBLOCK)) if options.replace && !replaced => {
                replaced = true;
                crate::replace::replace_holder(fd, &opened, options, lock)?
            }
            Err(Errno(libc::EWOULDBLOCK)) => {
                if options.verbose && !announced {
                    announce_wait(lock, options.wait);
                }
                announced = true;
                match options.wait {
                    Wait::No => return Err(Failure::Busy),
                    Wait::Forever => block(fd, options)?,
                    Wait::For(limit) => {
                        let armed = match deadline {
                            Some(ref armed) => armed,
                            None => deadline.insert(
                                Deadline::start(limit)
                                    .map_err(|errno| Failure::System { call: "setitimer", errno })?,
                            ),
                        };
                        armed.lock(fd, |fd| flock::take(options, fd, true)).map_err(
                            |missed| match missed {
                                Missed::Expired => Failure::TimedOut(limit),
                                Missed::Failed(errno) => {
                                    Failure::System { call: flock::lock_call(options), errno }
                                }
                            },
                        )?
                    }
                }
            }
            Err(errno) => {
                return Err(Failure::System { call: flock::lock_call(options), errno });
            }
        };

        match sys::lstat(path) {
            Ok(now) if sys::same_file(&now, &opened) => {
                return Ok(Locked { fd, stat: now, writable });
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
/// the name changed under us (the file was removed, replaced or created
/// between our look and our open): look at the name afresh.
///
/// An existing file is looked at (`lstat`) before it is opened: opening a
/// device has effects (a tape rewinds, a watchdog arms), so only a regular
/// file is ever opened, and the descriptor must then be that same file. A
/// missing one is created with `O_EXCL`, so that we know it is ours to give
/// mode 0600.
// mode_t is u32 on Linux but u16 on macOS and FreeBSD.
#[allow(clippy::useless_conversion)]
pub fn open_lock_file(
    path: &CStr,
    options: &Options,
) -> Result<Option<(Fd, libc::stat, bool)>, Failure<'static>> {
    let cannot_open = |errno| Failure::CannotOpen { errno, on_path: false };
    // The name changed between our look and our open: gone, now a symlink,
    // or created by someone else.
    let changed = |errno| matches!(errno, Errno(libc::ENOENT | libc::ELOOP | libc::EMLINK | libc::EEXIST));
    let (fd, writable, seen) = match sys::lstat(path) {
        Ok(seen) => {
            judge_kind(&seen)?;
            // An exclusive fcntl lock needs a descriptor open for writing; an
            // executable must not get one (see above).
            let needs_write = options.fcntl && !options.shared;
            let executable = !needs_write && sys::permissions(&seen) & 0o111 != 0;
            let access = if executable { libc::O_RDONLY } else { libc::O_RDWR };
            let opened = match sys::open(path, LOCK_FILE_FLAGS | access, 0) {
                Ok(fd) => Ok((fd, !executable)),
                // Not ours to write (root's file, a read-only file system, a
                // program running now): lock it read-only, without a record.
                Err(Errno(libc::EACCES | libc::EPERM | libc::EROFS | libc::ETXTBSY))
                    if !needs_write && !executable =>
                {
                    sys::open(path, LOCK_FILE_FLAGS | libc::O_RDONLY, 0).map(|fd| (fd, false))
                }
                Err(errno) => Err(errno),
            };
            match opened {
                Ok((fd, writable)) => (fd, writable, Some(seen)),
                Err(errno) if changed(errno) => return Ok(None),
                Err(errno) => return Err(cannot_open(errno)),
            }
        }
        Err(Errno(libc::ENOENT)) => {
            let flags = LOCK_FILE_FLAGS | libc::O_CREAT | libc::O_EXCL | libc::O_RDWR;
            match sys::open(path, flags, LOCK_FILE_MODE) {
                Ok(fd) => (fd, true, None),
                Err(errno) if changed(errno) && errno.0 != libc::ENOENT => return Ok(None),
                Err(errno) => return Err(cannot_open(errno)),
            }
        }
        Err(errno) => return Err(cannot_open(errno)),
    };
    let mut st = sys::fstat(fd.raw()).map_err(|errno| Failure::System { call: "fstat", errno })?;
    match seen {
        // Replaced between our look and our open.
        Some(seen) if !sys::same_file(&st, &seen) => return Ok(None),
        Some(_) => {}
        // Ours, new: if the umask took bits away, put them back (only then:
        // it is a call).
        None if sys::permissions(&st) != u32::from(LOCK_FILE_MODE) => {
            sys::fchmod(fd.raw(), LOCK_FILE_MODE)
                .map_err(|errno| Failure::System { call: "fchmod", errno })?;
            st.st_mode = st.st_mode & libc::S_IFMT | LOCK_FILE_MODE;
        }
        None => {}
    }
    if sys::links(&st) == 0 {
        return Ok(None); // Removed as we opened it.
    }
    locate::judge_lock_file(&st, options.insecure).map_err(|why| Failure::Refused { why })?;
    Ok(Some((fd, st, writable)))
}

/// What `lstat` found at a lock file's name, judged before it is opened:
/// only a regular file is a lock file.
pub fn judge_kind(seen: &libc::stat) -> Result<(), Failure<'static>> {
    match Kind::of(seen) {
        Kind::Regular => Ok(()),
        Kind::Symlink => Err(Failure::Refused { why: Unsafe::LockIsSymlink }),
        Kind::Directory => Err(Failure::CannotOpen { errno: Errno(libc::EISDIR), on_path: false }),
        kind => Err(Failure::Refused { why: Unsafe::LockKind(kind) }),
    }
}

/// Wait without limit. `EINTR` can only come from a stop and continue here
/// (no handlers are installed), so just wait again.
fn block(fd: Fd, options: &Options) -> Result<Fd, Failure<'static>> {
    loop {
        match flock::take(options, fd.raw(), true) {
            Ok(()) => return Ok(fd),
            Err(Errno(libc::EINTR)) => {}
            Err(errno) => {
                return Err(Failure::System { call: flock::lock_call(options), errno });
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
pub fn announce_wait(lock: &[u8], wait: Wait) {
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
