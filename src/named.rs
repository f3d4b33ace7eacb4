//! `--name NAME`: a lock without choosing a path.
//!
//! The lock file is `DIR/NAME`, in a directory withlock makes for the
//! purpose (and creates if missing, except for `--status`):
//!
//! * for root (effective uid 0): `/run/withlock`, mode 0755;
//! * for anyone else: `$XDG_RUNTIME_DIR/withlock`, mode 0700, when
//!   `XDG_RUNTIME_DIR` is an absolute path to an existing directory;
//!   otherwise `/tmp/withlock-UID`, mode 0700.
//!
//! Nothing is created before it is judged: withlock first walks to
//! `DIR/NAME` as for any lock ([`crate::locate`]), which judges every
//! directory above DIR; only if that walk stops at a missing DIR is DIR
//! made — with its final mode at once (no `chmod` afterwards, which by path
//! could follow a symlink swapped in meanwhile) — and walked again. An
//! existing directory is used as it is: the walk judges it as for any lock,
//! so a `/tmp/withlock-UID` that someone else made first is refused (77),
//! not trusted; and a refused place is left as it was.

use crate::error::Failure;
use crate::sys::{self, Errno, Kind};
use crate::text::Line;
use core::ffi::CStr;

/// Write the lock's path, `DIR/NAME` and a NUL, into `path` (which must be
/// empty), and DIR and a NUL into `dir`; returns the mode DIR is made with
/// if it is missing (see [`make_dir`]). Creates nothing. On failure `path`
/// holds the lock's path for the message and `dir` the directory at fault.
pub fn lock_path(name: &[u8], dir: &mut Line, path: &mut Line) -> Result<libc::mode_t, Failure<'static>> {
    let euid = sys::geteuid();
    let mode = if euid == 0 {
        dir.push(b"/run/withlock");
        0o755
    } else {
        match sys::getenv(c"XDG_RUNTIME_DIR").map(CStr::to_bytes) {
            Some(runtime)
                if runtime.first() == Some(&b'/')
                    && sys::stat(dir.push(runtime).push(b"\0").as_cstr())
                        .is_ok_and(|st| Kind::of(&st) == Kind::Directory) =>
            {
                dir.truncate_to(runtime.len());
                if runtime.last() != Some(&b'/') {
                    dir.push(b"/");
                }
                dir.push(b"withlock");
            }
            _ => {
                dir.clear();
                dir.push(b"/tmp/withlock-").push_u64(u64::from(euid));
            }
        }
        0o700
    };
    path.push(dir.as_bytes()).push(b"/").push(name).push(b"\0");
    dir.push(b"\0");
    if path.truncated() || dir.truncated() {
        return Err(Failure::CannotOpen { errno: Errno(libc::ENAMETOOLONG), on_path: true });
    }
    Ok(mode)
}

/// Does the walk to `DIR/NAME`, failed with `failure` where it stopped
/// (`stopped_at`), say that DIR is missing, and only that? Then everything
/// above DIR has been judged, and DIR may be made at `stopped_at` (the path
/// with symlinks resolved).
pub fn dir_is_missing(failure: &Failure, stopped_at: &[u8], dir: &Line) -> bool {
    // "/withlock" or "/withlock-UID", without the NUL.
    let dir = dir.as_bytes();
    let base = &dir[dir.iter().rposition(|&b| b == b'/').unwrap_or(0)..dir.len() - 1];
    matches!(failure, Failure::CannotOpen { errno: Errno(libc::ENOENT), on_path: true })
        && stopped_at.ends_with(base)
}

/// Make withlock's directory at `path`, with exactly `mode` (an existing
/// one is left as it is, for the walk to judge).
pub fn make_dir(path: &CStr, mode: libc::mode_t) -> Result<(), Failure<'static>> {
    match sys::mkdir(path, mode) {
        Ok(()) | Err(Errno(libc::EEXIST)) => Ok(()),
        Err(errno) => Err(Failure::CannotOpen { errno, on_path: true }),
    }
}
