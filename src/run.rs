//! From the parsed command line to the job, once `main` has decided the
//! target: a LOCK path (walked with short buffers, or long ones for a long
//! path), a `--name` (its directory made if missing), or an etcd address;
//! then locked and run through [`crate::job`] or [`crate::slots`].

use crate::error::Failure;
#[cfg(feature = "etcd")]
use crate::etcd;
use crate::plan::Args;
#[cfg(feature = "status")]
use crate::status;
use crate::{cli, exec, exit, job, locate, lock, named, report, slots, syslog, text};
use core::ffi::{c_char, c_int};

/// What LOCK names, decided once: a lock in etcd, `--name`'s file, or a
/// path.
pub enum Target {
    Etcd,
    Name,
    Path,
}

impl Target {
    pub fn of(args: &Args, options: &cli::Options, lock: usize) -> Target {
        if options.name.is_some() {
            Target::Name
        } else if cli::is_etcd(args.get(lock).to_bytes()) {
            Target::Etcd
        } else {
            Target::Path
        }
    }
}

/// A LOCK path: walk to it with the short buffers (the long ones only if
/// it does not fit), lock it and run the command.
pub fn path(args: &Args, options: &cli::Options, lock: usize, command: usize) -> c_int {
    let Some(short) = locate::Buffers::short() else {
        unreachable!("main runs once");
    };
    let mut walk = short.walk();
    let lock_path = args.get(lock).to_bytes();
    let walked = locate::locate(lock_path, options.insecure, &mut walk);
    if let Err(failure) = &walked
        && locate::needs_more_room(failure)
    {
        return walk_long_path(args, options, lock_path, command);
    }
    lock_and_run(walked, &walk.resolved, args, options, lock_path, command)
}

/// `--status [--name NAME] [LOCK...]`.
#[cold]
#[inline(never)]
pub fn status(args: &Args, options: &cli::Options, first: usize) -> c_int {
    #[cfg(feature = "status")]
    return if options.name.is_some() {
        named_status(args, options, first)
    } else {
        c_int::from(status::run(None, (first..args.count).map(|i| args.get(i)), options.json))
    };
    #[cfg(not(feature = "status"))]
    {
        let _ = (args, options, first);
        report::not_built(b"--status")
    }
}

/// The rare LOCK that does not fit the short buffers: walk it again with
/// room for any path. Out of line, so the big buffers cost nothing to the
/// usual path (see `locate::Buffers`).
#[cold]
#[inline(never)]
fn walk_long_path(args: &Args, options: &cli::Options, lock_path: &[u8], command: usize) -> c_int {
    let mut buffers = locate::Buffers::<{ locate::PATH_MAX }>::new();
    let mut walk = buffers.walk();
    let walked = locate::locate(lock_path, options.insecure, &mut walk);
    lock_and_run(walked, &walk.resolved, args, options, lock_path, command)
}

/// The value of `--name`: argv's C string from the option's value on.
fn name_of(args: &Args, options: &cli::Options) -> &'static [u8] {
    let at = options.name.unwrap_or(cli::ValueAt { index: 0, offset: 0 });
    args.get(at.index).to_bytes().get(at.offset..).unwrap_or(b"")
}

/// `--name NAME`: make withlock's directory if needed (see [`crate::named`]), then
/// walk to `DIR/NAME` and run as for a LOCK. Out of line, like
/// `walk_long_path`: its buffers cost nothing to a plain LOCK.
#[cold]
#[inline(never)]
pub fn named(args: &Args, options: &cli::Options, command: usize) -> c_int {
    let mut dir = text::LineBuf::<{ locate::PATH_MAX }>::new();
    let mut path = text::LineBuf::<{ locate::PATH_MAX }>::new();
    // --syslog logs a refused or unmakeable place too.
    let fail = |failure: &Failure, dir: &text::Line, path: &text::Line| {
        if options.logs() {
            with_command(args, options, command, |argv| syslog::begin(options, path.as_bytes(), argv));
        }
        report_named(failure, dir, path, options.verbose)
    };
    let mode = match named::lock_path(name_of(args, options), dir.line(), path.line()) {
        Ok(mode) => mode,
        Err(failure) => return fail(&failure, dir.line(), path.line()),
    };
    let lock_path = path.line().as_bytes();
    let lock_path = &lock_path[..lock_path.len() - 1]; // Without its NUL.
    // Judge the way to DIR before making it: make it only where the walk
    // stops for want of it (or, with --insecure, which judges nothing).
    let mut buffers = locate::Buffers::<{ locate::PATH_MAX }>::new();
    let mut walk = buffers.walk();
    let made = match locate::locate(lock_path, options.insecure, &mut walk) {
        Ok(()) if options.insecure => named::make_dir(dir.line().as_cstr(), mode),
        Err(failure) if named::dir_is_missing(&failure, walk.resolved.as_bytes(), dir.line()) => {
            named::make_dir(walk.resolved.as_cstr(), mode)
        }
        _ => Ok(()), // There, or refused: the walk below says which.
    };
    if let Err(failure) = made {
        return fail(&failure, dir.line(), path.line());
    }
    walk_long_path(args, options, lock_path, command)
}

