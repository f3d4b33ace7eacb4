//! Why withlock did not run the command (or, for a lock in etcd, stopped
//! it): each failure and its exit code.
//!
//! A plain type, below everything that can fail; how a failure is worded
//! for the user is [`crate::report`]'s job.

use crate::exit;
use crate::sys::{Errno, Kind};
use core::time::Duration;

/// A usage error: what is wrong, and the argument at fault if there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageError<'a> {
    pub problem: &'static str,
    pub culprit: Option<&'a [u8]>,
}

/// For [`Failure::SlotsMixed`]: `LOCK.N` may be held where /proc/locks
/// cannot show it, by a job whose N is not known.
pub const UNSEEN: u32 = u32::MAX;

/// Why a lock location is refused as unsafe.
#[derive(Debug)]
pub enum Unsafe {
    /// A directory on the way is owned by someone else.
    DirectoryOwner { uid: u32 },
    /// The lock's directory can be written by group or others.
    DirectoryWritable { mode: u32 },
    /// A directory on the way can be written by group or others and is not
    /// sticky, so its entries can be replaced.
    PathWritable { mode: u32 },
    /// A symbolic link in a shared (sticky) directory, owned by someone else.
    SymlinkOwner { uid: u32 },
    /// The lock file itself is a symbolic link: never followed.
    LockIsSymlink,
    /// The lock file is not a regular file.
    LockKind(Kind),
    /// The lock file is owned by someone else.
    LockOwner { uid: u32 },
    /// The lock file has several names; someone else's name for it could be
    /// anywhere.
    LockLinks { links: u64 },
    /// The lock file can be written by group or others.
    LockWritable { mode: u32 },
}

#[derive(Debug)]
pub enum Failure<'a> {
    Usage(UsageError<'a>),
    /// The lock is held by someone else and we were not to wait.
    Busy,
    /// We waited this long and it stayed busy.
    TimedOut(Duration),
    /// The location or file is unsafe. The directory or link at fault is
    /// where the walk stopped (its `resolved` path); a fault of the lock
    /// file itself is LOCK's.
    Refused {
        why: Unsafe,
    },
    /// The lock file cannot be opened (73; 71 for want of descriptors or
    /// memory); `on_path` if it was a directory on the way (where the walk
    /// stopped) rather than the file itself.
    CannotOpen {
        errno: Errno,
        on_path: bool,
    },
    /// A system call failed unexpectedly.
    System {
        call: &'static str,
        errno: Errno,
    },
    /// `--replace` found nothing it may safely stop.
    CannotReplace(&'static str),
    /// `--replace` met a holder that belongs to someone else.
    ReplaceForbidden {
        pid: u32,
        uid: u32,
    },
    /// `--slots N`: all N slots are taken.
    SlotsBusy {
        slots: u8,
    },
    /// `--slots N` (`ours`) met a job on the same LOCK with another N:
    /// `slot`'s holder records `theirs` (0: not known), or `slot` is N;
    /// `theirs` is [`UNSEEN`] if `slot` is N and may be held where it
    /// cannot be seen.
    SlotsMixed {
        slot: u8,
        ours: u8,
        theirs: u32,
    },
    /// `execvp` failed.
    CannotRun {
        errno: Errno,
    },
    /// The command is in no PATH directory we could search, and some could
    /// not be searched (`execvp` says EACCES for that).
    NotInPath,
    /// No memory to do `what` (to add variables to the job's environment).
    #[cfg(feature = "etcd")]
    NoMemory(&'static str),
    /// etcd cannot be reached or trusted: `what` failed, and `why` is the
    /// wire's error in words (empty if none). The job was not run.
    #[cfg(feature = "etcd")]
    Unavailable {
        what: &'static str,
        why: &'a [u8],
    },
    /// etcd granted a lease of `granted` seconds (0 or less: without a
    /// time to live), less than the `asked` (`--lease`) the margins were
    /// checked for.
    #[cfg(feature = "etcd")]
    LeaseTooShort {
        granted: i64,
        asked: i64,
    },
    /// An etcd endpoint off this host, which plain HTTP would reach across
    /// the network (refused without `--insecure`).
    #[cfg(feature = "etcd")]
    PlainHttp {
        endpoint: &'a [u8],
    },
    /// The lock in etcd was lost while the job ran: `why`, the last
    /// keepalive's error in words (may be empty), and in how many
    /// milliseconds the job's group gets SIGKILL (unless the watchdog has
    /// killed it already).
    #[cfg(feature = "etcd")]
    LeaseLost {
        why: Loss,
        last_try: &'a [u8],
        kill_in_ms: u32,
    },
}

/// Why a lock in etcd was lost (see [`Failure::LeaseLost`]).
#[cfg(feature = "etcd")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// No keepalive was confirmed in time.
    NotRenewed,
    /// etcd says the lease is gone.
    LeaseGone,
    /// The lock's key was deleted.
    KeyGone,
    /// withlock could not renew the lease in time, and its watchdog has
    /// killed the job's group.
    Watchdog,
}

impl Failure<'_> {
    /// The exit code for this failure; `conflict` is the code chosen for a
    /// busy lock (75, or 0 with `-q`, or `-E N`).
    pub fn exit_code(&self, conflict: u8) -> u8 {
        match self {
            Failure::SlotsMixed { theirs: UNSEEN, .. } => exit::UNAVAILABLE,
            Failure::Usage(_) | Failure::SlotsMixed { .. } => exit::USAGE,
            #[cfg(feature = "etcd")]
            Failure::Unavailable { .. } | Failure::LeaseTooShort { .. } => exit::UNAVAILABLE,
            #[cfg(feature = "etcd")]
            Failure::LeaseLost { .. } => exit::LEASE_LOST,
            #[cfg(feature = "etcd")]
            Failure::PlainHttp { .. } => exit::REFUSED,
            #[cfg(feature = "etcd")]
            Failure::NoMemory(_) => exit::OS_ERROR,
            Failure::Busy | Failure::TimedOut(_) | Failure::SlotsBusy { .. } => conflict,
            Failure::Refused { .. } | Failure::ReplaceForbidden { .. } => exit::REFUSED,
            Failure::CannotReplace(_) => exit::BUSY,
            Failure::CannotOpen { errno, .. } if out_of_resources(*errno) => exit::OS_ERROR,
            Failure::CannotOpen { .. } => exit::CANNOT_CREATE,
            Failure::System { .. } => exit::OS_ERROR,
            Failure::CannotRun { errno } if matches!(errno.0, libc::ENOENT | libc::ENOTDIR) => {
                exit::NOT_FOUND
            }
            Failure::CannotRun { .. } => exit::CANNOT_EXECUTE,
            Failure::NotInPath => exit::NOT_FOUND,
        }
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Failure::Busy | Failure::TimedOut(_) | Failure::SlotsBusy { .. })
    }
}

/// Is `errno` a shortage of descriptors or memory (71), not a problem of
/// the lock file (73)?
pub fn out_of_resources(errno: Errno) -> bool {
    matches!(errno.0, libc::EMFILE | libc::ENFILE | libc::ENOMEM)
}
