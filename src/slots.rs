//! `--slots N`: up to N copies of a job at once, each told its slot.
//!
//! Slot `i` (0 to N-1) is a lock file of its own, `LOCK.i`, next to LOCK:
//! opened, checked and locked exactly as any lock file (the walk to LOCK
//! vouches for the directory they share), re-checked after locking, and
//! holding its own holder record, which also says `slots=N` and `slot=i`.
//! The job holds its slot's lock as it would hold LOCK's, gets
//! `WITHLOCK_SLOT=i` in its environment, and inherits no other descriptor.
//!
//! Without `-w`, the slots are tried in order without waiting; the first
//! free one is taken, and if none is, the run is busy.
//!
//! With `-w`, LOCK itself is a *gate*: waiters take it in turn (a blocking
//! flock, as for any lock), so that one of them at a time waits for a slot.
//! Under the gate it tries every slot; if all are taken, it waits for any of
//! them in the kernel, without polling: one watcher process per slot blocks
//! in `flock` on a description of the slot's file of its own. The watcher
//! that gets its slot says so on its pipe and exits, which lets go of the
//! slot; withlock, blocked in `poll` on the watchers' pipes (as long as `-w`
//! allows, by the boot clock), then takes the slot itself on its own
//! descriptor — so the kernel names withlock (then the job) as the holder,
//! as the record does — or, if another job was quicker, waits on. A watcher
//! that dies without a word (killed) ends its pipe the same way, and its
//! slot is looked at again. A slot whose watcher cannot be started (the
//! process or descriptor limit) is tried every 0.1 s instead. Then withlock
//! kills and reaps every watcher, closes the descriptors of the other slots,
//! lets go of the gate and runs the job.
//!
//! A slot whose holder's current record names another N, or a held `LOCK.N`
//! (one past our last slot; looked at if it exists, never created), means
//! that jobs with different N share LOCK, and neither limit would hold:
//! that is refused, whichever slot is free (once a slot is ours, every
//! other one is looked at). Records are read, so two jobs with different N
//! that take their slots in the same instant may not see each other.
//!
//! Before anything is opened: the longest slot name must fit the file
//! system, and without `-w` LOCK (not opened then) must be what `-w` would
//! accept as the gate.
//!
//! A `LOCK.N` that exists where /proc/locks cannot show whether it is held
//! (see `holder::inspect`) is refused too: it is never tried, as a try
//! would make a job with more slots find it busy.

use crate::cli::Options;
use crate::duration::Wait;
use crate::error::Failure;
use crate::exec::{self, Argv};
use crate::holder::{self, State, Trust};
use crate::lock::{self, Locked};
use crate::record::{Contents, Record};
use crate::sys::{self, Errno, Fd};
use crate::{clock, record};
use core::ffi::{CStr, c_int};

/// The most slots a LOCK may have.
const MAX: u8 = crate::cli::MAX_SLOTS;

use crate::error::UNSEEN;

/// The slots' file names, `LOCK.i`, made one at a time after `LOCK.`.
struct Names {
    buf: [u8; crate::locate::PATH_MAX + 4],
    base: usize,
    /// The length of the last name made (0: none yet); failures from then
    /// on concern that slot's file.
    len: usize,
}

impl Names {
    fn of(&mut self, slot: u8) -> &CStr {
        let mut at = self.base;
        if slot >= 10 {
            self.buf[at] = b'0' + slot / 10;
            at += 1;
        }
        self.buf[at] = b'0' + slot % 10;
        self.buf[at + 1] = 0;
        self.len = at + 1;
        crate::text::c_str(&self.buf[..=self.len])
    }
}

/// The descriptors of the slots opened so far (-1: none). Those not taken
/// are closed before the job starts (on failure, exit closes them). The
/// bit `1 << slot` is set if that slot's descriptor is read-only (see
/// `lock::open_lock_file`).
struct Opened([c_int; MAX as usize], u64);

