//! Thin, checked wrappers over the system calls withlock makes: every one
//! of them is made here.
//!
//! The rest of the code reads as plain Rust: results instead of `-1` and
//! `errno`, borrowed C strings instead of raw pointers. Nothing here
//! allocates; `EINTR` is retried here wherever it has only one meaning
//! (read, write, waitpid, open, the socket calls), and handed to the caller
//! where a caught signal is news (flock's deadline, poll, connect).
//!
//! What is left elsewhere, and why: the C library's own work that is no
//! system call (`execvp`'s PATH search is here, but the environment array
//! `exec.rs` builds, and the directory stream `proc.rs` reads on systems
//! without `getdents64`, are theirs), and pointers the kernel handed over
//! (a signal handler's `siginfo`, `AT_RANDOM`'s bytes), read where they are
//! used. Each `unsafe` block anywhere says why it is sound.

use core::ffi::{CStr, c_int};
use core::mem::MaybeUninit;

// On 32-bit musl targets the libc crate binds the old 32-bit `time_t` ABI
// (stat, timers, time types that end in 2038) unless built with
// `--cfg libc_unstable_musl_v1_2`, which .cargo/config.toml sets for them.
// Stop the build rather than ship that.
#[cfg(target_env = "musl")]
#[allow(deprecated)] // libc marks musl's time_t deprecated for this very change
const _: () = assert!(
    size_of::<libc::time_t>() == 8,
    "32-bit time_t: build with the rustflags of .cargo/config.toml (--cfg libc_unstable_musl_v1_2)"
);

/// An `errno` value, as returned by a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub c_int);

impl Errno {
    /// The C library's text for this error ("No such file or directory").
    pub fn text(self) -> &'static [u8] {
        // SAFETY: strerror returns a pointer to a NUL-terminated string that
        // lives for the whole process (musl and glibc keep a static table;
        // for unknown values they return a static "Unknown error" text).
        let text = unsafe { CStr::from_ptr(libc::strerror(self.0)) };
        text.to_bytes()
    }
}

/// The calling thread's current `errno`.
pub fn errno() -> Errno {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: __errno_location always returns a valid pointer to this
    // thread's errno.
    let value = unsafe { *libc::__errno_location() };
    #[cfg(any(target_os = "macos", target_os = "freebsd"))]
    // SAFETY: __error always returns a valid pointer to this thread's errno.
    let value = unsafe { *libc::__error() };
    Errno(value)
}

/// Turn a `-1`-on-error return value into a `Result`.
fn check(ret: c_int) -> Result<c_int, Errno> {
    if ret == -1 { Err(errno()) } else { Ok(ret) }
}

/// An owned file descriptor, closed when dropped. The lock descriptor leaves
/// this type through [`Fd::into_raw`] because it must outlive withlock: it is
/// handed to the job across `execve`.
#[derive(Debug)]
pub struct Fd(c_int);

impl Fd {
    /// Take ownership of a descriptor (one handed back by `timer.rs`).
    pub fn from_raw(fd: c_int) -> Fd {
        Fd(fd)
    }

    pub fn raw(&self) -> c_int {
        self.0
    }

    pub fn into_raw(self) -> c_int {
        let fd = self.0;
        core::mem::forget(self);
        fd
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        close(self.0);
    }
}

/// Close a descriptor, ignoring the result: on Linux the descriptor is gone
/// even when close reports an error, and a lock file has nothing to flush.
pub fn close(fd: c_int) {
    // SAFETY: closing an integer has no memory-safety preconditions; callers
    // own the descriptor they pass.
    unsafe { libc::close(fd) };
}

/// `open(2)`, retried if a signal interrupts it.
pub fn open(path: &CStr, flags: c_int, mode: libc::mode_t) -> Result<Fd, Errno> {
    loop {
        // SAFETY: `path` is a valid NUL-terminated string for the duration of
        // the call; the mode is passed as the variadic third argument, as the
        // C prototype expects (promoted to an unsigned int).
        let ret = unsafe { libc::open(path.as_ptr(), flags, libc::c_uint::from(mode)) };
        match check(ret) {
            Ok(fd) => return Ok(Fd(fd)),
            Err(Errno(libc::EINTR)) => {}
            Err(e) => return Err(e),
        }
    }
}

/// A pipe, both ends close-on-exec, and non-blocking if `nonblocking`
/// (a self-pipe that a signal handler writes to): read end, write end (raw:
/// they are handed around, and closed by whoever keeps them).
pub fn pipe(nonblocking: bool) -> Result<[c_int; 2], Errno> {
    let mut fds = [-1; 2];
    #[cfg(not(target_os = "macos"))]
    {
        let flags = libc::O_CLOEXEC | if nonblocking { libc::O_NONBLOCK } else { 0 };
        // SAFETY: pipe2 fills two descriptors.
        check(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) })?;
    }
    #[cfg(target_os = "macos")]
    {
        // No pipe2 there: the flags one call later (withlock has one thread).
        // SAFETY: pipe fills two descriptors.
        check(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
        for fd in fds {
            // SAFETY: fcntl on descriptors we own, with integer arguments.
            unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                if nonblocking {
                    libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK);
                }
            }
        }
    }
    Ok(fds)
}

/// How a file is opened only to look at it (its status, its record, its
/// locks): never created, never through a symlink, never blocking on a
/// FIFO, never taking a terminal.
const LOOK: c_int = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;

/// Open `path` only to look at it (see `LOOK`).
pub fn open_to_look(path: &CStr) -> Result<Fd, Errno> {
    open(path, LOOK, 0)
}

/// Do two statuses describe the same file (the same device and inode)?
pub fn same_file(a: &libc::stat, b: &libc::stat) -> bool {
    a.st_dev == b.st_dev && a.st_ino == b.st_ino
}

