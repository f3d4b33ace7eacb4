//! Becoming the command: `execvp` with the lock's descriptor left open, and
//! an exact account of why, if it fails.
//!
//! Nothing is copied: the command's argv is the tail of withlock's own.
//! PATH is searched by the C library as a shell would (no shell is run).

use crate::error::Failure;
use crate::sys::{self, Errno, Fd};
use crate::text;
use core::ffi::{CStr, c_char, c_int};

/// A command line as `execvp` takes it: a null-terminated array of C
/// strings with at least the command's name.
#[derive(Clone, Copy)]
pub struct Argv(*const *const c_char);

impl Argv {
    /// # Safety
    /// `argv` must point to at least one valid C string, followed (after any
    /// further ones) by a null pointer. The strings must live as long as the
    /// process; the array itself as long as the `Argv` is used.
    pub unsafe fn new(argv: *const *const c_char) -> Argv {
        Argv(argv)
    }

    /// The arguments, command name first.
    pub fn iter(self) -> impl Iterator<Item = &'static [u8]> {
        (0..).map_while(move |i| {
            // SAFETY: per `Argv`'s contract, entries up to the terminating
            // null are valid C strings that live as long as the process; we
            // stop at the null.
            unsafe {
                let arg = *self.0.add(i);
                (!arg.is_null()).then(|| CStr::from_ptr(arg).to_bytes())
            }
        })
    }
}

/// Become the command, keeping `locked` open for it. Returns only if
/// `execvp` fails.
pub fn become_command(locked: Fd, command: Argv, verbose: bool) -> Failure<'static> {
    // SAFETY: per `Argv`'s contract, command[0] is a valid C string.
    let name = unsafe { CStr::from_ptr(*command.0) };
    if verbose {
        say_running(&locked, name.to_bytes());
    }
    // The descriptor must outlive us: it is the job's now.
    let _ = locked.into_raw();
    exec_command(command)
}

/// `execvp` the command; returns only if that fails, saying why.
pub fn exec_command(command: Argv) -> Failure<'static> {
    // SAFETY: per `Argv`'s contract, command[0] is a valid C string.
    let name = unsafe { CStr::from_ptr(*command.0) };
    // A name with a slash is not searched for: execv, as execvp would do
    // after reading PATH (a tenth of withlock's instructions on its way).
    // SAFETY: `command` is valid per `Argv`'s contract.
    let errno = unsafe { sys::exec(name, command.0) };
    // EACCES from a PATH search means "some candidate was not executable" or
    // just "some PATH directory could not be searched"; only the first is
    // 126. (A name with a slash is not searched: its errno is exact.)
    if errno == Errno(libc::EACCES) && !name.to_bytes().contains(&b'/') && !exists_in_path(name) {
        return Failure::NotInPath;
    }
    Failure::CannotRun { errno }
}

/// Is there any file called `name` in a PATH directory we can search? Only
/// asked after a failed exec.
#[cold]
#[inline(never)]
fn exists_in_path(name: &CStr) -> bool {
    // musl's default, as execvp used.
    let path = sys::getenv(c"PATH").map_or(&b"/usr/local/bin:/bin:/usr/bin"[..], CStr::to_bytes);
    let name = name.to_bytes();
    let mut candidate = [0u8; 4096];
    path.split(|&b| b == b':').any(|dir| {
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let len = dir.len() + 1 + name.len();
        if len >= candidate.len() {
            return false;
        }
        candidate[..dir.len()].copy_from_slice(dir);
        candidate[dir.len()] = b'/';
        candidate[dir.len() + 1..len].copy_from_slice(name);
        candidate[len] = 0;
        CStr::from_bytes_with_nul(&candidate[..=len]).is_ok_and(|c| sys::stat(c).is_ok())
    })
}

/// Out of line, so the message buffer stays off the fast path's stack.
#[cold]
#[inline(never)]
fn say_running(locked: &Fd, command: &[u8]) {
    let mut buf = text::diagnostic();
    let line = buf.line();
    line.push(b"locked (descriptor ").push_u64(u64::try_from(locked.raw()).unwrap_or(0));
    line.push(b"); running ").push_quoted(command);
    line.emit();
}

unsafe extern "C" {
    /// The C library's environment, which `execvp` passes on.
    static mut environ: *const *const c_char;
}