/// Take a slot of LOCK (`resolved` by the walk) and become the command, or
/// stay its `parent`; returns the exit code if withlock did not become it.
#[cold]
#[inline(never)]
pub fn run(resolved: &CStr, argv: Argv, options: &Options, lock: &[u8], parent: bool) -> c_int {
    let base = resolved.to_bytes();
    let mut names = Names { buf: [0; crate::locate::PATH_MAX + 4], base: base.len() + 1, len: 0 };
    names.buf[..base.len()].copy_from_slice(base);
    names.buf[base.len()] = b'.';
    let mut opened = Opened([-1; MAX as usize], 0);
    let failure = match take(resolved, options, lock, argv, &mut names, &mut opened) {
        Ok(slot) => {
            let fd = Fd::from_raw(core::mem::replace(&mut opened.0[usize::from(slot & 63)], -1));
            // Only the slot's descriptor goes to the job; closing the others
            // also lets go of any a second watcher won.
            for &other in &opened.0 {
                if other >= 0 {
                    sys::close(other);
                }
            }
            match sys::fstat(fd.raw()) {
                Ok(stat) => {
                    // The record goes through the slot's own descriptor, or
                    // a second one if that is read-only, as for a LOCK.
                    let writable = opened.1 & (1 << (slot & 63)) == 0;
                    let locked = Locked { fd, stat, writable };
                    let path = names.of(slot);
                    if options.verbose {
                        say_slot(path.to_bytes(), slot, options.slots);
                    }
                    let mut var = *b"WITHLOCK_SLOT=\0\0\0";
                    var[14] = b'0' + slot / 10;
                    var[14 + usize::from(slot >= 10)] = b'0' + slot % 10;
                    if exec::set_environment(&[&var]) {
                        let taken = crate::job::Slot { index: slot, of: options.slots };
                        match crate::job::run(locked, path, Some(taken), argv, options, parent) {
                            Ok(status) => return c_int::from(status),
                            Err(failure) => failure,
                        }
                    } else {
                        Failure::System { call: "setting WITHLOCK_SLOT", errno: Errno(libc::ENOMEM) }
                    }
                }
                Err(errno) => Failure::System { call: "fstat", errno },
            }
        }
        Err(failure) => failure,
    };

    // A failure on a slot's file names that file (the last one tried).
    let shown = match failure {
        Failure::Refused { .. } | Failure::CannotOpen { .. } | Failure::System { .. } if names.len > 0 => {
            &names.buf[..names.len]
        }
        _ => lock,
    };
    // Only the gate's failures (before any slot's name is made) name its
    // holder.
    let resolved = if names.len == 0 { resolved } else { c"" };
    crate::report::run_failed(&failure, shown, argv.iter().next().unwrap_or(b""), resolved, options)
}