/// A close-on-exec duplicate of `fd`.
pub fn dup_cloexec(fd: c_int) -> Result<Fd, Errno> {
    // SAFETY: fcntl with F_DUPFD_CLOEXEC takes plain integers.
    check(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) }).map(Fd)
}

/// `fstat(2)`.
pub fn fstat(fd: c_int) -> Result<libc::stat, Errno> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a valid, writable buffer of the right size; fstat fills
    // it completely on success, which is the only case we read it.
    check(unsafe { libc::fstat(fd, st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so the buffer is initialized.
    Ok(unsafe { st.assume_init() })
}

/// `lstat(2)`: the status of `path` itself, not of what a symlink names.
pub fn lstat(path: &CStr) -> Result<libc::stat, Errno> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `path` is NUL-terminated and `st` is a valid, writable buffer;
    // it is read only when the call succeeds.
    check(unsafe { libc::lstat(path.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: lstat succeeded, so the buffer is initialized.
    Ok(unsafe { st.assume_init() })
}

/// `stat(2)`, following symlinks.
pub fn stat(path: &CStr) -> Result<libc::stat, Errno> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `path` is NUL-terminated and `st` is a valid, writable buffer;
    // it is read only when the call succeeds.
    check(unsafe { libc::stat(path.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: stat succeeded, so the buffer is initialized.
    Ok(unsafe { st.assume_init() })
}

/// `fchmod(2)`: set the permission bits of the file open at `fd`.
pub fn fchmod(fd: c_int, mode: libc::mode_t) -> Result<(), Errno> {
    // SAFETY: fchmod takes plain integers.
    check(unsafe { libc::fchmod(fd, mode) }).map(drop)
}

/// `mkdir(2)` with exactly `mode`: the umask must not loosen or break a
/// directory withlock makes for its own use. It is cleared for the call
/// (withlock is single-threaded) rather than followed by a `chmod` by path,
/// which would follow a symlink swapped in meanwhile. An existing entry is
/// `EEXIST`, left as it is.
pub fn mkdir(path: &CStr, mode: libc::mode_t) -> Result<(), Errno> {
    // SAFETY: umask takes and returns plain integers; `path` is a valid
    // NUL-terminated string for the duration of mkdir.
    unsafe {
        let umask = libc::umask(0);
        let made = check(libc::mkdir(path.as_ptr(), mode));
        libc::umask(umask);
        made.map(|_| ())
    }
}

/// The value of the environment variable `name`, if set.
pub fn getenv(name: &CStr) -> Option<&'static CStr> {
    // SAFETY: getenv returns null or a pointer to a NUL-terminated string in
    // the environment, which nothing in this process changes.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    // SAFETY: not null, so a valid C string that lives as long as the process.
    (!value.is_null()).then(|| unsafe { CStr::from_ptr(value) })
}

/// `readlink(2)` into `buf`; returns the length of the target. A target
/// that fills the whole buffer may have been cut short, and is refused.
pub fn readlink(path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes and `path` is
    // NUL-terminated.
    let n = unsafe { libc::readlink(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    match usize::try_from(n) {
        Ok(len) if len < buf.len() => Ok(len),
        Ok(_) => Err(Errno(libc::ENAMETOOLONG)),
        Err(_) => Err(errno()),
    }
}

/// `flock(2)`, reporting `EINTR` to the caller: an interrupted wait is how a
/// deadline ends it (see `timer.rs`).
pub fn flock(fd: c_int, operation: c_int) -> Result<(), Errno> {
    // SAFETY: flock takes plain integers.
    check(unsafe { libc::flock(fd, operation) }).map(drop)
}

/// An open-file-description fcntl lock on the whole file (Linux only):
/// `shared` for a read lock, `wait` to block. Like flock(2) locks they
/// belong to the open file description (inherited, kept when other
/// descriptors close), but they are fcntl locks: NFS carries them, and they
/// conflict with POSIX locks (lckdo, with-lock-ex). A busy lock is
/// `EWOULDBLOCK`, as from flock.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn ofd_lock(fd: c_int, shared: bool, wait: bool) -> Result<(), Errno> {
    // SAFETY: all-zero is a valid flock struct (l_pid must be 0 for OFD).
    let mut range: libc::flock = unsafe { core::mem::zeroed() };
    range.l_type = (if shared { libc::F_RDLCK } else { libc::F_WRLCK }) as libc::c_short;
    range.l_whence = libc::SEEK_SET as libc::c_short;
    let command = if wait { libc::F_OFD_SETLKW } else { libc::F_OFD_SETLK };
    // SAFETY: `range` is a valid flock struct for the call.
    match check(unsafe { libc::fcntl(fd, command, &range) }) {
        Ok(_) => Ok(()),
        Err(Errno(libc::EAGAIN | libc::EACCES)) => Err(Errno(libc::EWOULDBLOCK)),
        Err(errno) => Err(errno),
    }
}

/// The effective user id: the owner withlock trusts besides root.
pub fn geteuid() -> libc::uid_t {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(id) = aux_id(libc::AT_EUID) {
        return id;
    }
    // SAFETY: geteuid cannot fail and takes no arguments.
    unsafe { libc::geteuid() }
}

/// The real user id (a holder record's `uid`).
pub fn getuid() -> libc::uid_t {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(id) = aux_id(libc::AT_UID) {
        return id;
    }
    // SAFETY: getuid cannot fail and takes no arguments.
    unsafe { libc::getuid() }
}

/// A user id as the kernel put it in the auxiliary vector at exec, without
/// a system call (each costs a microsecond or two on the default path).
/// withlock never changes its ids, so the value is still true; if the
/// entry is missing (it never is on Linux), the caller asks the kernel.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn aux_id(entry: libc::c_ulong) -> Option<libc::uid_t> {
    getauxval(entry).and_then(|id| libc::uid_t::try_from(id).ok())
}

/// Write all of `bytes` to `fd`, giving up silently on errors: there is no
/// better place to report that stderr itself is broken.
pub fn write_all(fd: c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match write(fd, bytes) {
            Ok(0) | Err(_) => return,
            Ok(written) => bytes = &bytes[written..],
        }
    }
}

/// Call `f` (a system call that returns a count, or -1 and errno) again
/// while a signal interrupts it.
fn retry_count(mut f: impl FnMut() -> isize) -> Result<usize, Errno> {
    loop {
        match usize::try_from(f()) {
            Ok(n) => return Ok(n),
            Err(_) if errno() == Errno(libc::EINTR) => {}
            Err(_) => return Err(errno()),
        }
    }
}

/// `read(2)` into `buf`, retried if a signal interrupts it; 0 at the end.
pub fn read(fd: c_int, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of its length.
    retry_count(|| unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// `write(2)` of `bytes`, retried if a signal interrupts it; the bytes
/// written.
pub fn write(fd: c_int, bytes: &[u8]) -> Result<usize, Errno> {
    // SAFETY: `bytes` is valid for reads of its length.
    retry_count(|| unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) })
}

/// `pread(2)` at `offset`, retried if a signal interrupts it.
pub fn pread(fd: c_int, buf: &mut [u8], offset: i64) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of its length.
    retry_count(|| unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), offset) })
}

