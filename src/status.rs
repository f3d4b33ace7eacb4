//! `withlock --status LOCK...`: who holds each lock, in words or JSON.
//!
//! It only looks: it never creates a file (a missing lock file in an existing
//! directory is a free lock), never follows a symlink, and never takes a
//! lock, not even for an instant (a concurrent `withlock -q` would skip its
//! job). Whether a lock is held comes from `/proc/locks`; where that cannot
//! show every holder (another pid namespace, a network file system, no
//! /proc), a lock with no visible holder is "unknown", never "free" (see
//! `holder::inspect`). A directory stands for every regular file in it, in
//! directory order.
//!
//! Exit status: 0 if every lock named is free, 75 if any is held, else 69 if
//! any is unknown, and the usual codes (64, 73, 77) if one could not be
//! looked at.

use crate::holder::{self, Holder, State, Trust};
use crate::json;
use crate::proc::{Blind, Holds, for_each_entry};
use crate::record::{self, Contents};
use crate::sys::{self, Errno, Kind};
use crate::text::{Line, LineBuf};
use crate::{exit, locate, named, report};
use core::ffi::CStr;

/// What one lock's report added to the exit status.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Free,
    Unknown,
    Held,
    Error(u8),
}

/// Report on the lock `--name NAME` names, then every lock in `locks`;
/// returns the exit status.
pub fn run<'a>(name: Option<&[u8]>, locks: impl Iterator<Item = &'a CStr>, json: bool) -> u8 {
    let mut worst = Outcome::Free;
    if let Some(name) = name {
        worst = match report_named(name, json) {
            Ok(outcome) => outcome,
            Err(code) => return code,
        };
    }
    for lock in locks {
        worst = worst.max(report_path(lock, json));
    }
    match worst {
        Outcome::Free => 0,
        Outcome::Unknown => exit::UNAVAILABLE,
        Outcome::Held => exit::BUSY,
        Outcome::Error(code) => code,
    }
}

/// `--name NAME`'s lock. Its directory is withlock's own, made on first
/// use: if it is missing, the lock is free (only looking, this does not make
/// it). `Err`: the exit code if its path cannot even be made.
#[cold]
#[inline(never)]
fn report_named(name: &[u8], json: bool) -> Result<Outcome, u8> {
    let mut dir = LineBuf::<{ locate::PATH_MAX }>::new();
    let mut path = LineBuf::<{ locate::PATH_MAX }>::new();
    let (dir, path) = (dir.line(), path.line());
    if let Err(failure) = named::lock_path(name, dir, path) {
        let lock = path.as_bytes();
        report::failure(&failure, lock.strip_suffix(b"\0").unwrap_or(lock), b"", dir.as_cstr(), false);
        return Err(failure.exit_code(exit::BUSY));
    }
    let named = path.as_cstr();
    Ok(match sys::lstat(named) {
        Err(Errno(libc::ENOENT)) => say_free_missing(named, json),
        _ => report_path(named, json),
    })
}

