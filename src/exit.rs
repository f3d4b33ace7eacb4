//! Every exit code withlock itself can return, in one place.
//!
//! When the command runs, its own status is withlock's (withlock has become
//! the command). These codes are for withlock's own outcomes, chosen from
//! sysexits.h and the shells' conventions so that none of them can be
//! confused with "the lock was busy".

/// Bad usage: no LOCK or COMMAND, an unknown option, a malformed value.
pub const USAGE: u8 = 64; // EX_USAGE
/// An unexpected failure of the system (a call that should not fail did),
/// or no file descriptor or memory left to open the lock file.
pub const OS_ERROR: u8 = 71; // EX_OSERR
/// A bug in withlock (a panic). Never expected; please report it.
pub const INTERNAL: u8 = 70; // EX_SOFTWARE
/// The lock service (etcd) cannot be reached or trusted; the job did not run.
pub const UNAVAILABLE: u8 = 69; // EX_UNAVAILABLE
/// The lock in etcd was lost (its lease could not be kept alive) while the
/// job ran; withlock stopped the job before the lease could expire.
pub const LEASE_LOST: u8 = 76;
/// The lock file cannot be opened or created.
pub const CANNOT_CREATE: u8 = 73; // EX_CANTCREAT
/// The lock is busy, or the wait for it expired.
pub const BUSY: u8 = 75; // EX_TEMPFAIL
/// The lock's location or file was refused as unsafe.
pub const REFUSED: u8 = 77; // EX_NOPERM
/// The job ran past `--max-runtime` and was stopped (as timeout(1) says).
pub const TIMED_OUT: u8 = 124;
/// The command exists but cannot be executed (as shells report it).
pub const CANNOT_EXECUTE: u8 = 126;
/// The command was not found (as shells report it).
pub const NOT_FOUND: u8 = 127;