/// Take a free slot of the lock at `gate` (LOCK), waiting for one as `-w`
/// says; its descriptor is left in `opened`.
fn take(
    gate: &CStr,
    options: &Options,
    lock: &[u8],
    argv: Argv,
    names: &mut Names,
    opened: &mut Opened,
) -> Result<u8, Failure<'static>> {
    let started = clock::boot_ns();
    let slots = options.slots;
    let waits = options.wait != Wait::No;
    if !waits {
        // LOCK is not opened without -w, but must be what it would be with.
        judge_gate(gate)?;
    }
    // The longest slot's name must fit, or a run would fail only when the
    // slots with shorter names are busy. (LOCK.N, only looked at, may not:
    // then no job with more slots can hold it.)
    match sys::lstat(names.of(slots - 1)) {
        Err(errno @ Errno(libc::ENAMETOOLONG)) => return Err(Failure::CannotOpen { errno, on_path: false }),
        _ => names.len = 0,
    }
    // The gate is held until we return, and never reaches the job. Its
    // record says who waits there, and for what.
    let _gate = if waits {
        let locked = lock::acquire(gate, options, lock)?;
        say_waiting(gate, &locked, slots, argv);
        Some(locked.fd)
    } else {
        None
    };
    'again: loop {
        // Someone holds the slot past our last: a job with more slots.
        if let Some(theirs) = held_by_other_n(names.of(slots), slots, slots) {
            return Err(Failure::SlotsMixed { slot: slots, ours: slots, theirs });
        }
        let mut slot = 0;
        // Every slot in order, without waiting: the first free one is ours.
        // The descriptors of the busy ones are kept, to wait on.
        while slot < slots {
            let Some((fd, _, writable)) = lock::open_lock_file(names.of(slot), options)? else {
                continue 'again; // Removed as we opened it.
            };
            let bit = 1u64 << (slot & 63);
            opened.1 = if writable { opened.1 & !bit } else { opened.1 | bit };
            let fd = fd.into_raw();
            let old = core::mem::replace(&mut opened.0[usize::from(slot & 63)], fd);
            if old >= 0 {
                sys::close(old);
            }
            match sys::flock(fd, libc::LOCK_EX | libc::LOCK_NB) {
                Ok(()) => break,
                Err(Errno(libc::EWOULDBLOCK)) => {
                    if let Some(theirs) = mixed(fd, slot, slots, true) {
                        return Err(Failure::SlotsMixed { slot, ours: slots, theirs });
                    }
                }
                Err(errno) => return Err(Failure::System { call: "flock", errno }),
            }
            slot += 1;
        }
        if slot == slots {
            if !waits {
                return Err(Failure::SlotsBusy { slots });
            }
            if options.verbose {
                lock::announce_wait(lock, options.wait);
            }
            match wait_for_any(names, opened, slots, options.wait, started)? {
                Some(ours) => slot = ours,
                None => continue 'again,
            }
        }
        // The name must still be the file we locked: one removed or
        // replaced meanwhile guards nothing. Then look again.
        let fd = opened.0[usize::from(slot & 63)];
        let same = |now: libc::stat| sys::fstat(fd).is_ok_and(|st| sys::same_file(&now, &st));
        if sys::lstat(names.of(slot)).is_ok_and(same) {
            // Every other slot, whichever this one is: a job with another N
            // on any of them is refused.
            for other in (0..=slots).filter(|&other| other != slot) {
                if let Some(theirs) = held_by_other_n(names.of(other), other, slots) {
                    return Err(Failure::SlotsMixed { slot: other, ours: slots, theirs });
                }
            }
            return Ok(slot);
        }
    }
    // Returning lets go of the gate before the job starts.
}

/// Without `-w`, LOCK itself is not opened; what stands there must still be
/// what `-w` would accept as the gate: nothing yet, or a regular file.
fn judge_gate(gate: &CStr) -> Result<(), Failure<'static>> {
    // Missing (or for the slots' own opens to tell): fine.
    sys::lstat(gate).map_or(Ok(()), |seen| lock::judge_kind(&seen))
}

/// Is the slot file `name` (slot `slot`, or LOCK.N) held by a job with
/// another N? It is only looked at, never created.
fn held_by_other_n(name: &CStr, slot: u8, ours: u8) -> Option<u32> {
    let file = sys::open_to_look(name).ok()?;
    mixed(file.raw(), slot, ours, false)
}

/// Refuse to run beside jobs with another N (`ours`): when the slot `slot`
/// (open at `fd`; `busy` if we found it so) is held and has a current
/// holder record with another `slots=`, or when `slot` is N and held at
/// all, or may be held where /proc/locks cannot show it (another pid
/// namespace, another host). The record must be the current holder's: an
/// earlier one may be there for an instant after the lock changed hands.
fn mixed(fd: c_int, slot: u8, ours: u8, busy: bool) -> Option<u32> {
    let mut buf = [0u8; record::CAPACITY];
    let stat = sys::fstat(fd).ok()?;
    let past = slot == ours;
    let holder = holder::inspect(fd, &stat, &mut buf, busy);
    let theirs = match holder.contents {
        Contents::Record(Record { slots, .. }) if holder.trust != Trust::Stale => slots,
        _ => None,
    };
    match (holder.state, theirs) {
        (State::Free, _) => None,
        (State::Unknown, _) if past => Some(UNSEEN),
        (State::Unknown, _) => None,
        (_, Some(theirs)) if theirs != u32::from(ours) => Some(theirs),
        _ if past => Some(0),
        _ => None,
    }
}