/// `pwrite(2)` at `offset`, retried if a signal interrupts it; the bytes
/// written (perhaps fewer than `bytes.len()`: a full disk, a size limit).
pub fn pwrite(fd: c_int, bytes: &[u8], offset: i64) -> Result<usize, Errno> {
    // SAFETY: `bytes` is valid for reads of its length.
    retry_count(|| unsafe { libc::pwrite(fd, bytes.as_ptr().cast(), bytes.len(), offset) })
}

/// `ftruncate(2)`.
pub fn ftruncate(fd: c_int, len: i64) -> Result<(), Errno> {
    // SAFETY: ftruncate takes plain integers.
    check(unsafe { libc::ftruncate(fd, len) }).map(drop)
}

/// `unlink(2)`.
pub fn unlink(path: &CStr) -> Result<(), Errno> {
    // SAFETY: `path` is a valid NUL-terminated string.
    check(unsafe { libc::unlink(path.as_ptr()) }).map(drop)
}

/// Mark `fd` close-on-exec.
pub fn set_cloexec(fd: c_int) -> Result<(), Errno> {
    // SAFETY: fcntl with F_SETFD takes plain integers.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }).map(drop)
}

/// `poll(2)`: how many of `fds` are ready (0: the timeout, in ms, passed;
/// -1 waits without one). `EINTR` is the caller's to judge: a caught
/// signal is often the very thing it waits for.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: c_int) -> Result<usize, Errno> {
    // SAFETY: `fds` is a valid array of pollfds of its length.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    usize::try_from(n).map_err(|_| errno())
}

/// This process's id, without a system call where the C library keeps it
/// (musl: the thread id it was given at start-up, which in the only thread
/// is the process id; refreshed by `_Fork` in a child).
pub fn getpid() -> libc::pid_t {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: gettid cannot fail and takes no arguments; withlock has one thread.
    return unsafe { libc::gettid() };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: getpid cannot fail and takes no arguments.
    unsafe {
        libc::getpid()
    }
}

/// The parent's process id (1, or a subreaper's, once the parent is gone).
pub fn getppid() -> libc::pid_t {
    // SAFETY: getppid cannot fail and takes no arguments.
    unsafe { libc::getppid() }
}

/// This process's group id.
pub fn getpgrp() -> libc::pid_t {
    // SAFETY: getpgrp cannot fail and takes no arguments.
    unsafe { libc::getpgrp() }
}

/// The process group of process `pid` (async-signal-safe).
pub fn getpgid(pid: libc::pid_t) -> Result<libc::pid_t, Errno> {
    // SAFETY: getpgid takes a plain integer.
    check(unsafe { libc::getpgid(pid) })
}

/// `setpgid(2)`.
pub fn setpgid(pid: libc::pid_t, pgid: libc::pid_t) -> Result<(), Errno> {
    // SAFETY: setpgid takes plain integers.
    check(unsafe { libc::setpgid(pid, pgid) }).map(drop)
}

/// `kill(2)`: `signal` to `pid` (a negative pid: its whole group; signal
/// 0: only whether it exists). Async-signal-safe.
pub fn kill(pid: libc::pid_t, signal: c_int) -> Result<(), Errno> {
    // SAFETY: kill takes plain integers.
    check(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// Which side of a [`fork`] this is.
pub enum Forked {
    Child,
    Parent(libc::pid_t),
}

/// `fork(2)`. withlock is single-threaded, so the child may do anything
/// the parent could; children here only set themselves up and exec, or do
/// one small job and [`exit_now`].
pub fn fork() -> Result<Forked, Errno> {
    // With musl, its `_Fork` (musl 1.2.2 and later): `fork` also runs
    // pthread_atfork handlers and takes the library's internal locks for
    // them, which a one-thread withlock without malloc or stdio has no use
    // for, and that machinery (rwlocks, timed waits, the vDSO clock) is
    // 2 KB of every static binary.
    #[cfg(target_env = "musl")]
    unsafe extern "C" {
        fn _Fork() -> libc::pid_t;
    }
    #[cfg(target_env = "musl")]
    // SAFETY: withlock has one thread: nothing in the child can be left
    // locked by another thread. _Fork takes no arguments.
    let pid = unsafe { _Fork() };
    #[cfg(not(target_env = "musl"))]
    // SAFETY: as above (one thread).
    let pid = unsafe { libc::fork() };
    match check(pid)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// `waitpid(2)`, retried if a signal interrupts it: the pid collected and
/// its status, or `None` with `WNOHANG` when none has changed state.
pub fn waitpid(pid: libc::pid_t, flags: c_int) -> Result<Option<(libc::pid_t, c_int)>, Errno> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid int for the call to fill.
        match unsafe { libc::waitpid(pid, &mut status, flags) } {
            0 => return Ok(None),
            -1 if errno() == Errno(libc::EINTR) => {}
            -1 => return Err(errno()),
            pid => return Ok(Some((pid, status))),
        }
    }
}

/// End this process at once with `code`: no destructors, no flushing (a
/// forked child must not run its parent's exit path).
pub fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit takes a plain integer and never returns.
    unsafe { libc::_exit(code) }
}

