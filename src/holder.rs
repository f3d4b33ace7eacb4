//! Who holds a lock: the kernel's answer, checked against the record.
//!
//! The record in the lock file says which process took the lock; the kernel
//! says whether the lock is held, and (through `/proc/locks`, on Linux) by
//! which process. A record is *current* only when both agree and the
//! recorded process is still the one that wrote it: alive, and started no
//! later than the record's boot-clock reading (a process that reused the
//! pid started later). Anything less is reported as what it is: no record,
//! a stale one, or one that cannot be checked here.

use crate::record::{self, Contents, Record};
use crate::sys::{self, Errno};
use crate::text::{Line, LineBuf};
use core::ffi::{CStr, c_int};

/// Is the lock held, and by which process (the one that took the lock)?
/// `shared` counts the holders of a shared lock (0: exclusive, or unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Free,
    Held { locker: Option<u32>, shared: u32 },
}

/// How far the record can be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The recorded process holds the lock (or, if it has exited, a process
    /// it started still does: `exited`).
    Current { exited: bool },
    /// The lock is held, but not by the recorded process.
    Stale,
    /// The lock is free: the record tells who held it last.
    Last,
    /// Nothing to check it against here (no `/proc`).
    Unverified,
}

/// Everything known about a lock's holder.
pub struct Holder<'a> {
    pub state: State,
    pub contents: Contents<'a>,
    pub trust: Trust,
}

/// Read the start of the lock file (at most a record's worth).
pub fn read_contents(fd: c_int, buf: &mut [u8; record::CAPACITY]) -> &[u8] {
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    &buf[..usize::try_from(n).unwrap_or(0)]
}

/// Find out who holds the lock on the open file `fd` (status `st`).
/// `known_held`: the caller found the lock busy. Otherwise, where
/// `/proc/locks` cannot tell, the lock is tried for an instant (`probe`).
pub fn inspect<'b>(
    fd: c_int,
    st: &libc::stat,
    buf: &'b mut [u8; record::CAPACITY],
    known_held: bool,
) -> Holder<'b> {
    let unknown = State::Held { locker: None, shared: 0 };
    let state = match kernel_lockers(st) {
        Some(Lockers { count: 1.., pid, shared }) => State::Held { locker: pid, shared },
        Some(_) if known_held => unknown,
        Some(_) => State::Free,
        None if known_held => unknown,
        None => probe(fd),
    };
    let contents = record::parse(read_contents(fd, buf));
    let trust = match (&contents, state) {
        (Contents::Record(_), State::Free) => Trust::Last,
        // Shared holders write no record: what there is names an earlier one.
        (Contents::Record(_), State::Held { shared: 1.., .. }) => Trust::Stale,
        (Contents::Record(r), State::Held { locker, .. }) => judge(r, locker),
        _ => Trust::Unverified,
    };
    Holder { state, contents, trust }
}

/// Is the lock free? Only when `/proc/locks` is missing: take it for an
/// instant and let go (a withlock starting in that instant would find it
/// busy, which is why this is the last resort).
fn probe(fd: c_int) -> State {
    match sys::flock(fd, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => {
            let _ = sys::flock(fd, libc::LOCK_UN);
            State::Free
        }
        Err(_) => State::Held { locker: None, shared: 0 },
    }
}

fn judge(record: &Record, locker: Option<u32>) -> Trust {
    let Some(recorded) = record.locker.or(record.pid) else { return Trust::Stale };
    let Some(locker) = locker else { return Trust::Unverified };
    if locker != recorded {
        return Trust::Stale;
    }
    let Some(written) = record.boot_ns else { return Trust::Unverified };
    // Is `pid` the process that had it when the record was written?
    let same = |pid: u32| process_started_ns(pid).is_some_and(|started| started <= written);
    // The locker must be; so must the job (a different pid only when
    // withlock stayed its parent). If either has gone, or its pid now
    // belongs to a later process, yet the kernel still names the recorded
    // locker, the lock lives on in a process the job started.
    let job_alive = record.pid.is_none_or(same);
    Trust::Current { exited: !(same(recorded) && job_alive) }
}

