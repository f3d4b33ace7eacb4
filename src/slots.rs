//! `--slots N`: up to N copies of a job at once, each told its slot.
//!
//! Slot `i` (0 to N-1) is a lock file of its own, `LOCK.i`, next to LOCK:
//! opened, checked and locked exactly as any lock file (the walk to LOCK
//! vouches for the directory they share), and holding its own holder
//! record, which also says `slots=N` and `slot=i`. The job holds its slot's
//! lock as it would hold LOCK's, gets `WITHLOCK_SLOT=i` in its environment,
//! and inherits no other descriptor.
//!
//! Without `-w`, the slots are tried in order without waiting; the first
//! free one is taken, and if none is, the run is busy.
//!
//! With `-w`, LOCK itself is a *gate*: waiters take it in turn (a blocking
//! flock, bounded by `-w` as for any lock), so that only one of them at a
//! time waits for a slot. Under the gate it tries every slot; if all are
//! taken, it waits for any of them in the kernel, with no polling: one
//! watcher process per slot blocks in `flock` on the descriptor it
//! inherited from withlock. A flock lock belongs to the open file
//! description, which watcher and withlock share, so the watcher that gets
//! its slot has got it for withlock. It says which on a pipe (a descriptor,
//! so `-w`'s deadline can end the wait without a race; see `timer`) and
//! exits; withlock kills and reaps every watcher, and closes the
//! descriptors of the other slots, which also lets go of a slot a second
//! watcher may have won meanwhile (withlock held the last reference to it).
//! Then it lets go of the gate and becomes the job.
//!
//! A slot whose busy holder records another N, or a held `LOCK.N` (a slot
//! past ours, never created here), means that jobs with different N share
//! LOCK: that is refused, since neither limit would then hold.

use crate::cli::Options;
use crate::duration::Wait;
use crate::error::Failure;
use crate::exec::{self, Argv};
use crate::holder::{self, State, Trust};
use crate::lock::{self, Locked};
use crate::once::TakeOnce;
use crate::record::{self, Contents, Record};
use crate::sys::{self, Errno, Fd};
use crate::text::{Line, LineBuf};
use crate::timer::{Deadline, Missed};
use core::cell::Cell;
use core::ffi::{CStr, c_char, c_int};
use core::time::Duration;

/// The most slots a LOCK may have.
pub const MAX: u8 = 64;

/// The descriptors of the slots opened so far (-1: none), closed on drop.
struct Opened([c_int; MAX as usize]);

impl Drop for Opened {
    fn drop(&mut self) {
        for &fd in &self.0 {
            if fd >= 0 {
                sys::close(fd);
            }
        }
    }
}

