//! Why withlock did not run the command, and how to tell the user.
//!
//! Each failure knows its exit code and writes one line that says what
//! happened, to which path, and what to do about it.

use crate::cli::UsageError;
use crate::exit;
use crate::sys::{self, Errno, Kind};
use crate::text::{self, Line};
use crate::{holder, record, slots};
use core::ffi::CStr;
use core::time::Duration;

/// Why a lock location is refused as unsafe.
#[derive(Debug)]
pub enum Unsafe {
    /// A directory on the way is owned by someone else.
    DirectoryOwner { uid: u32 },
    /// The lock's directory can be written by group or others.
    DirectoryWritable { mode: u32 },
    /// A directory on the way can be written by group or others and is not
    /// sticky, so its entries can be replaced.
    PathWritable { mode: u32 },
    /// A symbolic link in a shared (sticky) directory, owned by someone else.
    SymlinkOwner { uid: u32 },
    /// The lock file itself is a symbolic link: never followed.
    LockIsSymlink,
    /// The lock file is not a regular file.
    LockKind(Kind),
    /// The lock file is owned by someone else.
    LockOwner { uid: u32 },
    /// The lock file has several names; someone else's name for it could be
    /// anywhere.
    LockLinks { links: u64 },
    /// The lock file can be written by group or others.
    LockWritable { mode: u32 },
}

