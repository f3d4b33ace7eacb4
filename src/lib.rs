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
//! The path from argv to exec, in order: [`stdio`] makes sure descriptors
//! 0-2 are open (so that the lock file cannot take one of their numbers),
//! [`cli`] parses options (indices into argv only), [`locate`] walks to the
//! lock file judging each directory, [`lock`] opens, checks, locks and
//! re-checks the file (with a [`timer`] deadline only if it has to wait),
//! and [`exec`] becomes the command. Every failure is an [`error::Failure`]
//! that knows its message and its [`exit`] code.

#![cfg_attr(not(test), no_std)]

#[cfg(feature = "etcd")]
#[allow(dead_code)]
pub(crate) mod base64;
pub mod cli;
pub mod clock;
pub mod duration;
pub mod error;
#[cfg(feature = "etcd")]
pub(crate) mod etcd;
#[cfg(feature = "etcd")]
pub mod etcd_session;
pub mod exec;
pub mod exit;
pub mod help;
pub mod holder;
#[cfg(feature = "etcd")]
#[allow(dead_code)]
pub(crate) mod http;
#[cfg(feature = "jitter")]
pub mod jitter;
#[cfg(feature = "status")]
pub mod json;
#[cfg(feature = "etcd")]
#[allow(dead_code)]
pub(crate) mod jsonread;
pub mod locate;
pub mod lock;
pub mod named;
#[cfg(feature = "etcd")]
#[allow(dead_code)]
pub(crate) mod net;
pub mod once;
pub mod proc;
pub mod record;
#[cfg(feature = "replace")]
pub mod replace;
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

use core::ffi::{CStr, c_char, c_int};
use error::Failure;

/// The process's arguments, as `main` received them.
struct Args {
    argv: *const *const c_char,
    count: usize,
}

impl Args {
    /// argv from `index` on: a null-terminated array of C strings, as
    /// `execvp` wants it.
    fn tail(&self, index: usize) -> exec::Argv {
        assert!(index < self.count);
        // SAFETY: `Args` is built only from main's argc/argv: argv[index..argc]
        // are valid C strings and argv[argc] is null.
        unsafe { exec::Argv::new(self.argv.add(index)) }
    }

    fn get(&self, index: usize) -> &'static CStr {
        assert!(index < self.count);
        // SAFETY: `Args` is built only from main's argc/argv (see `main`):
        // argv[0..argc] are valid C strings that live as long as the process.
        unsafe { CStr::from_ptr(*self.argv.add(index)) }
    }
}

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
    let args = Args { argv, count: usize::try_from(argc).unwrap_or(0) };
    let request = cli::parse(&|i| args.get(i).to_bytes(), args.count);
    let (options, lock, command) = match request {
        Ok(cli::Request::Help) => {
            help::print_help();
            return 0;
        }
        Ok(cli::Request::Version) => {
            help::print_version();
            return 0;
        }
        Ok(cli::Request::Run { options, lock, command }) => {
            // Before anything is looked at, let alone held.
            #[cfg(feature = "jitter")]
            if let Some(most) = options.jitter {
                jitter::sleep(most, options.verbose);
            }
            if options.name.is_none() && cli::is_etcd(args.get(lock).to_bytes()) {
                return run_etcd(&args, &options, lock, command);
            }
            (options, lock, command)
        }
        #[cfg(feature = "status")]
        Ok(cli::Request::Status { options, first }) if options.name.is_some() => {
            return named_status(&args, &options, first);
        }
        #[cfg(feature = "status")]
        Ok(cli::Request::Status { options, first }) => {
            return c_int::from(status::run(None, (first..args.count).map(|i| args.get(i)), options.json));
        }
        #[cfg(not(feature = "status"))]
        Ok(cli::Request::Status { .. }) => {
            let mut buf = text::diagnostic();
            buf.line().push(b"this withlock was built without --status (build it with `make`)");
            buf.line().emit();
            return c_int::from(exit::USAGE);
        }
        Err(usage) => {
            Failure::Usage(usage).report(b"", b"", c"", false);
            return c_int::from(exit::USAGE);
        }
    };
    #[cfg(not(feature = "replace"))]
    if options.replace {
        let mut buf = text::diagnostic();
        buf.line().push(b"this withlock was built without --replace (build it with `make`)");
        buf.line().emit();
        return c_int::from(exit::USAGE);
    }
    if options.name.is_some() {
        return run_named(&args, &options, command);
    }

    let Some(short) = locate::Buffers::short() else {
        unreachable!("main runs once");
    };
    let mut walk = short.walk();
    let lock_path = args.get(lock).to_bytes();
    let walked = locate::locate(lock_path, options.insecure, &mut walk);
    if let Err(failure) = &walked
        && locate::needs_more_room(failure)
    {
        return walk_long_path(&args, &options, lock_path, command);
    }
    lock_and_run(walked, &walk.resolved, &args, &options, lock_path, command)
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

