//! Staying the job's parent, for the modes that need someone to watch the
//! job: `--unlink` (remove the lock file after the job, still holding the
//! lock), `--no-inherit` (only withlock holds the lock, so a daemon the job
//! leaves behind cannot pin it), `--max-runtime` (stop a hung job),
//! `--syslog` (log the job's start and end), and a lock in etcd (keep the
//! lease alive; stop the job before it can lapse). A `--slots` job takes
//! the same path when one of those asks for it.
//!
//! The child tells the parent whether its exec succeeded (see
//! [`exec::ExecReport`]): only then has the job started, and a command that
//! cannot run is reported by the parent as the plain path reports it.
//!
//! This is the one mode that forks; the plain path execs the job directly.
//! The parent waits in one loop, woken by a self-pipe that every signal
//! handler writes to (so no signal is lost between a check and the wait) or
//! by the next deadline: the run-time limit, the SIGKILL after
//! `--kill-after`, or a [`Guard`]'s next duty (an etcd keepalive).
//!
//! Process groups. The job gets its own process group, so that stopping it
//! stops everything it started. If withlock was in the terminal's
//! foreground, the job's group takes the terminal: Ctrl-C and Ctrl-\ reach
//! the job once, and Ctrl-Z stops the job, then withlock (so the shell sees a
//! stopped job; `fg` and `bg` continue both). Started in the background, the
//! job gets the terminal when `fg` has given it to withlock and the job
//! wants it. Signals sent to withlock are passed to the whole group, once.
//!
//! Stop requests. Only SIGTERM and SIGINT sent to withlock ask it to stop:
//! they are passed on, and a group that has not ended `--kill-after` later
//! is SIGKILLed. SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are only passed on
//! (a reload, a thread dump): what the job makes of them is its own affair.
//!
//! The job is its group. On Linux withlock is the subreaper of everything
//! the job starts, so it knows when the job's whole group has ended. When
//! the job's main process exits while others of its group run on (holding
//! the lock they inherited; not with `--no-inherit`), withlock waits for
//! them, and with `--max-runtime` stops them at the limit as it would the
//! job (then 124); if they end by themselves, the main process's status is
//! withlock's.
//!
//! Killing withlock. With `--unlink` or `--max-runtime` the job inherits the
//! lock descriptor: the lock lives until the job is gone. With
//! `--no-inherit` or a [`Guard`] it does not, so the job's group is killed
//! when withlock dies (Linux: the parent-death signal, and a guardian
//! process that kills the whole group; other systems have none, so there
//! this promise is not kept). The guardian holds no lock descriptor, and
//! withlock reaps it before it returns: when withlock has exited, nothing it
//! started keeps the lock.

use crate::error::Failure;
use crate::exec::{self, Argv};
use crate::signals::{self, Ended, FORWARDED};
use crate::sys::{self, Errno};
use crate::{clock, text};
use core::ffi::c_int;
use core::time::Duration;

/// How often withlock looks whether the rest of the job's group is gone,
/// once the main process has ended.
const GROUP_POLL_NS: u64 = 200_000_000;

/// How the parent watches the job.
pub struct Watch {
    /// Stop the job's group when it has run this long (`--max-runtime`).
    pub max_runtime: Option<Duration>,
    /// From SIGTERM to SIGKILL when withlock stops the job.
    pub kill_after: Duration,
    /// The job's group dies with withlock (parent-death signal, guardian).
    pub die_with_parent: bool,
    /// A descriptor the job must not inherit (`--no-inherit`'s lock).
    pub withhold: Option<c_int>,
    /// The job holds the lock, and so does what it leaves running in its
    /// group: once its main process has exited, wait (Linux) for the rest
    /// of the group (stopped at the limit, if there is one).
    pub wait_for_group: bool,
    pub verbose: bool,
}

/// A duty the parent keeps while the job runs (an etcd lease), asked at
/// the instant it names.
pub trait Guard {
    /// When to call [`Guard::tick`] next (boot-clock nanoseconds).
    fn wake_at(&self) -> Option<u64>;
    /// Do the duty. `Err(deadline)`: the lock is lost or cannot be
    /// confirmed; the job must be dead by `deadline`.
    fn tick(&mut self, now: u64) -> Result<(), u64>;
    /// The job runs as `job`, leading its own process group. A guard that
    /// watches the group from a process of its own (an etcd lease's
    /// watchdog) says so, and then no guardian is started.
    fn job_started(&mut self, _job: libc::pid_t) -> bool {
        false
    }
}