#[derive(Debug)]
pub enum Failure<'a> {
    Usage(UsageError<'a>),
    /// The lock is held by someone else and we were not to wait.
    Busy,
    /// We waited this long and it stayed busy.
    TimedOut(Duration),
    /// The location or file is unsafe. The directory or link at fault is
    /// where the walk stopped (its `resolved` path); a fault of the lock
    /// file itself is LOCK's.
    Refused {
        why: Unsafe,
    },
    /// The lock file cannot be opened (73; 71 for want of descriptors or
    /// memory); `on_path` if it was a directory on the way (where the walk
    /// stopped) rather than the file itself.
    CannotOpen {
        errno: Errno,
        on_path: bool,
    },
    /// A system call failed unexpectedly.
    System {
        call: &'static str,
        errno: Errno,
    },
    /// `--replace` found nothing it may safely stop.
    CannotReplace(&'static str),
    /// `--replace` met a holder that belongs to someone else.
    ReplaceForbidden {
        pid: u32,
        uid: u32,
    },
    /// `--slots N`: all N slots are taken.
    SlotsBusy {
        slots: u8,
    },
    /// `--slots N` (`ours`) met a job on the same LOCK with another N:
    /// `slot`'s holder records `theirs` (0: not known), or `slot` is N;
    /// `theirs` is [`slots::UNSEEN`] if `slot` is N and may be held where it
    /// cannot be seen.
    SlotsMixed {
        slot: u8,
        ours: u8,
        theirs: u32,
    },
    /// `execvp` failed.
    CannotRun {
        errno: Errno,
    },
    /// The command is in no PATH directory we could search, and some could
    /// not be searched (`execvp` says EACCES for that).
    NotInPath,
}

impl Failure<'_> {
    /// The exit code for this failure; `conflict` is the code chosen for a
    /// busy lock (75, or 0 with `-q`, or `-E N`).
    pub fn exit_code(&self, conflict: u8) -> u8 {
        match self {
            Failure::SlotsMixed { theirs: slots::UNSEEN, .. } => exit::UNAVAILABLE,
            Failure::Usage(_) | Failure::SlotsMixed { .. } => exit::USAGE,
            Failure::Busy | Failure::TimedOut(_) | Failure::SlotsBusy { .. } => conflict,
            Failure::Refused { .. } | Failure::ReplaceForbidden { .. } => exit::REFUSED,
            Failure::CannotReplace(_) => exit::BUSY,
            Failure::CannotOpen { errno, .. } if out_of_resources(*errno) => exit::OS_ERROR,
            Failure::CannotOpen { .. } => exit::CANNOT_CREATE,
            Failure::System { .. } => exit::OS_ERROR,
            Failure::CannotRun { errno } if matches!(errno.0, libc::ENOENT | libc::ENOTDIR) => {
                exit::NOT_FOUND
            }
            Failure::CannotRun { .. } => exit::CANNOT_EXECUTE,
            Failure::NotInPath => exit::NOT_FOUND,
        }
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Failure::Busy | Failure::TimedOut(_) | Failure::SlotsBusy { .. })
    }

    /// Write the one-line explanation (plus the usage summary for usage
    /// errors) to stderr. `resolved` is where the walk to LOCK stopped.
    ///
    /// Kept out of line: its message buffer must not enlarge the stack
    /// frame of the path that runs the command (see `locate::Scratch`).
    #[cold]
    #[inline(never)]
    pub fn report(&self, lock: &[u8], command: &[u8], resolved_path: &CStr, verbose: bool) {
        self.tell(lock, command, resolved_path, verbose, true);
    }

    /// As [`Failure::report`], to stderr only if `to_stderr` (not for a
    /// busy lock with `-q`), and to the system log with `--syslog`.
    #[cold]
    #[inline(never)]
    pub fn tell(&self, lock: &[u8], command: &[u8], resolved_path: &CStr, verbose: bool, to_stderr: bool) {
        if !to_stderr && !crate::syslog::enabled() {
            return;
        }
        let resolved = resolved_path.to_bytes();
        let mut buf = text::diagnostic();
        let line = buf.line();
        match self {
            Failure::Usage(UsageError { problem, culprit }) => {
                line.push(problem.as_bytes());
                if let Some(culprit) = culprit {
                    line.push(b": '").push_quoted(culprit).push(b"'");
                }
                line.emit();
                crate::help::usage_hint();
                return;
            }
            Failure::Busy | Failure::SlotsBusy { .. } => {
                line.push_quoted(lock).push(b" is ");
                if let Failure::SlotsBusy { slots } = self {
                    line.push(b"busy: all ").push_u64(u64::from(*slots)).push(b" slots are taken");
                } else if !explain_holder(line, resolved_path, verbose) {
                    line.push(b"busy: another process holds the lock");
                }
                line.push(b" (use -w DURATION to wait for it, or -q to skip quietly)");
            }
            Failure::TimedOut(waited) => {
                line.push_quoted(lock).push(b" is still busy after waiting ").push_duration(*waited);
                let mark = line.as_bytes().len();
                if !explain_holder(line.push(b": "), resolved_path, verbose) {
                    line.truncate_to(mark);
                }
                line.push(b"; giving up (use a longer -w, or -w forever)");
            }
            Failure::SlotsMixed { slot, ours, theirs } => {
                line.push(b"refusing ").push_quoted(lock).push(b".").push_u64(u64::from(*slot));
                if *theirs == slots::UNSEEN {
                    line.push(b": a job with more slots may hold it unseen; if none does, remove it");
                    line.emit();
                    return;
                }
                line.push(b": held by a job with --slots ");
                if *theirs == 0 {
                    line.push(b"above ");
                } else {
                    line.push_u64(u64::from(*theirs)).push(b", not ");
                }
                line.push_u64(u64::from(*ours)).push(b" (give all the jobs on a LOCK the same --slots N)");
            }
            Failure::Refused { why } => {
                line.push(b"refusing lock ").push_quoted(lock).push(b": ");
                describe_unsafe(line, resolved, why);
            }
            Failure::CannotOpen { errno, .. } if out_of_resources(*errno) => {
                line.push(b"out of resources to open lock file ").push_quoted(lock);
                line.push(b": ").push(errno.text());
                line.push(match errno.0 {
                    libc::EMFILE => {
                        b" (this process has as many open files as its limit allows: raise it (ulimit -n), or close what the caller left open)".as_slice()
                    }
                    libc::ENFILE => b" (the system's open-file table is full; try again later)",
                    _ => b" (try again later)",
                });
            }
            Failure::CannotOpen { errno, on_path } => {
                line.push(b"cannot open lock file ").push_quoted(lock);
                // (A LOCK too long to walk has no place on the way to name.)
                if *on_path && !resolved.is_empty() {
                    line.push(b" (at ").push_quoted(resolved).push(b")");
                }
                line.push(b": ").push(errno.text());
                line.push(match errno.0 {
                    libc::ENOENT => b" (create the directory first)",
                    libc::EACCES | libc::EPERM => {
                        b" (choose a directory you can write, or run as a user who can)"
                    }
                    libc::EISDIR => b" (LOCK must name a file, not a directory)",
                    libc::ENOTDIR => b" (a part of the path is not a directory)",
                    libc::EROFS => b" (choose a lock file on a writable file system)",
                    _ => b"",
                });
            }
            Failure::System { call, errno } => {
                line.push(call.as_bytes())
                    .push(b" failed on ")
                    .push_quoted(lock)
                    .push(b": ")
                    .push(errno.text());
            }
            Failure::CannotReplace(why) => {
                line.push(b"cannot replace the holder of ")
                    .push_quoted(lock)
                    .push(b": ")
                    .push(why.as_bytes());
            }
            Failure::ReplaceForbidden { pid, uid } => {
                line.push(b"refusing to replace the holder of ").push_quoted(lock).push(b": pid ");
                line.push_u64(u64::from(*pid)).push(b" belongs to ");
                holder::push_user(line, *uid);
                line.push(b"; only root may stop another user's job");
            }
            Failure::NotInPath => {
                line.push(b"cannot run ").push_quoted(command);
                line.push(b": not found in PATH (and some of its directories could not be searched)");
            }
            Failure::CannotRun { errno } => {
                line.push(b"cannot run ").push_quoted(command).push(b": ").push(errno.text());
                if matches!(errno.0, libc::ENOENT | libc::ENOTDIR) {
                    line.push(b" (is it installed, and in PATH?)");
                } else if errno.0 == libc::ENOEXEC {
                    line.push(b" (a script needs a #! line)");
                }
            }
        }
        if to_stderr {
            line.emit();
        }
        crate::syslog::failure(self, line);
    }
}