/// Take a slot of LOCK (`resolved` by the walk, if `walked`) and become the
/// command; returns the exit code if it did not run.
#[cold]
#[inline(never)]
pub fn run(
    walked: Result<(), Failure<'static>>,
    resolved: &CStr,
    argv: Argv,
    options: &Options,
    lock: &[u8],
) -> c_int {
    let mut name = LineBuf::<{ crate::locate::PATH_MAX + 8 }>::new();
    let mut opened = Opened([-1; MAX as usize]);
    let walk_failed = walked.is_err();
    let failure = match walked.and_then(|()| take(resolved, options, lock, name.line(), &mut opened)) {
        Ok(slot) => {
            let fd = Fd::from_raw(core::mem::replace(&mut opened.0[usize::from(slot)], -1));
            drop(opened); // Only the slot's descriptor goes to the job.
            match sys::fstat(fd.raw()) {
                Ok(stat) => {
                    // Not `writable`: the record goes through a descriptor
                    // of its own.
                    let locked = Locked { fd, stat, writable: false };
                    // SAFETY: all-zero is a valid utsname, for uname to fill.
                    let mut uts = unsafe { core::mem::zeroed() };
                    let mut facts = record::Facts::now(None, record::host_name(&mut uts));
                    (facts.slots, facts.slot) = (options.slots, slot);
                    record::store(
                        slot_path(name.line(), resolved.to_bytes(), slot),
                        &locked,
                        &facts,
                        argv.iter(),
                    );
                    let mut var = *b"WITHLOCK_SLOT=\0\0\0";
                    var[14] = b'0' + slot / 10;
                    var[14 + usize::from(slot >= 10)] = b'0' + slot % 10;
                    match set_environment(&var) {
                        Ok(()) => exec::become_command(locked.fd, argv, options.verbose),
                        Err(errno) => Failure::System { call: "setting WITHLOCK_SLOT", errno },
                    }
                }
                Err(errno) => Failure::System { call: "fstat", errno },
            }
        }
        Err(failure) => failure,
    };

    let conflict = options.conflict_exit_code.unwrap_or(if options.quiet { 0 } else { crate::exit::BUSY });
    if !(options.quiet && failure.is_conflict()) {
        // A failure on a slot's file names that file (the last one tried).
        let tried = name.line().as_bytes();
        let shown = match failure {
            Failure::Refused { .. } | Failure::CannotOpen { .. } | Failure::System { .. }
                if !tried.is_empty() =>
            {
                &tried[..tried.len() - 1]
            }
            _ => lock,
        };
        // Only the walk's failures name a place on the way to LOCK.
        let resolved = if walk_failed { resolved } else { c"" };
        failure.report(shown, argv.iter().next().unwrap_or(b""), resolved, options.verbose);
    }
    c_int::from(failure.exit_code(conflict))
}

/// `base.slot`, in `buf`.
fn slot_path<'b>(buf: &'b mut Line, base: &[u8], slot: u8) -> &'b CStr {
    buf.clear();
    buf.push(base).push(b".").push_u64(u64::from(slot)).push(b"\0");
    CStr::from_bytes_with_nul(buf.as_bytes()).unwrap_or(c"")
}

/// Take a free slot of the lock at `gate` (LOCK), waiting for one as `-w`
/// says; its descriptor is left in `opened`.
fn take(
    gate: &CStr,
    options: &Options,
    lock: &[u8],
    name: &mut Line,
    opened: &mut Opened,
) -> Result<u8, Failure<'static>> {
    let base = gate.to_bytes();
    let limit = match options.wait {
        Wait::No => return scan(base, options, name, opened),
        Wait::For(limit) => limit,
        Wait::Forever => FOREVER,
    };
    let mut deadline = None;
    let _gate = lock::acquire_until(gate, options, lock, &mut deadline)?;
    loop {
        match scan(base, options, name, opened) {
            Err(Failure::SlotsBusy { .. }) => {}
            taken => return taken,
        }
        if options.verbose {
            lock::announce_wait(lock, options.wait);
        }
        let slot = wait_for_any(&opened.0[..usize::from(options.slots)], limit, &mut deadline)?;
        let stat = sys::fstat(opened.0[usize::from(slot)])
            .map_err(|errno| Failure::System { call: "fstat", errno })?;
        if same_file(slot_path(name, base, slot), &stat)? {
            return Ok(slot);
        }
        // Removed while we waited: it guards nothing. Look again.
    }
    // Returning lets go of the gate and disarms the deadline, before the
    // job starts.
}

/// How long `-w forever` waits for a slot: longer than any system runs.
const FOREVER: Duration = Duration::from_secs(i32::MAX as u64);