/// No duty: `--unlink`, `--no-inherit`, `--max-runtime`.
pub struct NoGuard;

impl Guard for NoGuard {
    fn wake_at(&self) -> Option<u64> {
        None
    }
    fn tick(&mut self, _: u64) -> Result<(), u64> {
        Ok(())
    }
}

/// Start the job as a child, watch it as `watch` says, and return how it
/// ended. `started` is told the job's pid (to record it) before the job
/// can be signalled.
pub fn run(
    argv: Argv,
    watch: &Watch,
    guard: &mut dyn Guard,
    started: &mut dyn FnMut(u32),
) -> Result<Ended, Failure<'static>> {
    signals::wake_pipe()?;
    let parent = sys::getpid();
    let terminal = controlling_terminal();
    let foreground = terminal.filter(|&tty| sys::tcgetpgrp(tty) == Ok(sys::getpgrp()));

    // Hold the forwarded signals back until the job's pid is known; keep
    // SIGTTOU blocked for good, so that handing the terminal over and
    // writing a message while the job has it never stops withlock.
    let mut held = [libc::SIGTTOU; signals::HANDLED.len() + 1];
    held[1..].copy_from_slice(&signals::HANDLED);
    let held = sys::signal_set(&held);
    let old_mask = sys::sigprocmask(libc::SIG_BLOCK, &held);
    for signal in signals::HANDLED {
        signals::handle(signal, &held);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // Orphans of the job come to us, so that we can tell when its whole
    // group is gone (waitpid on the group says ECHILD), and whether
    // anything it started still runs.
    let _ = sys::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);

    // Whether the exec succeeds: said by the child, heard in the wait.
    // Only `--syslog` needs to hear it (its "started" line); without, the
    // child reports its own failure to run the command.
    #[cfg(feature = "syslog")]
    let mut report = if crate::syslog::enabled() { Some(exec::ExecReport::new()?) } else { None };
    // The child only sets up its group, terminal, signals and mask, and
    // execs (or reports and exits).
    let job = match sys::fork() {
        Ok(sys::Forked::Parent(job)) => job,
        #[rustfmt::skip]
        Ok(sys::Forked::Child) => become_job(argv, watch, foreground, parent, &old_mask,
            #[cfg(feature = "syslog")] report.as_ref()),
        Err(errno) => return Err(Failure::System { call: "fork", errno }),
    };
    #[cfg(feature = "syslog")]
    if let Some(report) = &mut report {
        report.parent_side();
    }
    // Also here, so that the group exists before any signal is sent to it,
    // whichever of us runs first (EACCES: the job did it and execed).
    let _ = sys::setpgid(job, job);
    signals::set_job(job);
    // The parent-death signal reaches only the job itself; a guardian
    // takes its whole group down with withlock.
    let watched = guard.job_started(job);
    let guardian =
        if watch.die_with_parent && !watched { guard_group(job, parent, watch.withhold) } else { 0 };
    started(job as u32);
    if watch.verbose {
        text::say(b"started the job as pid ", Some(job as u32), b", staying its parent");
    }
    // Held-back signals are delivered now. SIGTTOU stays blocked.
    sys::sigprocmask(libc::SIG_UNBLOCK, &sys::signal_set(&signals::HANDLED));

    let mut watcher = Watcher {
        job,
        terminal,
        status: None,
        stopping: None,
        killed: false,
        verbose: watch.verbose,
        kill_after: watch.kill_after,
        // Only where waitpid can tell that the group is gone.
        wait_for_group: watch.wait_for_group && cfg!(any(target_os = "linux", target_os = "android")),
        said_leftovers: false,
        #[cfg(feature = "syslog")]
        report,
        #[cfg(feature = "syslog")]
        command: argv.iter().next().unwrap_or(b""),
        #[cfg(feature = "syslog")]
        not_run: false,
    };
    let limit = watch.max_runtime.map(|limit| clock::boot_ns().saturating_add(clock::nanos(limit)));
    let ended = watcher.wait(limit, guard);
    #[cfg(feature = "syslog")]
    if let Ok(how) = ended
        && !watcher.not_run
    {
        crate::syslog::ended(how);
    }
    if guardian > 0 {
        // We are not dying: the guardian must not act. Reaped now, so that
        // it is gone, with everything it inherited, when we are.
        // The guardian is our unreaped child.
        let _ = sys::kill(guardian, libc::SIGKILL);
        let _ = sys::waitpid(guardian, 0);
    }
    if let Some(tty) = terminal {
        take_back(tty, job);
    }
    ended
}

