//! `withlock --status LOCK...`: who holds each lock, in words or JSON.
//!
//! It only looks: it never creates a file (a missing lock file is a free
//! lock), never follows a symlink, and never keeps a lock. Whether a lock is
//! held comes from `/proc/locks`; only where that is missing does it try the
//! lock for an instant (see `holder::inspect`). A directory stands for every
//! regular file in it, in directory order.
//!
//! Exit status: 0 if every lock named is free, 75 if any is held, and the
//! usual codes (73, 77) if one could not be looked at.

use crate::exit;
use crate::holder::{self, Holder, State, Trust};
use crate::json;
use crate::record::{self, Contents};
use crate::sys::{self, Errno, Kind};
use crate::text::{Line, LineBuf};
use core::ffi::CStr;

/// What one lock's report added to the exit status.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Free,
    Held,
    Error(u8),
}

/// Report on every lock in `locks`; returns the exit status.
pub fn run<'a>(locks: impl Iterator<Item = &'a CStr>, json: bool) -> u8 {
    let mut worst = Outcome::Free;
    for lock in locks {
        worst = worst.max(report_path(lock, json));
    }
    match worst {
        Outcome::Free => 0,
        Outcome::Held => exit::BUSY,
        Outcome::Error(code) => code,
    }
}

const OPEN_FLAGS: i32 =
    libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;

fn report_path(path: &CStr, json: bool) -> Outcome {
    if crate::cli::is_etcd(path.to_bytes()) {
        return report_remote(path, json);
    }
    // Look before opening: an open has effects on a device (a watchdog arms).
    if let Ok(seen) = sys::lstat(path)
        && let kind @ (Kind::Fifo | Kind::CharDevice | Kind::BlockDevice | Kind::Socket | Kind::Unknown) =
            Kind::of(&seen)
    {
        return say_error(path, json, exit::REFUSED, kind.described());
    }
    let file = match sys::open(path, OPEN_FLAGS, 0) {
        Ok(file) => file,
        Err(Errno(libc::ENOENT)) => return say_free_missing(path, json),
        Err(Errno(libc::ELOOP | libc::EMLINK)) => {
            return say_error(path, json, exit::REFUSED, b"a symbolic link; withlock never follows one");
        }
        Err(errno) => return say_error(path, json, exit::CANNOT_CREATE, errno.text()),
    };
    let st = match sys::fstat(file.raw()) {
        Ok(st) => st,
        Err(errno) => return say_error(path, json, exit::OS_ERROR, errno.text()),
    };
    match Kind::of(&st) {
        Kind::Regular => {
            let mut buf = [0u8; record::CAPACITY];
            let holder = holder::inspect(file.raw(), &st, &mut buf, false);
            say(path, json, &holder)
        }
        Kind::Directory => report_directory(path, json),
        kind => say_error(path, json, exit::REFUSED, kind.described()),
    }
}

/// A lock in etcd (see `etcd_session::status`).
#[cold]
#[inline(never)]
fn report_remote(path: &CStr, json: bool) -> Outcome {
    #[cfg(feature = "etcd")]
    return match crate::etcd_session::status(path.to_bytes(), json) {
        0 => Outcome::Free,
        exit::BUSY => Outcome::Held,
        code => Outcome::Error(code),
    };
    #[cfg(not(feature = "etcd"))]
    say_error(path, json, exit::UNAVAILABLE, b"this withlock was built without etcd support")
}

/// Every regular file in the directory `dir`.
fn report_directory(dir: &CStr, json: bool) -> Outcome {
    let mut worst = Outcome::Free;
    let mut path = LineBuf::<{ 4096 + 256 + 2 }>::new();
    let listed = for_each_entry(dir, |name| {
        if name == b"." || name == b".." {
            return;
        }
        let path = path.line();
        path.clear();
        path.push(dir.to_bytes());
        if dir.to_bytes().last() != Some(&b'/') {
            path.push(b"/");
        }
        path.push(name).push(b"\0");
        let Ok(entry_path) = CStr::from_bytes_with_nul(path.as_bytes()) else { return };
        // Only regular files are lock files; skip the rest silently.
        if sys::lstat(entry_path).is_ok_and(|st| Kind::of(&st) == Kind::Regular) {
            worst = worst.max(report_path(entry_path, json));
        }
    });
    match listed {
        Ok(()) => worst,
        Err(errno) => worst.max(say_error(dir, json, exit::CANNOT_CREATE, errno.text())),
    }
}

