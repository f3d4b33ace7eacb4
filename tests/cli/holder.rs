//! Who holds a lock: the holder record withlock writes into the lock file, the busy
//! messages that name the holder, `--status` (in words and JSON), `--replace`, and
//! `--unlink`. Records are checked against live processes, so most tests start real
//! holders (withlock, util-linux flock(1), plain `sleep`s) and some craft records by hand to
//! reach every case of the check: stale, exited, unverifiable, and pids that were reused.

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::exit_codes::{assert_busy, assert_free};
use crate::json::Json;
use crate::support::{
    Out, Running, TEST_PATH, TempDir, argv_for, as_user, bin, bin_argv, chown, exists, filter_syscall, hold,
    hold_until_killed, mkfifo, read_string, require_catchable, require_root, require_root_and_nobody, run,
    run_within, send_signal, set_mode, start, start_holding, timing, unique_name, wait_until, withlock,
    without_proc,
};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const MAGIC: &str = "withlock-holder 1\n";
/// The record's documented keys, in the documented order.
const KEYS: [&str; 11] =
    ["pid", "locker", "pgid", "uid", "host", "since", "since_unix", "boot_ns", "version", "command", "pad"];
/// A uid with no /etc/passwd entry.
const UNLISTED_UID: u32 = 54321;

// ---------------------------------------------------------------------------------------------
// The record format, as its module docs describe it, written independently here.

/// One argument as the record's `command` writes it.
fn encode_arg(arg: &[u8]) -> String {
    let plain = |b: &u8| (0x21..0x7f).contains(b) && *b != b'"' && *b != b'\\';
    if !arg.is_empty() && arg.iter().all(plain) {
        return String::from_utf8(arg.to_vec()).unwrap();
    }
    let mut out = String::from("\"");
    for &b in arg {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x20..0x7f => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

fn encode_argv(argv: &[&[u8]]) -> String {
    argv.iter().map(|a| encode_arg(a)).collect::<Vec<_>>().join(" ")
}

/// A record's command line as withlock's messages show it: the record's own escaped text
/// (printable ASCII) as is, any other byte as `\xNN`.
fn shown(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            0x20..0x7f => out.push(char::from(b)),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// The lines of a record file as (key, value), checked against the format: the magic first
/// line, printable ASCII only, `end` last.
#[track_caller]
fn parse_record_file(bytes: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(bytes);
    assert!(bytes.starts_with(MAGIC.as_bytes()), "no record header:\n{text}");
    assert!(bytes.ends_with(b"\nend\n"), "the record does not end with `end`:\n{text}");
    assert!(
        bytes.iter().all(|&b| b == b'\n' || (0x20..0x7f).contains(&b)),
        "the record holds bytes that are not printable ASCII:\n{text:?}"
    );
    let body = &text[MAGIC.len()..text.len() - "end\n".len()];
    body.lines()
        .map(|line| {
            let (k, v) = line.split_once('=').unwrap_or_else(|| panic!("not key=value: {line:?}\n{text}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A record written into a new or empty file is padded to a multiple of 64 bytes, so that
/// the next record for the same job has the same length.
#[track_caller]
fn assert_padded(bytes: &[u8]) {
    assert_eq!(
        bytes.len() % 64,
        0,
        "the record is {} bytes, not a multiple of 64:\n{}",
        bytes.len(),
        String::from_utf8_lossy(bytes)
    );
    let fields = parse_record_file(bytes);
    let pad = field(&fields, "pad");
    assert!(pad.bytes().all(|b| b == b' ') && pad.len() < 64, "pad is {pad:?}");
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == key).map_or_else(|| panic!("no {key} in {fields:?}"), |(_, v)| v)
}

/// A record written by hand: the header, the given lines, `end`.
fn craft_record(lines: &[(&str, String)]) -> Vec<u8> {
    let mut text = String::from(MAGIC);
    for (k, v) in lines {
        text.push_str(&format!("{k}={v}\n"));
    }
    text.push_str("end\n");
    text.into_bytes()
}

/// Seconds since the epoch of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SSZ`.
#[track_caller]
fn rfc3339_to_unix(text: &str) -> u64 {
    let b = text.as_bytes();
    let shape_ok = b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        });
    assert!(shape_ok, "not RFC 3339 UTC: {text:?}");
    let n = |r: std::ops::Range<usize>| text[r].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    assert!((1..=12).contains(&m) && (1..=31).contains(&d), "not a date: {text:?}");
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)).unwrap()
}

#[test]
fn the_tests_date_reader_agrees_with_known_dates() {
    assert_eq!(rfc3339_to_unix("1970-01-01T00:00:00Z"), 0);
    assert_eq!(rfc3339_to_unix("2026-11-26T02:00:01Z"), 1_795_658_401);
    assert_eq!(rfc3339_to_unix("2000-02-29T23:59:59Z"), 951_868_799);
}

// ---------------------------------------------------------------------------------------------
// Processes and the system.

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// CLOCK_BOOTTIME in nanoseconds: the clock of records' `boot_ns` and of /proc/PID/stat.
fn boot_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime: {}", io::Error::last_os_error());
    u64::try_from(ts.tv_sec).unwrap() * 1_000_000_000 + u64::try_from(ts.tv_nsec).unwrap()
}

fn my_uid() -> u32 {
    // SAFETY: getuid cannot fail and has no arguments.
    unsafe { libc::getuid() }
}

fn my_pgrp() -> i32 {
    // SAFETY: getpgrp cannot fail and has no arguments.
    unsafe { libc::getpgrp() }
}

/// The name /etc/passwd gives `uid`.
pub fn user_name(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 2 && !fields[0].is_empty() && fields[2].parse() == Ok(uid))
            .then(|| fields[0].to_string())
    })
}

/// The user as withlock's messages name it.
fn user_shown(uid: u32) -> String {
    user_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

fn host_name() -> String {
    let out = run(Command::new("uname").arg("-n").stdin(Stdio::null()));
    out.assert_code(0);
    out.stdout_str().trim_end_matches('\n').to_string()
}

/// Whether `pid` is a live process (a zombie is dead).
fn alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// Reads a pid a job wrote to `path`, waiting for the file to appear.
#[track_caller]
fn read_pid(path: &Path) -> i32 {
    let mut pid = None;
    let found = wait_until(Duration::from_secs(10), || {
        pid = fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok());
        pid.is_some()
    });
    assert!(found, "no pid was written to {}", path.display());
    pid.unwrap()
}

/// SIGKILLs a process on drop (a background process a test started indirectly), so that a
/// failing test leaves nothing behind holding a lock.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            // SAFETY: kill(2) takes plain integers.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

/// A holder started in a process group of its own, killed with its whole group when
/// dropped: a failing test leaves nothing behind (flock(1)'s child, the job of an
/// `--unlink` withlock, a shell's background job), even though the holder is no single
/// process.
struct Group {
    run: Option<Running>,
    pgid: i32,
}

impl Group {
    /// Starts `cmd` in a new process group, like `start_holder`.
    #[track_caller]
    fn start(cmd: &mut Command, ready: &Path) -> Group {
        cmd.process_group(0);
        let run = start_holding(cmd, ready);
        let pgid = run.pid();
        Group { run: Some(run), pgid }
    }

    fn pid(&self) -> i32 {
        self.pgid
    }

    #[track_caller]
    fn wait(mut self, timeout: Duration) -> Out {
        self.run.take().expect("waited for twice").wait(timeout)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill(2) takes plain integers; the group is the one this holder leads.
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
    }
}