/// After [`run`]: does anything the job started still run? (On Linux its
/// orphans are our children, whatever group they are in; elsewhere this
/// cannot be told, and the answer is no.)
pub fn descendants_remain() -> bool {
    loop {
        match sys::waitpid(-1, libc::WNOHANG) {
            Ok(None) => return true,
            Err(_) => return false,
            Ok(Some(_)) => {} // One that had ended, collected; look again.
        }
    }
}

/// The rest of the child's life: its own group and the terminal (if
/// withlock has it), the parent-death signal, the caller's signal mask,
/// then exec.
fn become_job(
    argv: Argv,
    watch: &Watch,
    terminal: Option<c_int>,
    parent: libc::pid_t,
    old_mask: &libc::sigset_t,
    #[cfg(feature = "syslog")] report: Option<&exec::ExecReport>,
) -> ! {
    // SIGTTOU is still blocked, so a group that is not yet the foreground
    // may take the terminal.
    let _ = sys::setpgid(0, 0);
    if let Some(tty) = terminal {
        let _ = sys::tcsetpgrp(tty, sys::getpid());
    }
    if let Some(fd) = watch.withhold {
        let _ = sys::set_cloexec(fd);
    }
    if watch.die_with_parent {
        die_with(parent);
    }
    // A signal the parent passed on before we exec is pending here: it must
    // act on the job as it would once the job runs, not run our handler
    // (which would only wake a loop that is not ours). Ignored signals were
    // never handled, and stay ignored.
    signals::reset_handled();
    sys::sigprocmask(libc::SIG_SETMASK, old_mask);
    let failure = exec::exec_command(argv);
    #[cfg(feature = "syslog")]
    let told = report.is_some_and(|report| report.send(&failure));
    #[cfg(not(feature = "syslog"))]
    let told = false;
    if !told {
        crate::report::failure(&failure, b"", argv.iter().next().unwrap_or(b""), c"", false);
    }
    sys::exit_now(c_int::from(failure.exit_code(0)))
}

/// A second child, outside the job's group, that SIGKILLs the whole group
/// if withlock dies (Linux: its own parent-death signal); withlock kills and
/// reaps it first when all goes well. It closes `withhold` (the lock's
/// descriptor) at once: it must never keep the lock. Its pid, or 0 where
/// there is no such signal.
fn guard_group(job: libc::pid_t, parent: libc::pid_t, withhold: Option<c_int>) -> libc::pid_t {
    if !cfg!(any(target_os = "linux", target_os = "android")) {
        return 0;
    }
    // The child only waits for one signal, kills and exits.
    match sys::fork() {
        Ok(sys::Forked::Child) => {}
        Ok(sys::Forked::Parent(guardian)) => return guardian,
        Err(_) => return 0,
    }
    if let Some(fd) = withhold {
        sys::close(fd);
    }
    // SIGUSR2 stays blocked, to be taken by sigwait; the signals a terminal
    // or `kill` might send our group are ignored, so that only withlock's
    // death (or SIGKILL) ends us.
    let death = sys::signal_set(&[libc::SIGUSR2]);
    sys::sigprocmask(libc::SIG_SETMASK, &death);
    for signal in FORWARDED {
        sys::set_disposition(signal, libc::SIG_IGN);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2 as libc::c_ulong);
    if sys::getppid() == parent {
        sys::sigwait(&death);
    }
    let _ = sys::kill(-job, libc::SIGKILL);
    sys::exit_now(0)
}

/// In the child: die when the parent, which alone holds the lock, dies.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(unused_variables))]
fn die_with(parent: libc::pid_t) {
    // If the parent died before the signal was armed, the lock is gone
    // already: run nothing (exit as for a busy lock).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        if sys::getppid() != parent {
            sys::exit_now(c_int::from(crate::exit::BUSY));
        }
    }
}

/// Give the terminal back to our group if the job's group has it — and
/// only then: with SIGTTOU blocked, tcsetpgrp would succeed even while we
/// are in the background (after `bg`), and take the terminal from the
/// shell, which then cannot read its commands.
fn take_back(tty: c_int, job: libc::pid_t) {
    // SIGTTOU is blocked.
    if sys::tcgetpgrp(tty) == Ok(job) {
        let _ = sys::tcsetpgrp(tty, sys::getpgrp());
    }
}

