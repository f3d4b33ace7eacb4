//! Who holds a lock: what the kernel shows, and what the holder record claims.
//!
//! The kernel says whether the lock is held and, through `/proc` (see
//! `proc`), by which process, and whether that process holds it still. The
//! record in the lock file says who took it, running what, since when; but
//! anyone who can write the file can write the record (the job itself, through
//! the descriptor it inherits, even after dropping its privileges). So the
//! record is shown, marked as what the record says, and never obeyed: it is
//! *current* when it agrees with the kernel's facts, and that decides only the
//! words used. What `--replace` signals is decided from the kernel's facts
//! alone (see `replace`).

use crate::proc::{self, Blind, Holds};
use crate::record::{self, Contents, Record};
use crate::sys;
use crate::text::Line;
use core::ffi::c_int;

/// Is the lock held, and by which process (the one that took the lock)?
/// `shared` counts the holders of a shared lock (0: exclusive, or unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Free,
    Held {
        locker: Option<u32>,
        shared: u32,
    },
    /// No holder is visible, but one could be where /proc/locks cannot see
    /// (`Holder::blind` says why).
    Unknown,
}

/// What the kernel shows of the process that took the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Locker {
    pub pid: u32,
    /// Whether it holds the lock now (see `proc::holds`).
    pub holds: Holds,
    /// Its user (see `proc::owner`; `None`: it has ended).
    pub uid: Option<u32>,
}

/// How the record compares with what the kernel shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// It names the process that holds the lock (and as its job that
    /// process or a child of it, when withlock stayed the job's parent).
    Current,
    /// It names the process that took the lock, which no longer holds it
    /// (it has exited, or closed it): something it started holds it.
    Exited,
    /// The lock is held, but not by the process the record names.
    Stale,
    /// The lock is free: the record tells who held it last.
    Last,
    /// Nothing to check it against here.
    Unverified,
}

/// Everything known about a lock's holder.
pub struct Holder<'a> {
    pub state: State,
    /// Why a holder may be missing from /proc/locks (`None`: none can be).
    pub blind: Option<Blind>,
    /// The process /proc/locks names, for an exclusive lock.
    pub locker: Option<Locker>,
    pub contents: Contents<'a>,
    pub trust: Trust,
    /// The lock file's owner and permission bits: who else could have
    /// written the record.
    pub file_uid: u32,
    pub file_mode: u32,
}

/// Read the start of the lock file (at most a record's worth).
pub fn read_contents(fd: c_int, buf: &mut [u8; record::CAPACITY]) -> &[u8] {
    let n = sys::pread(fd, buf, 0).unwrap_or(0);
    &buf[..n]
}

/// Find out who holds the lock on the open file `fd` (status `st`).
/// `known_held`: the caller found the lock busy. The lock is never tried:
/// a try, however short, could make a concurrent `withlock -q` skip its job.
pub fn inspect<'b>(
    fd: c_int,
    st: &libc::stat,
    buf: &'b mut [u8; record::CAPACITY],
    known_held: bool,
) -> Holder<'b> {
    let lockers = proc::lockers(fd, st);
    let state = match lockers {
        proc::Lockers { count: 1.., pid, shared, .. } => State::Held { locker: pid, shared },
        _ if known_held => State::Held { locker: None, shared: 0 },
        proc::Lockers { blind: None, .. } => State::Free,
        _ => State::Unknown,
    };
    let locker = match state {
        State::Held { locker: Some(pid), shared: 0 } => {
            Some(Locker { pid, holds: proc::holds(pid, st), uid: proc::process(pid).map(|p| p.uid) })
        }
        _ => None,
    };
    let contents = record::parse(read_contents(fd, buf));
    let trust = match (&contents, state, &locker) {
        (Contents::Record(_), State::Free, _) => Trust::Last,
        // Shared holders write no record: what there is names an earlier one.
        (Contents::Record(_), State::Held { shared: 1.., .. }, _) => Trust::Stale,
        (Contents::Record(r), _, Some(locker)) => judge(r, locker),
        _ => Trust::Unverified,
    };
    Holder {
        state,
        blind: lockers.blind,
        locker,
        contents,
        trust,
        file_uid: st.st_uid,
        file_mode: sys::permissions(st),
    }
}

