//! Walking to the lock file, one directory at a time, refusing any place
//! where someone else could plant a symlink or hold the file hostage.
//!
//! The kernel resolves a path in one go and tells us nothing about who could
//! have arranged the answer, so withlock resolves it itself: starting at `/`
//! (absolute LOCK) or at the working directory (relative LOCK), it looks at
//! each component with `lstat` and judges every directory before it looks
//! anything up in it (OpenSSH's StrictModes idea):
//!
//! * every directory passed through must belong to root or the caller and
//!   must not be writable by group or others, unless it is sticky (`/tmp`),
//!   where others can add entries but cannot rename or remove ours;
//! * the lock file's own directory must belong to root or the caller and be
//!   writable by nobody else, sticky or not: in a shared directory anyone can
//!   create the lock file first and hold it forever;
//! * a symlink on the way (`/var/lock -> /run/lock`) is followed only from a
//!   directory that passed, and in a sticky directory only if root or the
//!   caller owns the link; withlock replaces it by its target itself. The
//!   lock file itself is never a symlink (`O_NOFOLLOW`).
//!
//! The result is a path with no symlink left in it, every directory of which
//! only trusted users can change: whoever else acts between our checks and
//! our `open` cannot change what it names. (Checking by path costs one
//! `lstat` per directory, about half the system calls of opening each
//! directory and needs no `O_PATH`, so it works alike on every system.) For
//! a relative LOCK the directories above the working directory are not
//! looked at: the kernel does not pass through them either.
//!
//! `--insecure` skips the walk: the kernel resolves LOCK, and only the
//! checks on the lock file that keep withlock itself safe remain.

use crate::error::{Failure, Unsafe};
use crate::once::TakeOnce;
use crate::sys::{self, Errno, Kind};
use core::ffi::CStr;

/// At most this many symlinks on the way, as the kernel's own limit.
const MAX_SYMLINKS: u32 = 40;

/// The path as resolved so far, NUL-terminated for the system calls. After
/// a successful walk it names the lock file; after a failure, the directory
/// or link at fault, for the message.
pub struct Resolved<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl Resolved<'_> {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_cstr(&self) -> &CStr {
        // Components come from C strings (no NUL inside), and every change
        // below writes the terminating NUL.
        crate::text::c_str(&self.buf[..=self.len])
    }

    fn set(&mut self, path: &[u8]) -> Result<(), Errno> {
        self.len = 0;
        self.append(path)
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), Errno> {
        // Room for the bytes and the NUL after them.
        if self.len + bytes.len() >= self.buf.len() {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        self.buf[self.len] = 0;
        Ok(())
    }

    fn push_component(&mut self, name: &[u8]) -> Result<(), Errno> {
        if self.as_bytes().last() != Some(&b'/') {
            self.append(b"/")?;
        }
        self.append(name)
    }

    /// Undo `push_component` of a name `name_len` long.
    fn pop_component(&mut self, name_len: usize) {
        self.len -= name_len;
        if self.len > 1 {
            self.len -= 1; // The slash before it.
        }
        self.buf[self.len] = 0;
    }
}

/// The part of the path still to walk, kept at the end of a buffer so a
/// symlink's target can be put in front of it.
struct Remaining<'b> {
    buf: &'b mut [u8],
    start: usize,
}

impl Remaining<'_> {
    fn set(&mut self, path: &[u8]) -> Result<(), Errno> {
        let end = self.buf.len();
        if path.len() > end {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        self.start = end - path.len();
        self.buf[self.start..].copy_from_slice(path);
        Ok(())
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn is_absolute(&self) -> bool {
        self.as_bytes().first() == Some(&b'/')
    }

    /// Take the next component off the front, skipping slashes before it.
    /// Returns it and whether it was the last one (nothing, not even a
    /// slash, follows).
    fn next_component(&mut self) -> (&[u8], bool) {
        while self.as_bytes().first() == Some(&b'/') {
            self.start += 1;
        }
        let len = self.as_bytes().iter().position(|&b| b == b'/').unwrap_or(self.as_bytes().len());
        let from = self.start;
        self.start += len;
        (&self.buf[from..from + len], self.start == self.buf.len())
    }

    /// Put the target of the symlink `link` (the component just taken off
    /// the front) in its place: read it into the free space before the
    /// rest, then move it to sit right before it, joined by a slash.
    fn follow(&mut self, link: &CStr) -> Result<(), Errno> {
        let len = sys::readlink(link, &mut self.buf[..self.start])?;
        if len + 1 > self.start {
            return Err(Errno(libc::ENAMETOOLONG));
        }
        let at = self.start - 1 - len;
        self.buf.copy_within(..len, at);
        self.buf[self.start - 1] = b'/';
        self.start = at;
        Ok(())
    }
}

/// The room a walk needs: `N` bytes for the remaining path and `N` for the
/// resolved one (including its NUL).
///
/// Almost every lock path is short, and the first walk uses a small static
/// pair ([`Buffers::short`]) that shares a page with the C library's own
/// data: large buffers cost a page fault per page they touch, and those
/// faults were most of withlock's cost above a bare exec. A path that does
/// not fit is walked again with [`PATH_MAX`] buffers; walking has no effects,
/// so starting over is safe. The remaining path sits at the end of its buffer
/// and the resolved one at the start of the next, so the bytes in use lie
/// together.
#[repr(C)]
pub struct Buffers<const N: usize> {
    rest: [u8; N],
    resolved: [u8; N],
}

/// Room for most lock paths, and the symlinks on their way.
pub const SHORT: usize = 512;
/// Room for any path the kernel accepts.
pub const PATH_MAX: usize = 4096;

static SHORT_BUFFERS: TakeOnce<Buffers<SHORT>> = TakeOnce::new(Buffers::new());

impl<const N: usize> Buffers<N> {
    pub const fn new() -> Buffers<N> {
        Buffers { rest: [0; N], resolved: [0; N] }
    }

    /// Lend the buffers to a walk.
    pub fn walk(&mut self) -> Walk<'_> {
        Walk {
            rest: Remaining { buf: &mut self.rest, start: N },
            resolved: Resolved { buf: &mut self.resolved, len: 0 },
        }
    }
}

