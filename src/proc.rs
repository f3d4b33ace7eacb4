//! What the kernel witnesses, read from `/proc`: who holds a lock, and
//! which process is which.
//!
//! The holder record in a lock file is a claim anyone who can write the file
//! can forge; these are the facts withlock may act on:
//!
//! * `/proc/locks` names the process that took a lock. It leaves out lockers
//!   that are not visible in the pid namespace of `/proc`, and names files by
//!   the device number of their file system, which on overlayfs differs from
//!   what `fstat` says: a lock on our inode number under another device is
//!   ours if its process holds our file (see below). "No line" is proof of a
//!   free lock only from the first pid namespace and on a local file system.
//! * `/proc/PID/fd` and `/proc/PID/fdinfo` show whether a live process holds
//!   the lock now: an open file that is the lock file, with a `lock:` line.
//!   That cannot be fooled by a reused pid, and it is also true of a child
//!   that inherited the lock, which is as much the holder.
//! * `/proc/PID/stat`: parent, process group, state and start time; its
//!   owner: the process's (effective) user.

use crate::sys::{self, Errno, Fd};
use crate::text::{LineBuf, parse_u64};
use core::ffi::{CStr, c_int};

/// Why `/proc/locks` may leave out a lock's holder: then no line there does
/// not prove the lock free.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blind {
    /// No `/proc/locks` to read.
    NoProc,
    /// `/proc` is not the first pid namespace's (a container): lockers in
    /// other namespaces (the host's, other containers') are left out.
    PidNamespace,
    /// A network or cluster file system: other hosts' locks are not there.
    Network,
    /// A lock on a file with this inode number on another device, whose
    /// holder cannot be looked at: it may be this file's (overlayfs).
    Device,
}

/// Who holds flock (or OFD) locks on a file, as `/proc/locks` tells it.
pub struct Lockers {
    /// How many locks it has (any kind).
    pub count: u32,
    /// The process that took a lock on it (one of them, if shared; none for
    /// an OFD lock, which /proc/locks shows with pid -1).
    pub pid: Option<u32>,
    /// How many hold it shared.
    pub shared: u32,
    /// Why holders could be missing from the count (`None`: it is complete).
    pub blind: Option<Blind>,
}

