//! The holder record: who holds a lock, running what, since when.
//!
//! After taking a lock, withlock writes a small text record into the lock
//! file itself, so that an operator (or `withlock --status`, or a busy
//! withlock) can say who holds it. The kernel lock decides who holds it; the
//! record only explains, and a record that cannot be checked against the
//! live process is reported as such, never trusted.
//!
//! Format, version 1: lines of `key=value`, printable ASCII only, between a
//! first line `withlock-holder 1` and a last line `end` (a record without
//! `end` was cut short). Readers ignore keys they do not know, so fields can
//! be added without a new version.
//!
//! ```text
//! withlock-holder 1
//! pid=4242                 the job's process
//! locker=4242              the process that took the lock (the job, unless withlock stayed its parent)
//! pgid=4242                the job's process group
//! uid=34                   the job's real user id (names are looked up by readers)
//! host=backup1             the node name (uname)
//! since=2026-11-26T02:00:01Z   when the lock was taken, UTC
//! since_unix=1795658401
//! boot_ns=81234567890      CLOCK_BOOTTIME then: proves which process had the pid
//! version=0.1.0            withlock's
//! slots=3                  with --slots N only: N,
//! slot=2                   and the slot taken (the lock file is LOCK.2),
//! waiting=1                or, instead of slot=, in LOCK itself: a --slots N -w
//!                          waiter holding it as the gate while it waits for a slot
//! command=rsync -a /srv /backup
//! pad=                     spaces
//! end
//! ```
//!
//! `command` is the argv, one argument after another separated by a space.
//! An argument made only of printable ASCII other than space, `"` and `\` is
//! written as is; any other is put in double quotes, where `\\`, `\"`, `\n`,
//! `\t`, `\r` and `\xHH` stand for the bytes that are not printable ASCII.
//! If the command does not fit, it is cut and `command_cut=1` is added.
//! A last `pad=` line of spaces makes a new record a multiple of 64 bytes
//! (so the next one for the same job is as long), and a record that replaces
//! a longer one exactly as long: withlock does not truncate a file to
//! write a record, so a shorter record is padded over the longer one.
//!
//! withlock writes a record only into a lock file that, once it holds the
//! lock, is empty or already holds a record: a file with other contents
//! (someone locking a data file or a script with withlock, or a file another
//! tool wrote) is left as it is. A record that could only be written in part
//! (a full disk, a file size limit) is removed (the file truncated to
//! nothing), so that no half of a new record lies over half of an old one.

use crate::once::TakeOnce;
use crate::sys;
use crate::text::{Line, LineBuf};
use core::ffi::CStr;

pub const MAGIC: &[u8] = b"withlock-holder 1\n";
/// Room for a record; a longer command line is cut.
pub const CAPACITY: usize = 1024;

/// What a record says (see the module docs), as the writer knows it.
pub struct Facts<'a> {
    pub pid: u32,
    pub locker: u32,
    pub pgid: u32,
    pub uid: u32,
    pub host: &'a [u8],
    pub since_unix: u64,
    pub boot_ns: u64,
    /// `--slots N`: N and the slot taken; 0 and 0 without it.
    pub slots: u8,
    pub slot: u8,
    /// `--slots N -w`: this is the gate, LOCK, held while waiting for a
    /// slot (no slot is taken yet).
    pub waiting: bool,
}

impl Facts<'_> {
    /// The facts for the job, taking the lock now: `job` is its process id
    /// when withlock stays its parent, `None` when the job is this process.
    pub fn now(job: Option<u32>, host: &[u8]) -> Facts<'_> {
        let (locker, uid) = (u32::try_from(sys::getpid()).unwrap_or(0), sys::getuid());
        let job = job.unwrap_or(locker);
        // An error is recorded as 0.
        let pgid = sys::getpgid(job as libc::pid_t).unwrap_or(0);
        Facts {
            pid: job,
            locker,
            pgid: u32::try_from(pgid).unwrap_or(0),
            uid,
            host,
            since_unix: crate::clock::unix_now(),
            boot_ns: crate::clock::boot_ns(),
            slots: 0,
            slot: 0,
            waiting: false,
        }
    }
}