/// `prctl(2)` with one integer argument (Linux).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn prctl(option: c_int, arg: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: the options used here take one integer argument.
    check(unsafe { libc::prctl(option, arg) }).map(drop)
}

/// The foreground process group of the terminal `fd`; an error if `fd` is
/// not our controlling terminal. On Linux by system call: the C library's
/// ioctl carries, on 32-bit targets, a kilobyte of tables to convert other
/// requests' 64-bit times.
pub fn tcgetpgrp(fd: c_int) -> Result<libc::pid_t, Errno> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut pgrp: libc::pid_t = -1;
        // SAFETY: TIOCGPGRP writes one pid_t through the pointer, which is valid.
        let ret = unsafe { libc::syscall(libc::SYS_ioctl, fd, libc::TIOCGPGRP, &raw mut pgrp) };
        if ret == -1 { Err(errno()) } else { Ok(pgrp) }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: tcgetpgrp takes a plain integer.
    check(unsafe { libc::tcgetpgrp(fd) })
}

/// Make `pgrp` the foreground group of the terminal `fd` (by system call on
/// Linux, as [`tcgetpgrp`]).
pub fn tcsetpgrp(fd: c_int, pgrp: libc::pid_t) -> Result<(), Errno> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: TIOCSPGRP reads one pid_t through the pointer, which is valid.
    let ret = unsafe { libc::syscall(libc::SYS_ioctl, fd, libc::TIOCSPGRP, &raw const pgrp) } as c_int;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: tcsetpgrp takes plain integers.
    let ret = unsafe { libc::tcsetpgrp(fd, pgrp) };
    check(ret).map(drop)
}

/// Sleep for `time`, on through signals that interrupt the sleep (one
/// that stops and continues us: Ctrl-Z, `fg`) for what is left of it.
pub fn sleep(time: core::time::Duration) {
    // SAFETY: all-zero is a valid timespec. (No struct literal: with the
    // 64-bit time_t of 32-bit targets, it has padding fields.)
    let mut left: libc::timespec = unsafe { core::mem::zeroed() };
    // A 32-bit time_t (other systems) holds 68 years of the 100 a duration may have.
    left.tv_sec = time.as_secs().try_into().unwrap_or(libc::time_t::MAX);
    left.tv_nsec = time.subsec_nanos() as libc::c_long;
    // SAFETY: two valid timespecs; nanosleep writes what is left on EINTR.
    while unsafe { libc::nanosleep(&left, &mut left) } == -1 && errno() == Errno(libc::EINTR) {}
}

/// Fill `bytes` from the kernel's random pool without waiting for it to
/// be initialized (`getrandom(2)` with `GRND_NONBLOCK`); false if it
/// cannot (a kernel older than 3.17, a pool not ready early at boot).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn getrandom(bytes: &mut [u8]) -> bool {
    // SAFETY: the raw system call fills at most `bytes.len()` bytes of a
    // valid buffer.
    let got =
        unsafe { libc::syscall(libc::SYS_getrandom, bytes.as_mut_ptr(), bytes.len(), libc::GRND_NONBLOCK) };
    got == bytes.len() as libc::c_long
}

/// Fill `bytes` (at most 256) from the kernel's random pool
/// (`getentropy`); false if it cannot.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn getrandom(bytes: &mut [u8]) -> bool {
    // SAFETY: getentropy fills all of a valid buffer of at most 256 bytes.
    unsafe { libc::getentropy(bytes.as_mut_ptr().cast(), bytes.len()) == 0 }
}

/// `uname(2)`: this machine's names, each NUL-terminated within its array.
/// (It fails only for a bad address; the names would then stay empty.)
pub fn uname() -> libc::utsname {
    // SAFETY: all-zero is a valid utsname (every name empty).
    let mut buf: libc::utsname = unsafe { core::mem::zeroed() };
    // SAFETY: `buf` is a valid utsname for the call to fill.
    unsafe { libc::uname(&mut buf) };
    buf
}

/// A clock's reading: seconds and nanoseconds, 64-bit on every target.
pub struct Reading {
    pub secs: i64,
    pub nanos: i64,
}