// Out of line: inlined into `holder::inspect`, these cost a kilobyte more.
#[inline(never)]
fn judge(record: &Record, locker: &Locker) -> Trust {
    if record.locker.or(record.pid) != Some(locker.pid) {
        return Trust::Stale;
    }
    let Some(written) = record.boot_ns else { return Trust::Unverified };
    // A process that started after the record was written did not write it
    // (an earlier run's record, its pid reused). A forger can pass this, but
    // can then only make the record name the process that holds the lock.
    let before = |p: &proc::Process| p.started_ns() <= written;
    match locker.holds {
        Holds::No => Trust::Exited,
        Holds::Unseen => Trust::Unverified,
        _ if !proc::process(locker.pid).is_some_and(|p| before(&p)) => Trust::Stale,
        // The job is the locker, or its child when withlock stayed its parent.
        Holds::Yes => match record.pid {
            Some(job) if job == locker.pid => Trust::Current,
            Some(job)
                if proc::process(job).is_some_and(|p| p.ppid == locker.pid && p.alive() && before(&p)) =>
            {
                Trust::Current
            }
            _ => Trust::Stale,
        },
    }
}

/// Append the user name for `uid` (or "uid N" if it has none).
pub fn push_user(out: &mut Line, uid: u32) {
    if !crate::passwd::user_name(uid, |name| {
        out.push_quoted(name);
    }) {
        out.push(b"uid ").push_u64(u64::from(uid));
    }
}

/// Say who holds (or last held) the lock, as part of a sentence about it:
/// first what the kernel shows, then what the record says ("held by pid
/// 4242, user backup; the record says: rsync -a /srv /backup, since
/// 2026-11-26T02:00:01Z (3h 2m ago)"), or "free", and so on. `verbose` adds
/// the host and the writer's version.
pub fn describe(out: &mut Line, holder: &Holder, verbose: bool) {
    let record = match &holder.contents {
        Contents::Record(record) => Some(record),
        _ => None,
    };
    let (locker, shared) = match holder.state {
        State::Held { locker, shared } => (locker, shared),
        // Only --status looks at locks it did not find busy.
        #[cfg(not(feature = "status"))]
        State::Free | State::Unknown => return,
        #[cfg(feature = "status")]
        State::Free | State::Unknown => {
            if holder.state == State::Free {
                out.push(b"free");
            } else {
                out.push(b"unknown: no holder is visible, but ");
                push_blind(out, holder.blind);
            }
            if let Some(record) = record {
                out.push(b"; the record says it was last taken by ");
                push_claims(out, record, verbose, false);
                push_file_doubts(out, holder, record);
            }
            return;
        }
    };
    if shared > 0 {
        out.push(b"held shared by ").push_u64(u64::from(shared));
        out.push(if shared == 1 { b" process".as_slice() } else { b" processes" });
        if let Some(pid) = locker {
            out.push(b" (pid ").push_u64(u64::from(pid));
            out.push(if shared == 1 { b")".as_slice() } else { b" and others)" });
        }
        out.push(b"; shared holders keep no holder record");
        return;
    }
    let facts = holder.locker.filter(|l| Some(l.pid) == locker);
    match (locker, facts.map(|l| l.holds)) {
        // An fcntl lock names no process; a blind spot may hide one.
        (None, _) if holder.blind.is_none() => {
            out.push(b"held by another process");
        }
        (None, _) => {
            out.push(b"held by a process not visible from here (");
            push_blind(out, holder.blind);
            out.push(b")");
        }
        (Some(pid), Some(Holds::No)) => {
            out.push(b"held by what pid ").push_u64(u64::from(pid));
            out.push(b" left running (it has exited)");
        }
        (Some(pid), holds) => {
            out.push(b"held by pid ").push_u64(u64::from(pid));
            if let Some(uid) = facts.and_then(|l| l.uid) {
                out.push(b", user ");
                push_user(out, uid);
            }
            if holds != Some(Holds::Yes) {
                out.push(b" (whether it still holds the lock cannot be checked here)");
            }
        }
    }
    let Some(record) = record else {
        push_no_record(out, &holder.contents);
        return;
    };
    if holder.trust == Trust::Stale {
        out.push(b", which left no current record (the record is stale: it names ");
        push_claims(out, record, verbose, false);
        out.push(b")");
    } else {
        out.push(b"; the record says: ");
        push_claims(out, record, verbose, true);
    }
    push_file_doubts(out, holder, record);
}

/// Why /proc/locks may not show the holder.
fn push_blind(out: &mut Line, blind: Option<Blind>) {
    out.push(match blind {
        Some(Blind::PidNamespace) => b"/proc/locks hides other pid namespaces' holders".as_slice(),
        Some(Blind::Network) => b"/proc/locks hides other hosts' holders",
        Some(Blind::Device) => b"its inode may be locked under another device",
        _ => b"there is no /proc/locks",
    });
}