/// Say why `DIR/NAME` could not be reached (`path` and `dir` as
/// `named::lock_path` left them) and return the exit code.
fn report_named(failure: &Failure, dir: &text::Line, path: &text::Line, verbose: bool) -> c_int {
    let lock_path = path.as_bytes();
    let lock_path = lock_path.strip_suffix(b"\0").unwrap_or(lock_path);
    report::failure(failure, lock_path, b"", dir.as_cstr(), verbose);
    c_int::from(failure.exit_code(exit::BUSY))
}

/// `--status --name NAME [LOCK...]`: the named lock, then any others. It
/// only looks: the directory is not created.
#[cfg(feature = "status")]
#[cold]
#[inline(never)]
fn named_status(args: &Args, options: &cli::Options, first: usize) -> c_int {
    let mut dir = text::LineBuf::<{ locate::PATH_MAX }>::new();
    let mut path = text::LineBuf::<{ locate::PATH_MAX }>::new();
    if let Err(failure) = named::lock_path(name_of(args, options), dir.line(), path.line()) {
        return report_named(&failure, dir.line(), path.line(), false);
    }
    let named = Some(path.line().as_cstr());
    c_int::from(status::run(named, (first..args.count).map(|i| args.get(i)), options.json))
}

/// A LOCK in etcd (see `etcd::session`). Out of line: the local path
/// never touches it.
#[cold]
#[inline(never)]
pub fn etcd(args: &Args, options: &cli::Options, lock: usize, command: usize) -> c_int {
    #[cfg(feature = "etcd")]
    return with_command(args, options, command, |argv| {
        syslog::begin(options, args.get(lock).to_bytes(), argv);
        etcd::session::run(args.get(lock).to_bytes(), options, argv)
    });
    #[cfg(not(feature = "etcd"))]
    {
        let _ = (options, command);
        let mut buf = text::diagnostic();
        let line = buf.line();
        line.push_quoted(args.get(lock).to_bytes());
        line.push(b": this withlock was built without etcd support (build it with `make FEATURES=etcd`)");
        line.emit();
        c_int::from(exit::UNAVAILABLE)
    }
}

/// Call `f` with the command to run: `/bin/sh -c STRING` for `-c STRING`,
/// otherwise argv from COMMAND on.
fn with_command<R>(
    args: &Args,
    options: &cli::Options,
    command: usize,
    f: impl FnOnce(exec::Argv) -> R,
) -> R {
    let shell_argv: [*const c_char; 4];
    let argv = match options.shell {
        Some(at) => {
            let string = args.get(at.index).to_bytes_with_nul().get(at.offset..).unwrap_or(b"\0");
            shell_argv = [c"/bin/sh".as_ptr(), c"-c".as_ptr(), string.as_ptr().cast(), core::ptr::null()];
            // SAFETY: three C strings that live as long as the process (two
            // literals and the tail of an argv string, which ends with its
            // NUL), then a null; the array outlives every use of `argv`,
            // which lives only during `f`.
            unsafe { exec::Argv::new(shell_argv.as_ptr()) }
        }
        None => args.tail(command),
    };
    f(argv)
}

/// After the walk: take the lock and become the command, or say why not
/// and return the exit code.
fn lock_and_run(
    walked: Result<(), Failure<'static>>,
    resolved: &locate::Resolved,
    args: &Args,
    options: &cli::Options,
    lock_path: &[u8],
    command: usize,
) -> c_int {
    with_command(args, options, command, |argv| {
        lock_and_run_command(walked, resolved, options, lock_path, argv)
    })
}

fn lock_and_run_command(
    walked: Result<(), Failure<'static>>,
    resolved: &locate::Resolved,
    options: &cli::Options,
    lock_path: &[u8],
    argv: exec::Argv,
) -> c_int {
    syslog::begin(options, lock_path, argv);
    if options.slots > 0 {
        return slots::run(walked, resolved.as_cstr(), argv, options, lock_path);
    }
    let failure = match walked.and_then(|()| lock::acquire(resolved.as_cstr(), options, lock_path)) {
        Ok(locked) => match job::run(locked, resolved.as_cstr(), None, argv, options) {
            Ok(status) => return c_int::from(status),
            Err(failure) => failure,
        },
        Err(failure) => failure,
    };
    report::run_failed(&failure, lock_path, argv.iter().next().unwrap_or(b""), resolved.as_cstr(), options)
}