/// The time on `clock` (`clock_gettime(2)`), by system call on Linux: the
/// vDSO would cost two page faults, more than the call (see `clock.rs`).
/// The call and the layout are the 64-bit-time ones everywhere: on 32-bit
/// Linux the plain `clock_gettime` fills 32-bit seconds, which end in 2038
/// (and wrap after 68 years of uptime), so it is `clock_gettime64` there
/// (Linux 5.1), with the old call kept for older kernels.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn clock_now(clock: libc::clockid_t) -> Reading {
    // The kernel's `struct __kernel_timespec`, the same on every architecture.
    let mut ts = [0i64; 2];
    // SAFETY: the raw system call takes a clock id and a valid, writable
    // __kernel_timespec (two 64-bit integers), which `ts` is.
    let ret = unsafe { libc::syscall(CLOCK_GETTIME64, clock, ts.as_mut_ptr()) };
    if cfg!(target_pointer_width = "32") && ret == -1 && errno() == Errno(libc::ENOSYS) {
        // Linux before 5.1: the old call, and 32-bit seconds.
        let mut old: [libc::c_long; 2] = [0; 2];
        // SAFETY: as above, with the layout the old call fills.
        unsafe { libc::syscall(libc::SYS_clock_gettime, clock, old.as_mut_ptr()) };
        #[allow(clippy::useless_conversion)] // c_long is i64 on 64-bit targets
        let widened = old.map(i64::from);
        ts = widened;
    }
    Reading { secs: ts[0], nanos: ts[1] }
}

/// `clock_gettime` with 64-bit seconds: the plain call on 64-bit targets,
/// `clock_gettime64` (the same number on every 32-bit one) on 32-bit targets.
#[cfg(all(any(target_os = "linux", target_os = "android"), target_pointer_width = "64"))]
const CLOCK_GETTIME64: libc::c_long = libc::SYS_clock_gettime;
#[cfg(all(any(target_os = "linux", target_os = "android"), target_pointer_width = "32"))]
const CLOCK_GETTIME64: libc::c_long = 403;

/// The time on `clock` (`clock_gettime(2)`).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn clock_now(clock: libc::clockid_t) -> Reading {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; these clocks always exist.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    #[allow(clippy::useless_conversion)] // time_t and c_long are 32-bit on some systems
    Reading { secs: i64::from(ts.tv_sec), nanos: i64::from(ts.tv_nsec) }
}

/// What kind of file a `stat` describes; only regular files are locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
    Unknown,
}

impl Kind {
    pub fn of(st: &libc::stat) -> Kind {
        let bits = st.st_mode & libc::S_IFMT;
        let is = |t: libc::mode_t| bits == t;
        if is(libc::S_IFREG) {
            Kind::Regular
        } else if is(libc::S_IFDIR) {
            Kind::Directory
        } else if is(libc::S_IFLNK) {
            Kind::Symlink
        } else if is(libc::S_IFIFO) {
            Kind::Fifo
        } else if is(libc::S_IFCHR) {
            Kind::CharDevice
        } else if is(libc::S_IFBLK) {
            Kind::BlockDevice
        } else if is(libc::S_IFSOCK) {
            Kind::Socket
        } else {
            Kind::Unknown
        }
    }

    /// "a FIFO", "a directory": for messages.
    pub fn described(self) -> &'static [u8] {
        match self {
            Kind::Regular => b"a regular file",
            Kind::Directory => b"a directory",
            Kind::Symlink => b"a symbolic link",
            Kind::Fifo => b"a FIFO",
            Kind::CharDevice => b"a character device",
            Kind::BlockDevice => b"a block device",
            Kind::Socket => b"a socket",
            Kind::Unknown => b"a file of unknown type",
        }
    }
}

/// The permission bits (including setuid, setgid and sticky) of a `stat`.
// mode_t is u32 on Linux but u16 on macOS and FreeBSD.
#[allow(clippy::useless_conversion)]
pub fn permissions(st: &libc::stat) -> u32 {
    u32::from(st.st_mode) & 0o7777
}

/// The link count of a `stat` (nlink_t is u64 on Linux, u16 on macOS).
#[allow(clippy::useless_conversion)]
pub fn links(st: &libc::stat) -> u64 {
    u64::from(st.st_nlink)
}

// ---- Signals ----------------------------------------------------------

/// The set of `signals`.
pub fn signal_set(signals: &[c_int]) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initializes the set; sigaddset takes valid signals.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for &signal in signals {
            libc::sigaddset(set.as_mut_ptr(), signal);
        }
        set.assume_init()
    }
}

/// The set of every signal.
pub fn full_signal_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initializes the set.
    unsafe {
        libc::sigfillset(set.as_mut_ptr());
        set.assume_init()
    }
}

/// `sigprocmask(2)`: block, unblock or set (`how`) the signals of `set`;
/// returns the mask before. It cannot fail with valid arguments.
/// Async-signal-safe.
pub fn sigprocmask(how: c_int, set: &libc::sigset_t) -> libc::sigset_t {
    let mut old = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: valid sets; sigprocmask fills `old`.
    unsafe {
        libc::sigprocmask(how, set, old.as_mut_ptr());
        old.assume_init()
    }
}

/// `sigaction(2)`: `signal`'s disposition, after setting it to `new` if
/// given.
pub fn sigaction(signal: c_int, new: Option<&libc::sigaction>) -> Result<libc::sigaction, Errno> {
    let mut old = MaybeUninit::<libc::sigaction>::uninit();
    let new = new.map_or(core::ptr::null(), |new| new as *const libc::sigaction);
    // SAFETY: `new` is null or a valid sigaction; `old` is filled on success.
    check(unsafe { libc::sigaction(signal, new, old.as_mut_ptr()) })?;
    // SAFETY: sigaction succeeded, so `old` is initialized.
    Ok(unsafe { old.assume_init() })
}

/// Set `signal` to its default action (`SIG_DFL`) or to be ignored
/// (`SIG_IGN`). Async-signal-safe.
pub fn set_disposition(signal: c_int, disposition: libc::sighandler_t) {
    // SAFETY: SIG_DFL and SIG_IGN are no handlers to call.
    unsafe { libc::signal(signal, disposition) };
}

/// `sigwait(3)`: wait for a signal of `set` (which must be blocked); the
/// signal taken.
pub fn sigwait(set: &libc::sigset_t) -> c_int {
    let mut got = 0;
    // SAFETY: a valid set, and an int for the signal taken.
    unsafe { libc::sigwait(set, &mut got) };
    got
}

