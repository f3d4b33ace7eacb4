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
//! * The command line: [`cli`] (what was typed), [`help`].
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
//! * [`run`]: from the parsed command line to the job; and here, `main`:
//!   the one dispatch (help, version, status, or run on an etcd address, a
//!   `--name` or a LOCK path, after `jitter`'s random sleep if asked).
//!
//! The default path, in order: [`stdio`], [`cli`], [`locate`], [`lock`],
//! [`record`], [`exec`]. withlock's own outcomes, for a lock file or in
//! etcd, are an [`error::Failure`] told by [`report`], with a code from
//! [`exit`].

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

/// The whole program. Returns only if the command did not run.
///
/// # Safety
/// `argv` must point to `argc` valid NUL-terminated strings followed by a
/// null pointer, as the C runtime passes them to `main`.
pub unsafe fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    if let Err((fd, errno)) = stdio::ensure_open() {
        stdio::report(fd, errno);
        return c_int::from(exit::OS_ERROR);
    }
    let args = plan::Args { argv, count: usize::try_from(argc).unwrap_or(0) };
    match cli::parse(&|i| args.get(i).to_bytes(), args.count) {
        Ok(cli::Request::Help) => help::print_help(),
        Ok(cli::Request::Version) => help::print_version(),
        Ok(cli::Request::Status { options, first }) => return run::status(&args, &options, first),
        #[cfg(not(feature = "replace"))]
        Ok(cli::Request::Run { options, .. }) if options.replace => return report::not_built(b"--replace"),
        Ok(cli::Request::Run { options, lock, command }) => {
            // Before anything is looked at, let alone held.
            #[cfg(feature = "jitter")]
            if let Some(most) = options.jitter {
                jitter::sleep(most, options.verbose);
            }
            return match run::Target::of(&args, &options, lock) {
                run::Target::Etcd => run::etcd(&args, &options, lock, command),
                run::Target::Name => run::named(&args, &options, command),
                run::Target::Path => run::path(&args, &options, lock, command),
            };
        }
        Err(usage) => {
            report::failure(&error::Failure::Usage(usage), b"", b"", c"", false);
            return c_int::from(exit::USAGE);
        }
    }
    0
}