/// withlock's controlling terminal, if one of its standard descriptors is
/// that terminal: the job's group takes it whenever withlock's group has it.
fn controlling_terminal() -> Option<c_int> {
    // tcgetpgrp fails on a descriptor that is not our controlling terminal.
    (0..3).find(|&fd| sys::tcgetpgrp(fd).is_ok_and(|pgrp| pgrp > 0))
}

struct Watcher {
    job: libc::pid_t,
    terminal: Option<c_int>,
    /// The job's wait status, once its main process has ended.
    status: Option<c_int>,
    /// Why and until when withlock is stopping the job (SIGKILL then);
    /// no reason: withlock was asked to stop, and ends as the job does.
    stopping: Option<(Option<Ended>, u64)>,
    killed: bool,
    verbose: bool,
    kill_after: Duration,
    /// See [`Watch::wait_for_group`].
    wait_for_group: bool,
    /// `-v` told that the main process ended before its group.
    said_leftovers: bool,
    /// Until the child has exec'd (or failed to): what it says about it.
    #[cfg(feature = "syslog")]
    report: Option<exec::ExecReport>,
    /// The command could not be run (the child told why, and we said it):
    /// there was no job to log the end of.
    #[cfg(feature = "syslog")]
    not_run: bool,
    /// The command's name, for saying so.
    #[cfg(feature = "syslog")]
    command: &'static [u8],
}

