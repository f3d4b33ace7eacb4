//! The watchdog: a process beside withlock that SIGKILLs the job's process
//! group when withlock has not shown in time that the lease is alive.
//!
//! withlock alone cannot promise that the job is dead before its lease can
//! expire: a withlock that is stopped (SIGSTOP, Ctrl-Z, a tracer, a cgroup
//! freezer), hangs in a system call or is starved of CPU renews nothing and
//! stops nothing, while the job runs on and another host takes the lock.
//! So a second process, which none of that stops along with withlock, keeps
//! the same deadline on the boot clock: the instant by which the job must be
//! dead (the send time of the last acknowledged keepalive, plus the TTL,
//! minus the margin). Only an acknowledged keepalive moves it on. If the
//! deadline passes, or withlock dies (the feed pipe reaches end of file
//! without a stand-down), the watchdog SIGKILLs the job's group.
//!
//! The deadline lives in a page shared with withlock: feeding is one atomic
//! store, no system call, and a watchdog that was itself stopped for a while
//! reads the latest deadline when it runs again, so stopping it alone
//! changes nothing. It sleeps until the deadline (about once per lease TTL),
//! not once per keepalive.
//!
//! Signalling a group by its id is safe only while that id cannot name
//! another group. The watchdog puts a child of its own, the *pin*, into the
//! job's group and leaves it unreaped until the end: while the pin exists
//! (alive or a zombie) the group's id cannot be reused, so the watchdog
//! signals `-job` only when the kernel says the pin is in that group
//! (`getpgid`). The pin ignores every signal it may and sleeps; it is not
//! withlock's child, so withlock's wait for the job's group does not wait
//! for it.
//!
//! The watchdog keeps no descriptor but its ends of two pipes with withlock
//! and stderr (no lock, no etcd connection), is in a process group of its own (a signal
//! to withlock's group does not stop it), ignores the signals a terminal or
//! `kill` might send, and is stood down and reaped by withlock at the end.

use crate::error::Failure;
use crate::sys;
use crate::text;
use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::SeqCst};

/// What withlock and the watchdog share (a page mapped before the fork).
#[repr(C)]
struct Shared {
    /// Boot-clock nanoseconds by which the job's group must be dead.
    deadline: AtomicU64,
    /// The job's pid (and process group), once it runs; 0 before.
    job: AtomicI32,
    /// The pin's pid, for withlock to reap if the watchdog dies first.
    pin: AtomicI32,
    /// withlock is done with the job: leave without killing.
    stand_down: AtomicBool,
    /// withlock is stopping the job itself and has said why: a kill by the
    /// watchdog then needs no message of its own.
    stopping: AtomicBool,
    /// The watchdog SIGKILLed the job's group.
    fired: AtomicBool,
}

/// Signals the watchdog and the pin ignore: those a terminal, a shell or an
/// operator's `kill` might send to withlock's or the job's group.
const IGNORED: [c_int; 10] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// withlock's side of a running watchdog.
pub struct Watchdog {
    pid: libc::pid_t,
    shared: &'static Shared,
    /// The write end of the feed pipe: its end of file, without a
    /// stand-down, means withlock died.
    feed: c_int,
    /// A read end kept too, so that a write never raises SIGPIPE if the
    /// watchdog is gone (end of file depends on the write ends only).
    spare: c_int,
    /// The read end of a pipe whose write end only the watchdog holds: end
    /// of file when it exits.
    gone: c_int,
}

/// How long withlock waits for the watchdog to leave when stood down,
/// before it SIGKILLs it (a traced watchdog cannot be continued).
const LEAVE_WITHIN_MS: u32 = 1000;

impl Watchdog {
    /// Start a watchdog that kills the job's group at `deadline` (boot-clock
    /// ns) unless fed; `name` is the lock's, for its message. Before the job
    /// exists it has nothing to kill: tell it with [`Watchdog::watch`].
    pub fn start(deadline: u64, name: &[u8]) -> Result<Watchdog, Failure<'static>> {
        let page = sys::map_anonymous(core::mem::size_of::<Shared>(), true)
            .map_err(|errno| Failure::System { call: "mmap", errno })?;
        // SAFETY: the mapping is page-aligned, zero-filled (all-zero is a
        // valid `Shared`: atomics are plain integers), as large as `Shared`,
        // and never unmapped: it lives as long as the process.
        let shared: &'static Shared = unsafe { &*page.cast::<Shared>() };
        shared.deadline.store(deadline, SeqCst);