/// Who holds flock locks on a file, as `/proc/locks` tells it.
pub struct Lockers {
    /// How many locks it has (any kind).
    pub count: u32,
    /// The process that took a lock on it (one of them, if shared; none for
    /// an OFD lock, which /proc/locks shows with pid -1).
    pub pid: Option<u32>,
    /// How many hold it shared.
    pub shared: u32,
}

/// The flock locks `/proc/locks` shows on this file; `None` if there is no
/// `/proc/locks` to read.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn kernel_lockers(st: &libc::stat) -> Option<Lockers> {
    // "MAJOR:MINOR:INODE" as /proc/locks writes it (hex, hex, decimal).
    let mut id_buf = LineBuf::<64>::new();
    let id = id_buf.line();
    let (major, minor) = (libc::major(st.st_dev), libc::minor(st.st_dev));
    push_hex2(id, u64::from(major));
    id.push(b":");
    push_hex2(id, u64::from(minor));
    id.push(b":").push_u64(st.st_ino);
    let id = id.as_bytes();

    let file = sys::open(c"/proc/locks", libc::O_RDONLY | libc::O_CLOEXEC, 0).ok()?;
    let mut found = Lockers { count: 0, pid: None, shared: 0 };
    for_each_line(file.raw(), |line| {
        // "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF" (READ if shared);
        // waiters have "->" after the number, and so do not match.
        let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let (_, kind, _, access, pid, file) =
            (words.next(), words.next(), words.next(), words.next(), words.next(), words.next());
        // flock locks, and --fcntl's OFD locks (pid -1: none to name).
        if matches!(kind, Some(b"FLOCK" | b"OFDLCK")) && file == Some(id) {
            found.count += 1;
            found.pid = pid.and_then(parse_u32).or(found.pid);
            found.shared += u32::from(access == Some(b"READ"));
        }
    });
    Some(found)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn kernel_lockers(_st: &libc::stat) -> Option<Lockers> {
    None
}

/// Lower-case hex, at least two digits, as the kernel's `%02x`.
#[cfg(any(target_os = "linux", target_os = "android", test))]
fn push_hex2(out: &mut Line, n: u64) {
    let hex = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    let mut n = n;
    while n != 0 || at > digits.len() - 2 {
        at -= 1;
        digits[at] = hex[(n & 15) as usize];
        n >>= 4;
    }
    out.push(&digits[at..]);
}

/// Call `each` with every line of the file open at `fd`.
fn for_each_line(fd: c_int, mut each: impl FnMut(&[u8])) {
    let mut buf = [0u8; 4096];
    let mut kept = 0;
    loop {
        // SAFETY: the destination is the free tail of `buf`.
        let n = unsafe { libc::read(fd, buf[kept..].as_mut_ptr().cast(), buf.len() - kept) };
        let Ok(n) = usize::try_from(n) else { return };
        let end = kept + n;
        let mut start = 0;
        while let Some(nl) = buf[start..end].iter().position(|&b| b == b'\n') {
            each(&buf[start..start + nl]);
            start += nl + 1;
        }
        if n == 0 {
            if start < end {
                each(&buf[start..end]);
            }
            return;
        }
        // Keep the unfinished line; a line longer than the buffer is dropped.
        kept = if start == 0 && end == buf.len() { 0 } else { end - start };
        buf.copy_within(start..end, 0);
    }
}

fn parse_u32(text: &[u8]) -> Option<u32> {
    crate::text::parse_u64(text).and_then(|n| u32::try_from(n).ok())
}

/// When process `pid` started, in nanoseconds of the boot clock, from
/// `/proc/PID/stat` (clock ticks); `None` if there is no such process.
pub fn process_started_ns(pid: u32) -> Option<u64> {
    let stat = proc_stat_fields(pid)?;
    // Start times in /proc are in USER_HZ ticks, which Linux fixes at 100
    // whatever the kernel's own tick rate, on every architecture but alpha
    // (asking sysconf would cost half a kilobyte of the binary).
    let hz = 100;
    stat.start_ticks.checked_mul(1_000_000_000 / hz)
}

