//! How a failure is told to the user: one line that says what happened, to
//! which path, and what to do about it; with `--syslog`, the same line in
//! the system log (see [`crate::syslog`]).
//!
//! Above [`crate::error`] (the plain failure type) and [`crate::holder`]
//! (who holds a lock), so that neither needs the other.

use crate::cli::Options;
#[cfg(feature = "etcd")]
use crate::error::Loss;
use crate::error::{self, Failure, UNSEEN, Unsafe, UsageError};
use crate::text::{self, Line};
use crate::{exit, sys};
use crate::{holder, record, syslog};
use core::ffi::{CStr, c_int};

/// Write `failure`'s one-line explanation (plus the usage summary for usage
/// errors) to stderr. `resolved` is where the walk to LOCK stopped.
///
/// Kept out of line: its message buffer must not enlarge the stack
/// frame of the path that runs the command (see `locate::Scratch`).
#[cold]
#[inline(never)]
pub fn failure(failure: &Failure, lock: &[u8], command: &[u8], resolved_path: &CStr, verbose: bool) {
    tell(failure, lock, command, resolved_path, verbose, true);
}

/// Tell a usage error (and how to get help); returns the exit code (64).
#[cold]
#[inline(never)]
pub fn usage(usage: UsageError) -> c_int {
    failure(&Failure::Usage(usage), b"", b"", c"", false);
    c_int::from(exit::USAGE)
}

/// A part this build leaves out (an option, or etcd support): say so, and
/// return `code`.
#[cold]
#[inline(never)]
pub fn not_built(part: &[u8], code: u8) -> c_int {
    let mut buf = text::diagnostic();
    let line = buf.line();
    line.push(b"this withlock was built without ").push(part).push(b" (build it with `make`)");
    line.emit();
    c_int::from(code)
}

/// Tell why a run with `options` did not run its command: on stderr unless
/// the lock was busy and `-q` keeps that quiet, and in the system log with
/// `--syslog` (even then). Returns the exit code.
#[cold]
#[inline(never)]
pub fn run_failed(
    failure: &Failure,
    lock: &[u8],
    command: &[u8],
    resolved: &CStr,
    options: &Options,
) -> c_int {
    let to_stderr = !(options.quiet && failure.is_conflict());
    tell(failure, lock, command, resolved, options.verbose, to_stderr);
    c_int::from(failure.exit_code(options.conflict_code()))
}

/// As [`failure`], to stderr only if `to_stderr`, and to the system log
/// with `--syslog`.
fn tell(
    failure: &Failure,
    lock: &[u8],
    command: &[u8],
    resolved_path: &CStr,
    verbose: bool,
    to_stderr: bool,
) {
    if !to_stderr && !syslog::enabled() {
        return;
    }
    let resolved = resolved_path.to_bytes();
    let mut buf = text::diagnostic();
    let line = buf.line();
    match failure {
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
            if let Failure::SlotsBusy { slots } = failure {
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
            if *theirs == UNSEEN {
                line.push(b": a job with more slots may hold it unseen; if none does, remove it");
            } else {
                line.push(b": held by a job with --slots ");
                if *theirs == 0 {
                    line.push(b"above ");
                } else {
                    line.push_u64(u64::from(*theirs)).push(b", not ");
                }
                line.push_u64(u64::from(*ours)).push(b" (give all the jobs on a LOCK the same --slots N)");
            }
        }
        Failure::Refused { why } => {
            line.push(b"refusing lock ").push_quoted(lock).push(b": ");
            describe_unsafe(line, resolved, why);
        }
        Failure::CannotOpen { errno, .. } if error::out_of_resources(*errno) => {
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
            line.push(call.as_bytes()).push(b" failed on ").push_quoted(lock).push(b": ").push(errno.text());
        }
        Failure::CannotReplace(why) => {
            line.push(b"cannot replace the holder of ").push_quoted(lock).push(b": ").push(why.as_bytes());
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
        #[cfg(feature = "etcd")]
        Failure::NoMemory(what) => {
            line.push(b"no memory to ").push(what.as_bytes());
        }
        #[cfg(feature = "etcd")]
        Failure::Unavailable { what, why } => {
            line.push(what.as_bytes());
            if !why.is_empty() {
                line.push(b" (").push(why).push(b")");
            }
            line.push(NOT_RUN);
        }
        #[cfg(feature = "etcd")]
        Failure::LeaseTooShort { granted, asked } => {
            if *granted <= 0 {
                line.push(b"etcd granted a lease without a time to live");
            } else {
                line.push(b"etcd granted a lease of ").push_u64(*granted as u64);
                line.push(b"s, shorter than the ").push_u64(*asked as u64).push(b"s asked for (--lease)");
            }
            line.push(NOT_RUN);
        }
        #[cfg(feature = "etcd")]
        Failure::PlainHttp { endpoint } => {
            line.push(b"refusing plain HTTP to ").push(endpoint).push(
                b", which is not on this host: lock traffic would cross the network unencrypted. \
                  Run a TLS tunnel on loopback to each endpoint (socat or stunnel; see \
                  withlock(1), LOCKS IN ETCD) and lock etcd://127.0.0.1:PORT/NAME, or pass \
                  --insecure on a trusted network",
            );
        }
        #[cfg(feature = "etcd")]
        Failure::LeaseLost { why, last_try, kill_in_ms } => {
            line.push(b"lost the etcd lock ").push_quoted(lock).push(b": ").push(match why {
                Loss::NotRenewed => b"its lease could not be renewed in time".as_slice(),
                Loss::LeaseGone => b"etcd says its lease is gone",
                Loss::KeyGone => b"its key is gone from etcd",
                Loss::Watchdog => {
                    b"withlock could not renew its lease in time (it was stopped, traced, hung or starved \
                      of CPU), so its watchdog SIGKILLed the job's process group before the lease could expire"
                }
            });
            if !last_try.is_empty() {
                line.push(b" (last try: ").push(last_try).push(b")");
            }
            if *why != Loss::Watchdog {
                line.push(
                    b"; stopping the job before another host can take it (SIGTERM to its process group, SIGKILL in ",
                );
                crate::clock::push_measured(line, u64::from(*kill_in_ms) * 1_000_000);
                line.push(b")");
            }
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
    syslog::failure(failure, line);
}

/// Add who holds the lock at `path` ("held by pid 4242 (...), ..."); false
/// if it cannot be told (the file cannot be opened any more).
fn explain_holder(line: &mut Line, path: &CStr, verbose: bool) -> bool {
    let Ok(file) = sys::open_to_look(path) else { return false };
    let Ok(st) = sys::fstat(file.raw()) else { return false };
    let mut buf = [0u8; record::CAPACITY];
    let holder = holder::inspect(file.raw(), &st, &mut buf, true);
    holder::describe(line, &holder, verbose);
    true
}

#[cfg(feature = "etcd")]
/// How a failure to reach or trust etcd ends: what it means for the job.
const NOT_RUN: &[u8] = b"; the job was not run (exit 69)";

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