        let fds = pipe()?;
        let back = match pipe() {
            Ok(back) => back,
            Err(failure) => {
                fds.into_iter().for_each(sys::close);
                return Err(failure);
            }
        };
        let withlock = sys::getpid();
        // Block every signal across the fork: withlock's handlers must not
        // run in the watchdog before it has set its own.
        let old = sys::sigprocmask(libc::SIG_BLOCK, &sys::full_signal_set());
        // The child runs only `watch_over`.
        let forked = match sys::fork() {
            Ok(sys::Forked::Child) => watch_over(shared, fds[0], back[1], withlock, name),
            Ok(sys::Forked::Parent(pid)) => Ok(pid),
            Err(errno) => Err(errno),
        };
        sys::sigprocmask(libc::SIG_SETMASK, &old);
        sys::close(back[1]);
        match forked {
            Ok(pid) => Ok(Watchdog { pid, shared, feed: fds[1], spare: fds[0], gone: back[0] }),
            Err(errno) => {
                [fds[0], fds[1], back[0]].into_iter().for_each(sys::close);
                Err(Failure::System { call: "fork", errno })
            }
        }
    }

    /// A keepalive was acknowledged: the job may live until `deadline`.
    /// (Deadlines only move on.)
    pub fn feed(&self, deadline: u64) {
        self.shared.deadline.fetch_max(deadline, SeqCst);
    }

    /// The job runs as `job`, leading its own process group.
    pub fn watch(&self, job: libc::pid_t) {
        self.shared.job.store(job, SeqCst);
        // One byte, to wake the watchdog.
        let _ = sys::write(self.feed, b"j");
    }

    /// withlock is stopping the job itself, and has said why.
    pub fn stopping(&self) {
        self.shared.stopping.store(true, SeqCst);
    }

    /// The job is done with: tell the watchdog to leave (continuing it if
    /// it was stopped), and say whether it had SIGKILLed the job's group.
    /// [`Watchdog::reap`] waits for it, later: its exit then overlaps
    /// withlock's last call to etcd.
    pub fn stand_down(&mut self) -> bool {
        if !self.shared.stand_down.swap(true, SeqCst) {
            sys::close(self.feed);
            sys::close(self.spare);
            // Signal it only while it is surely ours: an unreaped child (the
            // job's watcher reaps any child that ends, so it may be gone).
            if reap_within(self.pid, 0) == Reaped::Running {
                let _ = sys::kill(self.pid, libc::SIGCONT);
            }
        }
        self.shared.fired.load(SeqCst)
    }

    /// Stand the watchdog down if not done yet, and reap it and its pin (by
    /// force if it does not leave: a traced process cannot be continued).
    pub fn reap(mut self) {
        self.stand_down();
        let mut exited = [libc::pollfd { fd: self.gone, events: libc::POLLIN, revents: 0 }];
        // Readable means end of file: the watchdog is exiting (or gone), and
        // waiting for it no longer blocks.
        if sys::poll(&mut exited, LEAVE_WITHIN_MS as c_int).is_ok_and(|ready| ready > 0) {
            reap_within(self.pid, u32::MAX);
        } else if reap_within(self.pid, 0) == Reaped::Running {
            // Our unreaped child.
            let _ = sys::kill(self.pid, libc::SIGKILL);
            reap_within(self.pid, u32::MAX);
            // Its pin dies with it (Linux: its parent-death signal) and comes
            // to us, the job's subreaper.
            let pin = self.shared.pin.load(SeqCst);
            if pin > 0 {
                reap_within(pin, LEAVE_WITHIN_MS);
            }
        }
        sys::close(self.gone);
    }
}

#[derive(PartialEq, Eq)]
enum Reaped {
    /// Still running (or stopped): our unreaped child.
    Running,
    /// Reaped now, or not our child (any more).
    Gone,
}

/// Reap `pid` if it ends within `ms` milliseconds (`u32::MAX`: however long).
fn reap_within(pid: libc::pid_t, ms: u32) -> Reaped {
    let mut waited = 0;
    loop {
        let flags = if ms == u32::MAX { 0 } else { libc::WNOHANG };
        if !matches!(sys::waitpid(pid, flags), Ok(None)) {
            return Reaped::Gone;
        }
        if waited >= ms {
            return Reaped::Running;
        }
        sys::sleep(core::time::Duration::from_millis(2));
        waited += 2;
    }
}

/// A pipe, both ends close-on-exec.
fn pipe() -> Result<[c_int; 2], Failure<'static>> {
    sys::pipe(false).map_err(|errno| Failure::System { call: "pipe", errno })
}

/// In the watchdog: the feed pipe's read end, and the write end of the pipe
/// that tells withlock we have exited.
const FEED: c_int = 3;
const GONE: c_int = 4;