/// `--name NAME`: make withlock's directory if needed (see [`named`]), then
/// walk to `DIR/NAME` and run as for a LOCK. Out of line, like
/// [`walk_long_path`]: its buffers cost nothing to a plain LOCK.
#[cold]
#[inline(never)]
fn run_named(args: &Args, options: &cli::Options, command: usize) -> c_int {
    let mut dir = text::LineBuf::<{ locate::PATH_MAX }>::new();
    let mut path = text::LineBuf::<{ locate::PATH_MAX }>::new();
    // --syslog logs a refused or unmakeable place too.
    let fail = |failure: &Failure, dir: &text::Line, path: &text::Line| {
        if syslog::asked(options) {
            with_command(args, options, command, |argv| begin_log(options, path.as_bytes(), argv));
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
        Ok(()) if options.insecure => named::make_dir(named::c_str(dir.line()), mode),
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
    failure.report(lock_path, b"", named::c_str(dir), verbose);
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
    let named = Some(named::c_str(path.line()));
    c_int::from(status::run(named, (first..args.count).map(|i| args.get(i)), options.json))
}

/// The slot a `--slots N` job took: `index` of `of` (N).
#[derive(Clone, Copy)]
pub struct Slot {
    pub index: u8,
    pub of: u8,
}

/// Does withlock stay the job's parent rather than become the job? Every
/// option that needs someone to watch the job says so here, whatever took
/// the lock (LOCK itself or a slot of it).
fn stays_parent(options: &cli::Options) -> bool {
    options.unlink || options.no_inherit || options.max_runtime.is_some() || syslog::asked(options)
}

/// Run the job under the lock we hold on the file `path` (LOCK, or a slot's
/// file): become it, or stay its parent if an option needs one (see
/// [`stay_parent`]). `Ok` is the exit status when withlock stayed the
/// parent; `Err` why the job could not be run.
pub(crate) fn run_job(
    locked: lock::Locked,
    path: &CStr,
    slot: Option<Slot>,
    argv: exec::Argv,
    options: &cli::Options,
) -> Result<u8, Failure<'static>> {
    // SAFETY: all-zero is a valid utsname, for uname to fill.
    let mut uts = unsafe { core::mem::zeroed() };
    let mut store_record = |job: Option<u32>| {
        // Shared holders are many: none of them is "the" holder.
        if !options.shared {
            let mut facts = record::Facts::now(job, record::host_name(&mut uts));
            if let Some(slot) = slot {
                (facts.slots, facts.slot) = (slot.of, slot.index);
            }
            record::store(path, &locked, &facts, argv.iter());
        }
    };
    if stays_parent(options) {
        return stay_parent(&locked, path, argv, options, store_record);
    }
    store_record(None);
    Err(exec::become_command(locked.fd, argv, options.verbose))
}

/// `--syslog`: log this run's outcomes, about `lock` and `argv`.
#[cfg_attr(not(feature = "syslog"), allow(unused_variables))]
fn begin_log(options: &cli::Options, lock: &[u8], argv: exec::Argv) {
    #[cfg(feature = "syslog")]
    if let Some(facility) = options.syslog {
        syslog::begin(facility, lock.strip_suffix(b"\0").unwrap_or(lock), argv, options.verbose);
    }
}

/// `--unlink`, `--no-inherit`, `--max-runtime`, `--syslog`: run the job as a child (see
/// [`supervise`]) and return its exit status, or 124 if it was stopped for
/// running too long. A job killed by a signal kills us the same way.
fn stay_parent(
    locked: &lock::Locked,
    path: &CStr,
    argv: exec::Argv,
    options: &cli::Options,
    store_record: impl FnOnce(Option<u32>),
) -> Result<u8, Failure<'static>> {
    let watch = supervise::Watch {
        max_runtime: options.max_runtime,
        kill_after: options.kill_after.unwrap_or(lock::DEFAULT_KILL_AFTER),
        die_with_parent: options.no_inherit,
        withhold: if options.no_inherit { Some(locked.fd.raw()) } else { None },
        // What the job leaves running in its group holds the lock: it is
        // still the job. (With --no-inherit it does not: such leftovers are
        // the daemons that option is for.)
        wait_for_group: !options.no_inherit,
        verbose: options.verbose,
    };
    let ended = supervise::run(argv, &watch, &mut supervise::NoGuard, |job| store_record(Some(job)))?;
    // Remove the file while we still hold its lock, only if it is still the
    // file we locked, and only if nothing the job started (which inherited
    // the lock) runs on outside its group, which is gone: the next job would
    // take a new file beside it.
    if options.unlink
        && sys::lstat(path)
            .is_ok_and(|now| now.st_dev == locked.stat.st_dev && now.st_ino == locked.stat.st_ino)
    {
        if !options.no_inherit && supervise::descendants_remain() {
            if options.verbose {
                supervise::say(
                    b"processes the job started run on, holding the lock: the lock file stays",
                    None,
                    b"",
                );
            }
        } else {
            // SAFETY: a valid C string.
            unsafe { libc::unlink(path.as_ptr()) };
            if options.verbose {
                supervise::say(b"the job ended; removed the lock file", None, b"");
            }
        }
    }
    Ok(match ended {
        supervise::Ended::Exited(status) => supervise::exit_like(status),
        _ => exit::TIMED_OUT,
    })
}

