//! Walking to the lock file's directory, one directory at a time, refusing
//! any place where someone else could plant a symlink or hold the file
//! hostage.
//!
//! The kernel resolves a path in one go and tells us nothing about who could
//! have arranged the answer, so withlock resolves it itself: starting at `/`
//! (absolute LOCK) or at the working directory (relative LOCK), it opens each
//! directory with `openat(O_NOFOLLOW)` relative to the last one and judges
//! it before looking anything up in it (OpenSSH's StrictModes idea):
//!
//! * every directory passed through must belong to root or the caller and
//!   must not be writable by group or others, unless it is sticky (`/tmp`),
//!   where others can add entries but cannot replace ours;
//! * the lock file's own directory must belong to root or the caller and be
//!   writable by nobody else, sticky or not: in a shared directory anyone can
//!   create the lock file first and hold it forever;
//! * a symlink on the way (`/var/lock -> /run/lock`) is followed only from a
//!   directory that passed, and in a sticky directory only if root or the
//!   caller owns the link. The lock file itself is never a symlink.
//!
//! Because every lookup happens in a directory that only trusted users can
//! change, what the walk finds is what they arranged, and there is no window
//! between check and use for anyone else. For a relative LOCK the directories
//! above the working directory are not looked at: the kernel does not pass
//! through them either. `--insecure` skips the judging, not the walk.

use crate::error::{Failure, Unsafe};
use crate::sys::{self, Errno, Fd, Kind};
use core::ffi::CStr;
use core::sync::atomic::{AtomicBool, Ordering};

/// How directories on the way are opened: without following a final
/// symlink, and (on Linux) as a path handle, which needs only search
/// permission, just like the kernel's own walk.
#[cfg(any(target_os = "linux", target_os = "android"))]
const DIR_FLAGS: i32 = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const DIR_FLAGS: i32 = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;

/// At most this many symlinks on the way, as the kernel's own limit.
const MAX_SYMLINKS: u32 = 40;
const PATH_MAX: usize = 4096;
const NAME_MAX: usize = 255;

/// The path withlock shows in messages: the directory it is judging (or the
/// link or directory it failed on), as reached from LOCK.
#[repr(C)]
pub struct Shown {
    buf: [u8; PATH_MAX],
    len: usize,
}

impl Shown {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn set(&mut self, path: &[u8]) {
        self.len = 0;
        self.append(path);
    }

    fn append(&mut self, bytes: &[u8]) {
        let take = bytes.len().min(PATH_MAX - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
    }

    fn push_component(&mut self, name: &[u8]) {
        if self.as_bytes() != b"/" {
            self.append(b"/");
        }
        self.append(name);
    }
}

/// A file name, NUL-terminated for the system calls.
pub struct Name {
    buf: [u8; NAME_MAX + 1],
    len: usize,
}

impl Name {
    fn new(bytes: &[u8]) -> Result<Name, Errno> {
        if bytes.len() > NAME_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        let mut buf = [0; NAME_MAX + 1];
        buf[..bytes.len()].copy_from_slice(bytes);
        Ok(Name {
            buf,
            len: bytes.len(),
        })
    }