/// The process group of `pid`, from `/proc/PID/stat`.
pub fn process_group(pid: u32) -> Option<u32> {
    proc_stat_fields(pid).map(|s| s.pgrp)
}

struct ProcStat {
    pgrp: u32,
    start_ticks: u64,
}

fn proc_stat_fields(pid: u32) -> Option<ProcStat> {
    let mut path_buf = LineBuf::<32>::new();
    let path = path_buf.line();
    path.push(b"/proc/").push_u64(u64::from(pid)).push(b"/stat\0");
    let path = CStr::from_bytes_with_nul(path.as_bytes()).ok()?;
    let file = sys::open(path, libc::O_RDONLY | libc::O_CLOEXEC, 0).ok()?;
    let mut buf = [0u8; 1024];
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { libc::read(file.raw(), buf.as_mut_ptr().cast(), buf.len()) };
    let text = &buf[..usize::try_from(n).ok()?];
    // "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses,
    // so count fields after the last ')'. starttime is field 22.
    let after = &text[text.iter().rposition(|&b| b == b')')? + 1..];
    let mut fields = after.split(|&b| b == b' ').filter(|f| !f.is_empty());
    let pgrp = parse_u32(fields.nth(2)?)?; // state, ppid, pgrp
    let start = fields.nth(22 - 6)?; // fields 6..=22 follow pgrp (field 5)
    let start_ticks = crate::text::parse_u64(start)?;
    Some(ProcStat { pgrp, start_ticks })
}

/// The owner (effective uid) of a live process, from its `/proc` entry.
pub fn process_owner(pid: u32) -> Result<u32, Errno> {
    let mut path_buf = LineBuf::<32>::new();
    let path = path_buf.line();
    path.push(b"/proc/").push_u64(u64::from(pid)).push(b"\0");
    let path = CStr::from_bytes_with_nul(path.as_bytes()).map_err(|_| Errno(libc::EINVAL))?;
    sys::stat(path).map(|st| st.st_uid)
}

/// Call `found` with the user name for `uid` from /etc/passwd; false if it
/// has no entry there. Read by hand: the C library's getpwuid would double
/// the size of withlock for this one lookup.
pub fn user_name(uid: u32, found: impl FnOnce(&[u8])) -> bool {
    let mut found = Some(found);
    if let Ok(file) = sys::open(c"/etc/passwd", libc::O_RDONLY | libc::O_CLOEXEC, 0) {
        for_each_line(file.raw(), |line| {
            // name:password:uid:...
            let mut fields = line.split(|&b| b == b':');
            let (name, uid_field) = (fields.next(), fields.nth(1));
            if let (Some(name), Some(field)) = (name, uid_field)
                && !name.is_empty()
                && parse_u32(field) == Some(uid)
                && let Some(found) = found.take()
            {
                found(name);
            }
        });
    }
    found.is_none()
}

/// Append the user name for `uid` (or "uid N" if it has none).
pub fn push_user(out: &mut Line, uid: u32) {
    if !user_name(uid, |name| {
        out.push_quoted(name);
    }) {
        out.push(b"uid ").push_u64(u64::from(uid));
    }
}

