//! `--replace`: stop the process the kernel shows holding the lock, and take
//! its place.
//!
//! The holder record is a claim anyone who can write the lock file can
//! forge (the job itself can, through its inherited descriptor, after
//! dropping to `nobody`), so it never names whom to signal. The target is the
//! locker `/proc/locks` names, and only if:
//!
//! * it is not pid 0 or 1 (pid 1 of a pid namespace is a container's first
//!   process; its group is every process in it), and it belongs to the
//!   caller (its /proc entry does: its effective user, and not a process
//!   that changed its ids), or the caller is root;
//! * its open files hold the lock now (`proc::holds`): a pid that was reused
//!   after the process that took the lock ended holds nothing;
//! * the record agrees (it names that process, as the job or as the parent
//!   of the job): `--replace` replaces withlock jobs, not flock(1) users.
//!
//! Its process group is signalled only if `/proc` says it leads that group;
//! when withlock stayed the job's parent, the job (a child of the locker,
//! as `/proc` says) gets the SIGKILL too. SIGTERM goes first; right before
//! the SIGKILL everything is checked again, from /proc/locks on: the process
//! may have ended and its pid been reused, or a waiter may hold the lock now.
//! (Between a check and its signal there are a few system calls: a pid is
//! not reused that fast. A pidfd would close even that gap, at a price in
//! size the 64 KB goal cannot pay.)

use crate::cli::DEFAULT_KILL_AFTER;
use crate::cli::Options;
use crate::error::Failure;
use crate::flock;
use crate::holder::{self, Holder, State, Trust};
use crate::proc::{self, Holds};
use crate::record::{self, Contents};
use crate::sys::{self, Fd};
use crate::text;
use crate::timer::{Deadline, Missed};
use core::ffi::c_int;
use core::time::Duration;

/// How long a job has to die after SIGKILL before `--replace` gives up: the
/// kernel frees the lock as soon as the last process holding it is gone,
/// unless something outside the job's process group keeps it.
const AFTER_SIGKILL: Duration = Duration::from_secs(5);

/// A process to signal, checked.
struct Target {
    pid: u32,
    /// It leads its process group: signal the group.
    group: bool,
}

/// Stop the holder of the lock on `fd` (the file `st`), and take the lock.
pub fn replace_holder(
    fd: Fd,
    st: &libc::stat,
    options: &Options,
    lock: &[u8],
) -> Result<Fd, Failure<'static>> {
    let mut buf = [0u8; record::CAPACITY];
    let holder = holder::inspect(fd.raw(), st, &mut buf, true);
    let pid = locker_of(&holder)?;
    let locker = check(pid, None, st)?;
    let job = match (&holder.contents, holder.trust) {
        (Contents::Record(record), Trust::Current) => record.pid.filter(|&job| job != pid),
        _ => {
            return Err(Failure::CannotReplace("its holder is not provably the job its record names"));
        }
    };
    let job = job.map(|job| check(job, Some(pid), st)).transpose()?;

    // Wait on a duplicate: a deadline closes what it waits on when it expires.
    let wait = |limit: Duration| -> Result<bool, Failure<'static>> {
        let dup = sys::dup_cloexec(fd.raw()).map_err(|errno| Failure::System { call: "dup", errno })?;
        let deadline =
            Deadline::start(limit).map_err(|errno| Failure::System { call: "setitimer", errno })?;
        match deadline.lock(dup, |fd| flock::take(options, fd, true)) {
            Ok(_dup) => Ok(true),
            Err(Missed::Expired) => Ok(false),
            Err(Missed::Failed(errno)) => Err(Failure::System { call: flock::lock_call(options), errno }),
        }
    };
    // SIGTERM to the locker only: a withlock that stayed its job's parent
    // passes it on, and a job should not see it twice.
    signal(&locker, libc::SIGTERM, lock, &holder, options.verbose);
    if wait(options.kill_after.unwrap_or(DEFAULT_KILL_AFTER))? {
        return Ok(fd);
    }

    // Check again: the same process must hold the lock, not a new one.
    let mut buf = [0u8; record::CAPACITY];
    let again = holder::inspect(fd.raw(), st, &mut buf, true);
    let changed = || Failure::CannotReplace(CHANGED);
    if locker_of(&again).ok() != Some(pid) {
        return Err(changed());
    }
    // Each target as it is now; or, if it led a group and has ended, what
    // is left of that group (whose id is not reused while it has members).
    let mut sent = false;
    for (target, parent) in [(job.as_ref(), Some(pid)), (Some(&locker), None)] {
        let Some(target) = target else { continue };
        let now = check(target.pid, parent, st).ok().or_else(|| {
            let ended = !proc::process(target.pid).is_some_and(|p| p.alive());
            // Signal 0 only asks whether the group has members.
            let left = target.group && ended && sys::kill(-(target.pid as libc::pid_t), 0).is_ok();
            left.then_some(Target { pid: target.pid, group: true })
        });
        if let Some(now) = now {
            signal(&now, libc::SIGKILL, lock, &holder, options.verbose);
            sent = true;
        }
    }
    if !sent {
        return Err(changed());
    }
    if wait(AFTER_SIGKILL)? {
        return Ok(fd);
    }
    Err(Failure::CannotReplace(
        "the lock is still held 5s after SIGKILL: a process outside the job's group keeps it",
    ))
}