/// `pause(2)`: sleep until a signal is caught (or kills us).
pub fn pause() {
    // SAFETY: pause takes no arguments.
    unsafe { libc::pause() };
}

/// Arm the one-shot `ITIMER_REAL`, which raises SIGALRM `after` from now:
/// to the microsecond, at least 1 µs (a zero would disarm it), at most 68
/// years (the kernel keeps its seconds in a C long, 32 bits on 32-bit
/// targets, where the C library refuses more than fits with ENOTSUP rather
/// than cutting).
pub fn set_alarm(after: core::time::Duration) -> Result<(), Errno> {
    let micros = after.subsec_micros().max(u32::from(after.as_secs() == 0));
    let secs = after.as_secs().min(i32::MAX.unsigned_abs().into());
    // suseconds_t is i64 on Linux, i32 on macOS.
    #[allow(clippy::unnecessary_fallible_conversions)]
    setitimer(libc::timeval {
        tv_sec: secs.try_into().unwrap_or(i32::MAX.into()),
        tv_usec: micros.try_into().unwrap_or(0),
    })
}

/// Disarm `ITIMER_REAL`.
pub fn cancel_alarm() {
    let _ = setitimer(libc::timeval { tv_sec: 0, tv_usec: 0 });
}

fn setitimer(value: libc::timeval) -> Result<(), Errno> {
    let timer = libc::itimerval { it_interval: libc::timeval { tv_sec: 0, tv_usec: 0 }, it_value: value };
    // SAFETY: `timer` is a valid itimerval; the old value is not wanted.
    check(unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, core::ptr::null_mut()) }).map(drop)
}

// ---- Resources, memory, descriptors -------------------------------------

/// `setrlimit(2)` of `resource`. On Linux the raw system call: musl's
/// setrlimit applies the limit to every thread (we have one), which pulls
/// in 2 KB of thread machinery. It is `prlimit64`, whose limits are 64-bit
/// on every target, as the C library's `rlimit` is: the older `setrlimit`
/// system call takes a `long` per limit, which on 32-bit targets would read
/// the two halves of the soft limit as the soft and hard limits.
pub fn setrlimit(resource: c_int, limit: &libc::rlimit) -> Result<(), Errno> {
    const _: () = assert!(size_of::<libc::rlimit>() == 16, "prlimit64 takes two 64-bit limits");
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: this process (pid 0), a resource number and a valid rlimit of
    // two 64-bit limits, which the kernel reads; no old limits are wanted.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0 as libc::c_long, // As longs: syscall(3) reads every argument as one.
            resource as libc::c_long,
            limit as *const libc::rlimit,
            core::ptr::null_mut::<libc::rlimit>(),
        )
    } as c_int;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: as above.
    let ret = unsafe { libc::setrlimit(resource, limit) };
    check(ret).map(drop)
}

/// `getrlimit(2)`: the soft and hard limits of `resource`.
pub fn getrlimit(resource: c_int) -> Result<libc::rlimit, Errno> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid rlimit to fill.
    check(unsafe { libc::getrlimit(resource as _, &mut limit) })?;
    Ok(limit)
}

/// A zeroed mapping of `bytes` bytes, readable and writable, never
/// unmapped: private, or `shared` with the children forked after.
pub fn map_anonymous(bytes: usize, shared: bool) -> Result<*mut u8, Errno> {
    let flags = libc::MAP_ANONYMOUS | if shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
    // SAFETY: a fresh anonymous mapping: no memory of ours is passed.
    let map =
        unsafe { libc::mmap(core::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, flags, -1, 0) };
    if map == libc::MAP_FAILED { Err(errno()) } else { Ok(map.cast()) }
}

/// A duplicate of `fd` on the lowest free descriptor from `min` on (not
/// close-on-exec).
pub fn dup_above(fd: c_int, min: c_int) -> Result<c_int, Errno> {
    // SAFETY: fcntl with F_DUPFD takes plain integers.
    check(unsafe { libc::fcntl(fd, libc::F_DUPFD, min) })
}

/// `dup2(2)`: make `to` a duplicate of `fd`.
pub fn dup2(fd: c_int, to: c_int) -> Result<(), Errno> {
    // SAFETY: dup2 takes plain integers.
    check(unsafe { libc::dup2(fd, to) }).map(drop)
}

/// Close every descriptor from `first` on: `close_range(2)` (Linux 5.9),
/// else one at a time up to the descriptor limit.
pub fn close_from(first: c_int) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: close_range takes plain integers and only closes descriptors.
    if unsafe { libc::syscall(libc::SYS_close_range, first as libc::c_uint, libc::c_uint::MAX, 0) } == 0 {
        return;
    }
    let limit = getrlimit(libc::RLIMIT_NOFILE as c_int).map_or(0, |limit| limit.rlim_cur);
    let max = c_int::try_from(limit).unwrap_or(c_int::MAX).clamp(1024, 65536);
    for fd in first..max {
        close(fd);
    }
}

/// `fstatfs(2)`: the file system of the file open at `fd`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn fstatfs(fd: c_int) -> Result<libc::statfs, Errno> {
    let mut fs = MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `fs` is a valid buffer for fstatfs to fill.
    check(unsafe { libc::fstatfs(fd, fs.as_mut_ptr()) })?;
    // SAFETY: fstatfs succeeded, so the buffer is initialized.
    Ok(unsafe { fs.assume_init() })
}