/// The watchdog's whole life.
fn watch_over(shared: &'static Shared, feed: c_int, gone: c_int, withlock: libc::pid_t, name: &[u8]) -> ! {
    // A group of our own, signals ignored or at their defaults, then
    // unblocked; the pipes moved to FEED and GONE and every other descriptor
    // closed but stderr (for the one message), so that we hold no lock and
    // no connection. (Nothing here can fail that we could act on.)
    let _ = sys::setpgid(0, 0);
    for signal in IGNORED {
        sys::set_disposition(signal, libc::SIG_IGN);
    }
    sys::set_disposition(libc::SIGCHLD, libc::SIG_DFL);
    // Both out of the way of the targets first (a pipe may be on 3 or 4).
    let moved = [sys::dup_above(feed, GONE + 1), sys::dup_above(gone, GONE + 1)];
    for (moved, to) in moved.into_iter().zip([FEED, GONE]) {
        let _ = moved.and_then(|fd| sys::dup2(fd, to));
    }
    sys::close_from(GONE + 1);
    sys::close(0);
    sys::close(1);
    sys::sigprocmask(libc::SIG_SETMASK, &sys::signal_set(&[]));
    let mut job = 0;
    let mut pin = 0;
    let mut withlock_died = false;
    loop {
        if shared.stand_down.load(SeqCst) {
            leave(pin);
        }
        if job == 0 {
            job = shared.job.load(SeqCst);
            if job > 1 {
                pin = make_pin(job);
                shared.pin.store(pin, SeqCst);
            }
        }
        let now = crate::clock::boot_ns();
        let overdue = now >= shared.deadline.load(SeqCst);
        if job > 1 && (overdue || withlock_died) {
            kill_group(shared, job, pin);
            if overdue && !withlock_died && !shared.stopping.load(SeqCst) {
                say_fired(withlock, job, name);
            }
            leave(pin);
        }
        if withlock_died {
            leave(pin); // before the job ran: nothing to stop
        }
        // Sleep until the deadline; once it has passed with no job yet,
        // until withlock says something (a job, or a stand-down).
        let wait = if overdue {
            -1
        } else {
            let left = shared.deadline.load(SeqCst).saturating_sub(now);
            c_int::try_from(left.div_ceil(1_000_000)).unwrap_or(c_int::MAX)
        };
        let mut poll = [libc::pollfd { fd: FEED, events: libc::POLLIN, revents: 0 }];
        if sys::poll(&mut poll, wait).is_ok_and(|ready| ready > 0) {
            let mut drain = [0u8; 16];
            // 0 is end of file: withlock closed the pipe (a stand-down,
            // checked first thing) or died.
            if sys::read(FEED, &mut drain) == Ok(0) && !shared.stand_down.load(SeqCst) {
                withlock_died = true;
            }
        }
    }
}

/// SIGKILL the job's group, if our pin is still in it (so its id is still
/// the job's group's); note that we did.
fn kill_group(shared: &Shared, job: libc::pid_t, pin: libc::pid_t) {
    // `pin` is our unreaped child, so its pid is ours; a group it is in
    // cannot have been replaced. Never a group <= 1.
    if job > 1 && pin > 0 && sys::getpgid(pin) == Ok(job) {
        shared.fired.store(true, SeqCst);
        let _ = sys::kill(-job, libc::SIGKILL);
    }
}

/// Reap the pin (killing it first: it never ends by itself) and exit.
fn leave(pin: libc::pid_t) -> ! {
    if pin > 0 {
        end_pin(pin);
    }
    sys::exit_now(0)
}

/// A child of ours in the job's group, sleeping until it is killed; its
/// pid, or 0 if it could not be made (then we signal no group: the job's
/// has already gone, since a group leader cannot leave its group).
fn make_pin(job: libc::pid_t) -> libc::pid_t {
    let watchdog = sys::getpid();
    // The child only sleeps.
    let pin = match sys::fork() {
        Ok(sys::Forked::Parent(pin)) => pin,
        Ok(sys::Forked::Child) => be_pin(watchdog),
        Err(_) => return 0,
    };
    // Our child, which has not exec'd.
    if sys::setpgid(pin, job).is_err() {
        end_pin(pin);
        return 0;
    }
    pin
}

/// In the pin: sleep until killed. It dies with the watchdog (Linux),
/// holds no descriptor, and ignores what it may (inherited).
fn be_pin(watchdog: libc::pid_t) -> ! {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    if sys::getppid() != watchdog {
        sys::exit_now(0);
    }
    sys::close_from(0);
    loop {
        sys::pause();
    }
}

/// Kill and reap the pin, our child.
fn end_pin(pin: libc::pid_t) {
    // The pin is our unreaped child.
    let _ = sys::kill(pin, libc::SIGKILL);
    reap_within(pin, u32::MAX);
}

/// Say, even with -q, that the watchdog stopped the job.
#[cold]
fn say_fired(withlock: libc::pid_t, job: libc::pid_t, name: &[u8]) {
    let mut buf = text::diagnostic();
    let line = buf.line();
    line.push(b"watchdog: withlock (pid ").push_u64(withlock as u64);
    line.push(b") did not renew the lease of etcd lock ").push_quoted(name);
    line.push(
        b" in time (stopped, traced, hung or starved of CPU); SIGKILLed the job's process group (pgid ",
    );
    line.push_u64(job as u64).push(b") before the lease can expire");
    line.emit();
}
