//! From the plan to the job: walk to the target (a LOCK path, with short
//! buffers, or long ones for a long path; `--name`'s file, its directory
//! made if missing; or an etcd address), say where a walk failed, or take
//! the lock as the plan's mode says and run the job ([`crate::job`],
//! [`crate::slots`], `etcd::session`).

use crate::plan::{Mode, Run, Target};
use crate::{job, locate, lock, named, report, slots, syslog, text};
use core::ffi::{CStr, c_int};

/// Carry out `plan`; returns the exit code, unless withlock became the job.
pub fn run(plan: &Run) -> c_int {
    // Before anything is looked at, let alone held.
    #[cfg(feature = "jitter")]
    if let Some(most) = plan.options.jitter {
        crate::jitter::sleep(most, plan.options.verbose);
    }
    match plan.target {
        Target::Path(lock) => path(plan, lock),
        Target::Name(name) => named(plan, name),
        Target::Etcd(address) => etcd(plan, address),
    }
}

/// A LOCK path: walk to it with the short buffers (the long ones only if
/// it does not fit), lock it and run the command.
fn path(plan: &Run, lock: &[u8]) -> c_int {
    syslog::begin(&plan.options, lock, plan.argv());
    let Some(short) = locate::Buffers::short() else {
        unreachable!("main runs once");
    };
    let mut walk = short.walk();
    match locate::locate(lock, plan.options.insecure, &mut walk) {
        Ok(()) => lock_and_run(plan, lock, walk.resolved.as_cstr()),
        Err(failure) if locate::needs_more_room(&failure) => walk_long_path(plan, lock),
        Err(failure) => report::run_failed(&failure, lock, b"", walk.resolved.as_cstr(), &plan.options),
    }
}

/// The rare LOCK that does not fit the short buffers (or `--name`'s): walk
/// it with room for any path. Out of line, so the big buffers cost nothing
/// to the usual path (see `locate::Buffers`).
#[cold]
#[inline(never)]
fn walk_long_path(plan: &Run, lock: &[u8]) -> c_int {
    let mut buffers = locate::Buffers::<{ locate::PATH_MAX }>::new();
    let mut walk = buffers.walk();
    match locate::locate(lock, plan.options.insecure, &mut walk) {
        Ok(()) => lock_and_run(plan, lock, walk.resolved.as_cstr()),
        Err(failure) => report::run_failed(&failure, lock, b"", walk.resolved.as_cstr(), &plan.options),
    }
}

/// `--name NAME`: make withlock's directory if needed (see [`crate::named`]),
/// then walk to `DIR/NAME` and run as for a LOCK. Out of line, like
/// `walk_long_path`: its buffers cost nothing to a plain LOCK.
#[cold]
#[inline(never)]
fn named(plan: &Run, name: &[u8]) -> c_int {
    let mut dir = text::LineBuf::<{ locate::PATH_MAX }>::new();
    let mut path = text::LineBuf::<{ locate::PATH_MAX }>::new();
    let (dir, path) = (dir.line(), path.line());
    let made = named::lock_path(name, dir, path);
    let lock = path.as_bytes();
    let lock = lock.strip_suffix(b"\0").unwrap_or(lock);
    // --syslog logs a refused or unmakeable place too.
    syslog::begin(&plan.options, lock, plan.argv());
    // Judge the way to DIR before making it: make it only where the walk
    // stops for want of it (or, with --insecure, which judges nothing).
    let made = made.and_then(|mode| {
        let mut buffers = locate::Buffers::<{ locate::PATH_MAX }>::new();
        let mut walk = buffers.walk();
        match locate::locate(lock, plan.options.insecure, &mut walk) {
            Ok(()) if plan.options.insecure => named::make_dir(dir.as_cstr(), mode),
            Err(failure) if named::dir_is_missing(&failure, walk.resolved.as_bytes(), dir) => {
                named::make_dir(walk.resolved.as_cstr(), mode)
            }
            _ => Ok(()), // There, or refused: the walk below says which.
        }
    });
    match made {
        Ok(()) => walk_long_path(plan, lock),
        Err(failure) => report::run_failed(&failure, lock, b"", dir.as_cstr(), &plan.options),
    }
}

/// A LOCK in etcd (see `etcd::session`). Out of line: the local path
/// never touches it.
#[cold]
#[inline(never)]
fn etcd(plan: &Run, address: &[u8]) -> c_int {
    #[cfg(feature = "etcd")]
    {
        syslog::begin(&plan.options, address, plan.argv());
        crate::etcd::session::run(address, &plan.options, plan.argv())
    }
    #[cfg(not(feature = "etcd"))]
    {
        let _ = (plan, address);
        unreachable!("plan::make refuses etcd addresses without etcd support");
    }
}

/// After the walk: take the lock on `path` (LOCK, resolved) as the plan's
/// mode says and run the job; or say why not and return the exit code.
fn lock_and_run(plan: &Run, lock: &[u8], path: &CStr) -> c_int {
    let argv = plan.argv();
    let parent = match plan.mode {
        Mode::Slots { parent } => return slots::run(path, argv, &plan.options, lock, parent),
        mode => mode == Mode::Parent,
    };
    let failure = match lock::acquire(path, &plan.options, lock) {
        Ok(locked) => match job::run(locked, path, None, argv, &plan.options, parent) {
            Ok(status) => return c_int::from(status),
            Err(failure) => failure,
        },
        Err(failure) => failure,
    };
    report::run_failed(&failure, lock, argv.iter().next().unwrap_or(b""), path, &plan.options)
}