/// The locks `/proc/locks` shows on the file open at `fd` (status `st`).
#[cfg(any(target_os = "linux", target_os = "android"))]
// Out of line: inlined into `holder::inspect`, these cost a kilobyte more.
#[inline(never)]
pub fn lockers(fd: c_int, st: &libc::stat) -> Lockers {
    let mut found = Lockers { count: 0, pid: None, shared: 0, blind: None };
    let Ok(file) = sys::open(c"/proc/locks", libc::O_RDONLY | libc::O_CLOEXEC, 0) else {
        found.blind = Some(Blind::NoProc);
        return found;
    };
    found.blind = if on_network(fd) {
        Some(Blind::Network)
    } else if !in_first_pid_namespace() {
        Some(Blind::PidNamespace)
    } else {
        None
    };
    // "MAJOR:MINOR:INODE" as /proc/locks writes it (hex, hex, decimal).
    let mut id_buf = LineBuf::<64>::new();
    let id = id_buf.line();
    id.push_hex(u64::from(libc::major(st.st_dev)), 2);
    id.push(b":");
    id.push_hex(u64::from(libc::minor(st.st_dev)), 2);
    let ino_at = id.as_bytes().len();
    id.push(b":").push_u64(st.st_ino);
    let id = id.as_bytes();
    let mut elsewhere = Lockers { count: 0, pid: None, shared: 0, blind: None };
    for_each_line(file.raw(), &mut |line| {
        // "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF" (READ if shared);
        // waiters have "->" after the number, and so do not match.
        // flock locks, and --fcntl's OFD locks (pid -1: none to name).
        let file = word(line, 5);
        if matches!(word(line, 1), b"FLOCK" | b"OFDLCK") && file.ends_with(&id[ino_at..]) {
            let tally = if file == id { &mut found } else { &mut elsewhere };
            tally.count += 1;
            tally.pid = parse_u32(word(line, 4)).or(tally.pid);
            tally.shared += u32::from(word(line, 3) == b"READ");
        }
    });
    // Our inode number on another device: /proc/locks names a file by its
    // file system's device, which on overlayfs is not the one fstat gives.
    // It is this file if its process holds this file; else who knows.
    if found.count == 0 && elsewhere.count > 0 {
        match elsewhere.pid.map(|pid| holds(pid, st)) {
            Some(Holds::Yes) => {
                (found.count, found.pid, found.shared) = (elsewhere.count, elsewhere.pid, elsewhere.shared)
            }
            _ => found.blind = found.blind.or(Some(Blind::Device)),
        }
    }
    found
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn lockers(_fd: c_int, _st: &libc::stat) -> Lockers {
    Lockers { count: 0, pid: None, shared: 0, blind: Some(Blind::NoProc) }
}

/// Is the file open at `fd` on a network or cluster file system, whose
/// locks other hosts take part in? (By `statfs` magic number: NFS, SMB and
/// CIFS, Ceph, FUSE and virtiofs, 9P, AFS, GFS2, OCFS2, Lustre, GPFS.)
#[cfg(any(target_os = "linux", target_os = "android"))]
// Out of line: inlined into `holder::inspect`, these cost a kilobyte more.
#[inline(never)]
fn on_network(fd: c_int) -> bool {
    const NETWORK: [u32; 13] = [
        0x6969,
        0x517b,
        0xff53_4d42,
        0xfe53_4d42,
        0x00c3_6400,
        0x6573_5546,
        0x0102_1997,
        0x5346_414f,
        0x6b41_4653,
        0x0116_1970,
        0x7461_636f,
        0x0bd0_0bd0,
        0x4750_4653,
    ];
    #[allow(clippy::unnecessary_cast)] // f_type is an unsigned long: u32 on 32-bit targets
    sys::fstatfs(fd).is_ok_and(|fs| NETWORK.contains(&(fs.f_type as u32)))
}

/// Is this process in the first pid namespace, whose `/proc` shows every
/// process? (Its namespace file has a fixed inode number, 0xEFFFFFFC.)
#[cfg(any(target_os = "linux", target_os = "android"))]
// Out of line: inlined into `holder::inspect`, these cost a kilobyte more.
#[inline(never)]
fn in_first_pid_namespace() -> bool {
    let mut buf = [0u8; 32];
    sys::readlink(c"/proc/self/ns/pid", &mut buf).is_ok_and(|len| &buf[..len] == b"pid:[4026531836]")
}

/// Does process `pid` hold a lock on the file `st` describes, now?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holds {
    /// One of its open files is that file, and holds a lock on it.
    Yes,
    /// It has ended (or is a zombie), or none of its open files holds it.
    No,
    /// Its open files cannot be looked at from here (another user's).
    Unseen,
}

/// Look through the open files of `pid` for the lock on the file `st`
/// describes (see the module docs).
pub fn holds(pid: u32, st: &libc::stat) -> Holds {
    // Only --replace acts on this; without it the look is left out, for the
    // 64 KB goal (records are then shown unchecked).
    if cfg!(not(feature = "replace")) {
        return Holds::Unseen;
    }
    // Its descriptors are below the size of its table ("FDSize:" in
    // /proc/PID/status, 64 for most processes; 0 once it has ended), tried
    // one by one: listing /proc/PID/fd would cost withlock half a kilobyte.
    let mut size = 0;
    if let Ok(status) = proc_open(pid, b"/status\0", libc::O_RDONLY | libc::O_CLOEXEC) {
        for_each_line(status.raw(), &mut |line| {
            if word(line, 0) == b"FDSize:" {
                size = parse_u32(word(line, 1)).unwrap_or(0);
            }
        });
    }
    let mut path = LineBuf::<64>::new();
    let path = path.line();
    for fd in 0..size {
        // "/proc/PID/fd/N": stat follows it to the open file.
        path.clear();
        path.push(b"/proc/").push_u64(u64::from(pid)).push(b"/fd/").push_u64(u64::from(fd)).push(b"\0");
        match sys::stat(path.as_cstr()) {
            Ok(open) if sys::same_file(&open, st) => {}
            Ok(_) | Err(Errno(libc::ENOENT)) => continue,
            Err(_) => return Holds::Unseen,
        }
        // "/proc/PID/fdinfo/N": a held flock or OFD lock of that open file
        // shows as "lock:\t1: FLOCK  ADVISORY  WRITE ..." (a waiter's
        // request does not show).
        path.clear();
        path.push(b"/proc/").push_u64(u64::from(pid)).push(b"/fdinfo/").push_u64(u64::from(fd)).push(b"\0");
        let mut locked = false;
        let read = each_line_of(path.as_bytes(), &mut |line| {
            locked |= word(line, 0) == b"lock:" && matches!(word(line, 2), b"FLOCK" | b"OFDLCK");
        });
        match (read, locked) {
            (None, _) => return Holds::Unseen,
            (_, true) => return Holds::Yes,
            _ => {}
        }
    }
    Holds::No
}