/// `getdents64(2)`: the next directory records of the directory open at
/// `dir` into `buf` (8-byte aligned, as the records are); their length, 0
/// at the end. (The C library's opendir needs its allocator, which would
/// cost withlock a fifth of its size.)
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn getdents64(dir: c_int, buf: &mut [u64]) -> Result<&[u8], Errno> {
    // SAFETY: `buf` is valid for writes of its size in bytes.
    let n = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), 8 * buf.len()) };
    let n = usize::try_from(n).map_err(|_| errno())?;
    // SAFETY: the kernel filled the first `n` bytes of `buf`.
    Ok(unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) })
}

// ---- Running the command --------------------------------------------------

/// `execv(3)` (`name` has a slash: no search) or `execvp(3)` (searched in
/// PATH, as a shell would). Returns only if that fails, with why.
///
/// # Safety
/// `argv` must be a null-terminated array of valid C strings.
pub unsafe fn exec(name: &CStr, argv: *const *const libc::c_char) -> Errno {
    // SAFETY: `name` is a C string, and the caller vouches for `argv`; both
    // return only on failure.
    unsafe {
        if name.to_bytes().contains(&b'/') {
            libc::execv(name.as_ptr(), argv);
        } else {
            libc::execvp(name.as_ptr(), argv);
        }
    }
    errno()
}

/// The auxiliary vector's entry `entry` (the kernel's word to a new
/// program), if there is one.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn getauxval(entry: libc::c_ulong) -> Option<libc::c_ulong> {
    // SAFETY: errno is this thread's; getauxval takes a plain integer and
    // sets errno (ENOENT) only when the entry is missing.
    let value = unsafe {
        *libc::__errno_location() = 0;
        libc::getauxval(entry)
    };
    (errno() == Errno(0)).then_some(value)
}

// ---- Sockets ------------------------------------------------------------

/// A new close-on-exec socket (non-blocking if `nonblocking`), which never
/// raises SIGPIPE where that is a socket option (macOS).
pub fn socket(family: c_int, kind: c_int, nonblocking: bool) -> Result<Fd, Errno> {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        let flags = libc::SOCK_CLOEXEC | if nonblocking { libc::SOCK_NONBLOCK } else { 0 };
        // SAFETY: socket takes plain integers.
        check(unsafe { libc::socket(family, kind | flags, 0) }).map(Fd)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        // No atomic flags here: set them before anyone can fork (withlock
        // is single-threaded).
        // SAFETY: socket takes plain integers.
        let fd = check(unsafe { libc::socket(family, kind, 0) }).map(Fd)?;
        set_cloexec(fd.raw())?;
        if nonblocking {
            // SAFETY: fcntl with F_SETFL takes plain integers.
            check(unsafe { libc::fcntl(fd.raw(), libc::F_SETFL, libc::O_NONBLOCK) })?;
        }
        set_socket_option(&fd, libc::SOL_SOCKET, libc::SO_NOSIGPIPE)?;
        Ok(fd)
    }
}

/// Turn the integer socket option `name` (at `level`) on.
pub fn set_socket_option(fd: &Fd, level: c_int, name: c_int) -> Result<(), Errno> {
    let on: c_int = 1;
    let size = size_of::<c_int>() as libc::socklen_t;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: `on` is a valid c_int for the call, and we pass its size.
    let ret = unsafe { sockopt(SET_SOCKOPT, fd.raw(), level, name, (&raw const on).addr(), size as usize) };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: as above.
    let ret = unsafe { libc::setsockopt(fd.raw(), level, name, (&raw const on).cast(), size) };
    check(ret).map(drop)
}

/// `setsockopt`/`getsockopt` by system call: the C library's also convert
/// 64-bit socket timeouts on 32-bit targets, which withlock never sets
/// (500 bytes each on i686). i386 reaches them through `socketcall`, as
/// the C library does there (Linux before 4.3 has no direct calls on i386).
/// `len` is the option's length for `SET_SOCKOPT`, the address of it for
/// `GET_SOCKOPT`.
///
/// # Safety
/// `value` and `len` must be what the call reads or writes, valid for it.
#[cfg(any(target_os = "linux", target_os = "android"))]
unsafe fn sockopt(
    call: SockoptCall,
    fd: c_int,
    level: c_int,
    name: c_int,
    value: usize,
    len: usize,
) -> c_int {
    let args = [
        fd as libc::c_long,
        level as libc::c_long,
        name as libc::c_long,
        value as libc::c_long,
        len as libc::c_long,
    ];
    #[cfg(target_arch = "x86")]
    // SAFETY: socketcall reads five longs from `args`; the caller vouches for
    // what they point to.
    let ret = unsafe { libc::syscall(libc::SYS_socketcall, call.socketcall as libc::c_long, args.as_ptr()) };
    #[cfg(not(target_arch = "x86"))]
    // SAFETY: as above, the arguments as longs.
    let ret = unsafe { libc::syscall(call.number, args[0], args[1], args[2], args[3], args[4]) };
    ret as c_int
}

/// A socket option call: its system call, and its number for i386's `socketcall`.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Clone, Copy)]
struct SockoptCall {
    #[cfg_attr(target_arch = "x86", allow(dead_code))]
    number: libc::c_long,
    #[cfg_attr(not(target_arch = "x86"), allow(dead_code))]
    socketcall: c_int,
}

#[cfg(any(target_os = "linux", target_os = "android"))]
const SET_SOCKOPT: SockoptCall = SockoptCall { number: libc::SYS_setsockopt, socketcall: 14 };
#[cfg(any(target_os = "linux", target_os = "android"))]
const GET_SOCKOPT: SockoptCall = SockoptCall { number: libc::SYS_getsockopt, socketcall: 15 };