/// The node name in `uts` (see [`sys::uname`]).
pub fn host_name(uts: &libc::utsname) -> &[u8] {
    // SAFETY: sys::uname's names are NUL-terminated within their arrays.
    unsafe { CStr::from_ptr(uts.nodename.as_ptr()) }.to_bytes()
}

/// Write a record for `facts` into the lock file at `path`, which we hold
/// locked through `locked` (open read-write, or else read-only), unless it
/// holds something else (see the module docs). What it holds is read now
/// that we hold the lock: while we waited, another flock(1) user may have
/// filled it. A read-only lock descriptor (an executable lock file, whose
/// job must not inherit a writable one) gets the record through a second,
/// close-on-exec descriptor. Errors are ignored: the record explains, it
/// never decides; but a record cut short (a full disk, a file size limit)
/// is removed rather than left half over an old one.
pub fn store<'a>(path: &CStr, locked: Target<'_>, facts: &Facts, argv: impl Iterator<Item = &'a [u8]>) {
    if let Some(buf) = RECORD.take() {
        store_in(buf.line(), path, locked, facts, argv);
    }
}

/// [`store`], composing the record in `out`: for a second record in one
/// run (a `--slots -w` waiter's, in the gate it holds, before its slot's).
pub fn store_in<'a>(
    out: &mut Line,
    path: &CStr,
    locked: Target<'_>,
    facts: &Facts,
    argv: impl Iterator<Item = &'a [u8]>,
) {
    let second;
    let fd = if locked.writable {
        locked.fd.raw()
    } else {
        let flags = libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
        // Not ours to write (root's file, a read-only file system): no record.
        let Ok(file) = sys::open(path, flags, 0) else { return };
        // The name must still be the file we locked.
        if !sys::fstat(file.raw()).is_ok_and(|st| sys::same_file(&st, locked.stat)) {
            return;
        }
        second = file;
        second.raw()
    };
    // Empty when we took the lock (a new file): nothing to read. Else it
    // must hold a record, and the new one is padded over all of it.
    let mut held = 0;
    if locked.stat.st_size != 0 {
        let mut old = [0u8; MAGIC.len()];
        if sys::pread(locked.fd.raw(), &mut old, 0) != Ok(MAGIC.len()) || old != *MAGIC {
            return; // Not ours to overwrite (or shorter than any record).
        }
        held = usize::try_from(locked.stat.st_size).unwrap_or(CAPACITY);
    }
    compose(out, facts, argv, held);
    let bytes = out.as_bytes();
    if sys::pwrite(fd, bytes, 0).is_ok_and(|n| n < bytes.len()) {
        // Part of ours over part of the old one would be a record that lies.
        // We hold the lock, and the file held only a record.
        let _ = sys::ftruncate(fd, 0);
    }
}

/// The locked file a record goes into: its descriptor (open read-write if
/// `writable`) and its status when it was checked.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub fd: &'a sys::Fd,
    pub stat: &'a libc::stat,
    pub writable: bool,
}

/// The record is composed in static memory, off the start-up stack (see
/// `locate::Buffers` for why).
static RECORD: TakeOnce<LineBuf<CAPACITY>> = TakeOnce::new(LineBuf::new());