/// flock(1) holding `lock` (its job idles in `sleep`), in a group of its own.
#[track_caller]
fn flock_holder(t: &TempDir, lock: &Path) -> Group {
    let ready = t.join(unique_name("flock.ready"));
    let mut cmd = Command::new("flock");
    cmd.stdin(Stdio::null()).arg(lock).args(["sh", "-c", r#": > "$1"; exec sleep 300"#, "sh"]).arg(&ready);
    Group::start(&mut cmd, &ready)
}

/// A `sleep 300` that has nothing to do with any lock.
fn bystander() -> Running {
    start(Command::new("sleep").arg("300").stdin(Stdio::null()))
}

/// The holder's job for `start_holder` runs: announce in $1, then idle in short sleeps.
const IDLE: &str = r#": > "$1"; while :; do sleep 0.05; done"#;

fn os(bytes: &[u8]) -> OsString {
    OsString::from_vec(bytes.to_vec())
}

// ---------------------------------------------------------------------------------------------
// Running `--status`.

/// `withlock --status --json ARGS...`: the output, and each line parsed as one object.
#[track_caller]
fn status_json<S: AsRef<OsStr>>(args: &[S]) -> (Out, Vec<Json>) {
    let out = run(withlock().args(["--status", "--json"]).args(args));
    let text = String::from_utf8(out.stdout.clone())
        .unwrap_or_else(|e| panic!("--json output is not UTF-8: {e}\n{}", out.describe()));
    assert!(text.is_empty() || text.ends_with('\n'), "unterminated output\n{}", out.describe());
    let objects: Vec<Json> = text
        .lines()
        .map(|line| {
            let value = Json::parse(line)
                .unwrap_or_else(|e| panic!("invalid JSON ({e}): {line:?}\n{}", out.describe()));
            assert!(matches!(value, Json::Obj(_)), "not an object: {line:?}");
            value
        })
        .collect();
    (out, objects)
}

/// `--status --json LOCK` for one lock: its exit code and its object.
#[track_caller]
fn status_of(lock: &Path) -> (Option<i32>, Json) {
    let (out, mut objects) = status_json(&[lock]);
    assert_eq!(objects.len(), 1, "expected one object\n{}", out.describe());
    let object = objects.remove(0);
    assert_eq!(object.str_at("lock").as_bytes(), lock.as_os_str().as_bytes(), "{object:?}");
    assert_documented_fields(&object);
    (out.code(), object)
}

/// `--status LOCK` in words: exit code and the one line.
#[track_caller]
fn status_text(lock: &Path) -> (Option<i32>, String) {
    let out = run(withlock().arg("--status").arg(lock));
    assert!(out.stderr.is_empty(), "--status wrote to stderr\n{}", out.describe());
    let text = out.stdout_str();
    assert_eq!(text.lines().count(), 1, "expected one line\n{}", out.describe());
    let prefix = format!("{}: ", lock.display());
    assert!(text.starts_with(&prefix), "the line does not start with the lock's path\n{}", out.describe());
    (out.code(), text[prefix.len()..].trim_end_matches('\n').to_string())
}

const RECORD_STATES: [&str; 7] = ["current", "exited", "stale", "last", "unverified", "none", "foreign"];
/// The fields an object has exactly when the lock file holds a record.
const RECORD_FIELDS: [&str; 13] = [
    "pid",
    "pgid",
    "uid",
    "user",
    "host",
    "since",
    "since_unix",
    "age_s",
    "version",
    "command",
    "argv",
    "command_cut",
    "complete",
];

/// Every object has the documented fields, with values of the documented kinds.
#[track_caller]
fn assert_documented_fields(o: &Json) {
    let state = o.str_at("state");
    assert!(["free", "held", "unknown", "error"].contains(&state), "state {state:?} in {o:?}");
    if state == "error" {
        assert!(matches!(o.at("error"), Json::Str(_)), "{o:?}");
        return;
    }
    // What the kernel shows.
    for key in ["locker_pid", "locker_uid", "file_uid"] {
        assert!(matches!(o.at(key), Json::Null | Json::Num(_)), "{key} in {o:?}");
    }
    assert!(matches!(o.at("locker_user"), Json::Null | Json::Str(_)), "{o:?}");
    assert!(matches!(o.at("locker_holds"), Json::Null | Json::Bool(_)), "{o:?}");
    assert!(
        matches!(o.at("blind_spot"), Json::Null)
            || ["no-proc", "pid-namespace", "network-fs", "device"].contains(&o.str_at("blind_spot")),
        "{o:?}"
    );
    assert!(
        matches!(o.at("file_mode"), Json::Null)
            || (o.str_at("file_mode").len() == 4
                && o.str_at("file_mode").bytes().all(|b| (b'0'..=b'7').contains(&b))),
        "{o:?}"
    );
    if state != "held" {
        assert!(o.is_null_at("locker_uid") && o.is_null_at("locker_holds"), "{o:?}");
    }
    let record = o.str_at("record");
    assert!(RECORD_STATES.contains(&record), "record {record:?} in {o:?}");
    if state == "free" {
        assert!(o.is_null_at("locker_pid"), "a free lock names a locker: {o:?}");
    }
    let has_record = !matches!(record, "none" | "foreign");
    for key in RECORD_FIELDS {
        assert_eq!(o.get(key).is_some(), has_record, "field {key:?} with record {record:?}: {o:?}");
    }
    if has_record {
        for key in ["pid", "pgid", "uid", "since_unix", "age_s"] {
            assert!(matches!(o.at(key), Json::Null | Json::Num(_)), "{key} in {o:?}");
        }
        for key in ["user", "host", "since", "version", "command"] {
            assert!(matches!(o.at(key), Json::Null | Json::Str(_)), "{key} in {o:?}");
        }
        assert!(matches!(o.at("argv"), Json::Arr(a) if a.iter().all(|x| matches!(x, Json::Str(_)))), "{o:?}");
        assert!(matches!(o.at("command_cut"), Json::Bool(_)), "{o:?}");
        assert!(matches!(o.at("complete"), Json::Bool(_)), "{o:?}");
    }
}

#[track_caller]
fn argv_of(o: &Json) -> Vec<String> {
    match o.at("argv") {
        Json::Arr(items) => items
            .iter()
            .map(|i| match i {
                Json::Str(s) => s.clone(),
                other => panic!("argv item {other:?}"),
            })
            .collect(),
        other => panic!("argv is {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Records written and read back.

/// The job itself finds in the lock file a record of itself: its pid (withlock execs it, so
/// `$$` is withlock's pid), group, user, host, start time, version and command.
#[test]
fn the_job_reads_its_own_record_in_the_lock_file() {
    let t = TempDir::new();
    let lock = t.lock();
    let script = r#"cat "$1"; echo "me=$$""#;
    let (before_unix, before_boot) = (unix_now(), boot_ns());
    let job = start(withlock().arg(&lock).args(["sh", "-c", script, "sh"]).arg(&lock));
    let pid = job.pid();
    let out = job.wait(Duration::from_secs(10));
    let (after_unix, after_boot) = (unix_now(), boot_ns());
    out.assert_code(0);
    let stdout = out.stdout;
    let split = stdout.windows(5).rposition(|w| w == b"end\nm").expect("no record before me=") + 4;
    let (record, me) = stdout.split_at(split);
    assert_eq!(String::from_utf8_lossy(me), format!("me={pid}\n"), "the job is not withlock's pid");

    let fields = parse_record_file(record);
    assert_padded(record);
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, KEYS, "the record's lines are not the documented ones, in order");
    assert_eq!(field(&fields, "pid"), pid.to_string());
    assert_eq!(field(&fields, "locker"), pid.to_string(), "without --unlink the job took the lock itself");
    assert_eq!(field(&fields, "pgid"), my_pgrp().to_string());
    assert_eq!(field(&fields, "uid"), my_uid().to_string());
    assert_eq!(field(&fields, "host"), host_name());
    assert_eq!(field(&fields, "version"), VERSION);
    let argv: [&[u8]; 5] = [b"sh", b"-c", script.as_bytes(), b"sh", lock.as_os_str().as_bytes()];
    assert_eq!(field(&fields, "command"), encode_argv(&argv));
    let since_unix: u64 = field(&fields, "since_unix").parse().unwrap();
    assert_eq!(rfc3339_to_unix(field(&fields, "since")), since_unix, "since and since_unix disagree");
    assert!(
        (before_unix.saturating_sub(1)..=after_unix + 1).contains(&since_unix),
        "since_unix {since_unix} is not the time of the run ({before_unix}..={after_unix})"
    );
    let boot: u64 = field(&fields, "boot_ns").parse().unwrap();
    assert!((before_boot..=after_boot).contains(&boot), "boot_ns {boot} not within the run");
    assert!(field(&fields, "pad").bytes().all(|b| b == b' '), "pad holds more than spaces");
    // The record stays when the job is done: it tells who held the lock last.
    assert_eq!(fs::read(&lock).unwrap(), record, "the record changed after the job");
}

/// The awkward bytes of an argv survive the record's escaping: the record stays one line per
/// field, `command` is the documented encoding, and `--json`'s `argv` decodes to the very
/// arguments (bytes that are not UTF-8 become U+FFFD).
#[test]
fn awkward_command_lines_round_trip_through_the_record_and_json() {
    let t = TempDir::new();
    let lock = t.lock();
    let args: Vec<&[u8]> = vec![
        b"plain",
        b"",
        b"two words",
        b"\"quoted\"",
        b"'single'",
        b"back\\slash\\",
        b"\\\"",
        b"line\nbreak",
        b"\t\r\x1b[31m\x7f\x01\x1f",
        b"caf\xc3\xa9 \xe2\x82\xac",
        b"\xff\xfe bad utf-8 \xc3",
        b"\\x41",
        b"{\"json\": [1, 2]}",
        b"end",
        b"=",
    ];
    let mut cmd = withlock();
    cmd.arg(&lock).args(["sh", "-c", "exit 0", "sh"]);
    for a in &args {
        cmd.arg(os(a));
    }
    run(&mut cmd).assert_code(0);

    let mut argv: Vec<&[u8]> = vec![b"sh", b"-c", b"exit 0", b"sh"];
    argv.extend(&args);
    let bytes = fs::read(&lock).unwrap();
    let fields = parse_record_file(&bytes);
    assert_padded(&bytes);
    assert_eq!(field(&fields, "command"), encode_argv(&argv));
    let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, KEYS, "an argument broke the record's lines");

    let (code, o) = status_of(&lock);
    assert_eq!(code, Some(0));
    assert_eq!(o.str_at("record"), "last");
    assert_eq!(o.str_at("command"), encode_argv(&argv));
    let expected: Vec<String> = argv.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    assert_eq!(argv_of(&o), expected);
    assert_eq!(o.at("command_cut"), &Json::Bool(false));
    assert_eq!(o.at("complete"), &Json::Bool(true));
    // And the line in words stays one line, however the command looks.
    let (code, text) = status_text(&lock);
    assert_eq!(code, Some(0));
    assert!(text.starts_with("free; the record says it was last taken by pid "), "{text}");
}

/// A command line too long for the record is cut between arguments and marked; the record
/// still ends properly and stays within its room.
#[test]
fn a_long_command_line_is_cut_and_the_record_still_ends() {
    let t = TempDir::new();
    let lock = t.lock();
    let long = "x".repeat(300);
    run(withlock().arg(&lock).args(["sh", "-c", "exit 0", "sh"]).args(vec![long.as_str(); 10]))
        .assert_code(0);
    let bytes = fs::read(&lock).unwrap();
    assert!(bytes.len() <= 1024, "the record is {} bytes", bytes.len());
    let fields = parse_record_file(&bytes);
    assert_eq!(field(&fields, "command_cut"), "1");
    let (_, o) = status_of(&lock);
    assert_eq!(o.at("command_cut"), &Json::Bool(true));
    assert_eq!(o.at("complete"), &Json::Bool(true));
    let argv = argv_of(&o);
    assert!(argv.len() > 4 && argv.len() < 14, "argv {argv:?}");
    assert_eq!(argv[..4], ["sh", "-c", "exit 0", "sh"]);
    assert!(argv[4..].iter().all(|a| *a == long), "an argument was cut in the middle: {argv:?}");
    let (_, text) = status_text(&lock);
    assert!(text.contains(" ...)"), "the cut is not shown: {text}");
}

/// A lock file that holds something other than a record (a script, data, another tool's
/// pid file, a future record version) is never written to.
#[test]
fn a_lock_file_with_foreign_contents_is_never_overwritten() {
    let t = TempDir::new();
    let text = b"#!/bin/sh\necho \"ran with $#\"\n";
    let script = t.write("job.sh", text, 0o700);
    let out = run(withlock().arg(&script).arg("sh").arg(&script).arg("x"));
    out.assert_code(0).assert_stdout("ran with 1\n");
    assert_eq!(fs::read(&script).unwrap(), text, "the script was overwritten");

    let contents: [&[u8]; 6] = [
        b"4242\n",
        b"withlock-holder 2\npid=1\nend\n",
        b"withlock-holder 1",
        b"withlock-holder 1 \npid=1\n",
        b"\0\0\0\0",
        b"x",
    ];
    for (i, content) in contents.iter().enumerate() {
        let lock = t.write(format!("foreign-{i}.lock"), content, 0o600);
        run(withlock().arg(&lock).arg("true")).assert_code(0);
        assert_eq!(
            fs::read(&lock).unwrap(),
            *content,
            "{:?} was overwritten",
            String::from_utf8_lossy(content)
        );
        let (code, o) = status_of(&lock);
        assert_eq!((code, o.str_at("state"), o.str_at("record")), (Some(0), "free", "foreign"), "{o:?}");
    }
}

/// The flock(1) idiom of a script that is its own lock (`flock -en "$0" "$0"`): the script
/// must still be runnable while withlock holds its lock. (A file that some process has open
/// for writing cannot be executed: ETXTBSY.)
#[test]
fn a_script_can_be_its_own_lock() {
    let t = TempDir::new();
    let text = b"#!/bin/sh\necho \"ran with $#\"\n";
    let script = t.write("job.sh", text, 0o700);
    let out = run(withlock().arg(&script).arg(&script).arg("x"));
    out.assert_code(0).assert_stdout("ran with 1\n");
    assert_eq!(fs::read(&script).unwrap(), text, "the script was overwritten");
}

/// An empty lock file (one flock(1) or touch created) gets a record. An older, longer
/// record is never truncated (withlock truncates nothing): the new one is padded over it,
/// and nothing of the old one is read back.
#[test]
fn an_empty_file_or_an_old_record_gets_a_fresh_record() {
    let t = TempDir::new();
    let empty = t.write("empty.lock", b"", 0o600);
    run(withlock().arg(&empty).args(["echo", "hi"])).assert_code(0);
    let bytes = fs::read(&empty).unwrap();
    assert_padded(&bytes);
    assert_eq!(field(&parse_record_file(&bytes), "command"), "echo hi");

    for size in [100, 700, 1005, 3000] {
        let mut old = craft_record(&[("pid", "1".into()), ("command", "y".repeat(size))]);
        old.truncate(old.len() - "end\n".len());
        old.extend_from_slice(b"old_key=old\nend\n");
        let stale = t.write(format!("stale-{size}.lock"), &old, 0o600);
        run(withlock().arg(&stale).args(["echo", "hi"])).assert_code(0);
        let bytes = fs::read(&stale).unwrap();
        assert!(bytes.len() >= old.len(), "withlock truncated the lock file");
        let end = bytes.windows(5).position(|w| w == b"\nend\n").expect("no end") + 5;
        let fields = parse_record_file(&bytes[..end]);
        let keys: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, KEYS, "old {size}: lines of the old record show through");
        assert_eq!(field(&fields, "command"), "echo hi");
        if old.len() <= 1020 {
            assert_eq!(end, bytes.len(), "old {size}: the old record shows after the new one");
        }
        let (_, o) = status_of(&stale);
        assert_eq!((o.str_at("record"), o.str_at("command")), ("last", "echo hi"), "{o:?}");
        assert_eq!(o.at("complete"), &Json::Bool(true));
    }
}

// ---------------------------------------------------------------------------------------------
// The record checked against the live processes: each case of the check.

/// A record naming a live process that did not write it (its pid is someone else's now),
/// while flock(1) holds the lock: the record is stale, and the live process is not named as
/// the holder, nor touched by --replace.
#[test]
fn a_live_process_named_by_an_old_record_is_not_taken_for_the_holder() {
    let t = TempDir::new();
    let lock = t.lock();
    let other = bystander();
    let record = craft_record(&[
        ("pid", other.pid().to_string()),
        ("pgid", other.pid().to_string()),
        ("uid", my_uid().to_string()),
        ("since", "2026-01-01T00:00:00Z".into()),
        ("since_unix", "1767225600".into()),
        ("boot_ns", "1".into()),
        ("command", "old-job".into()),
    ]);
    fs::write(&lock, &record).unwrap();
    let flock = flock_holder(&t, &lock);

    let (code, o) = status_of(&lock);
    assert_eq!(code, Some(75));
    assert_eq!(o.str_at("state"), "held");
    assert_eq!(o.u64_at("locker_pid"), u64::try_from(flock.pid()).unwrap(), "{o:?}");
    assert_eq!(o.str_at("record"), "stale", "{o:?}");
    assert_eq!(o.u64_at("pid"), u64::try_from(other.pid()).unwrap());
    let (_, text) = status_text(&lock);
    assert!(
        text.starts_with(&format!(
            "held by pid {}, user {}, which left no current record (the record is stale: it names pid {} (old-job)",
            flock.pid(),
            user_shown(my_uid()),
            other.pid()
        )),
        "{text}"
    );
    let out = run(withlock().arg(&lock).arg("true"));
    out.assert_code(75).assert_stderr_mentions(format!(
        "is held by pid {}, user {}, which left no current record",
        flock.pid(),
        user_shown(my_uid())
    ));

    let out = run(withlock().args(["--replace", "--kill-after", "0.2"]).arg(&lock).args(["echo", "RAN"]));
    out.assert_code(75).assert_one_message_naming("not provably");
    assert!(out.stdout.is_empty());
    assert!(
        alive(other.pid()),
        "--replace signalled a process the record named but that does not hold the lock"
    );
    assert_eq!(fs::read(&lock).unwrap(), record, "the record was changed");
    assert!(alive(flock.pid()), "flock(1) did not hold the lock to the end");
}

/// The kernel names the recorded pid as the locker, but the process with that pid started
/// after the record was written: an earlier run's record, its pid reused by flock(1). The
/// record is `stale`, and --replace does not take flock(1) for the recorded job.
#[test]
fn a_locker_that_started_after_the_record_is_not_current() {
    let t = TempDir::new();
    let lock = t.lock();
    let flock = flock_holder(&t, &lock);
    let pid = flock.pid().to_string();
    let record = craft_record(&[
        ("pid", pid.clone()),
        ("locker", pid.clone()),
        ("pgid", pid.clone()),
        ("uid", my_uid().to_string()),
        ("boot_ns", "1".into()),
        ("command", "earlier-job".into()),
    ]);
    fs::write(&lock, &record).unwrap();

    let (code, o) = status_of(&lock);
    assert_eq!(code, Some(75));
    assert_eq!((o.str_at("state"), o.u64_at("locker_pid")), ("held", u64::try_from(flock.pid()).unwrap()));
    assert_eq!(o.str_at("record"), "stale", "a reused pid passed for the recorded process: {o:?}");
    let (_, text) = status_text(&lock);
    assert!(text.contains("which left no current record (the record is stale: it names pid"), "{text}");

    let out = run(withlock().args(["--replace", "--kill-after", "0.2"]).arg(&lock).args(["echo", "RAN"]));
    out.assert_code(75).assert_one_message_naming("not provably");
    assert!(out.stdout.is_empty());
    assert!(alive(flock.pid()), "--replace signalled a process that reused the recorded pid");
    assert!(alive(flock.pid()), "flock(1) did not hold the lock to the end");
}

/// The recorded job's own pid and start time must match too, not only the locker's: with
/// `--unlink` the record names withlock as the locker and its child as the job. Here the
/// locker is right (flock(1), started before the record was written) but the recorded job
/// pid is a process that started after the record was written and was never the job: it
/// must not be reported as the holder, nor be signalled by --replace.
#[test]
fn a_job_pid_that_started_after_the_record_is_not_the_holder() {
    let t = TempDir::new();
    let lock = t.lock();
    let flock = flock_holder(&t, &lock);
    let written = boot_ns();
    // /proc/PID/stat counts in clock ticks: let one pass, so the newcomer started later.
    thread::sleep(Duration::from_millis(50));
    let newcomer = bystander();
    let record = craft_record(&[
        ("pid", newcomer.pid().to_string()),
        ("locker", flock.pid().to_string()),
        ("pgid", newcomer.pid().to_string()),
        ("uid", my_uid().to_string()),
        ("boot_ns", written.to_string()),
        ("command", "the-job".into()),
    ]);
    fs::write(&lock, &record).unwrap();

    let (code, o) = status_of(&lock);
    let (_, text) = status_text(&lock);
    let out = run_within(
        withlock().args(["--replace", "--kill-after", "0.2"]).arg(&lock).args(["echo", "RAN"]),
        Duration::from_secs(20),
    );
    let survived = alive(newcomer.pid());
    assert_eq!(code, Some(75));
    assert!(
        o.str_at("record") != "current" && survived,
        "pid {} started after the record was written and is no child of the locker, yet\n\
         --status --json says record {:?}\n--status says {text:?}\n\
         --replace {} it: {}",
        newcomer.pid(),
        o.str_at("record"),
        if survived { "spared" } else { "killed" },
        out.describe()
    );
    // The recorded job's pid now belongs to a later process: the job is gone, so nothing
    // there is provably the holder's job.
    out.assert_code(75).assert_one_message_naming("cannot replace");
    assert!(alive(flock.pid()), "flock(1) did not hold the lock to the end");
}

/// The recorded job exited and left a background process holding the lock: the record is
/// `exited` (the kernel still names the job's pid), and --replace leaves the daemon alone.
#[test]
fn a_job_that_exited_leaving_a_daemon_holding_the_lock() {
    let t = TempDir::new();
    let lock = t.lock();
    let bg = t.join("bg.pid");
    let out = run(withlock().arg(&lock).args(["sh", "-c", r#"sleep 300 & echo $! > "$1""#, "sh"]).arg(&bg));
    out.assert_code(0);
    let daemon = read_pid(&bg);
    let _cleanup = KillOnDrop(daemon);

    let (code, o) = status_of(&lock);
    assert_eq!(code, Some(75));
    assert_eq!(o.str_at("state"), "held");
    assert_eq!(o.str_at("record"), "exited", "{o:?}");
    assert_eq!(o.at("locker_pid"), o.at("pid"), "the kernel names the job that took the lock: {o:?}");
    let (_, text) = status_text(&lock);
    assert!(
        text.starts_with(&format!(
            "held by what pid {} left running (it has exited); the record says: ",
            o.u64_at("pid")
        )),
        "{text}"
    );

    let out = run(withlock().args(["--replace", "--kill-after", "0.2"]).arg(&lock).args(["echo", "RAN"]));
    out.assert_code(75).assert_one_message_naming("has exited");
    assert!(out.stdout.is_empty());
    assert!(alive(daemon), "--replace signalled the daemon");
    assert_busy(&lock);
}

/// A record with no start time cannot prove anything: `unverified`, and --replace refuses.
#[test]
fn a_record_without_a_start_time_is_unverified() {
    let t = TempDir::new();
    let lock = t.lock();
    let flock = flock_holder(&t, &lock);
    let pid = flock.pid().to_string();
    fs::write(&lock, craft_record(&[("pid", pid.clone()), ("pgid", pid), ("command", "c".into())])).unwrap();
    let (code, o) = status_of(&lock);
    assert_eq!((code, o.str_at("state"), o.str_at("record")), (Some(75), "held", "unverified"), "{o:?}");
    let (_, text) = status_text(&lock);
    assert!(
        text.starts_with(&format!(
            "held by pid {}, user {}; the record says: ",
            flock.pid(),
            user_shown(my_uid())
        )),
        "{text}"
    );
    let out = run(withlock().args(["--replace", "--kill-after", "0.2"]).arg(&lock).args(["echo", "RAN"]));
    out.assert_code(75).assert_one_message_naming("not provably");
    assert!(alive(flock.pid()));
    assert!(alive(flock.pid()), "flock(1) did not hold the lock to the end");
}

/// A record that names no process at all, a cut-short record, and one with damaged
/// numbers: never current.
#[test]
fn records_without_a_pid_or_cut_short_are_not_current() {
    let t = TempDir::new();
    let lock = t.lock();
    let flock = flock_holder(&t, &lock);
    let pid = flock.pid().to_string();

    fs::write(&lock, craft_record(&[("uid", "0".into()), ("boot_ns", "1".into())])).unwrap();
    let (_, o) = status_of(&lock);
    assert_eq!(o.str_at("record"), "stale", "{o:?}");
    assert!(o.is_null_at("pid"), "{o:?}");

    fs::write(&lock, craft_record(&[("pid", "-5".into()), ("locker", "x".into()), ("boot_ns", "1".into())]))
        .unwrap();
    let (_, o) = status_of(&lock);
    assert_eq!(o.str_at("record"), "stale", "{o:?}");

    // Cut short: no `end`. What it says is shown, and said to be incomplete.
    fs::write(&lock, format!("{MAGIC}pid={pid}\nlocker={pid}\nboot_ns=1\ncommand=cu")).unwrap();
    let (_, o) = status_of(&lock);
    assert_eq!(o.at("complete"), &Json::Bool(false), "{o:?}");
    assert_ne!(o.str_at("record"), "current", "{o:?}");
    let (_, text) = status_text(&lock);
    assert!(text.contains("(the record is incomplete)"), "{text}");
    assert!(alive(flock.pid()), "flock(1) did not hold the lock to the end");
}

/// Without /proc nothing can be seen: --status says "unknown" (69) whether the lock is free
/// or held (it never tries the lock, which could make a concurrent run skip its job); a busy
/// run says the holder is not visible; --replace refuses; and the record is still written.
#[test]
fn without_proc_records_are_written_but_unverified() {
    let t = TempDir::new();
    let lock = t.lock();
    let Some(out) = without_proc(&["--status".as_ref(), "--json".as_ref(), lock.as_os_str()]) else {
        return;
    };
    // No lock file: free, whatever /proc says.
    out.assert_code(0);
    let o = Json::parse(out.stdout_str().trim_end()).unwrap();
    assert_eq!((o.str_at("state"), o.str_at("record")), ("free", "none"), "{o:?}");

    let out = without_proc(&[lock.as_os_str(), "true".as_ref()]).unwrap();
    out.assert_code(0);
    parse_record_file(&fs::read(&lock).unwrap());
    let out = without_proc(&["--status".as_ref(), "--json".as_ref(), lock.as_os_str()]).unwrap();
    out.assert_code(69);
    let o = Json::parse(out.stdout_str().trim_end()).unwrap();
    assert_documented_fields(&o);
    assert_eq!(
        (o.str_at("state"), o.str_at("record"), o.str_at("blind_spot")),
        ("unknown", "unverified", "no-proc"),
        "{o:?}"
    );
    assert_free(&lock);

    let holder = hold_until_killed(&t, &lock);
    let out = without_proc(&["--status".as_ref(), "--json".as_ref(), lock.as_os_str()]).unwrap();
    out.assert_code(69);
    let o = Json::parse(out.stdout_str().trim_end()).unwrap();
    assert_documented_fields(&o);
    assert_eq!((o.str_at("state"), o.str_at("record")), ("unknown", "unverified"), "{o:?}");
    assert!(o.is_null_at("locker_pid"), "{o:?}");
    assert_eq!(o.u64_at("pid"), u64::try_from(holder.pid()).unwrap());
    let out = without_proc(&["--status".as_ref(), lock.as_os_str()]).unwrap();
    out.assert_code(69);
    assert!(
        out.stdout_str().starts_with(&format!(
            "{}: unknown: no holder is visible, but there is no /proc/locks; ",
            lock.display()
        )),
        "{}",
        out.describe()
    );

    let out = without_proc(&[lock.as_os_str(), "true".as_ref()]).unwrap();
    out.assert_code(75).assert_stderr_mentions(
        "held by a process not visible from here (there is no /proc/locks); the record says: pid",
    );
    let out = without_proc(&["--replace".as_ref(), lock.as_os_str(), "true".as_ref()]).unwrap();
    out.assert_code(75).assert_one_message_naming("not visible");
    assert!(alive(holder.pid()), "--replace without /proc signalled the holder");
    holder.kill(libc::SIGKILL).assert_signal(libc::SIGKILL);
}

// ---------------------------------------------------------------------------------------------
// Busy messages.

/// A busy withlock names the holder as the kernel shows it (pid and user), then what the
/// record says (command, and since when).
#[test]
fn busy_message_names_the_holder() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold_until_killed(&t, &lock);
    let fields = parse_record_file(&fs::read(&lock).unwrap());
    let command = field(&fields, "command").to_string();
    let since = field(&fields, "since").to_string();
    let marker = t.join("ran");
    let out = run(withlock().arg(&lock).arg("touch").arg(&marker));
    out.assert_code(75).assert_one_message_naming(&lock);
    let err = out.stderr_str();
    let expected = format!(
        "withlock: {} is held by pid {}, user {}; the record says: pid {} ({}), user {}, since {since} (",
        lock.display(),
        holder.pid(),
        user_shown(my_uid()),
        holder.pid(),
        shown(&command),
        user_shown(my_uid())
    );
    assert!(err.starts_with(&expected), "expected it to start with\n{expected}\n{}", out.describe());
    assert!(err.ends_with(" ago) (use -w DURATION to wait for it, or -q to skip quietly)\n"), "{err}");
    assert!(!err.contains("on host"), "the host is for -v only: {err}");
    assert!(!exists(&marker));

    // -v adds the host and the writer's version.
    let out = run(withlock().arg("-v").arg(&lock).arg("true"));
    out.assert_code(75);
    let err = out.stderr_str();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.describe());
    assert_eq!(lines[0], format!("withlock: {} is busy; not waiting", lock.display()));
    assert!(lines[1].contains(&format!(", on host {}, since {since}", host_name())), "{err}");
    assert!(lines[1].contains(&format!(", recorded by withlock {VERSION}")), "{err}");

    // -q: nothing at all.
    run(withlock().arg("-q").arg(&lock).arg("true")).assert_code(0).assert_silent();
    run(withlock().args(["-q", "-w", "0.1"]).arg(&lock).arg("true")).assert_code(0).assert_silent();
    holder.kill(libc::SIGKILL);
}

/// A wait that runs out also names the holder.
#[test]
fn an_expired_wait_names_the_holder() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold_until_killed(&t, &lock);
    let out = run(withlock().args(["-w", "0.2"]).arg(&lock).arg("true"));
    out.assert_code(75).assert_one_message_naming(&lock);
    let err = out.stderr_str();
    assert!(
        err.starts_with(&format!(
            "withlock: {} is still busy after waiting 0.2s: held by pid {}, user {}; the record says: ",
            lock.display(),
            holder.pid(),
            user_shown(my_uid())
        )),
        "{err}"
    );
    assert!(err.contains(", since "), "{err}");
    assert!(err.ends_with("; giving up (use a longer -w, or -w forever)\n"), "{err}");
    holder.kill(libc::SIGKILL);
}

/// flock(1) writes no record: the message says so and names flock's pid (from the kernel).
#[test]
fn busy_message_without_a_record_names_the_lockers_pid() {
    let t = TempDir::new();
    let lock = t.write("x.lock", b"", 0o600);
    let flock = flock_holder(&t, &lock);
    let out = run(withlock().arg(&lock).arg("true"));
    out.assert_code(75).assert_one_message_naming(format!(
        "{} is held by pid {}, user {} (no holder record: not taken by withlock, or withlock could not write it)",
        lock.display(),
        flock.pid(),
        user_shown(my_uid())
    ));
    assert!(alive(flock.pid()), "flock(1) did not hold the lock to the end");
}

/// A foreign file (here a script that is its own lock) is said to hold no record.
#[test]
fn busy_message_for_a_foreign_file_says_it_holds_no_record() {
    let t = TempDir::new();
    let script = t.write("job.sh", b"#!/bin/sh\nexec sleep 300\n", 0o700);
    let mut job = start(withlock().arg(&script).arg("sh").arg(&script));
    assert!(
        wait_until(Duration::from_secs(10), || has_flock_lock(job.pid())),
        "the script never held its lock"
    );
    let out = run(withlock().arg(&script).arg("true"));
    out.assert_code(75).assert_one_message_naming(format!(
        "{} is held by pid {}, user {} (the lock file holds no withlock record)",
        script.display(),
        job.pid(),
        user_shown(my_uid())
    ));
    let (code, o) = status_of(&script);
    assert_eq!((code, o.str_at("record")), (Some(75), "foreign"), "{o:?}");
    assert_eq!(o.u64_at("locker_pid"), u64::try_from(job.pid()).unwrap());
    assert!(job.is_running());
    send_signal(job.pid(), libc::SIGKILL);
    job.wait(Duration::from_secs(10)).assert_signal(libc::SIGKILL);
}

/// Whether /proc/locks shows a FLOCK lock taken by `pid`.
fn has_flock_lock(pid: i32) -> bool {
    fs::read_to_string("/proc/locks").is_ok_and(|locks| {
        locks.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() > 4 && w[1] == "FLOCK" && w[4] == pid.to_string()
        })
    })
}

