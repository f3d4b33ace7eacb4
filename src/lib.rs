//! withlock: run a command only if no other copy of it is running.
//!
//! `withlock [OPTIONS] LOCK COMMAND [ARGS...]` opens (or creates) the file
//! LOCK, takes an exclusive `flock(2)` lock on it, and then *becomes*
//! COMMAND with `execvp`. That one decision shapes the rest:
//!
//! * The job holds the lock itself, through the inherited descriptor. Killing
//!   withlock is killing the job; nothing can let a second job in while the
//!   first (or anything it started that kept the descriptor) still runs.
//! * Signals and exit status are the job's own: there is no wrapper left to
//!   forward or translate them, and Ctrl-C reaches one process once.
//! * The cost is "open, lock, exec": no fork, no wait, no allocator. The
//!   crate is `no_std` and speaks to the kernel through the `libc` crate
//!   only; the binary is built static against musl.
//!
//! The house, from the bottom floor up (each module's first line says its
//! one job):
//!
//! * Ground: [`sys`] (every system call, checked), [`exit`] (the exit
//!   codes), [`once`], [`duration`]; [`error`] (why withlock did not run
//!   the command, as a plain type); [`text`] (messages without an
//!   allocator), [`clock`], [`timer`] (a deadline for a blocking lock),
//!   [`signals`] (handlers, self-pipe, stop requests, how the job ended,
//!   dying like it).
//! * The command line: [`cli`] (what was typed), [`help`], [`plan`] (what
//!   to do, decided once: the target and the mode).
//! * The local lock: [`stdio`], [`locate`] (the walk, judging each
//!   directory), [`named`] (`--name`'s directory), [`flock`] and [`lock`]
//!   (open, check, lock, re-check), [`record`] (the holder record),
//!   [`proc`] (what /proc witnesses), [`passwd`] (user names), [`holder`]
//!   (who holds a lock), [`replace`], [`exec`], [`supervise`] (staying the
//!   job's parent), [`job`] (the tail after the lock), [`slots`].
//! * Reports: [`syslog`] (each outcome in the system log, with `--syslog`),
//!   [`report`] (a failure in words), [`json`], [`status`].
//! * etcd (optional): `etcd` and its folder: the wire, the client, the
//!   watchdog, the session.
//! * [`run`]: from the plan to the job (after `jitter`'s random sleep, if
//!   asked).
//!
//! [`main`] below is the whole program: make the plan, then one dispatch on
//! it. The default path, in order: [`stdio`], [`cli`], [`plan`], [`run`],
//! [`locate`], [`lock`], [`record`], [`exec`]. withlock's own outcomes, for
//! a lock file or in etcd, are an [`error::Failure`] told by [`report`],
//! with a code from [`exit`].

#![cfg_attr(not(test), no_std)]

pub mod cli;
pub mod clock;
pub mod duration;
pub mod error;
#[cfg(feature = "etcd")]
pub(crate) mod etcd;
pub mod exec;
pub mod exit;
pub mod flock;
pub mod help;
pub mod holder;
#[cfg(feature = "jitter")]
pub mod jitter;
pub mod job;
#[cfg(feature = "status")]
pub mod json;
pub mod locate;
pub mod lock;
pub mod named;
pub mod once;
pub mod passwd;
pub mod plan;
pub mod proc;
pub mod record;
#[cfg(feature = "replace")]
pub mod replace;
pub mod report;
pub mod run;
pub mod signals;
pub mod slots;
#[cfg(feature = "status")]
pub mod status;
pub mod stdio;
pub mod supervise;
pub mod sys;
pub mod syslog;
#[cfg(test)]
mod testing;
pub mod text;
pub mod timer;

use core::ffi::{c_char, c_int};
use plan::Plan;

/// The whole program: read the command line into a plan, and carry it out.
/// Returns only if withlock did not become the command.
///
/// # Safety
/// `argv` must point to `argc` valid NUL-terminated strings followed by a
/// null pointer, as the C runtime passes them to `main`.
pub unsafe fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    if let Err((fd, errno)) = stdio::ensure_open() {
        stdio::report(fd, errno);
        return c_int::from(exit::OS_ERROR);
    }
    // SAFETY: main's own argc and argv, as the caller promises.
    let args = unsafe { plan::Args::new(argc, argv) };
    match plan::make(&args) {
        Plan::Help => help::print_help(),
        Plan::Version => help::print_version(),
        Plan::Usage(usage) => return report::usage(usage),
        Plan::NotBuilt(part, code) => return report::not_built(part, code),
        #[cfg(feature = "status")]
        Plan::Status { name, first, json } => return c_int::from(status::run(name, args.from(first), json)),
        Plan::Run(plan) => return run::run(&plan),
    }
    0
}