/// Compose a record into `out`, at least `at_least` bytes long (as far as
/// [`CAPACITY`] allows). `argv` yields the command's arguments.
pub fn compose<'a>(out: &mut Line, facts: &Facts, argv: impl Iterator<Item = &'a [u8]>, at_least: usize) {
    out.clear();
    out.push(MAGIC);
    let field = |out: &mut Line, key: &[u8], value: u64| {
        out.push(key).push(b"=").push_u64(value).push(b"\n");
    };
    field(out, b"pid", u64::from(facts.pid));
    field(out, b"locker", u64::from(facts.locker));
    field(out, b"pgid", u64::from(facts.pgid));
    field(out, b"uid", u64::from(facts.uid));
    out.push(b"host=");
    push_host(out, facts.host);
    out.push(b"\nsince=");
    crate::clock::push_rfc3339(out, facts.since_unix);
    out.push(b"\n");
    field(out, b"since_unix", facts.since_unix);
    field(out, b"boot_ns", facts.boot_ns);
    out.push(concat!("version=", env!("CARGO_PKG_VERSION"), "\n").as_bytes());
    if facts.slots > 0 {
        out.push(b"slots=").push_u64(u64::from(facts.slots));
        if facts.waiting {
            out.push(b"\nwaiting=1\n");
        } else {
            out.push(b"\nslot=").push_u64(u64::from(facts.slot)).push(b"\n");
        }
    }

    // The command goes last but one, so that if it is too long only it is
    // cut, and the record still ends properly.
    const TAIL: &[u8] = b"\ncommand_cut=1\n";
    out.push(b"command=");
    let mut cut = false;
    for (i, arg) in argv.enumerate() {
        let mark = out.as_bytes().len();
        if i > 0 {
            out.push(b" ");
        }
        push_arg(out, arg);
        if out.as_bytes().len() + TAIL.len() + PAD + 16 > CAPACITY || out.truncated() {
            out.truncate_to(mark);
            cut = true;
            break;
        }
    }
    out.push(if cut { TAIL } else { b"\n" });
    // Pad to a multiple of PAD bytes (so the next record for the same job is
    // as long) and over all of the record being replaced.
    let used = out.as_bytes().len() + b"pad=\nend\n".len();
    let length = used.next_multiple_of(PAD).max(at_least.min(CAPACITY - 4));
    out.push(b"pad=");
    // A slice at a time: a byte at a time was a tenth of a run's instructions.
    let mut spaces = length.saturating_sub(used);
    while spaces > 0 {
        let n = spaces.min(PAD);
        out.push(&[b' '; PAD][..n]);
        spaces -= n;
    }
    out.push(b"\nend\n");
}

/// Records are padded to a multiple of this many bytes.
const PAD: usize = 64;

/// Host names are chosen by admins, but keep the record one safe line each.
fn push_host(out: &mut Line, bytes: &[u8]) {
    if bytes.iter().all(|b| (0x21..0x7f).contains(b)) {
        out.push(bytes); // As they are, almost always: in one piece.
        return;
    }
    for &b in bytes {
        out.push(&[if (0x21..0x7f).contains(&b) { b } else { b'?' }]);
    }
}

/// One argument, encoded as the module docs say.
pub fn push_arg(out: &mut Line, arg: &[u8]) {
    let plain = |b: &u8| (0x21..0x7f).contains(b) && *b != b'"' && *b != b'\\';
    if !arg.is_empty() && arg.iter().all(plain) {
        out.push(arg);
        return;
    }
    out.push(b"\"");
    for &b in arg {
        match b {
            b'\\' => out.push(b"\\\\"),
            b'"' => out.push(b"\\\""),
            b'\n' => out.push(b"\\n"),
            b'\t' => out.push(b"\\t"),
            b'\r' => out.push(b"\\r"),
            0x20..0x7f => out.push(&[b]),
            _ => out.push_hex_escape(b"\\x", b),
        };
    }
    out.push(b"\"");
}

/// A record as read back, every field optional: readers must cope with
/// records cut short, from other versions, or damaged.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Record<'a> {
    pub pid: Option<u32>,
    pub locker: Option<u32>,
    pub pgid: Option<u32>,
    pub uid: Option<u32>,
    pub host: Option<&'a [u8]>,
    pub since: Option<&'a [u8]>,
    pub since_unix: Option<u64>,
    pub boot_ns: Option<u64>,
    pub version: Option<&'a [u8]>,
    /// `--slots N`: N.
    pub slots: Option<u32>,
    /// `waiting=1`: a `--slots N -w` waiter holding the gate, LOCK.
    pub waiting: bool,
    /// Encoded as the module docs say; see [`Args`].
    pub command: Option<&'a [u8]>,
    pub command_cut: bool,
    /// The `end` line was there.
    pub complete: bool,
}