/// Try every slot in order, without waiting: the first free one is taken.
/// The descriptors of all the slots tried are kept in `opened`.
fn scan(
    base: &[u8],
    options: &Options,
    name: &mut Line,
    opened: &mut Opened,
) -> Result<u8, Failure<'static>> {
    let slots = options.slots;
    // Another N: someone holds the slot past our last.
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    if let Ok(file) = sys::open(slot_path(name, base, slots), flags, 0) {
        mixed(file.raw(), slots, slots)?;
    }
    for slot in 0..slots {
        loop {
            let path = slot_path(name, base, slot);
            let Some((fd, stat, _)) = lock::open_lock_file(path, options)? else { continue };
            let fd = fd.into_raw();
            let old = core::mem::replace(&mut opened.0[usize::from(slot)], fd);
            if old >= 0 {
                sys::close(old);
            }
            match sys::flock(fd, libc::LOCK_EX | libc::LOCK_NB) {
                Ok(()) if same_file(path, &stat)? => return Ok(slot),
                Ok(()) => {} // Removed as we locked it: open the name afresh.
                Err(Errno(libc::EWOULDBLOCK)) => {
                    mixed(fd, slot, slots)?;
                    break;
                }
                Err(errno) => return Err(Failure::System { call: "flock", errno }),
            }
        }
    }
    Err(Failure::SlotsBusy { slots })
}

/// Does `path` still name the file we locked (`stat`)?
fn same_file(path: &CStr, stat: &libc::stat) -> Result<bool, Failure<'static>> {
    match sys::lstat(path) {
        Ok(now) => Ok(now.st_dev == stat.st_dev && now.st_ino == stat.st_ino),
        Err(Errno(libc::ENOENT)) => Ok(false),
        Err(errno) => Err(Failure::System { call: "lstat", errno }),
    }
}

/// Refuse to run beside jobs with another N (`ours`): when slot `slot`
/// (open at `fd`, and busy) has a current holder record that says so, or
/// when `slot` is N and held at all. A record must be the current holder's:
/// an earlier one may still be there for an instant after the lock changed
/// hands.
fn mixed(fd: c_int, slot: u8, ours: u8) -> Result<(), Failure<'static>> {
    let mut buf = [0u8; record::CAPACITY];
    let theirs = match record::parse(holder::read_contents(fd, &mut buf)) {
        Contents::Record(Record { slots: Some(theirs), .. }) if theirs != u32::from(ours) => Some(theirs),
        _ if slot < ours => return Ok(()),
        _ => None,
    };
    let Ok(stat) = sys::fstat(fd) else { return Ok(()) };
    let holder = holder::inspect(fd, &stat, &mut buf, slot < ours);
    if holder.state == State::Free || matches!(holder.trust, Trust::Stale | Trust::Last) && slot < ours {
        return Ok(());
    }
    Err(Failure::SlotsMixed { slot, ours, theirs })
}

/// Wait in the kernel, at most `limit` (see `deadline`), until one of the
/// slots open at `busy` is ours (see the module docs). Returns the slot.
fn wait_for_any(
    busy: &[c_int],
    limit: Duration,
    deadline: &mut Option<Deadline>,
) -> Result<u8, Failure<'static>> {
    let mut ends = [0; 2];
    let mut watchers = [0; MAX as usize];
    let won = Cell::new(0);
    // SAFETY: pipe fills the two descriptors of `ends`.
    let outcome = match unsafe { libc::pipe(ends.as_mut_ptr()) } {
        -1 => Err(Missed::Failed(sys::errno())),
        _ => {
            let (from, to) = (Fd::from_raw(ends[0]), Fd::from_raw(ends[1]));
            // SAFETY: getpid cannot fail.
            let parent = unsafe { libc::getpid() };
            let mut forked = Ok(());
            for (slot, (&fd, watcher)) in busy.iter().zip(&mut watchers).enumerate() {
                // SAFETY: withlock is single-threaded; the child only locks,
                // writes and exits.
                match unsafe { libc::fork() } {
                    -1 => forked = Err(Missed::Failed(sys::errno())),
                    0 => watch(fd, to.raw(), slot as u8, parent),
                    pid => *watcher = pid,
                }
            }
            // Only watchers may write: if they all end without a slot, read
            // sees the end of the pipe instead of waiting forever.
            drop(to);
            forked.and_then(|()| {
                let armed = match deadline {
                    Some(armed) => armed,
                    None => deadline.insert(Deadline::start(limit).map_err(Missed::Failed)?),
                };
                armed.lock(from, |fd| {
                    let mut slot = 0u8;
                    // SAFETY: `slot` is valid for a write of one byte.
                    match unsafe { libc::read(fd, (&raw mut slot).cast(), 1) } {
                        1 => {
                            won.set(slot);
                            Ok(())
                        }
                        0 => Err(Errno(libc::ECHILD)),
                        _ => Err(sys::errno()),
                    }
                })
            })
        }
    };
    for &pid in &watchers {
        // SAFETY: kill and waitpid on our own child, which is not reaped
        // yet; no status is wanted.
        while pid > 0
            && unsafe { libc::kill(pid, libc::SIGKILL) } == 0
            && unsafe { libc::waitpid(pid, core::ptr::null_mut(), 0) } == -1
            && sys::errno() == Errno(libc::EINTR)
        {}
    }
    match outcome {
        Ok(_) => Ok(won.get()),
        Err(Missed::Expired) => Err(Failure::TimedOut(limit)),
        Err(Missed::Failed(errno)) => Err(Failure::System { call: "waiting for a slot", errno }),
    }
}