// ---------------------------------------------------------------------------------------------
// --status.

/// A missing lock file in an existing directory is free; a missing directory (a typo in a
/// monitoring check) and an empty LOCK are errors, not "free".
#[test]
fn status_of_a_missing_file_is_free_and_creates_nothing() {
    let t = TempDir::new();
    let lock = t.lock();
    let out = run(withlock().arg("--status").arg(&lock));
    out.assert_code(0).assert_stdout(&format!("{}: free (no lock file)\n", lock.display()));
    assert!(out.stderr.is_empty());
    assert!(!exists(&lock), "--status created the lock file");
    let missing_dir = t.join("no-such-dir/x.lock");
    let out = run(withlock().arg("--status").arg(&missing_dir));
    out.assert_code(73)
        .assert_one_message_naming(&missing_dir)
        .assert_stderr_mentions("its directory does not exist");
    assert!(out.stdout.is_empty(), "{}", out.describe());
    assert!(!exists(&t.join("no-such-dir")));
    let (out, objects) = status_json(&[&missing_dir]);
    out.assert_code(73);
    assert_eq!(objects.len(), 1, "{}", out.describe());
    assert_eq!(objects[0].str_at("state"), "error", "{}", out.describe());
    let out = run(withlock().args(["--status", ""]));
    out.assert_code(64).assert_stderr_mentions("an empty LOCK names no file");
    assert!(out.stdout.is_empty(), "{}", out.describe());
}