    pub fn as_cstr(&self) -> &CStr {
        // A path component from a C string holds no NUL, and the byte after
        // it is the buffer's zero: a valid C string.
        CStr::from_bytes_with_nul(&self.buf[..=self.len]).unwrap_or(c"")
    }
}

/// The part of the path still to walk, kept at the end of a buffer so a
/// symlink's target can be put in front of it.
#[repr(C)]
struct Remaining {
    buf: [u8; PATH_MAX],
    start: usize,
}

impl Remaining {
    fn set(&mut self, path: &[u8]) -> Result<(), Errno> {
        if path.len() > PATH_MAX {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        self.start = PATH_MAX - path.len();
        self.buf[self.start..].copy_from_slice(path);
        Ok(())
    }

    /// Replace the symlink `name` in `dir` (just taken off the front) by its
    /// target: read the target into the free space before the rest, then
    /// move it to sit right before it, joined by a slash.
    fn follow(&mut self, dir: &Fd, name: &Name) -> Result<(), Errno> {
        let len = sys::readlinkat(dir, name.as_cstr(), &mut self.buf[..self.start])?;
        if len + 1 > self.start {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        let at = self.start - 1 - len;
        self.buf.copy_within(..len, at);
        self.buf[self.start - 1] = b'/';
        self.start = at;
        Ok(())
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn is_absolute(&self) -> bool {
        self.as_bytes().first() == Some(&b'/')
    }

    /// Take the next component, skipping slashes before it. Returns it and
    /// whether it was the last one (nothing, not even a slash, follows).
    fn next_component(&mut self) -> Result<(Name, bool), Errno> {
        while self.as_bytes().first() == Some(&b'/') {
            self.start += 1;
        }
        let rest = self.as_bytes();
        let len = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
        let name = Name::new(&rest[..len])?;
        self.start += len;
        Ok((name, self.as_bytes().is_empty()))
    }
}

/// Where the lock file is: its directory, open, and its name in it.
pub struct LockDir {
    pub dir: Fd,
    pub name: Name,
}

/// The walk's buffers. They are large (a path each), so they live in static
/// memory rather than on the stack: a large stack frame is probed page by
/// page on entry, and those page faults were most of withlock's cost above
/// a bare exec. Static pages are touched only where a path is written.
///
/// The remaining path is kept at the end of its buffer and the shown path
/// at the start of its own, so laid out in this order the bytes in use sit
/// together, usually on one page.
#[repr(C)]
pub struct Scratch {
    rest: Remaining,
    pub shown: Shown,
}

static mut SCRATCH: Scratch = Scratch {
    rest: Remaining {
        buf: [0; PATH_MAX],
        start: 0,
    },
    shown: Shown {
        buf: [0; PATH_MAX],
        len: 0,
    },
};
static SCRATCH_TAKEN: AtomicBool = AtomicBool::new(false);

impl Scratch {
    /// The one scratch space of the process; `None` if already taken.
    pub fn take() -> Option<&'static mut Scratch> {
        if SCRATCH_TAKEN.swap(true, Ordering::SeqCst) {
            return None;
        }
        // SAFETY: the flag above lets this line run at most once in the
        // process's life, so this is the only reference ever made to SCRATCH.
        Some(unsafe { &mut *(&raw mut SCRATCH) })
    }
}

/// Walk to LOCK's directory (see the module docs). `scratch.shown` is left
/// naming the directory or link the walk stopped at, for messages.
pub fn locate(
    lock: &[u8],
    insecure: bool,
    scratch: &mut Scratch,
) -> Result<LockDir, Failure<'static>> {
    let Scratch { shown, rest } = scratch;
    let cannot_open = |errno| Failure::CannotOpen {
        errno,
        on_path: true,
    };
    let euid = sys::geteuid();
    rest.set(lock).map_err(cannot_open)?;
    let mut dir = open_start(&rest, shown)?;
    let mut links_followed = 0;
    loop {
        let dir_stat = if insecure {
            None
        } else {
            Some(sys::fstat(dir.raw()).map_err(cannot_open)?)
        };
        let (name, last) = rest.next_component().map_err(cannot_open)?;
        if name.len == 0 {
            // LOCK ends with a slash (or is "/"): it names a directory.
            return Err(Failure::CannotOpen {
                errno: Errno(libc::EISDIR),
                on_path: false,
            });
        }
        if let Some(st) = &dir_stat {
            judge_directory(st, euid, last).map_err(|why| Failure::Refused { why })?;
        }
        if last {
            return Ok(LockDir { dir, name });
        }
        if name.as_cstr() == c"." {
            continue;
        }

        match sys::openat(Some(&dir), name.as_cstr(), DIR_FLAGS, 0) {
            Ok(next) => {
                shown.push_component(&name.buf[..name.len]);
                dir = next;
            }
            Err(errno @ Errno(libc::ELOOP | libc::EMLINK | libc::ENOTDIR)) => {
                // Either a symlink (O_NOFOLLOW said no) or truly not a directory.
                let link = match sys::lstatat(&dir, name.as_cstr()) {
                    Ok(st) if Kind::of(&st) == Kind::Symlink => st,
                    Ok(_) => return Err(fail_at(shown, &name, cannot_open(errno))),
                    Err(other) => return Err(fail_at(shown, &name, cannot_open(other))),
                };
                if let Some(st) = &dir_stat
                    && let Err(why) = judge_symlink(st, &link, euid)
                {
                    return Err(fail_at(shown, &name, Failure::Refused { why }));
                }
                links_followed += 1;
                let followed = if links_followed > MAX_SYMLINKS {
                    Err(Errno(libc::ELOOP))
                } else {
                    rest.follow(&dir, &name)
                };
                if let Err(errno) = followed {
                    return Err(fail_at(shown, &name, cannot_open(errno)));
                }
                // A relative target goes on from this directory; an absolute
                // one starts again at the root.
                if rest.is_absolute() {
                    dir = open_start(&rest, shown)?;
                }
            }
            Err(errno) => return Err(fail_at(shown, &name, cannot_open(errno))),
        }
    }
}

/// Record in `shown` the name the walk failed on, and pass the failure on.
fn fail_at(shown: &mut Shown, name: &Name, failure: Failure<'static>) -> Failure<'static> {
    shown.push_component(&name.buf[..name.len]);
    failure
}

/// Open where the walk starts: `/` for an absolute path, else the working
/// directory.
fn open_start(rest: &Remaining, shown: &mut Shown) -> Result<Fd, Failure<'static>> {
    let (path, start): (&CStr, &[u8]) = if rest.is_absolute() {
        (c"/", b"/")
    } else {
        (c".", b".")
    };
    shown.set(start);
    sys::openat(None, path, DIR_FLAGS, 0).map_err(|errno| Failure::CannotOpen {
        errno,
        on_path: true,
    })
}

const SHARED_WRITE: u32 = 0o022;
const STICKY: u32 = 0o1000;

/// May withlock trust this directory? `holds_lock` is true for the lock
/// file's own directory.
pub fn judge_directory(st: &libc::stat, euid: libc::uid_t, holds_lock: bool) -> Result<(), Unsafe> {
    if st.st_uid != 0 && st.st_uid != euid {
        return Err(Unsafe::DirectoryOwner { uid: st.st_uid });
    }
    let mode = sys::permissions(st);
    if mode & SHARED_WRITE != 0 {
        if holds_lock {
            return Err(Unsafe::DirectoryWritable { mode });
        }
        if mode & STICKY == 0 {
            return Err(Unsafe::PathWritable { mode });
        }
    }
    Ok(())
}

/// May withlock follow this symlink found in a directory that passed? Only
/// a shared (sticky) directory lets others create links, so there the link
/// must be root's or the caller's.
fn judge_symlink(dir: &libc::stat, link: &libc::stat, euid: libc::uid_t) -> Result<(), Unsafe> {
    let shared = sys::permissions(dir) & SHARED_WRITE != 0;
    if shared && link.st_uid != 0 && link.st_uid != euid {
        return Err(Unsafe::SymlinkOwner { uid: link.st_uid });
    }
    Ok(())
}

/// May withlock lock this file (already open, never through a symlink)?
pub fn judge_lock_file(st: &libc::stat, insecure: bool) -> Result<(), Unsafe> {
    let kind = Kind::of(st);
    if kind != Kind::Regular {
        return Err(Unsafe::LockKind(kind));
    }
    if insecure {
        return Ok(());
    }
    let euid = sys::geteuid();
    if st.st_uid != 0 && st.st_uid != euid {
        return Err(Unsafe::LockOwner { uid: st.st_uid });
    }
    let links = sys::links(st);
    if links != 1 {
        return Err(Unsafe::LockLinks { links });
    }
    Ok(())
}