impl Default for Buffers<PATH_MAX> {
    fn default() -> Self {
        Self::new()
    }
}

impl Buffers<SHORT> {
    /// The process's one static pair of short buffers; `None` if taken.
    pub fn short() -> Option<&'static mut Buffers<SHORT>> {
        SHORT_BUFFERS.take()
    }
}

/// A walk in progress, on borrowed buffers.
pub struct Walk<'b> {
    rest: Remaining<'b>,
    pub resolved: Resolved<'b>,
}

/// Did `locate` fail only for want of room in short buffers?
pub fn needs_more_room(failure: &Failure) -> bool {
    matches!(failure, Failure::CannotOpen { errno: Errno(libc::ENAMETOOLONG), .. })
}

/// Walk to LOCK (see the module docs), leaving in `walk.resolved` the path
/// to open, or on failure the directory or link at fault.
pub fn locate(lock: &[u8], insecure: bool, walk: &mut Walk) -> Result<(), Failure<'static>> {
    let Walk { rest, resolved } = walk;
    let cannot_open = |errno| Failure::CannotOpen { errno, on_path: true };
    // LOCK itself too long: no place on the way is at fault.
    let too_long = |errno| Failure::CannotOpen { errno, on_path: false };
    if insecure {
        return resolved.set(lock).map_err(too_long);
    }
    let euid = sys::geteuid();
    rest.set(lock).map_err(too_long)?;
    let mut dir = start(rest, resolved)?;
    let mut links_followed = 0;
    loop {
        let (name, last) = rest.next_component();
        let name_len = name.len();
        if name.is_empty() || last && (name == b"." || name == b"..") {
            // LOCK ends with a slash, a dot or two, or is "/": a directory.
            return Err(Failure::CannotOpen { errno: Errno(libc::EISDIR), on_path: false });
        }
        judge_directory(&dir, euid, last).map_err(|why| Failure::Refused { why })?;
        if name == b"." {
            continue;
        }
        resolved.push_component(name).map_err(cannot_open)?;
        if last {
            return Ok(());
        }
        let st = sys::lstat(resolved.as_cstr()).map_err(cannot_open)?;
        match Kind::of(&st) {
            Kind::Directory => dir = st,
            Kind::Symlink => {
                judge_symlink(&dir, &st, euid).map_err(|why| Failure::Refused { why })?;
                links_followed += 1;
                if links_followed > MAX_SYMLINKS {
                    return Err(cannot_open(Errno(libc::ELOOP)));
                }
                rest.follow(resolved.as_cstr()).map_err(cannot_open)?;
                resolved.pop_component(name_len);
                // A relative target goes on from this directory (whose
                // judgement `dir` still holds); an absolute one from the root.
                if rest.is_absolute() {
                    dir = start(rest, resolved)?;
                }
            }
            _ => return Err(cannot_open(Errno(libc::ENOTDIR))),
        }
    }
}

/// Where the walk starts: `/` for an absolute path, else the working
/// directory. Returns its status, to be judged.
fn start(rest: &Remaining, resolved: &mut Resolved) -> Result<libc::stat, Failure<'static>> {
    let root: &[u8] = if rest.is_absolute() { b"/" } else { b"." };
    let cannot_open = |errno| Failure::CannotOpen { errno, on_path: true };
    resolved.set(root).map_err(cannot_open)?;
    sys::lstat(resolved.as_cstr()).map_err(cannot_open)
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
    // Like a shared directory: whoever else can write the file can write
    // the holder record, and other tools' data into it (flock(1) makes
    // such files under umask 0).
    let mode = sys::permissions(st);
    if mode & SHARED_WRITE != 0 {
        return Err(Unsafe::LockWritable { mode });
    }
    Ok(())
}