/// The object for a missing file has the documented fields (`locker_pid` included) like
/// every other: monitoring reads the same fields whatever the state.
#[test]
fn status_json_of_a_missing_file_has_the_documented_fields() {
    let t = TempDir::new();
    let lock = t.lock();
    let (out, objects) = status_json(&[&lock]);
    out.assert_code(0);
    assert!(!exists(&lock), "--status --json created the lock file");
    assert_eq!(objects.len(), 1, "{}", out.describe());
    let o = &objects[0];
    assert_eq!(o.str_at("lock").as_bytes(), lock.as_os_str().as_bytes());
    assert_eq!((o.str_at("state"), o.str_at("record")), ("free", "none"), "{o:?}");
    assert_documented_fields(o);
}

#[test]
fn status_of_a_free_lock_tells_who_took_it_last() {
    let t = TempDir::new();
    let lock = t.lock();
    let job = start(withlock().arg(&lock).args(["echo", "last one"]));
    let pid = job.pid();
    job.wait(Duration::from_secs(10)).assert_code(0);
    let before = fs::read(&lock).unwrap();
    let fields = parse_record_file(&before);

    let (code, text) = status_text(&lock);
    assert_eq!(code, Some(0));
    let expected = format!(
        "free; the record says it was last taken by pid {pid} (echo \"last one\"), user {}, on host {}, at {} (",
        user_shown(my_uid()),
        host_name(),
        field(&fields, "since")
    );
    assert!(text.starts_with(&expected), "expected\n{expected}\ngot\n{text}");
    assert!(text.ends_with(&format!(" ago), recorded by withlock {VERSION}")), "{text}");

    let (code, o) = status_of(&lock);
    assert_eq!(code, Some(0));
    assert_eq!((o.str_at("state"), o.str_at("record")), ("free", "last"));
    assert!(o.is_null_at("locker_pid"));
    assert_eq!(o.u64_at("pid"), u64::try_from(pid).unwrap());
    assert_eq!(argv_of(&o), ["echo", "last one"]);
    assert_eq!(fs::read(&lock).unwrap(), before, "--status changed the lock file");

    // An empty file is free with no record.
    let empty = t.write("empty.lock", b"", 0o600);
    let (code, text) = status_text(&empty);
    assert_eq!((code, text.as_str()), (Some(0), "free"));
    let (_, o) = status_of(&empty);
    assert_eq!((o.str_at("state"), o.str_at("record")), ("free", "none"), "{o:?}");
    assert_eq!(fs::read(&empty).unwrap(), b"", "--status wrote into an empty lock file");
}