/// A watcher process, waiting in `flock` on its own description of a slot
/// file; it writes a byte to its pipe when it has the lock, then exits (its
/// exit lets go of that lock, for withlock to take on its own description).
#[derive(Clone, Copy)]
struct Watcher {
    pid: libc::pid_t,
    /// The read end of its pipe (-1: no watcher; the slot is polled).
    pipe: c_int,
}

impl Watcher {
    const NONE: Watcher = Watcher { pid: 0, pipe: -1 };

    /// Kill (if still there) and collect the watcher; close its pipe.
    fn end(&mut self) {
        if self.pid > 0 {
            // Our own child, not reaped yet.
            let _ = sys::kill(self.pid, libc::SIGKILL);
            let _ = sys::waitpid(self.pid, 0);
        }
        if self.pipe >= 0 {
            sys::close(self.pipe);
        }
        *self = Watcher::NONE;
    }
}

/// How often a slot without a watcher (none could be started: the process
/// or descriptor limit) is tried instead.
const POLL_MS: c_int = 100;

/// Wait, as long as `wait` allows from `started` (a `boot_ns`), until one
/// of the slots (all busy when called, open at `opened`) is ours: locked on
/// our own descriptor. `None`: a slot's file was replaced meanwhile; look
/// at them all again.
///
/// Each slot has a watcher process blocked in `flock` (see [`Watcher`]), so
/// that the wait is in the kernel. When a watcher says it has its slot, or
/// dies (a killed watcher must not lose its slot), withlock tries that slot
/// itself, and restarts the watcher if it is busy again. A slot whose
/// watcher cannot be started is tried every [`POLL_MS`] instead.
fn wait_for_any(
    names: &mut Names,
    opened: &Opened,
    slots: u8,
    wait: Wait,
    started: u64,
) -> Result<Option<u8>, Failure<'static>> {
    let deadline = match wait {
        Wait::For(limit) => {
            Some((started.saturating_add(u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX)), limit))
        }
        _ => None,
    };
    let mut watchers = [Watcher::NONE; MAX as usize];
    let outcome = 'wait: loop {
        let mut polled = false;
        for slot in 0..slots {
            let i = usize::from(slot & 63);
            if watchers[i].pipe >= 0 {
                continue;
            }
            match sys::flock(opened.0[i], libc::LOCK_EX | libc::LOCK_NB) {
                Ok(()) => break 'wait Ok(Some(slot)),
                Err(Errno(libc::EWOULDBLOCK)) => {}
                Err(errno) => break 'wait Err(Failure::System { call: "flock", errno }),
            }
            match start_watcher(names.of(slot), opened.0[i]) {
                Ok(Some(watcher)) => watchers[i] = watcher,
                Ok(None) => break 'wait Ok(None),
                Err(_) => polled = true,
            }
        }
        // Time is up only when the clock says so: poll's timeout is capped
        // (24.8 days), and may end early.
        let now = clock::boot_ns();
        let timeout = match deadline {
            Some((deadline, limit)) if now >= deadline => {
                break 'wait Err(Failure::TimedOut(limit));
            }
            Some((deadline, _)) => {
                c_int::try_from((deadline - now).div_ceil(1_000_000)).unwrap_or(c_int::MAX)
            }
            None => -1,
        };
        let timeout = if polled && !(0..=POLL_MS).contains(&timeout) { POLL_MS } else { timeout };
        let mut fds = [libc::pollfd { fd: -1, events: libc::POLLIN, revents: 0 }; MAX as usize];
        for (pollfd, watcher) in fds.iter_mut().zip(&watchers).take(usize::from(slots)) {
            pollfd.fd = watcher.pipe; // -1 (no watcher) is ignored by poll.
        }
        match sys::poll(&mut fds[..usize::from(slots)], timeout) {
            Ok(_) => {}
            Err(Errno(libc::EINTR)) => continue,
            Err(errno) => break 'wait Err(Failure::System { call: "poll", errno }),
        }
        for (pollfd, watcher) in fds.iter().zip(watchers.iter_mut()).take(usize::from(slots)) {
            if pollfd.revents != 0 {
                // It has the slot (a byte) or died (the end of the pipe):
                // either way, once it is gone, try the slot ourselves.
                watcher.end();
            }
        }
    };
    for watcher in &mut watchers {
        watcher.end();
    }
    outcome
}