/// Open `/proc/PID` followed by `tail` (NUL-terminated).
fn proc_open(pid: u32, tail: &[u8], flags: c_int) -> Result<Fd, Errno> {
    let mut path = LineBuf::<48>::new();
    let path = path.line();
    path.push(b"/proc/").push_u64(u64::from(pid)).push(tail);
    sys::open(path.as_cstr(), flags, 0)
}

/// What `/proc/PID/stat` says of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Process {
    /// `R`, `S`, `Z` and so on.
    pub state: u8,
    pub ppid: u32,
    pub pgrp: u32,
    /// When it started, in clock ticks after boot.
    pub start_ticks: u64,
    /// Its user: the owner of its /proc entries, its effective user (root
    /// for a process that changed its ids, which others may not look into).
    pub uid: u32,
}

impl Process {
    /// Alive: not a zombie (nor dead).
    pub fn alive(&self) -> bool {
        !matches!(self.state, b'Z' | b'X' | b'x')
    }

    /// When it started, in nanoseconds of the boot clock. Start times in
    /// /proc are in USER_HZ ticks, which Linux fixes at 100 whatever the
    /// kernel's own tick rate, on every architecture but alpha.
    pub fn started_ns(&self) -> u64 {
        self.start_ticks.saturating_mul(1_000_000_000 / 100)
    }
}

/// `/proc/PID/stat`; `None` if there is no such process.
pub fn process(pid: u32) -> Option<Process> {
    let file = proc_open(pid, b"/stat\0", libc::O_RDONLY | libc::O_CLOEXEC).ok()?;
    let mut buf = [0u8; 512];
    let n = sys::read(file.raw(), &mut buf).ok()?;
    let text = &buf[..n];
    let uid = sys::fstat(file.raw()).ok()?.st_uid;
    // "pid (comm) state ppid pgrp ..."; comm may hold spaces and parentheses,
    // so count fields after the last ')'.
    let after = &text[text.iter().rposition(|&b| b == b')')? + 1..];
    let field = |n: usize| word(after, n - 3); // Field 3 (state) comes first.
    Some(Process {
        state: *field(3).first()?,
        ppid: parse_u32(field(4))?,
        pgrp: parse_u32(field(5))?,
        start_ticks: parse_u64(field(22))?,
        uid,
    })
}

/// The `n`th word (from 0) of `line`, words being separated by spaces or
/// tabs; empty if there are fewer.
pub fn word(line: &[u8], mut n: usize) -> &[u8] {
    let gap = |b: &u8| *b == b' ' || *b == b'\t';
    let mut rest = line;
    loop {
        rest = &rest[rest.iter().position(|b| !gap(b)).unwrap_or(rest.len())..];
        let end = rest.iter().position(gap).unwrap_or(rest.len());
        if n == 0 || end == 0 {
            return &rest[..end];
        }
        rest = &rest[end..];
        n -= 1;
    }
}

pub fn parse_u32(text: &[u8]) -> Option<u32> {
    parse_u64(text).and_then(|n| u32::try_from(n).ok())
}