/// Is `errno` a shortage of descriptors or memory (71), not a problem of
/// the lock file (73)?
fn out_of_resources(errno: Errno) -> bool {
    matches!(errno.0, libc::EMFILE | libc::ENFILE | libc::ENOMEM)
}

/// Add who holds the lock at `path` ("held by pid 4242 (...), ..."); false
/// if it cannot be told (the file cannot be opened any more).
fn explain_holder(line: &mut Line, path: &CStr, verbose: bool) -> bool {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    let Ok(file) = sys::open(path, flags, 0) else { return false };
    let Ok(st) = sys::fstat(file.raw()) else { return false };
    let mut buf = [0u8; record::CAPACITY];
    let holder = holder::inspect(file.raw(), &st, &mut buf, true);
    holder::describe(line, &holder, verbose);
    true
}

const INSECURE_HINT: &[u8] =
    b"; use a directory that only you or root can write, or --insecure if you trust everyone who can";

fn describe_unsafe(line: &mut Line, culprit: &[u8], why: &Unsafe) {
    match why {
        Unsafe::DirectoryOwner { uid } => {
            line.push(b"directory ")
                .push_quoted(culprit)
                .push(b" is owned by uid ")
                .push_u64(u64::from(*uid));
            line.push(b", who could replace what it holds").push(INSECURE_HINT);
        }
        Unsafe::DirectoryWritable { mode } => {
            line.push(b"directory ").push_quoted(culprit).push(b" (mode ").push_mode(*mode);
            line.push(b") is writable by group or others, who could plant or hold the lock file")
                .push(INSECURE_HINT);
        }
        Unsafe::PathWritable { mode } => {
            line.push(b"directory ").push_quoted(culprit).push(b" (mode ").push_mode(*mode);
            line.push(b") is writable by group or others and not sticky, so its entries can be replaced")
                .push(INSECURE_HINT);
        }
        Unsafe::SymlinkOwner { uid } => {
            line.push(b"symbolic link ")
                .push_quoted(culprit)
                .push(b" in a shared directory is owned by uid ");
            line.push_u64(u64::from(*uid)).push(INSECURE_HINT);
        }
        Unsafe::LockIsSymlink => {
            line.push(b"it is a symbolic link, which withlock never follows (name the real file instead)");
        }
        Unsafe::LockKind(kind) => {
            line.push(b"it is ").push(kind.described()).push(b", not a regular file");
        }
        Unsafe::LockOwner { uid } => {
            line.push(b"the lock file is owned by uid ").push_u64(u64::from(*uid));
            line.push(b", who could hold it forever (remove it, or use --insecure)");
        }
        Unsafe::LockWritable { mode } => {
            line.push(b"the lock file (mode ").push_mode(*mode);
            line.push(b") is writable by group or others (chmod go-w it, or use --insecure)");
        }
        Unsafe::LockLinks { links } => {
            line.push(b"the lock file has ").push_u64(*links);
            line.push(b" hard links; another name for it could be anywhere (remove the extra links, or use --insecure)");
        }
    }
}