/// A LOCK in etcd (see [`etcd_session`]). Out of line: the local path
/// never touches it.
#[cold]
#[inline(never)]
fn run_etcd(args: &Args, options: &cli::Options, lock: usize, command: usize) -> c_int {
    #[cfg(feature = "etcd")]
    return with_command(args, options, command, |argv| {
        begin_log(options, args.get(lock).to_bytes(), argv);
        etcd_session::run(args.get(lock).to_bytes(), options, argv)
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
    begin_log(options, lock_path, argv);
    if options.slots > 0 {
        return slots::run(walked, resolved.as_cstr(), argv, options, lock_path);
    }
    let failure = match walked.and_then(|()| lock::acquire(resolved.as_cstr(), options, lock_path)) {
        Ok(locked) => match run_job(locked, resolved.as_cstr(), None, argv, options) {
            Ok(status) => return c_int::from(status),
            Err(failure) => failure,
        },
        Err(failure) => failure,
    };

    let conflict = options.conflict_code();
    let to_stderr = !(options.quiet && failure.is_conflict());
    if to_stderr || syslog::enabled() {
        let command_name = argv.iter().next().unwrap_or(b"");
        failure.tell(lock_path, command_name, resolved.as_cstr(), options.verbose, to_stderr);
    }
    c_int::from(failure.exit_code(conflict))
}