/// Call `each` with every line of the file at `path` (NUL-terminated);
/// `None` if it cannot be opened.
pub fn each_line_of(path: &[u8], each: &mut dyn FnMut(&[u8])) -> Option<()> {
    let file = sys::open(crate::text::c_str(path), libc::O_RDONLY | libc::O_CLOEXEC, 0).ok()?;
    for_each_line(file.raw(), each);
    Some(())
}

/// Call `each` with every line of the file open at `fd` (a line longer than
/// 4 KB is dropped: none of the files read here has one).
pub fn for_each_line(fd: c_int, each: &mut dyn FnMut(&[u8])) {
    let mut buf = [0u8; 4096];
    let mut kept = 0;
    loop {
        let Ok(n) = sys::read(fd, &mut buf[kept..]) else { return };
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

/// Call `each` with every name in the directory open at `dir` (see
/// [`sys::getdents64`]).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn for_each_entry(dir: c_int, each: &mut dyn FnMut(&CStr)) -> Result<(), Errno> {
    // linux_dirent64: u64 inode, i64 offset, u16 record length, u8 type, name.
    let mut buf = [0u64; 1024]; // 8 KB, 8-byte aligned as the records are.
    loop {
        let bytes = sys::getdents64(dir, &mut buf)?;
        let n = bytes.len();
        if n == 0 {
            return Ok(());
        }
        let mut at = 0;
        while at + 19 < n {
            let reclen = usize::from(u16::from_ne_bytes([bytes[at + 16], bytes[at + 17]]));
            if reclen < 20 || at + reclen > n {
                break;
            }
            // The name is NUL-terminated within its record.
            if let Ok(name) = CStr::from_bytes_until_nul(&bytes[at + 19..at + reclen]) {
                each(name);
            }
            at += reclen;
        }
    }
}

/// Other systems: the C library's directory stream (no system call of its
/// own to wrap in `sys`), on a duplicate of `dir`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn for_each_entry(dir: c_int, each: &mut dyn FnMut(&CStr)) -> Result<(), Errno> {
    // fdopendir takes the descriptor over: give it a duplicate.
    let own = sys::dup_cloexec(dir)?.into_raw();
    // SAFETY: `own` is ours to give; fdopendir returns null (leaving it
    // ours) or a stream that owns it, closed below.
    let stream = unsafe { libc::fdopendir(own) };
    if stream.is_null() {
        let errno = sys::errno();
        sys::close(own);
        return Err(errno);
    }
    loop {
        // SAFETY: `stream` is open; the entry stays valid until the next call.
        let entry = unsafe { libc::readdir(stream) };
        if entry.is_null() {
            break;
        }
        // SAFETY: d_name is a NUL-terminated array inside the entry.
        each(unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) });
    }
    // SAFETY: `stream` came from fdopendir and is closed once.
    unsafe { libc::closedir(stream) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_look_like_the_kernels() {
        let hex = |n| {
            crate::testing::shown(|l| {
                l.push_hex(n, 2);
            })
        };
        assert_eq!(hex(0), "00");
        assert_eq!(hex(8), "08");
        assert_eq!(hex(0xfd), "fd");
        assert_eq!(hex(0x103), "103");
    }

    #[test]
    fn our_own_process_is_found_in_proc() {
        let me = std::process::id();
        let p = process(me).expect("/proc/self/stat");
        let (pgrp, ppid) = (sys::getpgrp(), sys::getppid());
        assert_eq!((p.pgrp, p.ppid), (pgrp as u32, ppid as u32));
        assert!(p.alive() && p.started_ns() <= crate::clock::boot_ns());
        assert_eq!(p.uid, crate::sys::geteuid());
    }

    #[test]
    fn words() {
        let line = b"1: FLOCK  ADVISORY\tWRITE 4242 ";
        let words: std::vec::Vec<&[u8]> = (0..6).map(|n| word(line, n)).collect();
        assert_eq!(words, [&b"1:"[..], b"FLOCK", b"ADVISORY", b"WRITE", b"4242", b""]);
        assert_eq!(word(b"", 0), b"");
        assert_eq!(word(b"  x", 0), b"x");
    }
}