/// Make `vars` (each `NAME=value` and a NUL, living until exec) part of the
/// environment the command gets, replacing any variables of the same names.
/// The new array is mapped to the size the environment has (`setenv` would
/// pull in musl's allocator, 5 KB; a fixed array would refuse environments
/// that a plain exec takes). False if there is no memory for it.
pub fn set_environment(vars: &[&[u8]]) -> bool {
    // SAFETY: `environ` is the C library's environment: null or a
    // null-terminated array of C strings, which nothing else changes now.
    let old = unsafe { environ };
    let entries = || {
        (0..).map_while(move |i| {
            // SAFETY: as above; we stop at the null.
            let entry = if old.is_null() { core::ptr::null() } else { unsafe { *old.add(i) } };
            (!entry.is_null()).then_some(entry)
        })
    };
    let room = entries().count() + vars.len() + 1;
    let Some(bytes) = room.checked_mul(core::mem::size_of::<*const c_char>()) else { return false };
    let Ok(map) = sys::map_anonymous(bytes, false) else { return false };
    // SAFETY: the mapping is `room` pointers long, zeroed (null pointers are
    // valid values), aligned to a page, and never unmapped.
    let new = unsafe { core::slice::from_raw_parts_mut(map.cast::<*const c_char>(), room) };
    let mut len = 0;
    for entry in entries() {
        // SAFETY: `entry` is a C string of the environment.
        let text = unsafe { CStr::from_ptr(entry) }.to_bytes();
        let replaced = vars.iter().any(|var| {
            let name = var.iter().position(|&b| b == b'=').map_or(&var[..], |eq| &var[..=eq]);
            text.starts_with(name)
        });
        if !replaced {
            new[len] = entry;
            len += 1;
        }
    }
    for var in vars {
        new[len] = var.as_ptr().cast();
        len += 1;
    }
    new[len] = core::ptr::null();
    // SAFETY: `new` is a null-terminated array of C strings that live until
    // exec (the environment's own strings, and `vars`), in memory never freed.
    unsafe { environ = new.as_ptr() };
    true
}

/// Whether a child's exec succeeded, told to its parent (which stays the
/// job's parent, see [`crate::supervise`]): a close-on-exec pipe. A
/// successful exec closes the child's end, and the parent reads end of
/// file; a failed one writes why first, and the parent reports it as the
/// plain path would (same message, same exit code), having never started
/// a job. Only `--syslog` asks (to log "started" once it is true); without
/// it the child reports its failure itself.
pub struct ExecReport {
    read: c_int,
    write: c_int,
}

/// What the parent has heard from the child so far.
pub enum Heard {
    /// Nothing yet: the child has not exec'd.
    Nothing,
    /// The command runs (or the child ended without a word).
    Ran,
    /// The command could not be run.
    Failed(Failure<'static>),
}

impl ExecReport {
    pub fn new() -> Result<ExecReport, Failure<'static>> {
        // Non-blocking: the parent never waits to hear (and the child's
        // one small write into an empty pipe never waits either).
        let [read, write] = sys::pipe(true).map_err(|errno| Failure::System { call: "pipe", errno })?;
        Ok(ExecReport { read, write })
    }

    /// The end the parent reads (for `poll`), or -1 once it has heard.
    pub fn fd(&self) -> c_int {
        self.read
    }

    /// In the child, after `failure` to exec: tell the parent. False if
    /// that failed too (then the child must say it itself).
    pub fn send(&self, failure: &Failure) -> bool {
        let (kind, errno) = match failure {
            Failure::CannotRun { errno } => (0u8, errno.0),
            Failure::NotInPath => (1, 0),
            _ => (2, 0),
        };
        let mut message = [0u8; 5];
        message[0] = kind;
        message[1..].copy_from_slice(&errno.to_ne_bytes());
        // A write this small is atomic.
        sys::write(self.write, &message) == Ok(message.len())
    }

    /// In the parent, after the fork: only the child writes.
    pub fn parent_side(&mut self) {
        sys::close(core::mem::replace(&mut self.write, -1));
    }

    /// In the parent: what the child has said (never waits).
    pub fn heard(&mut self) -> Heard {
        if self.read < 0 {
            return Heard::Ran;
        }
        let mut message = [0u8; 5];
        // The read end is non-blocking: nothing yet is EAGAIN.
        let heard = match sys::read(self.read, &mut message) {
            Err(Errno(libc::EAGAIN)) => return Heard::Nothing,
            Ok(5) => {
                let errno = Errno(c_int::from_ne_bytes([message[1], message[2], message[3], message[4]]));
                Heard::Failed(match message[0] {
                    0 => Failure::CannotRun { errno },
                    1 => Failure::NotInPath,
                    _ => Failure::System { call: "exec", errno },
                })
            }
            _ => Heard::Ran,
        };
        sys::close(core::mem::replace(&mut self.read, -1));
        heard
    }
}

impl Drop for ExecReport {
    fn drop(&mut self) {
        for fd in [self.read, self.write] {
            if fd >= 0 {
                sys::close(fd);
            }
        }
    }
}