/// What a lock file holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Contents<'a> {
    /// Nothing: never written (or written by a tool that writes nothing).
    Empty,
    /// Something that is not a withlock record.
    Foreign,
    Record(Record<'a>),
}

// Out of line: inlined into `holder::inspect`, these cost a kilobyte more.
#[inline(never)]
pub fn parse(bytes: &[u8]) -> Contents<'_> {
    if bytes.is_empty() {
        return Contents::Empty;
    }
    let Some(body) = bytes.strip_prefix(MAGIC) else {
        return Contents::Foreign;
    };
    let mut record = Record::default();
    for line in body.split(|&b| b == b'\n') {
        if line == b"end" {
            record.complete = true;
            break;
        }
        let Some(eq) = line.iter().position(|&b| b == b'=') else { continue };
        let (key, value) = (&line[..eq], &line[eq + 1..]);
        // Looked up in a table: a match on byte strings compiles to a
        // comparison chain per key, a kilobyte of binary.
        const KEYS: [&[u8]; 13] = [
            b"pid",
            b"locker",
            b"pgid",
            b"uid",
            b"slots",
            b"since_unix",
            b"boot_ns",
            b"host",
            b"since",
            b"version",
            b"command",
            b"command_cut",
            b"waiting",
        ];
        let number = crate::text::parse_u64(value);
        let small = number.and_then(|n| u32::try_from(n).ok());
        let text = Some(value);
        match KEYS.iter().position(|&k| k == key) {
            Some(0) => record.pid = small,
            Some(1) => record.locker = small,
            Some(2) => record.pgid = small,
            Some(3) => record.uid = small,
            Some(4) => record.slots = small,
            Some(5) => record.since_unix = number,
            Some(6) => record.boot_ns = number,
            Some(7) => record.host = text,
            Some(8) => record.since = text,
            Some(9) => record.version = text,
            Some(10) => record.command = text,
            Some(11) => record.command_cut = value == b"1",
            Some(12) => record.waiting = value == b"1",
            _ => {}
        }
    }
    Contents::Record(record)
}

/// The arguments of an encoded command, decoded one at a time.
pub struct Args<'a> {
    rest: &'a [u8],
}

impl<'a> Args<'a> {
    pub fn new(encoded: &'a [u8]) -> Args<'a> {
        Args { rest: encoded }
    }

    /// Decode the next argument into `out`; its length, or `None` at the end.
    /// Malformed input (a stray quote, a bad escape) is taken literally
    /// rather than rejected: a record is only ever shown, never run.
    pub fn next_into(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.rest.is_empty() {
            return None;
        }
        let mut len = 0;
        let mut put = |b: u8| {
            if len < out.len() {
                out[len] = b;
                len += 1;
            }
        };
        let mut bytes = self.rest;
        if bytes[0] == b'"' {
            bytes = &bytes[1..];
            loop {
                match bytes {
                    [] => break,
                    [b'"', tail @ ..] => {
                        bytes = tail;
                        break;
                    }
                    [b'\\', b'x', h, l, tail @ ..] if hex(*h).is_some() && hex(*l).is_some() => {
                        put(hex(*h).unwrap_or(0) << 4 | hex(*l).unwrap_or(0));
                        bytes = tail;
                    }
                    [b'\\', e @ (b'\\' | b'"' | b'n' | b't' | b'r'), tail @ ..] => {
                        put(match e {
                            b'n' => b'\n',
                            b't' => b'\t',
                            b'r' => b'\r',
                            other => *other,
                        });
                        bytes = tail;
                    }
                    [b, tail @ ..] => {
                        put(*b);
                        bytes = tail;
                    }
                }
            }
        } else {
            let end = bytes.iter().position(|&b| b == b' ').unwrap_or(bytes.len());
            bytes[..end].iter().for_each(|&b| put(b));
            bytes = &bytes[end..];
        }
        // One space separates arguments.
        self.rest = bytes.strip_prefix(b" ").unwrap_or(bytes);
        Some(len)
    }
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;
    use std::vec::Vec;

    fn facts() -> Facts<'static> {
        Facts {
            pid: 4242,
            locker: 4242,
            pgid: 4240,
            uid: 34,
            host: b"backup1",
            since_unix: 1_795_658_401,
            boot_ns: 81_234_567_890,
            slots: 0,
            slot: 0,
            waiting: false,
        }
    }