/// Say who holds (or last held) the lock, as part of a sentence about it:
/// "held by pid 4242 (rsync -a /srv /backup), user backup, since
/// 2026-11-26T02:00:01Z (3h 2m ago)", or "free", and so on. `verbose` adds
/// the host and the writer's version.
pub fn describe(out: &mut Line, holder: &Holder, verbose: bool) {
    let record = match &holder.contents {
        Contents::Record(record) => Some(record),
        _ => None,
    };
    match (holder.state, holder.trust, record) {
        (State::Held { locker, shared: shared @ 1.. }, _, _) => {
            out.push(b"held shared by ").push_u64(u64::from(shared));
            out.push(if shared == 1 { b" process".as_slice() } else { b" processes" });
            if let Some(pid) = locker {
                out.push(b" (pid ").push_u64(u64::from(pid));
                out.push(if shared == 1 { b")".as_slice() } else { b" and others)" });
            }
            out.push(b"; shared holders keep no holder record");
        }
        (State::Free, _, None) => {
            out.push(b"free");
        }
        (State::Free, _, Some(record)) => {
            out.push(b"free; last taken by ");
            push_who(out, record, verbose, false);
        }
        (State::Held { .. }, Trust::Current { exited: false }, Some(record)) => {
            out.push(b"held by ");
            push_who(out, record, verbose, true);
        }
        (State::Held { .. }, Trust::Current { exited: true }, Some(record)) => {
            out.push(b"held by what its job left running: the job, ");
            push_who(out, record, verbose, true);
            out.push(b", has exited");
        }
        (State::Held { locker, .. }, Trust::Stale, Some(record)) => {
            push_held_by(out, locker);
            out.push(b", which left no current record (the record is stale: it names ");
            push_who(out, record, verbose, false);
            out.push(b")");
        }
        (State::Held { .. }, _, Some(record)) => {
            out.push(b"held; the holder record (which cannot be checked here) names ");
            push_who(out, record, verbose, true);
        }
        (State::Held { locker, .. }, _, None) => {
            push_held_by(out, locker);
            out.push(match holder.contents {
                Contents::Foreign => b" (the lock file holds no withlock record)".as_slice(),
                _ => b" (no holder record: not taken by withlock, or withlock could not write it)",
            });
        }
    }
}

fn push_held_by(out: &mut Line, locker: Option<u32>) {
    match locker {
        Some(pid) => out.push(b"held by pid ").push_u64(u64::from(pid)),
        None => out.push(b"held by another process"),
    };
}

/// "pid 4242 (rsync -a /srv /backup), user backup, since ... (3h 2m ago)".
pub fn push_who(out: &mut Line, record: &Record, verbose: bool, current: bool) {
    if record.waiting {
        // LOCK, held as the gate by a `--slots N -w` job waiting for a slot.
        out.push(b"a waiter for one of ");
        match record.slots {
            Some(slots) => out.push(b"its ").push_u64(u64::from(slots)).push(b" slots, "),
            None => out.push(b"its slots, "),
        };
    }
    match record.pid {
        Some(pid) => out.push(b"pid ").push_u64(u64::from(pid)),
        None => out.push(b"an unknown pid"),
    };
    if let Some(command) = record.command {
        // Already escaped into printable ASCII by the writer; a forged record
        // is still kept to one safe line.
        out.push(b" (").push_printable(command);
        if record.command_cut {
            out.push(b" ...");
        }
        out.push(b")");
    }
    if let Some(uid) = record.uid {
        out.push(b", user ");
        push_user(out, uid);
    }
    if verbose && let Some(host) = record.host {
        out.push(b", on host ").push_quoted(host);
    }
    if let Some(since) = record.since {
        let word: &[u8] = if current { b", since " } else { b", taken at " };
        out.push(word).push_quoted(since);
        if let Some(then) = record.since_unix {
            let now = crate::clock::unix_now();
            // A date ahead of our clock (another host's clock, a forged
            // record) is said to be, not shown as "0s ago".
            let (age, when): (u64, &[u8]) =
                if then > now { (then - now, b" in the future)") } else { (now - then, b" ago)") };
            out.push(b" (");
            crate::clock::push_age(out, age);
            out.push(when);
        }
    }
    if verbose && let Some(version) = record.version {
        out.push(b", recorded by withlock ").push_quoted(version);
    }
    if !record.complete {
        out.push(b" (the record is incomplete)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_look_like_the_kernels() {
        let hex = |n| {
            let mut buf = LineBuf::<32>::new();
            let l = buf.line();
            push_hex2(l, n);
            std::string::String::from_utf8(l.as_bytes().to_vec()).unwrap()
        };
        assert_eq!(hex(0), "00");
        assert_eq!(hex(8), "08");
        assert_eq!(hex(0xfd), "fd");
        assert_eq!(hex(0x103), "103");
    }

    #[test]
    fn our_own_process_is_found_in_proc() {
        let me = std::process::id();
        let started = process_started_ns(me).expect("/proc/self/stat");
        // SAFETY: getpgrp cannot fail.
        assert_eq!(process_group(me), Some(unsafe { libc::getpgrp() } as u32));
        assert!(started <= crate::clock::boot_ns());
    }
}