impl Watcher {
    fn wait(&mut self, limit: Option<u64>, guard: &mut dyn Guard) -> Result<Ended, Failure<'static>> {
        loop {
            self.reap()?;
            #[cfg(feature = "syslog")]
            self.hear_exec();
            if self.stopping.is_none() && signals::stop_requested() {
                // SIGTERM or SIGINT came to withlock and went on to the job's
                // group: make sure the group ends, as it would for a job that
                // is its own process.
                self.stopping = Some((None, clock::boot_ns().saturating_add(clock::nanos(self.kill_after))));
            }
            if let Some(status) = self.status {
                match self.stopping {
                    None if !self.wait_for_group || self.group_gone() => return Ok(Ended::Exited(status)),
                    None => self.say_leftovers(),
                    Some((why, _)) if self.group_gone() => return Ok(why.unwrap_or(Ended::Exited(status))),
                    Some(_) => {}
                }
            }
            let now = clock::boot_ns();
            if self.stopping.is_none()
                && let Some(limit) = limit
                && now >= limit
            {
                self.stop(Ended::TimedOut, clock::nanos(self.kill_after));
            }
            // Once the job is being stopped, the guard has said all it can.
            if self.status.is_none()
                && self.stopping.is_none()
                && guard.wake_at().is_some_and(|at| now >= at)
                && let Err(deadline) = guard.tick(now)
            {
                self.stop(Ended::Lost, deadline.saturating_sub(clock::boot_ns()));
            }
            if let Some((_, kill_at)) = self.stopping
                && !self.killed
                && clock::boot_ns() >= kill_at
            {
                self.kill(libc::SIGKILL);
                self.killed = true;
                if self.verbose {
                    text::say(b"sent SIGKILL to the job's process group after --kill-after", None, b"");
                }
                continue;
            }
            let mut next = u64::MAX;
            if self.stopping.is_none()
                && let Some(limit) = limit
            {
                next = limit;
            }
            if let Some((_, kill_at)) = self.stopping
                && !self.killed
            {
                next = next.min(kill_at);
            }
            if self.status.is_none()
                && self.stopping.is_none()
                && let Some(at) = guard.wake_at()
            {
                next = next.min(at);
            }
            if self.status.is_some() {
                // Waiting for the rest of the group: a process that leaves it
                // (setsid) sends no signal, so look again now and then.
                next = next.min(clock::boot_ns().saturating_add(GROUP_POLL_NS));
            }
            self.sleep_until(next);
        }
    }

    /// With `-v`, once: the main process has ended, the rest of its group
    /// runs on, and withlock waits for it.
    fn say_leftovers(&mut self) {
        if self.verbose && !self.said_leftovers {
            self.said_leftovers = true;
            text::say(
                b"the job's main process ended; waiting for the rest of its group, which holds the lock",
                None,
                b"",
            );
        }
    }

    /// Collect every child that changed state; note the job's end, and
    /// follow it when the terminal stopped it (Ctrl-Z).
    fn reap(&mut self) -> Result<(), Failure<'static>> {
        loop {
            let (pid, status) = match sys::waitpid(-1, libc::WNOHANG | libc::WUNTRACED) {
                Ok(Some(changed)) => changed,
                Ok(None) | Err(Errno(libc::ECHILD)) => return Ok(()),
                Err(errno) => return Err(Failure::System { call: "waitpid", errno }),
            };
            if pid != self.job {
                continue; // An orphan of the job, reaped.
            }
            if libc::WIFSTOPPED(status) {
                self.suspend(libc::WSTOPSIG(status));
            } else {
                self.status = Some(status);
            }
        }
    }

    /// Has everything in the job's group ended? (Linux: the group's orphans
    /// are our children, so waitpid knows — also after the SIGKILL, which
    /// takes a moment to end each of them: until then they keep the lock.
    /// Elsewhere we cannot tell, and count the SIGKILL as the end.)
    fn group_gone(&self) -> bool {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            sys::waitpid(-self.job, libc::WNOHANG) == Err(Errno(libc::ECHILD))
        } else {
            self.killed
        }
    }

    /// Stop the job's group: SIGTERM now, SIGKILL after `grace` ns. (A
    /// lost lock is told by the guard, which knows what was lost.)
    fn stop(&mut self, why: Ended, grace: u64) {
        self.stopping = Some((Some(why), clock::boot_ns().saturating_add(grace)));
        self.kill(libc::SIGCONT);
        self.kill(libc::SIGTERM);
        if self.verbose && why == Ended::TimedOut {
            let mut buf = text::diagnostic();
            let line = buf.line();
            line.push(b"the job ran longer than --max-runtime: stopping it (SIGTERM to its process group, SIGKILL in ");
            line.push_duration(Duration::from_nanos(grace));
            line.push(b")");
            line.emit();
        }
    }

    fn kill(&self, signal: c_int) {
        // The group's id (the job's pid) is not reused while the group has
        // a member, and once it has none (on Linux, waitpid says so) we
        // signal it no more.
        let _ = sys::kill(-self.job, signal);
    }

    /// Ctrl-Z stopped the job: give the terminal back to our group and stop
    /// too, so the shell sees a stopped job; when continued (`fg`, `bg`),
    /// hand the terminal over again if it is ours, and continue the job.
    /// (In the background, a job that reads the terminal is stopped too:
    /// then the shell has the terminal, and keeps it.) If the job was
    /// stopped for wanting the terminal while our group has it (`fg` of a
    /// job started in the background), it simply gets the terminal.
    fn suspend(&mut self, signal: c_int) {
        let Some(tty) = self.terminal else {
            return;
        };
        // SIGTTOU is blocked.
        let ours = sys::tcgetpgrp(tty) == Ok(sys::getpgrp());
        if !(ours && matches!(signal, libc::SIGTTIN | libc::SIGTTOU)) {
            take_back(tty, self.job);
            let _ = sys::kill(sys::getpid(), libc::SIGSTOP);
        }
        if sys::tcgetpgrp(tty) == Ok(sys::getpgrp()) {
            let _ = sys::tcsetpgrp(tty, self.job);
        }
        self.kill(libc::SIGCONT);
    }

    fn sleep_until(&self, until: u64) {
        #[cfg(feature = "syslog")]
        let fd = self.report.as_ref().map_or(-1, exec::ExecReport::fd);
        #[cfg(not(feature = "syslog"))]
        let fd = -1;
        signals::pause_until(until, fd);
    }

    /// Has the child exec'd the command, or failed to? Once it has, the job
    /// has started (for `--syslog`). A child that has exited has said all
    /// it will.
    #[cfg(feature = "syslog")]
    fn hear_exec(&mut self) {
        let Some(report) = &mut self.report else { return };
        match report.heard() {
            exec::Heard::Nothing if self.status.is_none() => return,
            exec::Heard::Nothing | exec::Heard::Ran => crate::syslog::started(self.job as u32),
            exec::Heard::Failed(failure) => {
                // Said here, where it is also logged; the child's exit
                // status is its exit code, as on the plain path.
                crate::report::failure(&failure, b"", self.command, c"", false);
                self.not_run = true;
            }
        }
        self.report = None;
    }
}