const EXITED: &str = "its holder has exited; what it left running holds the lock (stop that by hand)";
const CHANGED: &str = "after SIGTERM, others hold the lock: no SIGKILL sent";

/// The process /proc/locks names as the holder of an exclusive lock.
fn locker_of(holder: &Holder) -> Result<u32, Failure<'static>> {
    match holder.state {
        State::Held { locker: Some(pid), shared: 0 } => Ok(pid),
        State::Held { shared: 1.., .. } => Err(Failure::CannotReplace("it is held shared")),
        _ => Err(Failure::CannotReplace("its holder is not visible from here")),
    }
}

/// Check `pid` as the module docs say: above 1, alive, the caller's (or
/// root calls), and holding the lock on the file `st` (`parent`: none),
/// or a child of `parent`.
fn check(pid: u32, parent: Option<u32>, st: &libc::stat) -> Result<Target, Failure<'static>> {
    if pid <= 1 {
        return Err(Failure::CannotReplace("its holder is pid 1, never signalled"));
    }
    let exited = Failure::CannotReplace(EXITED);
    let Some(process) = proc::process(pid).filter(proc::Process::alive) else { return Err(exited) };
    let euid = sys::geteuid();
    if euid != 0 && process.uid != euid {
        return Err(Failure::ReplaceForbidden { pid, uid: process.uid });
    }
    match parent {
        Some(parent) if process.ppid != parent => return Err(exited),
        Some(_) => {}
        None => match proc::holds(pid, st) {
            Holds::Yes => {}
            Holds::No => return Err(exited),
            Holds::Unseen => {
                return Err(Failure::CannotReplace("its holder's open files cannot be looked at"));
            }
        },
    }
    Ok(Target { pid, group: process.pgrp == pid })
}

/// Send `signal` to `target` (its group if it leads one), the job of
/// `holder` (said with `-v`, and logged with `--syslog`).
fn signal(target: &Target, signal: c_int, lock: &[u8], holder: &Holder, verbose: bool) {
    if target.pid <= 1 {
        return; // Never: checked before, and kill(-1) is everyone.
    }
    if verbose || crate::syslog::enabled() {
        say_signalling(lock, signal, target.pid, target.group, holder, verbose);
    }
    let pid = target.pid as libc::pid_t;
    // The pid is above 1, checked.
    let _ = sys::kill(if target.group { -pid } else { pid }, signal);
}

#[cold]
#[inline(never)]
fn say_signalling(lock: &[u8], signal: c_int, pid: u32, group: bool, holder: &Holder, verbose: bool) {
    let mut buf = text::diagnostic();
    let line = buf.line();
    line.push(b"replacing the holder of ").push_quoted(lock).push(b" (");
    holder::describe(line, holder, verbose);
    line.push(b"): sending ");
    line.push(if signal == libc::SIGKILL { b"SIGKILL".as_slice() } else { b"SIGTERM" });
    line.push(if group { b" to process group ".as_slice() } else { b" to pid " }).push_u64(u64::from(pid));
    crate::syslog::emit(line, crate::syslog::Severity::Notice, verbose);
}