/// A lock held by withlock: every field of the record, checked against the holder.
#[test]
fn status_of_a_held_lock_names_the_current_holder() {
    let t = TempDir::new();
    let lock = t.lock();
    let ready = t.join("ready");
    let (before, before_boot) = (unix_now(), boot_ns());
    let mut cmd = withlock();
    cmd.process_group(0).arg(&lock).args(["sh", "-c", IDLE, "sh"]).arg(&ready);
    let holder = start_holding(&mut cmd, &ready);
    let pid = u64::try_from(holder.pid()).unwrap();

    let (code, o) = status_of(&lock);
    assert_eq!(code, Some(75));
    assert_eq!((o.str_at("state"), o.str_at("record")), ("held", "current"), "{o:?}");
    assert_eq!(o.u64_at("locker_pid"), pid);
    assert_eq!(o.u64_at("pid"), pid);
    assert_eq!(o.u64_at("pgid"), pid, "the holder leads its own group");
    assert_eq!(o.u64_at("uid"), u64::from(my_uid()));
    match user_name(my_uid()) {
        Some(name) => assert_eq!(o.str_at("user"), name),
        None => assert!(o.is_null_at("user")),
    }
    assert_eq!(o.str_at("host"), host_name());
    assert_eq!(o.str_at("version"), VERSION);
    let since_unix = o.u64_at("since_unix");
    assert!((before.saturating_sub(1)..=unix_now() + 1).contains(&since_unix), "{o:?}");
    assert_eq!(rfc3339_to_unix(o.str_at("since")), since_unix);
    assert!(o.u64_at("age_s") < 600, "{o:?}");
    let argv: [&[u8]; 5] = [b"sh", b"-c", IDLE.as_bytes(), b"sh", ready.as_os_str().as_bytes()];
    assert_eq!(o.str_at("command"), encode_argv(&argv));
    assert_eq!(argv_of(&o), ["sh", "-c", IDLE, "sh", &ready.to_string_lossy()]);
    assert_eq!((o.at("command_cut"), o.at("complete")), (&Json::Bool(false), &Json::Bool(true)));
    let boot: u64 = field(&parse_record_file(&fs::read(&lock).unwrap()), "boot_ns").parse().unwrap();
    assert!(boot >= before_boot, "boot_ns {boot} is older than the run");

    let (code, text) = status_text(&lock);
    assert_eq!(code, Some(75));
    let expected = format!(
        "held by pid {pid}, user {}; the record says: pid {pid} ({}), user {}, on host {}, since {} (",
        user_shown(my_uid()),
        shown(o.str_at("command")),
        user_shown(my_uid()),
        host_name(),
        o.str_at("since")
    );
    assert!(text.starts_with(&expected), "expected\n{expected}\ngot\n{text}");
    assert!(text.ends_with(&format!(" ago), recorded by withlock {VERSION}")), "{text}");

    // Looking did not disturb the holder.
    assert_busy(&lock);
    let mut holder = holder;
    assert!(holder.is_running());
    send_signal(holder.pid(), libc::SIGKILL);
    holder.wait(Duration::from_secs(10));
}

/// A lock held by flock(1) on an empty file: held, no record, flock's pid from the kernel.
#[test]
fn status_of_a_lock_held_without_a_record() {
    let t = TempDir::new();
    let lock = t.write("x.lock", b"", 0o600);
    let flock = flock_holder(&t, &lock);
    let (code, o) = status_of(&lock);
    assert_eq!(code, Some(75));
    assert_eq!((o.str_at("state"), o.str_at("record")), ("held", "none"), "{o:?}");
    assert_eq!(o.u64_at("locker_pid"), u64::try_from(flock.pid()).unwrap());
    let (_, text) = status_text(&lock);
    assert_eq!(
        text,
        format!(
            "held by pid {}, user {} (no holder record: not taken by withlock, or withlock could not write it)",
            flock.pid(),
            user_shown(my_uid())
        )
    );
    assert!(alive(flock.pid()), "flock(1) did not hold the lock to the end");
}

/// A directory stands for every regular file in it: subdirectories, FIFOs and symlinks
/// are skipped; 75 if any is held.
#[test]
fn status_of_a_directory_lists_each_regular_file() {
    let t = TempDir::new();
    let dir = t.mkdir("locks", 0o700);
    let held = dir.join("held.lock");
    let holder = hold_until_killed(&t, &held);
    let last = dir.join("last.lock");
    run(withlock().arg(&last).arg("true")).assert_code(0);
    let empty = dir.join("empty.lock");
    fs::write(&empty, b"").unwrap();
    let odd = dir.join(OsStr::from_bytes(b"odd \"name\"\\\n\xff.lock"));
    fs::write(&odd, b"").unwrap();
    let sub = dir.join("sub");
    fs::create_dir(&sub).unwrap();
    let hidden = sub.join("inner.lock");
    let inner_holder = hold_until_killed(&t, &hidden);
    mkfifo(&dir.join("fifo"), 0o600);
    std::os::unix::fs::symlink(&held, dir.join("link.lock")).unwrap();

    let (out, objects) = status_json(&[&dir]);
    out.assert_code(75);
    let mut names: Vec<String> = objects.iter().map(|o| o.str_at("lock").to_string()).collect();
    names.sort();
    let mut expected: Vec<String> =
        [&held, &last, &empty, &odd].iter().map(|p| p.to_string_lossy().into_owned()).collect();
    expected.sort();
    assert_eq!(names, expected, "{}", out.describe());
    for o in &objects {
        assert_documented_fields(o);
        let name = o.str_at("lock");
        let want = if name == held.to_string_lossy() {
            ("held", "current")
        } else if name == last.to_string_lossy() {
            ("free", "last")
        } else {
            ("free", "none")
        };
        assert_eq!((o.str_at("state"), o.str_at("record")), want, "{o:?}");
    }

    // In words: one line each; a trailing slash makes no double slash.
    let mut with_slash = dir.clone().into_os_string();
    with_slash.push("/");
    let out = run(withlock().arg("--status").arg(&with_slash));
    out.assert_code(75);
    assert_eq!(out.stdout_str().lines().count(), 4, "{}", out.describe());
    assert!(!out.stdout_str().contains("//"), "{}", out.describe());
    assert!(!out.stdout_str().contains("inner.lock"), "a subdirectory was listed");

    // All free: 0.
    holder.kill(libc::SIGKILL).assert_signal(libc::SIGKILL);
    let (out, objects) = status_json(&[&dir]);
    out.assert_code(0);
    assert_eq!(objects.len(), 4);
    assert!(objects.iter().all(|o| o.str_at("state") == "free"), "{}", out.describe());
    // An empty directory says nothing and is free.
    let (out, objects) = status_json(&[&t.mkdir("none", 0o700)]);
    out.assert_code(0);
    assert!(objects.is_empty(), "{}", out.describe());
    inner_holder.kill(libc::SIGKILL);
}

