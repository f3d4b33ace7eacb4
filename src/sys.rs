//! Thin, checked wrappers over the handful of system calls withlock makes.
//!
//! Every `unsafe` block in the crate that talks to the kernel lives here or in
//! `timer.rs`, so the rest of the code reads as plain Rust: results instead of
//! `-1` and `errno`, borrowed C strings instead of raw pointers. Nothing here
//! allocates; nothing here retries except where `EINTR` has only one meaning.

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

/// A pipe, both ends close-on-exec: read end, write end (raw: they are
/// handed around, and closed by whoever keeps them).
pub fn pipe() -> Result<[c_int; 2], Errno> {
    let mut fds = [-1; 2];
    // SAFETY: pipe fills two descriptors; fcntl takes plain integers.
    unsafe {
        check(libc::pipe(fds.as_mut_ptr()))?;
        for fd in fds {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    Ok(fds)
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
    // SAFETY: geteuid cannot fail and takes no arguments.
    aux_id(libc::AT_EUID, || unsafe { libc::geteuid() })
}

/// The real user id (a holder record's `uid`).
pub fn getuid() -> libc::uid_t {
    // SAFETY: getuid cannot fail and takes no arguments.
    aux_id(libc::AT_UID, || unsafe { libc::getuid() })
}

/// A user id as the kernel put it in the auxiliary vector at exec, without
/// a system call (each costs a microsecond or two on the default path).
/// withlock never changes its ids, so the value is still true; if the
/// entry is missing (it never is on Linux), ask the kernel.
fn aux_id(entry: libc::c_ulong, ask: impl FnOnce() -> libc::uid_t) -> libc::uid_t {
    // SAFETY: errno is this thread's; getauxval takes a plain integer and
    // sets errno (ENOENT) only when the entry is missing.
    let value = unsafe {
        *libc::__errno_location() = 0;
        libc::getauxval(entry)
    };
    match libc::uid_t::try_from(value) {
        Ok(id) if errno() == Errno(0) => id,
        _ => ask(),
    }
}

/// This process's id, without a system call where the C library keeps it
/// (musl: the thread id it was given at start-up, which in the only thread
/// is the process id; refreshed by `fork`).
pub fn getpid() -> u32 {
    // SAFETY: gettid cannot fail and takes no arguments; withlock has one thread.
    u32::try_from(unsafe { libc::gettid() }).unwrap_or(0)
}

/// Write all of `bytes` to `fd`, giving up silently on errors: there is no
/// better place to report that stderr itself is broken.
pub fn write_all(fd: c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is valid for reads of its length.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        match usize::try_from(n) {
            Ok(0) => return,
            Ok(written) => bytes = &bytes[written..],
            Err(_) if errno() == Errno(libc::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// `fork(2)`; with musl, its `_Fork` (musl 1.2.2 and later): `fork` also
/// runs pthread_atfork handlers and takes the library's internal locks for
/// them, which a single-threaded withlock without malloc or stdio has no
/// use for, and that machinery (rwlocks, timed waits, the vDSO clock) is
/// 2 KB of every static binary. Returns as fork does.
///
/// # Safety
/// As `fork`: in the child, only async-signal-safe calls until exec.
pub unsafe fn fork() -> libc::pid_t {
    #[cfg(target_env = "musl")]
    {
        unsafe extern "C" {
            fn _Fork() -> libc::pid_t;
        }
        // SAFETY: the caller keeps fork's contract; _Fork takes no arguments.
        unsafe { _Fork() }
    }
    #[cfg(not(target_env = "musl"))]
    // SAFETY: the caller keeps fork's contract.
    unsafe {
        libc::fork()
    }
}

/// The foreground process group of the terminal at `fd` (`tcgetpgrp`), or -1.
/// On Linux by system call: the C library's ioctl carries, on 32-bit targets,
/// a kilobyte of tables to convert other requests' 64-bit times.
pub fn tcgetpgrp(fd: c_int) -> libc::pid_t {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let pgrp = {
        let mut pgrp: libc::pid_t = -1;
        // SAFETY: TIOCGPGRP writes one pid_t through the pointer, which is valid.
        let ret = unsafe { libc::syscall(libc::SYS_ioctl, fd, libc::TIOCGPGRP, &raw mut pgrp) };
        if ret == -1 { -1 } else { pgrp }
    };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: plain integers.
    let pgrp = unsafe { libc::tcgetpgrp(fd) };
    pgrp
}

/// Make `pgrp` the foreground process group of the terminal at `fd`
/// (`tcsetpgrp`); whether it worked. By system call on Linux, as `tcgetpgrp`.
pub fn tcsetpgrp(fd: c_int, pgrp: libc::pid_t) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: TIOCSPGRP reads one pid_t through the pointer, which is valid.
    let ret = unsafe { libc::syscall(libc::SYS_ioctl, fd, libc::TIOCSPGRP, &raw const pgrp) };
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: plain integers.
    let ret = unsafe { libc::tcsetpgrp(fd, pgrp) };
    ret == 0
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