    fn composed(argv: &[&[u8]]) -> Vec<u8> {
        let mut buf = LineBuf::<CAPACITY>::new();
        let out = buf.line();
        compose(out, &facts(), argv.iter().copied(), 0);
        out.as_bytes().to_vec()
    }

    fn decoded(encoded: &[u8]) -> Vec<Vec<u8>> {
        let mut args = Args::new(encoded);
        let mut buf = [0u8; CAPACITY];
        let mut all = Vec::new();
        while let Some(len) = args.next_into(&mut buf) {
            all.push(buf[..len].to_vec());
        }
        all
    }

    #[test]
    fn a_record_reads_like_the_docs() {
        let text = composed(&[b"rsync", b"-a", b"/srv", b"/backup"]);
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            "withlock-holder 1\npid=4242\nlocker=4242\npgid=4240\nuid=34\nhost=backup1\n\
             since=2026-11-26T02:00:01Z\nsince_unix=1795658401\nboot_ns=81234567890\n\
             version=0.1.0\ncommand=rsync -a /srv /backup\npad= \nend\n"
        );
        assert_eq!(text.len() % PAD, 0);
        let Contents::Record(r) = parse(&text) else { panic!("not a record") };
        assert_eq!(
            r,
            Record {
                pid: Some(4242),
                locker: Some(4242),
                pgid: Some(4240),
                uid: Some(34),
                host: Some(b"backup1"),
                since: Some(b"2026-11-26T02:00:01Z"),
                since_unix: Some(1_795_658_401),
                boot_ns: Some(81_234_567_890),
                version: Some(b"0.1.0"),
                slots: None,
                waiting: false,
                command: Some(b"rsync -a /srv /backup"),
                command_cut: false,
                complete: true,
            }
        );
    }

    #[test]
    fn a_slot_record_names_its_slot() {
        let mut buf = LineBuf::<CAPACITY>::new();
        let out = buf.line();
        compose(out, &Facts { slots: 3, slot: 2, ..facts() }, [&b"job"[..]].into_iter(), 0);
        let text = std::str::from_utf8(out.as_bytes()).unwrap();
        assert!(text.contains("\nversion=0.1.0\nslots=3\nslot=2\ncommand=job\n"), "{text}");
        let Contents::Record(r) = parse(out.as_bytes()) else { panic!("not a record") };
        assert!(r.complete && r.command == Some(b"job") && r.slots == Some(3));
        assert!(!r.waiting);
        // A waiter holding the gate: N, and no slot yet.
        compose(out, &Facts { slots: 3, waiting: true, ..facts() }, [&b"job"[..]].into_iter(), 0);
        let text = std::str::from_utf8(out.as_bytes()).unwrap();
        assert!(text.contains("\nslots=3\nwaiting=1\ncommand=job\n"), "{text}");
        let Contents::Record(r) = parse(out.as_bytes()) else { panic!("not a record") };
        assert!(r.waiting && r.slots == Some(3));
        // Without --slots, neither key is written.
        assert!(!String::from_utf8(composed(&[b"job"])).unwrap().contains("slot"));
    }

    #[test]
    fn a_shorter_record_is_padded_over_a_longer_one() {
        let mut buf = LineBuf::<CAPACITY>::new();
        let out = buf.line();
        compose(out, &facts(), [&b"x"[..]].into_iter(), 500);
        assert_eq!(out.as_bytes().len(), 500);
        assert!(out.as_bytes().ends_with(b" \nend\n"));
        compose(out, &facts(), [&b"x"[..]].into_iter(), 5000);
        assert_eq!(out.as_bytes().len(), CAPACITY - 4);
        let Contents::Record(r) = parse(out.as_bytes()) else { panic!() };
        assert!(r.complete);
    }

    #[test]
    fn empty_foreign_and_partial_files() {
        assert_eq!(parse(b""), Contents::Empty);
        assert_eq!(parse(b"4242\n"), Contents::Foreign);
        assert_eq!(parse(b"#!/bin/sh\necho hi\n"), Contents::Foreign);
        assert_eq!(parse(b"withlock-holder 2\npid=1\n"), Contents::Foreign);
        let Contents::Record(r) = parse(b"withlock-holder 1\npid=77\nuid=1") else { panic!() };
        assert_eq!((r.pid, r.uid, r.complete), (Some(77), Some(1), false));
        let Contents::Record(r) = parse(b"withlock-holder 1\npid=99999999999\nboot_ns=-5\nx\nend\n") else {
            panic!()
        };
        assert_eq!((r.pid, r.boot_ns, r.complete), (None, None, true));
    }

    #[test]
    fn awkward_arguments_round_trip() {
        let argv: Vec<&[u8]> =
            vec![b"", b"a b", b"\"q\"", b"back\\slash", b"\n\t\r\x1b\x7f", b"caf\xc3\xa9", b"\xff"];
        let text = composed(&argv);
        let line = text.split(|&b| b == b'\n').find(|l| l.starts_with(b"command=")).unwrap();
        assert!(line.iter().all(|&b| (0x20..0x7f).contains(&b)), "not one printable line: {line:?}");
        assert_eq!(decoded(&line[8..]), argv);
    }

    #[test]
    fn a_long_command_is_cut_and_the_record_still_ends() {
        let long = [b'x'; 300];
        let argv: Vec<&[u8]> = (0..10).map(|_| &long[..]).collect();
        let text = composed(&argv);
        assert!(text.len() <= CAPACITY);
        let Contents::Record(r) = parse(&text) else { panic!() };
        assert!(r.complete && r.command_cut);
        let args = decoded(r.command.unwrap());
        assert!(!args.is_empty() && args.len() < 10 && args.iter().all(|a| a == &long));
    }

    #[test]
    fn randomized_argv_round_trips() {
        let seed = 0x00c0_ffee_u64;
        let mut rng = Rng(seed);
        for _ in 0..5_000 {
            let argc = 1 + rng.below(6) as usize;
            let argv: Vec<Vec<u8>> = (0..argc)
                .map(|_| {
                    let len = rng.below(12) as usize;
                    (0..len)
                        .map(|_| {
                            if rng.below(3) == 0 {
                                b"\\\" x\n"[rng.below(5) as usize]
                            } else {
                                rng.below(256) as u8
                            }
                        })
                        .collect()
                })
                .filter(|a: &Vec<u8>| !a.contains(&0))
                .collect();
            let refs: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            let text = composed(&refs);
            let Contents::Record(r) = parse(&text) else { panic!("seed {seed:#x}") };
            assert!(r.complete && !r.command_cut, "seed {seed:#x}");
            assert_eq!(decoded(r.command.unwrap()), argv, "seed {seed:#x}");
        }
    }

    /// Garbage never panics the reader or the decoder.
    #[test]
    fn randomized_garbage_is_survived() {
        let seed = 0x0bad_f00d_u64;
        let mut rng = Rng(seed);
        let alphabet = b"withlock-holder 1\n=pid\\\"x0123end ";
        for _ in 0..20_000 {
            let mut text: Vec<u8> = MAGIC.to_vec();
            text.extend(rng.text(alphabet, 80));
            if let Contents::Record(r) = parse(&text)
                && let Some(command) = r.command
            {
                let _ = decoded(command);
            }
        }
    }
}