/// Several locks: one report each, in order; 0 only if all are free, 75 if any is held,
/// and an error's code wins over both.
#[test]
fn status_of_several_locks() {
    let t = TempDir::new();
    let free = t.join("free.lock");
    let held = t.join("held.lock");
    let holder = hold_until_killed(&t, &held);
    let missing = t.join("missing.lock");
    run(withlock().arg(&free).arg("true")).assert_code(0);

    let (out, objects) = status_json(&[&free, &missing]);
    out.assert_code(0);
    let states: Vec<(&str, &str)> = objects.iter().map(|o| (o.str_at("lock"), o.str_at("state"))).collect();
    let (f, m) = (free.to_string_lossy(), missing.to_string_lossy());
    assert_eq!(states, [(&*f, "free"), (&*m, "free")]);

    let (out, objects) = status_json(&[&free, &held, &missing]);
    out.assert_code(75);
    let states: Vec<&str> = objects.iter().map(|o| o.str_at("state")).collect();
    assert_eq!(states, ["free", "held", "free"], "{}", out.describe());

    let link = t.join("link.lock");
    std::os::unix::fs::symlink(&free, &link).unwrap();
    let out = run(withlock().arg("--status").arg(&held).arg(&link).arg(&free));
    out.assert_code(77);
    assert_eq!(out.stdout_str().lines().count(), 2, "the other locks are still reported\n{}", out.describe());
    holder.kill(libc::SIGKILL);
}

/// A symlink is never followed: refused with 77, whatever it points to, and a dangling
/// one's target is not created. Other file types are refused too.
#[test]
fn status_refuses_symlinks_and_other_file_types() {
    let t = TempDir::new();
    let target = t.join("target.lock");
    let holder = hold_until_killed(&t, &target);
    let link = t.join("link.lock");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = run(withlock().arg("--status").arg(&link));
    out.assert_code(77).assert_one_message_naming(&link).assert_stderr_mentions("symbolic link");
    assert!(out.stdout.is_empty(), "the link was followed\n{}", out.describe());

    let (out, objects) = status_json(&[&link]);
    out.assert_code(77);
    assert_eq!(objects.len(), 1, "{}", out.describe());
    assert_eq!(objects[0].str_at("state"), "error");
    assert!(objects[0].str_at("error").contains("symbolic link"), "{:?}", objects[0]);
    assert!(objects[0].get("pid").is_none(), "the link was followed: {:?}", objects[0]);

    let dangling = t.join("dangling.lock");
    let nowhere = t.join("nowhere.lock");
    std::os::unix::fs::symlink(&nowhere, &dangling).unwrap();
    run(withlock().arg("--status").arg(&dangling)).assert_code(77);
    assert!(!exists(&nowhere), "--status created a symlink's target");

    let fifo = t.join("fifo.lock");
    mkfifo(&fifo, 0o600);
    let out = run_within(withlock().arg("--status").arg(&fifo), Duration::from_secs(10));
    out.assert_code(77).assert_one_message_naming(&fifo).assert_stderr_mentions("FIFO");
    holder.kill(libc::SIGKILL);
}

/// --status only looks: afterwards flock(1) can take the lock at once, and a held lock's
/// holder goes on holding it.
#[test]
fn status_never_takes_or_keeps_the_lock() {
    let t = TempDir::new();
    let lock = t.lock();
    run(withlock().arg(&lock).arg("true")).assert_code(0);
    let (code, _) = status_of(&lock);
    assert_eq!(code, Some(0));
    run(Command::new("flock").arg("-n").arg(&lock).arg("true").stdin(Stdio::null())).assert_code(0);

    let holder = hold(&t, &lock);
    for _ in 0..5 {
        let (code, o) = status_of(&lock);
        assert_eq!((code, o.str_at("record")), (Some(75), "current"));
    }
    assert_busy(&lock);
    holder.release().assert_code(0);
    assert_free(&lock);
}

/// Makes `cmd` die of SIGSYS if it ever calls flock(2): a seccomp filter installed between
/// fork and exec. It knows flock by this architecture's number, and by i386's for an i686
/// binary under test (a qemu-user one makes this machine's own system calls).
fn forbid_flock(cmd: &mut Command) {
    const I386_FLOCK: u32 = 143;
    filter_syscall(cmd, libc::SYS_flock, I386_FLOCK, libc::SECCOMP_RET_KILL_PROCESS);
}

/// Where /proc/locks tells who holds a lock, --status does not even try the lock for an
/// instant (which could make a withlock starting in that instant find it busy): run under
/// a filter that kills it on any flock(2), it reports on free, held, recorded, empty,
/// foreign and missing files and a directory of them.
#[test]
fn status_never_calls_flock_where_proc_locks_tells() {
    let t = TempDir::new();
    // The filter works: flock(1) dies of it.
    let mut probe = Command::new("flock");
    probe.arg("-n").arg(t.lock()).arg("true").stdin(Stdio::null()).stdout(Stdio::null());
    forbid_flock(&mut probe);
    match probe.status() {
        Ok(status) => assert_eq!(status.signal(), Some(libc::SIGSYS), "the filter let flock(1) through"),
        Err(e) => {
            eprintln!(
                "skipping status_never_calls_flock_where_proc_locks_tells: no seccomp filter here: {e}"
            );
            return;
        }
    }
    // And it works on the binary under test: taking a lock is a flock, and kills it.
    let mut probe = withlock();
    probe.arg(t.join("probe.lock")).arg("true");
    forbid_flock(&mut probe);
    assert_eq!(run(&mut probe).signal(), Some(libc::SIGSYS), "the filter let withlock's flock through");

    let dir = t.mkdir("locks", 0o700);
    let held = dir.join("held.lock");
    let holder = hold_until_killed(&t, &held);
    let last = dir.join("last.lock");
    run(withlock().arg(&last).arg("true")).assert_code(0);
    fs::write(dir.join("empty.lock"), b"").unwrap();
    fs::write(dir.join("foreign.lock"), b"#!/bin/sh\n").unwrap();
    let flocked = dir.join("flocked.lock");
    let flock = flock_holder(&t, &flocked);
    for (args, code) in [
        (vec![last.clone()], 0),
        (vec![dir.join("empty.lock"), dir.join("foreign.lock"), dir.join("missing.lock")], 0),
        (vec![held.clone()], 75),
        (vec![flocked.clone()], 75),
        (vec![dir.clone()], 75),
    ] {
        for json in [false, true] {
            let mut cmd = withlock();
            cmd.arg("--status");
            if json {
                cmd.arg("--json");
            }
            cmd.args(&args);
            forbid_flock(&mut cmd);
            let out = run(&mut cmd);
            assert_eq!(out.code(), Some(code), "--status {args:?} (json: {json})\n{}", out.describe());
        }
    }
    holder.kill(libc::SIGKILL);
    assert!(alive(flock.pid()), "flock(1) did not hold the lock to the end");
}

/// A record written by a user with no passwd entry: the user is shown by uid, and is null
/// in JSON.
#[test]
fn status_names_a_user_without_a_passwd_entry_by_uid() {
    if !require_root("status_names_a_user_without_a_passwd_entry_by_uid") {
        return;
    }
    assert!(user_name(UNLISTED_UID).is_none(), "uid {UNLISTED_UID} has a passwd entry here");
    let t = TempDir::new();
    set_mode(t.path(), 0o711);
    let bin_copy = copy_binary(&t);
    let home = t.mkdir("home", 0o700);
    chown(&home, UNLISTED_UID, UNLISTED_UID);
    let lock = home.join("x.lock");
    run(as_user(UNLISTED_UID, UNLISTED_UID).args(argv_for(&bin_copy)).arg(&lock).arg("true")).assert_code(0);
    let (code, o) = status_of(&lock);
    assert_eq!(code, Some(0));
    assert_eq!(o.u64_at("uid"), u64::from(UNLISTED_UID));
    assert!(o.is_null_at("user"), "{o:?}");
    let (_, text) = status_text(&lock);
    assert!(text.contains(&format!(", user uid {UNLISTED_UID}, ")), "{text}");
}

/// A lock path that needs escaping comes back exactly from `lock`.
#[test]
fn status_json_escapes_the_lock_path() {
    let t = TempDir::new();
    let name = b"we\"ird\\ \x01\x1f\t\n\x7f caf\xc3\xa9 \xff.lock";
    let lock = t.join(OsStr::from_bytes(name));
    run(withlock().arg(&lock).arg("true")).assert_code(0);
    let (out, objects) = status_json(&[&lock]);
    out.assert_code(0);
    assert_eq!(out.stdout_str().lines().count(), 1, "a control byte broke the line\n{}", out.describe());
    assert_eq!(objects[0].str_at("lock"), lock.to_string_lossy(), "{}", out.describe());
    // In words, control bytes are shown escaped: still one line.
    let out = run(withlock().arg("--status").arg(&lock));
    out.assert_code(0);
    assert_eq!(out.stdout_str().lines().count(), 1, "{}", out.describe());
}