/// Start a watcher for the slot file `name`, open (by withlock) at `ours`.
/// `Ok(None)`: `name` is no longer that file. `Err`: no watcher can be
/// started now (a process or descriptor limit).
fn start_watcher(name: &CStr, ours: c_int) -> Result<Option<Watcher>, Errno> {
    // Its own open file description: the lock it takes is not ours, and
    // leaves with it.
    let theirs = match sys::open_to_look(name) {
        Ok(fd) => fd,
        Err(Errno(libc::ENOENT | libc::ELOOP)) => return Ok(None),
        Err(errno) => return Err(errno),
    };
    match (sys::fstat(theirs.raw()), sys::fstat(ours)) {
        (Ok(a), Ok(b)) if sys::same_file(&a, &b) => {}
        (Ok(_), Ok(_)) => return Ok(None),
        (Err(errno), _) | (_, Err(errno)) => return Err(errno),
    }
    let ends = sys::pipe(false)?;
    let parent = sys::getpid();
    // The child only locks, writes and exits.
    match sys::fork() {
        Err(errno) => {
            sys::close(ends[0]);
            sys::close(ends[1]);
            Err(errno)
        }
        Ok(sys::Forked::Child) => watch(theirs.raw(), ends[1], parent),
        Ok(sys::Forked::Parent(pid)) => {
            // Only the watcher may write: when it ends, the pipe says so.
            sys::close(ends[1]);
            Ok(Some(Watcher { pid, pipe: ends[0] }))
        }
    }
}

/// A watcher: lock `fd` (its own description of a slot file), waiting as
/// long as it takes, tell the parent on `to`, and exit. It dies with the
/// parent.
fn watch(fd: c_int, to: c_int, parent: libc::pid_t) -> ! {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    // A parent gone already is not waiting.
    while sys::getppid() == parent {
        match sys::flock(fd, libc::LOCK_EX) {
            Ok(()) => {
                sys::write_all(to, &[1]);
                break;
            }
            Err(Errno(libc::EINTR)) => {}
            Err(_) => break,
        }
    }
    sys::exit_now(0)
}

/// Write the record of a waiter into the gate it holds (see [`record`]).
#[cold]
#[inline(never)]
fn say_waiting(gate: &CStr, locked: &Locked, slots: u8, argv: Argv) {
    let uts = sys::uname();
    let mut facts = record::Facts::now(None, record::host_name(&uts));
    (facts.slots, facts.waiting) = (slots, true);
    let mut buf = crate::text::LineBuf::<{ record::CAPACITY }>::new();
    record::store_in(buf.line(), gate, locked.record_target(), &facts, argv.iter());
}

#[cold]
#[inline(never)]
fn say_slot(name: &[u8], slot: u8, slots: u8) {
    let mut buf = crate::text::diagnostic();
    let line = buf.line();
    line.push(b"took slot ").push_u64(u64::from(slot)).push(b" of ").push_u64(u64::from(slots));
    line.push(b": ").push_quoted(name);
    line.emit();
}