fn push_no_record(out: &mut Line, contents: &Contents) {
    out.push(match contents {
        Contents::Foreign => b" (the lock file holds no withlock record)".as_slice(),
        _ => b" (no holder record: not taken by withlock, or withlock could not write it)",
    });
}

/// Say who else than the record's user could have written the record.
fn push_file_doubts(out: &mut Line, holder: &Holder, record: &Record) {
    if holder.file_mode & 0o022 != 0 {
        out.push(b"; the lock file (mode ").push_mode(holder.file_mode);
        out.push(b") is writable by others");
    } else if holder.file_uid != 0 && record.uid != Some(holder.file_uid) {
        out.push(b"; the lock file belongs to ");
        push_user(out, holder.file_uid);
    } else {
        return;
    }
    out.push(b", who could have written that");
}

/// What the record says: "pid 4242 (rsync -a /srv /backup), user backup,
/// since ... (3h 2m ago)", all of it, also where the kernel has said the
/// same. `held`: the record is said to be the holder's ("since"), not an
/// earlier one's ("at").
pub fn push_claims(out: &mut Line, record: &Record, verbose: bool, held: bool) {
    if record.waiting {
        // LOCK, held as the gate by a `--slots N -w` job waiting for a slot.
        out.push(b"a waiter for one of ");
        match record.slots {
            Some(slots) => out.push(b"its ").push_u64(u64::from(slots)).push(b" slots, "),
            None => out.push(b"its slots, "),
        };
    }
    match record.pid {
        Some(pid) => out.push(b"pid ").push_u64(u64::from(pid)),
        None => out.push(b"an unknown pid"),
    };
    if let Some(command) = record.command {
        // Already escaped into printable ASCII by the writer; a forged record
        // is still kept to one safe line.
        out.push(b" (").push_printable(command);
        if record.command_cut {
            out.push(b" ...");
        }
        out.push(b")");
    }
    if let Some(uid) = record.uid {
        out.push(b", user ");
        push_user(out, uid);
    }
    if verbose && let Some(host) = record.host {
        out.push(b", on host ").push_quoted(host);
    }
    if let Some(since) = record.since {
        out.push(if held { b", since ".as_slice() } else { b", at " }).push_quoted(since);
        if let Some(then) = record.since_unix {
            let now = crate::clock::unix_now();
            // A date ahead of our clock (another host's clock, a forged
            // record) is said to be, not shown as "0s ago".
            let (age, when): (u64, &[u8]) =
                if then > now { (then - now, b" in the future)") } else { (now - then, b" ago)") };
            out.push(b" (");
            crate::clock::push_age(out, age);
            out.push(when);
        }
    }
    if verbose && let Some(version) = record.version {
        out.push(b", recorded by withlock ").push_quoted(version);
    }
    if !record.complete {
        out.push(b" (the record is incomplete)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: u32, boot_ns: Option<u64>) -> Record<'static> {
        Record { pid: Some(pid), locker: Some(pid), boot_ns, complete: true, ..Record::default() }
    }

    /// The record is judged against the kernel's facts (here about this test process),
    /// never the other way round.
    #[test]
    fn the_record_is_judged_by_the_kernels_facts() {
        let me = std::process::id();
        let now = crate::clock::boot_ns();
        let locker = |holds| Locker { pid: me, holds, uid: Some(0) };
        assert_eq!(judge(&record(me, Some(now)), &locker(Holds::Yes)), Trust::Current);
        // Written before this process started: an earlier run's, its pid reused.
        assert_eq!(judge(&record(me, Some(1)), &locker(Holds::Yes)), Trust::Stale);
        // Another process named, or none.
        assert_eq!(judge(&record(me + 1, Some(now)), &locker(Holds::Yes)), Trust::Stale);
        assert_eq!(judge(&Record::default(), &locker(Holds::Yes)), Trust::Stale);
        // The kernel names it, but it holds the lock no more; or it cannot be looked at.
        assert_eq!(judge(&record(me, Some(now)), &locker(Holds::No)), Trust::Exited);
        assert_eq!(judge(&record(me, Some(now)), &locker(Holds::Unseen)), Trust::Unverified);
        assert_eq!(judge(&record(me, None), &locker(Holds::Yes)), Trust::Unverified);
        // A job that is not the locker's child is not the holder's job.
        let job = Record { pid: Some(1), ..record(me, Some(now)) };
        assert_eq!(judge(&job, &locker(Holds::Yes)), Trust::Stale);
    }
}
