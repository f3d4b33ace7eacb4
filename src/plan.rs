//! Parse, then plan: what was typed ([`crate::cli`]) resolved once into
//! what withlock will do — the target (a LOCK path, `--name`'s file, or a
//! lock in etcd) and the mode (become the job, stay its parent, take a
//! slot, or only look) — so that nothing after looks at the command line
//! again.

use crate::cli::{self, Options, Request};
use crate::error::UsageError;
use crate::exec::Argv;
use crate::exit;
use core::ffi::{CStr, c_char, c_int};

/// The process's arguments, as `main` received them.
pub struct Args {
    argv: *const *const c_char,
    count: usize,
}

impl Args {
    /// # Safety
    /// `argv` must point to `argc` valid NUL-terminated strings followed by
    /// a null pointer, as the C runtime passes them to `main`: they live as
    /// long as the process.
    pub unsafe fn new(argc: c_int, argv: *const *const c_char) -> Args {
        Args { argv, count: usize::try_from(argc).unwrap_or(0) }
    }

    pub fn get(&self, index: usize) -> &'static CStr {
        assert!(index < self.count);
        // SAFETY: `Args` is built only from main's argc/argv (see `new`):
        // argv[0..argc] are valid C strings that live as long as the process.
        unsafe { CStr::from_ptr(*self.argv.add(index)) }
    }

    /// argv from `first` on.
    pub fn from(&self, first: usize) -> impl Iterator<Item = &'static CStr> {
        (first..self.count).map(|i| self.get(i))
    }

    /// The value of an option (see [`cli::ValueAt`]), with the NUL that
    /// ends its argument.
    fn value_with_nul(&self, at: cli::ValueAt) -> &'static [u8] {
        self.get(at.index).to_bytes_with_nul().get(at.offset..).unwrap_or(b"\0")
    }

    /// The value of an option, without its NUL.
    fn value(&self, at: cli::ValueAt) -> &'static [u8] {
        let value = self.value_with_nul(at);
        &value[..value.len() - 1]
    }
}

/// What withlock will do.
// Made once, in main's frame; there is no allocator to box a `Run` with.
#[allow(clippy::large_enum_variant)]
pub enum Plan {
    Help,
    Version,
    /// Bad usage: say so (64), and do nothing.
    Usage(UsageError<'static>),
    /// A part this build leaves out, named, and the exit code: an option
    /// (64), or etcd support for an etcd address (69).
    NotBuilt(&'static [u8], u8),
    /// `--status`: tell who holds `--name`'s lock, if given, and each of
    /// argv from `first` on; take none of them.
    #[cfg(feature = "status")]
    Status {
        name: Option<&'static [u8]>,
        first: usize,
        json: bool,
    },
    /// Take a lock and run the job.
    Run(Run),
}

/// What the lock is, decided once.
#[derive(Clone, Copy)]
pub enum Target {
    /// A lock file: LOCK as typed.
    Path(&'static [u8]),
    /// `--name NAME`: NAME, in withlock's own directory (see [`crate::named`]).
    Name(&'static [u8]),
    /// A lock in etcd: its `etcd://` address as typed.
    Etcd(&'static [u8]),
}

/// How the lock is taken and the job run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Take the lock and become the job: the default, at the floor.
    Exec,
    /// Take the lock and stay the job's parent, to watch it (see
    /// [`Options::stays_parent`]); always so for a lock in etcd.
    Parent,
    /// `--slots N`: take one of N slots, then become the job, or stay its
    /// parent if `parent`.
    Slots { parent: bool },
}

/// A run: the lock to take, how, and the command.
pub struct Run {
    pub options: Options,
    pub target: Target,
    pub mode: Mode,
    command: Command,
}

/// The command: argv from COMMAND on, or `/bin/sh -c STRING` for
/// `-c STRING` (three C strings and a null).
enum Command {
    Tail(*const *const c_char),
    Shell([*const c_char; 4]),
}

impl Run {
    /// The command to run, as `execvp` takes it.
    pub fn argv(&self) -> Argv {
        let argv = match &self.command {
            Command::Tail(argv) => *argv,
            Command::Shell(argv) => argv.as_ptr(),
        };
        // SAFETY: either the tail of main's argv (valid C strings, then its
        // null), or three C strings that live as long as the process (two
        // literals and the tail of an argv string, which ends with its NUL)
        // and a null, in an array that lives as long as the plan.
        unsafe { Argv::new(argv) }
    }
}

/// Read the command line in `args` and decide what to do.
// Out of `main`: inlined there, the build grows by 450 bytes.
#[inline(never)]
pub fn make(args: &Args) -> Plan {
    let (options, target, command) = match cli::parse(&|i| args.get(i).to_bytes(), args.count) {
        Err(usage) => return Plan::Usage(usage),
        Ok(Request::Help) => return Plan::Help,
        Ok(Request::Version) => return Plan::Version,
        #[cfg(feature = "status")]
        Ok(Request::Status { options, first }) => {
            let name = options.name.map(|at| args.value(at));
            return Plan::Status { name, first, json: options.json };
        }
        #[cfg(not(feature = "status"))]
        Ok(Request::Status { .. }) => return Plan::NotBuilt(b"--status", exit::USAGE),
        Ok(Request::Run { options, .. }) if options.replace && !cfg!(feature = "replace") => {
            return Plan::NotBuilt(b"--replace", exit::USAGE);
        }
        Ok(Request::Run { options, target, command }) => (options, target, command),
    };
    let parent = options.stays_parent();
    let (target, mode) = match target {
        cli::Target::Etcd(_) if !cfg!(feature = "etcd") => {
            return Plan::NotBuilt(b"etcd support", exit::UNAVAILABLE);
        }
        cli::Target::Etcd(lock) => (Target::Etcd(args.get(lock).to_bytes()), Mode::Parent),
        cli::Target::Name(at) => (Target::Name(args.value(at)), mode_of(&options, parent)),
        cli::Target::Path(lock) => (Target::Path(args.get(lock).to_bytes()), mode_of(&options, parent)),
    };
    let command = match options.shell {
        Some(at) => {
            let string = args.value_with_nul(at).as_ptr().cast();
            Command::Shell([c"/bin/sh".as_ptr(), c"-c".as_ptr(), string, core::ptr::null()])
        }
        None => {
            assert!(command < args.count);
            // SAFETY: COMMAND is within argc: argv from it on is in main's array.
            Command::Tail(unsafe { args.argv.add(command) })
        }
    };
    Plan::Run(Run { options, target, mode, command })
}

fn mode_of(options: &Options, parent: bool) -> Mode {
    if options.slots > 0 {
        Mode::Slots { parent }
    } else if parent {
        Mode::Parent
    } else {
        Mode::Exec
    }
}