#[track_caller]
fn assert_usage_error(args: &[&OsStr]) {
    let t = TempDir::new();
    let marker = t.join("ran");
    let out = run(withlock().current_dir(t.path()).args(args).arg("touch").arg(&marker));
    assert_eq!(out.code(), Some(64), "withlock {args:?} should be a usage error\n{}", out.describe());
    assert!(out.stdout.is_empty() && out.stderr_str().starts_with("withlock: "), "{}", out.describe());
    assert!(!exists(&marker), "the command ran: {args:?}");
    assert!(!exists(&t.lock()), "a usage error created the lock file: {args:?}");
}

#[test]
fn new_options_in_the_wrong_combination_are_usage_errors() {
    let l: &OsStr = "x.lock".as_ref();
    for args in [
        &["--kill-after".as_ref(), "1".as_ref(), l][..],
        &["--kill-after=1".as_ref(), l],
        &["--json".as_ref(), l],
        &["--replace".as_ref(), "--kill-after".as_ref(), "soon".as_ref(), l],
        &["--replace".as_ref(), "--kill-after".as_ref()],
        &["--status".as_ref(), "--replace".as_ref(), l],
        &["--status".as_ref(), "--unlink".as_ref(), l],
    ] {
        assert_usage_error(args);
    }
    let t = TempDir::new();
    for args in [&["--status"][..], &["--status", "--json"], &["--json", "--status"]] {
        let out = run(withlock().current_dir(t.path()).args(args));
        assert_eq!(out.code(), Some(64), "{args:?}\n{}", out.describe());
    }
}

// ---------------------------------------------------------------------------------------------
// --replace.