/// `connect(2)` to the first `len` bytes of `address` (a sockaddr of the
/// socket's family). `EINTR` and `EINPROGRESS` are the caller's to wait out.
pub fn connect(fd: &Fd, address: &libc::sockaddr_storage, len: usize) -> Result<(), Errno> {
    let len = len.min(size_of::<libc::sockaddr_storage>()) as libc::socklen_t;
    // SAFETY: `address` is valid for reads of `len` bytes.
    check(unsafe { libc::connect(fd.raw(), (address as *const libc::sockaddr_storage).cast(), len) })
        .map(drop)
}

/// The error a non-blocking `connect` ended with (`SO_ERROR`), if any.
pub fn socket_error(fd: &Fd) -> Result<Option<Errno>, Errno> {
    let mut error: c_int = 0;
    let mut size = size_of::<c_int>() as libc::socklen_t;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: `error` and `size` are valid for writes, and `size` says how
    // big `error` is.
    let ret = unsafe {
        sockopt(
            GET_SOCKOPT,
            fd.raw(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut error).addr(),
            (&raw mut size).addr(),
        )
    };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: as above.
    let ret = unsafe {
        libc::getsockopt(fd.raw(), libc::SOL_SOCKET, libc::SO_ERROR, (&raw mut error).cast(), &mut size)
    };
    check(ret)?;
    Ok((error != 0).then_some(Errno(error)))
}

/// `sendmsg(2)` of `parts` (iovecs over live buffers), retried if a signal
/// interrupts it; the bytes sent.
pub fn sendmsg(fd: &Fd, parts: &mut [libc::iovec], flags: c_int) -> Result<usize, Errno> {
    // SAFETY: all-zero is a valid msghdr (no name, no control data).
    let mut msg: libc::msghdr = unsafe { core::mem::zeroed() };
    msg.msg_iov = parts.as_mut_ptr();
    msg.msg_iovlen = parts.len() as _;
    // SAFETY: `msg` points to `parts`, iovecs over live buffers, which
    // sendmsg only reads.
    retry_count(|| unsafe { libc::sendmsg(fd.raw(), &msg, flags) })
}

/// `recv(2)` into `buf`, retried if a signal interrupts it; 0 at the end.
pub fn recv(fd: &Fd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is valid for writes of its length.
    retry_count(|| unsafe { libc::recv(fd.raw(), buf.as_mut_ptr().cast(), buf.len(), 0) })
}

/// `sendto(2)`: one datagram to the local socket `path` (at most 107
/// bytes), retried if a signal interrupts it.
pub fn send_to_local(fd: c_int, datagram: &[u8], flags: c_int, path: &[u8]) -> Result<(), Errno> {
    // SAFETY: all-zero is a valid sockaddr_un, filled below.
    let mut address: libc::sockaddr_un = unsafe { core::mem::zeroed() };
    address.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (to, &from) in address.sun_path.iter_mut().zip(path) {
        *to = from as libc::c_char;
    }
    let length = (size_of::<libc::sa_family_t>() + path.len() + 1) as libc::socklen_t;
    retry_count(|| {
        // SAFETY: a valid buffer and address, each with its length.
        unsafe {
            libc::sendto(
                fd,
                datagram.as_ptr().cast(),
                datagram.len(),
                flags,
                (&raw const address).cast(),
                length,
            )
        }
    })
    .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limits go in as they were given, soft and hard apart, on every
    /// target: on 32-bit ones the `setrlimit` system call would read the
    /// halves of a 64-bit soft limit as a soft and a hard one.
    /// Socket options go by system call (by `socketcall` on i386): TCP_NODELAY
    /// goes on, and SO_ERROR tells a refused connection from a sound one.
    #[test]
    fn socket_options_are_set_and_read() {
        let fd = socket(libc::AF_INET, libc::SOCK_STREAM, true).unwrap();
        set_socket_option(&fd, libc::IPPROTO_TCP, libc::TCP_NODELAY).unwrap();
        let (mut on, mut size) = (0 as c_int, size_of::<c_int>() as libc::socklen_t);
        // SAFETY: `on` and `size` are valid for writes, `size` is on's.
        let ret = unsafe {
            libc::getsockopt(fd.raw(), libc::IPPROTO_TCP, libc::TCP_NODELAY, (&raw mut on).cast(), &mut size)
        };
        assert_eq!((ret, on != 0), (0, true));
        assert_eq!(socket_error(&fd), Ok(None));

        // A loopback port that was just listened on, and no longer is.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // SAFETY: all-zero is a valid sockaddr_storage.
        let mut address: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
        // SAFETY: a sockaddr_storage holds a sockaddr_in.
        let inet = unsafe { &mut *(&raw mut address).cast::<libc::sockaddr_in>() };
        inet.sin_family = libc::AF_INET as libc::sa_family_t;
        inet.sin_port = port.to_be();
        inet.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        match connect(&fd, &address, size_of::<libc::sockaddr_in>()) {
            Err(Errno(libc::EINPROGRESS)) => {
                let mut ready = [libc::pollfd { fd: fd.raw(), events: libc::POLLOUT, revents: 0 }];
                assert_eq!(poll(&mut ready, 10_000), Ok(1));
                assert_eq!(socket_error(&fd), Ok(Some(Errno(libc::ECONNREFUSED))));
            }
            other => assert_eq!(other, Err(Errno(libc::ECONNREFUSED))),
        }
    }

    #[test]
    fn setrlimit_sets_both_limits_as_given() {
        let resource = libc::RLIMIT_CORE as c_int;
        let old = getrlimit(resource).unwrap();
        let soft = old.rlim_max.min(1 << 20);
        setrlimit(resource, &libc::rlimit { rlim_cur: soft, rlim_max: old.rlim_max }).unwrap();
        let now = getrlimit(resource).unwrap();
        setrlimit(resource, &old).unwrap();
        assert_eq!((now.rlim_cur, now.rlim_max), (soft, old.rlim_max));
    }
}