fn report_path(path: &CStr, json: bool) -> Outcome {
    if crate::cli::is_etcd(path.to_bytes()) {
        return report_remote(path, json);
    }
    if path.is_empty() {
        return say_error(path, json, exit::USAGE, b"an empty LOCK names no file");
    }
    // Look before opening: an open has effects on a device (a watchdog arms).
    if let Ok(seen) = sys::lstat(path)
        && let kind @ (Kind::Fifo | Kind::CharDevice | Kind::BlockDevice | Kind::Socket | Kind::Unknown) =
            Kind::of(&seen)
    {
        return say_error(path, json, exit::REFUSED, kind.described());
    }
    let file = match sys::open_to_look(path) {
        Ok(file) => file,
        // No file is a free lock, if the directory is there: a typo in the
        // directory must not look like a healthy lock.
        Err(Errno(libc::ENOENT)) if has_directory(path) => return say_free_missing(path, json),
        Err(Errno(libc::ENOENT)) => {
            return say_error(path, json, exit::CANNOT_CREATE, b"its directory does not exist");
        }
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

/// A lock in etcd (see `etcd::session::status`).
#[cold]
#[inline(never)]
fn report_remote(path: &CStr, json: bool) -> Outcome {
    #[cfg(feature = "etcd")]
    {
        use crate::etcd::{self, Error};
        let lock = path.to_bytes();
        let mut why = LineBuf::<{ etcd::WORDS_MAX }>::new();
        let address = match etcd::parse_address(lock) {
            Ok(address) => address,
            Err(error) => {
                why.line().push(error.problem.as_bytes()).push(b": ").push_quoted(error.culprit);
                return say_error(path, json, exit::USAGE, why.line().as_bytes());
            }
        };
        match etcd::session::status(&address, lock, json) {
            Ok(true) => Outcome::Held,
            Ok(false) => Outcome::Free,
            Err(error) => say_error(path, json, exit::UNAVAILABLE, Error::words(Some(&error)).as_bytes()),
        }
    }
    #[cfg(not(feature = "etcd"))]
    say_error(path, json, exit::UNAVAILABLE, b"this withlock was built without etcd support")
}

/// Every regular file in the directory `dir`.
fn report_directory(dir: &CStr, json: bool) -> Outcome {
    let mut worst = Outcome::Free;
    let mut path = LineBuf::<{ 4096 + 256 + 2 }>::new();
    let mut each = |name: &CStr| {
        let name = name.to_bytes();
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
        let entry_path = path.as_cstr();
        // Only regular files are lock files; skip the rest silently.
        if sys::lstat(entry_path).is_ok_and(|st| Kind::of(&st) == Kind::Regular) {
            worst = worst.max(report_path(entry_path, json));
        }
    };
    let listed = sys::open(dir, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC, 0)
        .and_then(|file| for_each_entry(file.raw(), &mut each));
    match listed {
        Ok(()) => worst,
        Err(errno) => worst.max(say_error(dir, json, exit::CANNOT_CREATE, errno.text())),
    }
}

/// Is the directory of `path` (a file that does not exist) there?
fn has_directory(path: &CStr) -> bool {
    let bytes = path.to_bytes();
    let mut dir = LineBuf::<{ 4096 + 2 }>::new();
    let dir = dir.line();
    match bytes.iter().rposition(|&b| b == b'/') {
        Some(0) => dir.push(b"/"),
        Some(slash) => dir.push(&bytes[..slash]),
        None => dir.push(b"."),
    };
    dir.push(b"\0");
    sys::stat(dir.as_cstr()).is_ok_and(|st| Kind::of(&st) == Kind::Directory)
}

fn say_free_missing(path: &CStr, json: bool) -> Outcome {
    let mut buf = LineBuf::<{ 3 * 4096 }>::new();
    let out = buf.line();
    out.spill_to(1);
    if json {
        json::push_key(out.push(b"{"), "lock", true);
        json::push_str(out, path.to_bytes());
        out.push(
            br#","state":"free","locker_pid":null,"locker_uid":null,"locker_user":null,"locker_holds":null,"#,
        );
        out.push(
            br#""blind_spot":null,"shared_holders":0,"file_uid":null,"file_mode":null,"record":"none"}"#,
        );
    } else {
        out.push_quoted(path.to_bytes()).push(b": free (no lock file)");
    }
    out.write_to(1);
    Outcome::Free
}

fn say_error(path: &CStr, json: bool, code: u8, why: &[u8]) -> Outcome {
    let mut buf = LineBuf::<{ 3 * 4096 }>::new();
    let out = buf.line();
    out.spill_to(if json { 1 } else { 2 });
    if json {
        json::push_key(out.push(b"{"), "lock", true);
        json::push_str(out, path.to_bytes());
        out.push(br#","state":"error","error":"#);
        json::push_str(out, why);
        out.push(b"}");
        out.write_to(1);
    } else {
        out.push(b"withlock: cannot tell who holds ").push_quoted(path.to_bytes());
        if path.is_empty() {
            out.push(b"''");
        }
        out.push(b": ").push(why);
        out.write_to(2);
    }
    Outcome::Error(code)
}

fn say(path: &CStr, json: bool, holder: &Holder) -> Outcome {
    let mut buf = LineBuf::<{ 3 * 4096 }>::new();
    let out = buf.line();
    out.spill_to(1);
    if json {
        push_json(out, path, holder);
    } else {
        out.push_quoted(path.to_bytes()).push(b": ");
        holder::describe(out, holder, true);
    }
    out.write_to(1);
    match holder.state {
        State::Free => Outcome::Free,
        State::Unknown => Outcome::Unknown,
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
        State::Unknown => {
            out.push(br#""unknown""#);
            (None, 0)
        }
        State::Held { locker, shared } => {
            out.push(br#""held""#);
            (locker, shared)
        }
    };
    // What the kernel shows.
    json::push_key(out, "locker_pid", false);
    json::push_opt_u64(out, locker.map(u64::from));
    let facts = holder.locker.filter(|l| Some(l.pid) == locker);
    let uid = facts.and_then(|l| l.uid).filter(|_| facts.is_some_and(|l| l.holds != Holds::No));
    json::push_key(out, "locker_uid", false);
    json::push_opt_u64(out, uid.map(u64::from));
    json::push_key(out, "locker_user", false);
    json::push_user_name(out, uid);
    json::push_key(out, "locker_holds", false);
    out.push(match facts.map(|l| l.holds) {
        Some(Holds::Yes) => b"true".as_slice(),
        Some(Holds::No) => b"false",
        _ => b"null",
    });
    json::push_key(out, "blind_spot", false);
    out.push(match holder.blind {
        None => b"null".as_slice(),
        Some(Blind::NoProc) => br#""no-proc""#,
        Some(Blind::PidNamespace) => br#""pid-namespace""#,
        Some(Blind::Network) => br#""network-fs""#,
        Some(Blind::Device) => br#""device""#,
    });
    json::push_key(out, "shared_holders", false);
    out.push_u64(u64::from(shared));
    json::push_key(out, "file_uid", false);
    out.push_u64(u64::from(holder.file_uid));
    json::push_key(out, "file_mode", false);
    out.push(b"\"").push_mode(holder.file_mode).push(b"\"");
    // What the record says.
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
                Trust::Current => br#""current""#.as_slice(),
                Trust::Exited => br#""exited""#,
                Trust::Stale => br#""stale""#,
                Trust::Last => br#""last""#,
                Trust::Unverified => br#""unverified""#,
            });
            Some(record)
        }
    };
    if let Some(r) = record {
        json::push_record_fields(out, r);
    }
    out.push(b"}");
}