/// Call `each` with every name in the directory `dir`. On Linux with the
/// getdents64 system call: the C library's opendir needs its allocator,
/// which would cost withlock a fifth of its size.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn for_each_entry(dir: &CStr, mut each: impl FnMut(&[u8])) -> Result<(), Errno> {
    let file = sys::open(dir, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC, 0)?;
    // linux_dirent64: u64 inode, i64 offset, u16 record length, u8 type, name.
    let mut buf = [0u64; 1024]; // 8 KB, 8-byte aligned as the records are.
    loop {
        // SAFETY: `buf` is valid for writes of its size in bytes.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, file.raw(), buf.as_mut_ptr(), 8 * buf.len()) };
        let n = usize::try_from(n).map_err(|_| sys::errno())?;
        if n == 0 {
            return Ok(());
        }
        // SAFETY: the kernel filled the first `n` bytes of `buf`.
        let bytes = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
        let mut at = 0;
        while at + 19 < n {
            let reclen = usize::from(u16::from_ne_bytes([bytes[at + 16], bytes[at + 17]]));
            if reclen < 20 || at + reclen > n {
                break;
            }
            let name = &bytes[at + 19..at + reclen];
            let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            each(&name[..len]);
            at += reclen;
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn for_each_entry(dir: &CStr, mut each: impl FnMut(&[u8])) -> Result<(), Errno> {
    // SAFETY: `dir` is a valid C string; opendir returns null or a stream we
    // close below.
    let stream = unsafe { libc::opendir(dir.as_ptr()) };
    if stream.is_null() {
        return Err(sys::errno());
    }
    loop {
        // SAFETY: `stream` is open; the entry stays valid until the next call.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            break;
        }
        // SAFETY: d_name is a NUL-terminated array inside the entry.
        each(unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes());
    }
    // SAFETY: `stream` came from opendir and is closed once.
    unsafe { libc::closedir(stream) };
    Ok(())
}

fn say_free_missing(path: &CStr, json: bool) -> Outcome {
    let mut buf = LineBuf::<{ 3 * 4096 }>::new();
    let out = buf.line();
    if json {
        json::push_key(out.push(b"{"), "lock", true);
        json::push_str(out, path.to_bytes());
        out.push(br#","state":"free","locker_pid":null,"shared_holders":0,"record":"none"}"#);
    } else {
        out.push_quoted(path.to_bytes()).push(b": free (no lock file)");
    }
    out.write_to(1);
    Outcome::Free
}

fn say_error(path: &CStr, json: bool, code: u8, why: &[u8]) -> Outcome {
    let mut buf = LineBuf::<{ 3 * 4096 }>::new();
    let out = buf.line();
    if json {
        json::push_key(out.push(b"{"), "lock", true);
        json::push_str(out, path.to_bytes());
        out.push(br#","state":"error","error":"#);
        json::push_str(out, why);
        out.push(b"}");
        out.write_to(1);
    } else {
        out.push(b"withlock: cannot tell who holds ").push_quoted(path.to_bytes()).push(b": ").push(why);
        out.write_to(2);
    }
    Outcome::Error(code)
}

fn say(path: &CStr, json: bool, holder: &Holder) -> Outcome {
    let mut buf = LineBuf::<{ 3 * 4096 }>::new();
    let out = buf.line();
    if json {
        push_json(out, path, holder);
    } else {
        out.push_quoted(path.to_bytes()).push(b": ");
        holder::describe(out, holder, true);
    }
    out.write_to(1);
    match holder.state {
        State::Free => Outcome::Free,
        State::Held { .. } => Outcome::Held,
    }
}

/// One JSON object; the field names are documented in the README.
fn push_json(out: &mut Line, path: &CStr, holder: &Holder) {
    json::push_key(out.push(b"{"), "lock", true);
    json::push_str(out, path.to_bytes());
    json::push_key(out, "state", false);
    let (locker, shared) = match holder.state {
        State::Free => {
            out.push(br#""free""#);
            (None, 0)
        }
        State::Held { locker, shared } => {
            out.push(br#""held""#);
            (locker, shared)
        }
    };
    json::push_key(out, "locker_pid", false);
    json::push_opt_u64(out, locker.map(u64::from));
    json::push_key(out, "shared_holders", false);
    out.push_u64(u64::from(shared));
    json::push_key(out, "record", false);
    let record = match &holder.contents {
        Contents::Empty => {
            out.push(br#""none""#);
            None
        }
        Contents::Foreign => {
            out.push(br#""foreign""#);
            None
        }
        Contents::Record(record) => {
            out.push(match holder.trust {
                Trust::Current { exited: false } => br#""current""#.as_slice(),
                Trust::Current { exited: true } => br#""exited""#,
                Trust::Stale => br#""stale""#,
                Trust::Last => br#""last""#,
                Trust::Unverified => br#""unverified""#,
            });
            Some(record)
        }
    };
    if let Some(r) = record {
        push_record_fields(out, r);
    }
    out.push(b"}");
}

/// A holder record's fields, each after a comma (`,"pid":...`), for a lock
/// file's report and an etcd lock's alike.
pub fn push_record_fields(out: &mut Line, r: &record::Record) {
    json::push_key(out, "pid", false);
    json::push_opt_u64(out, r.pid.map(u64::from));
    json::push_key(out, "pgid", false);
    json::push_opt_u64(out, r.pgid.map(u64::from));
    json::push_key(out, "uid", false);
    json::push_opt_u64(out, r.uid.map(u64::from));
    json::push_key(out, "user", false);
    let mut name = LineBuf::<256>::new();
    let name = name.line();
    let found = r.uid.is_some_and(|uid| {
        holder::user_name(uid, |n| {
            name.push(n);
        })
    });
    json::push_opt_str(out, found.then_some(name.as_bytes()));
    json::push_key(out, "host", false);
    json::push_opt_str(out, r.host);
    json::push_key(out, "since", false);
    json::push_opt_str(out, r.since);
    json::push_key(out, "since_unix", false);
    json::push_opt_u64(out, r.since_unix);
    json::push_key(out, "age_s", false);
    // null for a date ahead of our clock: it has no age.
    json::push_opt_u64(out, r.since_unix.and_then(|then| crate::clock::unix_now().checked_sub(then)));
    json::push_key(out, "version", false);
    json::push_opt_str(out, r.version);
    json::push_key(out, "command", false);
    json::push_opt_str(out, r.command);
    json::push_key(out, "argv", false);
    out.push(b"[");
    if let Some(command) = r.command {
        let mut args = record::Args::new(command);
        let mut arg = [0u8; record::CAPACITY];
        let mut first = true;
        while let Some(len) = args.next_into(&mut arg) {
            if !first {
                out.push(b",");
            }
            first = false;
            json::push_str(out, &arg[..len]);
        }
    }
    out.push(b"]");
    json::push_key(out, "command_cut", false);
    out.push(if r.command_cut { b"true".as_slice() } else { b"false" });
    json::push_key(out, "complete", false);
    out.push(if r.complete { b"true".as_slice() } else { b"false" });
}