/// A watcher: lock `fd` (the parent's descriptor of `slot`), waiting as
/// long as it takes, then tell the parent on `to`. It dies with the parent.
fn watch(fd: c_int, to: c_int, slot: u8, parent: libc::pid_t) -> ! {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    // SAFETY: getppid cannot fail. A parent gone already is not waiting.
    while unsafe { libc::getppid() } == parent {
        match sys::flock(fd, libc::LOCK_EX) {
            Ok(()) => {
                // SAFETY: `slot` is valid for a read of one byte.
                unsafe { libc::write(to, (&raw const slot).cast(), 1) };
                break;
            }
            Err(Errno(libc::EINTR)) => {}
            Err(_) => break,
        }
    }
    // SAFETY: _exit takes a plain integer and never returns.
    unsafe { libc::_exit(0) }
}

unsafe extern "C" {
    /// The C library's environment, which `execvp` passes on.
    static mut environ: *const *const c_char;
}

/// How many environment variables a job of `--slots` may have.
const ENVIRONMENT_MAX: usize = 4096;

/// The job's environment: the caller's, with `var` in place of any
/// `WITHLOCK_SLOT`. In static memory (no allocator): pages are touched only
/// as far as the environment goes.
static ENVIRONMENT: TakeOnce<[usize; ENVIRONMENT_MAX]> = TakeOnce::new([0; ENVIRONMENT_MAX]);

/// Make `var` (`WITHLOCK_SLOT=i`, which must live until exec) part of the
/// environment the command gets.
fn set_environment(var: &[u8]) -> Result<(), Errno> {
    let Some(new) = ENVIRONMENT.take() else { return Err(Errno(libc::EBUSY)) };
    // SAFETY: `environ` is the C library's environment: null or a
    // null-terminated array of C strings, which nothing else changes now.
    let mut old = unsafe { environ };
    let mut len = 0;
    // SAFETY: as above; we stop at the null.
    while !old.is_null() && !unsafe { *old }.is_null() {
        // SAFETY: a C string of the environment.
        let entry = unsafe { CStr::from_ptr(*old) };
        if !entry.to_bytes().starts_with(b"WITHLOCK_SLOT=") {
            if len + 2 >= ENVIRONMENT_MAX {
                return Err(Errno(libc::E2BIG));
            }
            new[len] = entry.as_ptr() as usize;
            len += 1;
        }
        // SAFETY: not past the terminating null.
        old = unsafe { old.add(1) };
    }
    new[len] = var.as_ptr() as usize;
    new[len + 1] = 0;
    // SAFETY: `new` is a null-terminated array of C strings that live until
    // exec (static memory, the environment's own strings, and `var`).
    unsafe { environ = new.as_ptr().cast() };
    Ok(())
}