/// A holder that exits on SIGTERM: its trap runs, then the new command runs in its place.
#[test]
fn replace_stops_a_holder_that_exits_on_sigterm() {
    if !require_catchable("replace_stops_a_holder_that_exits_on_sigterm", libc::SIGTERM) {
        return;
    }
    let t = TempDir::new();
    let lock = t.lock();
    let (ready, trapped) = (t.join("ready"), t.join("trapped"));
    let script = r#"trap 'echo TERM >> "$2"; exit 0' TERM; : > "$1"; while :; do sleep 0.05; done"#;
    let holder = start_holding(
        withlock().arg(&lock).args(["sh", "-c", script, "sh"]).arg(&ready).arg(&trapped),
        &ready,
    );
    let out = run(withlock()
        .arg("--replace")
        .arg(&lock)
        .args(["sh", "-c", r#"cat "$1"; echo "new $$""#, "sh"])
        .arg(&trapped));
    out.assert_code(0);
    let new_pid = out.stdout_str().lines().last().unwrap_or("").trim_start_matches("new ").to_string();
    assert_eq!(
        out.stdout_str(),
        format!("TERM\nnew {new_pid}\n"),
        "the new command ran before the old one's trap"
    );
    holder.wait(Duration::from_secs(10)).assert_code(0);
    let fields = parse_record_file(&fs::read(&lock).unwrap());
    assert_eq!(field(&fields, "pid"), new_pid, "the record is not the new job's");
}

/// A holder that ignores SIGTERM is SIGKILLed after --kill-after, then the new command runs.
#[test]
fn replace_sigkills_a_holder_that_ignores_sigterm() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let ready = t.join("ready");
    let holder = start_holding(
        withlock()
            .arg(&lock)
            .args(["sh", "-c", r#"trap '' TERM; : > "$1"; exec sleep 300"#, "sh"])
            .arg(&ready),
        &ready,
    );
    let out = run(withlock().args(["--replace", "--kill-after", "0.3"]).arg(&lock).args(["echo", "new"]));
    out.assert_code(0).assert_stdout("new\n");
    assert!(
        out.elapsed >= Duration::from_millis(300) && out.elapsed < Duration::from_secs(5),
        "replacing took {:?}\n{}",
        out.elapsed,
        out.describe()
    );
    holder.wait(Duration::from_secs(10)).assert_signal(libc::SIGKILL);
    assert_free(&lock);
}

/// A job that leads its own process group is stopped with its whole group: a grandchild
/// that ignores SIGTERM and keeps the lock is SIGKILLed with it.
#[test]
fn replace_stops_the_whole_group_of_a_job_that_leads_one() {
    let t = TempDir::new();
    let lock = t.lock();
    let (ready, grandchild, child) = (t.join("ready"), t.join("grandchild.pid"), t.join("child.pid"));
    let inner = r#"trap '' TERM; sleep 300 & echo $! > "$2"; : > "$1"; wait"#;
    let outer = r#"sh -c "$4" sh "$1" "$2" & echo $! > "$3"; wait"#;
    let mut cmd = withlock();
    cmd.arg(&lock).args(["sh", "-c", outer, "sh"]).arg(&ready).arg(&grandchild).arg(&child).arg(inner);
    let holder = Group::start(&mut cmd, &ready);
    let (child_pid, grandchild_pid) = (read_pid(&child), read_pid(&grandchild));
    let out = run(withlock().args(["--replace", "--kill-after", "0.3"]).arg(&lock).args(["echo", "new"]));
    out.assert_code(0).assert_stdout("new\n");
    holder.wait(Duration::from_secs(10)).assert_signal(libc::SIGTERM);
    // The lock is free once the last of them has closed it; the other may still be on its
    // way out of the kernel then (state R, exiting, SIGKILL pending: seen under load).
    let gone = |pid| wait_until(Duration::from_secs(10), || !alive(pid));
    assert!(gone(child_pid), "the job's child (ignoring SIGTERM) survived");
    assert!(gone(grandchild_pid), "the job's grandchild (ignoring SIGTERM) survived");
}

/// A job that does not lead its group shares it with its caller: only the job's pid is
/// signalled, and the caller (a shell running withlock in the background) lives on.
#[test]
fn replace_signals_only_the_pid_of_a_job_that_shares_its_callers_group() {
    let t = TempDir::new();
    let lock = t.lock();
    let (ready, survived) = (t.join("ready"), t.join("survived"));
    let caller = r#"lock=$1 job=$2 ready=$3 survived=$4; shift 4
        "$@" "$lock" sh -c "$job" sh "$ready" & wait $!; echo "survived $?" > "$survived""#;
    let mut cmd = Command::new("sh");
    cmd.env("PATH", TEST_PATH)
        .stdin(Stdio::null())
        .args(["-c", caller, "sh"])
        .arg(&lock)
        .arg(IDLE)
        .arg(&ready)
        .arg(&survived)
        .args(bin_argv());
    let caller = Group::start(&mut cmd, &ready);
    let (_, o) = status_of(&lock);
    assert_eq!(o.u64_at("pgid"), u64::try_from(caller.pid()).unwrap(), "the job is in its caller's group");
    assert_ne!(o.u64_at("pid"), o.u64_at("pgid"));
    let out = run(withlock().args(["--replace", "--kill-after", "5"]).arg(&lock).args(["echo", "new"]));
    out.assert_code(0).assert_stdout("new\n");
    caller.wait(Duration::from_secs(10)).assert_code(0);
    assert_eq!(read_string(&survived), "survived 143\n", "the job did not die of SIGTERM alone");
}

/// The holder of the lock is flock(1), which leaves no record: nothing is provably the
/// job, so nothing is signalled.
#[test]
fn replace_refuses_a_holder_without_a_record() {
    let t = TempDir::new();
    let lock = t.lock();
    let flock = flock_holder(&t, &lock);
    let out = run(withlock().args(["--replace", "--kill-after", "0.1"]).arg(&lock).args(["echo", "RAN"]));
    out.assert_code(75).assert_one_message_naming(&lock).assert_stderr_mentions("not provably");
    assert!(out.stdout.is_empty(), "{}", out.describe());
    assert!(alive(flock.pid()), "--replace signalled flock(1)");
    assert_busy(&lock);
}

/// Replacing on a free lock just runs the command; replacing an `--unlink` holder (whose
/// record names the job, withlock's child) stops it and takes the lock on a new file.
#[test]
fn replace_on_a_free_lock_and_of_an_unlink_holder() {
    let t = TempDir::new();
    let lock = t.lock();
    run(withlock().arg("--replace").arg(&lock).args(["echo", "free"])).assert_code(0).assert_stdout("free\n");

    let ready = t.join("ready");
    let holder = Group::start(
        withlock().arg("--unlink").arg(&lock).args(["sh", "-c", IDLE, "sh"]).arg(&ready),
        &ready,
    );
    let out = run(withlock()
        .args(["--replace", "--kill-after", "5"])
        .arg(&lock)
        .args(["sh", "-c", r#"cat "$1" > /dev/null && echo new"#, "sh"])
        .arg(&lock));
    out.assert_code(0).assert_stdout("new\n");
    holder.wait(Duration::from_secs(10)).assert_signal(libc::SIGTERM);
}

/// A copy of withlock that other users can run.
fn copy_binary(t: &TempDir) -> PathBuf {
    let dir = t.mkdir("bin", 0o755);
    let copy = dir.join("withlock");
    crate::support::copy_executable(&bin(), &copy);
    set_mode(&copy, 0o755);
    copy
}

/// Another user's job is refused (77, saying so) unless the caller is root; root may.
#[test]
fn replace_of_another_users_job_needs_root() {
    let Some((uid, gid)) = require_root_and_nobody("replace_of_another_users_job_needs_root") else {
        return;
    };
    let t = TempDir::new();
    set_mode(t.path(), 0o711);
    let bin_copy = copy_binary(&t);
    let dir = t.mkdir("locks", 0o755);
    let lock = dir.join("x.lock");
    fs::write(&lock, b"").unwrap();
    set_mode(&lock, 0o644);
    chown(&lock, uid, gid);
    let marks = t.mkdir("marks", 0o755);
    chown(&marks, uid, gid);
    let ready = marks.join("ready");
    let holder = start_holding(
        as_user(uid, gid)
            .args(argv_for(&bin_copy))
            .arg(&lock)
            .args(["sh", "-c", r#": > "$1"; exec sleep 300"#, "sh"])
            .arg(&ready),
        &ready,
    );
    let (_, o) = status_of(&lock);
    assert_eq!((o.str_at("record"), o.u64_at("uid")), ("current", u64::from(uid)), "{o:?}");
    assert_eq!(o.str_at("user"), "nobody");

    // Another unprivileged user can open (644) and lock-test the file, but not stop the job.
    let out = run(as_user(UNLISTED_UID, UNLISTED_UID)
        .args(argv_for(&bin_copy))
        .args(["--insecure", "--replace", "--kill-after", "0.1"])
        .arg(&lock)
        .args(["echo", "RAN"]));
    out.assert_code(77).assert_one_message_naming(&lock).assert_stderr_mentions(format!(
        "pid {} belongs to nobody; only root may stop another user's job",
        holder.pid()
    ));
    assert!(out.stdout.is_empty(), "{}", out.describe());
    let mut holder = holder;
    assert!(holder.is_running(), "the other user's job was stopped");
    assert_eq!(status_of(&lock).1.str_at("record"), "current");

    // Root may.
    let out = run(withlock()
        .args(["--insecure", "--replace", "--kill-after", "5"])
        .arg(&lock)
        .args(["echo", "new"]));
    out.assert_code(0).assert_stdout("new\n");
    holder.wait(Duration::from_secs(10)).assert_signal(libc::SIGTERM);
}

// ---------------------------------------------------------------------------------------------
// --unlink.

/// The lock file is gone when the job is done, whatever its exit status, a death by signal
/// included (passed on as the same death); so is one that existed before.
#[test]
fn unlink_removes_the_lock_file_and_passes_the_status_on() {
    let t = TempDir::new();
    let lock = t.lock();
    for code in [0, 1, 3, 75, 255] {
        run(withlock()
            .arg("--unlink")
            .arg(&lock)
            .args(["sh", "-c", r#"[ -e "$1" ] && exit $2"#, "sh"])
            .arg(&lock)
            .arg(code.to_string()))
        .assert_code(code);
        assert!(!exists(&lock), "the lock file stayed after exit {code}");
    }
    fs::write(&lock, b"").unwrap();
    set_mode(&lock, 0o600);
    run(withlock().arg("--unlink").arg(&lock).arg("true")).assert_code(0);
    assert!(!exists(&lock), "an existing lock file stayed");
    for (sig, name) in [(libc::SIGTERM, "TERM"), (libc::SIGKILL, "KILL"), (libc::SIGUSR1, "USR1")] {
        if !require_catchable("unlink_removes_the_lock_file (that signal)", sig) {
            continue;
        }
        run(withlock().arg("--unlink").arg(&lock).args(["sh", "-c", "kill -s $1 $$; exit 99", "sh", name]))
            .assert_signal(sig);
        assert!(!exists(&lock), "the lock file stayed after a death by SIG{name}");
    }
    let out = run(withlock().arg("--unlink").arg(&lock).arg("withlock-test-no-such-command"));
    out.assert_code(127).assert_one_message_naming("withlock-test-no-such-command");
    assert!(!exists(&lock), "the lock file stayed after the command could not run");
}

/// While the job runs, --status names the job (withlock's child) as the holder, current,
/// with withlock as the locker; a busy run names it too, and does not remove the file.
#[test]
fn unlink_status_names_the_job_while_it_runs() {
    let t = TempDir::new();
    let lock = t.lock();
    let (ready, me) = (t.join("ready"), t.join("me"));
    let holder = Group::start(
        withlock()
            .arg("--unlink")
            .arg(&lock)
            .args(["sh", "-c", r#"echo $$ > "$2"; : > "$1"; while :; do sleep 0.05; done"#, "sh"])
            .arg(&ready)
            .arg(&me),
        &ready,
    );
    let job = read_pid(&me);
    assert_ne!(job, holder.pid(), "with --unlink the job is withlock's child");
    let (code, o) = status_of(&lock);
    assert_eq!(code, Some(75));
    assert_eq!((o.str_at("state"), o.str_at("record")), ("held", "current"), "{o:?}");
    assert_eq!(o.u64_at("pid"), u64::try_from(job).unwrap());
    assert_eq!(o.u64_at("locker_pid"), u64::try_from(holder.pid()).unwrap());
    let (_, text) = status_text(&lock);
    let me = user_shown(my_uid());
    let expected = format!("held by pid {}, user {me}; the record says: pid {job} (sh -c ", holder.pid());
    assert!(text.starts_with(&expected), "{text}");

    let out = run(withlock().arg("--unlink").arg(&lock).arg("true"));
    out.assert_code(75).assert_stderr_mentions(format!("is {expected}"));
    assert!(exists(&lock), "a busy --unlink run removed the lock file");

    send_signal(job, libc::SIGKILL);
    holder.wait(Duration::from_secs(10)).assert_signal(libc::SIGKILL);
    assert!(!exists(&lock));
}

/// The file is removed only if it is still the one that was locked: a job that replaced
/// it keeps the new one.
#[test]
fn unlink_leaves_a_file_that_replaced_the_lock_file() {
    let t = TempDir::new();
    let lock = t.lock();
    run(withlock()
        .arg("--unlink")
        .arg(&lock)
        .args(["sh", "-c", r#"rm "$1" && echo new > "$1""#, "sh"])
        .arg(&lock))
    .assert_code(0);
    assert_eq!(read_string(&lock), "new\n", "withlock removed a file it had not locked");
}

/// A signal sent to withlock's pid by a process reaches the job once; one the job sends to
/// withlock is not bounced back to it.
#[test]
fn unlink_passes_signals_sent_to_withlock_on_to_the_job_once() {
    let t = TempDir::new();
    let lock = t.lock();
    let script = r#"n=0; trap 'n=$((n + 1))' "$2"; sleep 1 & pid=$!; : > "$1"
        while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done; echo "$n""#;
    for (sig, name) in [(libc::SIGTERM, "TERM"), (libc::SIGHUP, "HUP"), (libc::SIGUSR1, "USR1")] {
        if !require_catchable("unlink_passes_signals_sent_to_withlock_on", sig) {
            continue;
        }
        let ready = t.join(format!("ready-{name}"));
        let job = start_holding(
            withlock().arg("--unlink").arg(&lock).args(["sh", "-c", script, "sh"]).arg(&ready).arg(name),
            &ready,
        );
        send_signal(job.pid(), sig);
        let out = job.wait(Duration::from_secs(10));
        assert_eq!(
            out.stdout_str(),
            "1\n",
            "SIG{name} did not reach the job exactly once\n{}",
            out.describe()
        );
        out.assert_code(0);
        assert!(!exists(&lock));
    }
    if require_catchable("unlink (USR2 from the job)", libc::SIGUSR2) {
        let script = r#"n=0; trap 'n=$((n + 1))' USR2; kill -USR2 $PPID; sleep 0.3; echo "$n""#;
        let out = run(withlock().arg("--unlink").arg(&lock).args(["sh", "-c", script]));
        out.assert_code(0).assert_stdout("0\n");
    }
}

/// The master side of a new pseudo-terminal, and the path of its slave; `None` (after
/// saying why) where there are no pseudo-terminals.
fn open_pty() -> Option<(OwnedFd, CString)> {
    // SAFETY: plain flags; the result is checked and owned below.
    let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if fd < 0 {
        eprintln!("skipping: no pseudo-terminal: {}", io::Error::last_os_error());
        return None;
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let master = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `master` is an open pty master.
    let rc = unsafe { libc::grantpt(master.as_raw_fd()) | libc::unlockpt(master.as_raw_fd()) };
    assert_eq!(rc, 0, "grantpt/unlockpt: {}", io::Error::last_os_error());
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: `name` is valid for writes of its length.
    let rc = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    assert_eq!(rc, 0, "ptsname_r: {}", io::Error::from_raw_os_error(rc));
    // SAFETY: ptsname_r NUL-terminated `name`.
    let slave = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_owned();
    Some((master, slave))
}

/// Ctrl-C at the terminal reaches the whole foreground group: withlock and the job both
/// get it from the kernel, and withlock must not pass it on again, so the job sees one.
#[test]
fn unlink_ctrl_c_at_the_terminal_reaches_the_job_exactly_once() {
    if !require_catchable("unlink_ctrl_c_at_the_terminal", libc::SIGINT) {
        return;
    }
    let t = TempDir::new();
    let lock = t.lock();
    let ready = t.join("ready");
    let Some((master, slave)) = open_pty() else { return };
    let script = r#"n=0; trap 'n=$((n + 1))' INT; sleep 1 & pid=$!; : > "$1"
        while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done; echo "$n""#;
    let mut cmd = withlock();
    cmd.arg("--unlink").arg(&lock).args(["sh", "-c", script, "sh"]).arg(&ready);
    // SAFETY: between fork and exec the closure calls only async-signal-safe functions
    // (setsid, open, ioctl) on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            // A session leader that opens a terminal gets it as its controlling terminal;
            // TIOCSCTTY says so explicitly. Its group is then the terminal's foreground.
            let fd = libc::open(slave.as_ptr(), libc::O_RDWR);
            if fd < 0 || libc::ioctl(fd, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let job = start_holding(&mut cmd, &ready);
    let mut tty = fs::File::from(master);
    tty.write_all(b"\x03").unwrap();
    let out = job.wait(Duration::from_secs(10));
    out.assert_code(0);
    assert_eq!(out.stdout_str(), "1\n", "the job did not see Ctrl-C exactly once\n{}", out.describe());
    assert!(!exists(&lock));
    drop(tty);
}

/// A record dated ahead of this host's clock (another host's clock, or a forged record)
/// says so, instead of "(0s ago)"; its JSON age is null (issue 15, item 10).
#[test]
fn a_record_dated_in_the_future_says_so() {
    let t = TempDir::new();
    let lock = t.lock();
    let ahead = unix_now() + 3 * 3600 + 150;
    let record = craft_record(&[
        ("pid", "4242".into()),
        ("uid", my_uid().to_string()),
        ("since", "2100-01-01T00:00:00Z".into()),
        ("since_unix", ahead.to_string()),
        ("command", "from-the-future".into()),
    ]);
    fs::write(&lock, &record).unwrap();
    let (code, text) = status_text(&lock);
    assert_eq!(code, Some(0));
    assert!(text.contains(" (3h 2m in the future)"), "{text}");
    assert!(!text.contains(" ago)"), "{text}");
    let (_, o) = status_of(&lock);
    assert!(o.is_null_at("age_s"), "{o:?}");
}
