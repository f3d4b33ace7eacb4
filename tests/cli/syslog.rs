//! `--syslog[=FACILITY]`, against a real syslog daemon: busybox's syslogd (Debian's
//! `busybox`), started by the test in a private mount namespace where `/dev` is a directory
//! of the test's own, so that `/dev/log` is that daemon's socket and no other. withlock runs
//! in such a namespace too (`unshare --mount`, then bind mounts), and the test reads the
//! daemon's file: the exact lines, with the facility and priority it decoded. A few tests
//! listen on that socket themselves instead, to see the datagrams as sent, or to play a
//! daemon that is gone, dead or too slow to read.
//!
//! The namespaces need root (CI runs as root); without it these tests fail, unless
//! `WITHLOCK_TESTS_NO_SYSLOGD=1` says to skip them.

use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::etcd_support::{EtcdServer, refused_endpoint};
use crate::exit_codes::{assert_busy, assert_free};
use crate::support::{
    DEFAULT_TIMEOUT, Out, TEST_PATH, TempDir, bin_argv, dead, hold_until_killed, is_root, run_within,
    send_signal, start, wait_until,
};

// ---------------------------------------------------------------------------------------------
// The harness.

/// Whether these tests may run: root and busybox, or a deliberate skip.
#[track_caller]
fn syslogd_or_skip(test: &str) -> bool {
    if std::env::var_os("WITHLOCK_TESTS_NO_SYSLOGD").is_some_and(|v| v == "1") {
        eprintln!("skipping {test}: WITHLOCK_TESTS_NO_SYSLOGD=1");
        return false;
    }
    assert!(
        is_root(),
        "{test} needs root for a private mount namespace (CI runs as root); \
         set WITHLOCK_TESTS_NO_SYSLOGD=1 to skip it on purpose"
    );
    assert!(
        TEST_PATH.split(':').any(|dir| Path::new(dir).join("busybox").is_file()),
        "busybox is not installed: the syslog tests run its syslogd (Debian: apt-get install \
         busybox; ci/test.sh installs it as root)"
    );
    true
}

/// A directory to stand for `/dev` in a private namespace: `null` (a file, for /dev/null to
/// be bound on) and, if someone makes it, `log`.
fn fake_dev(t: &TempDir) -> PathBuf {
    let dev = t.mkdir("dev", 0o755);
    fs::write(dev.join("null"), b"").unwrap();
    dev
}

/// `PROGRAM` (its words) run with `dev` as its `/dev` (and the real /dev/null): add the
/// arguments.
fn in_namespace(dev: &Path, program: &[OsString]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind /dev/null "$1/null" && mount --rbind "$1" /dev && shift && exec "$@""#)
        .arg("sh")
        .arg(dev)
        .args(program)
        .env("PATH", TEST_PATH)
        .stdin(Stdio::null());
    cmd
}

/// withlock with `dev` as its `/dev`: add the arguments. Its pid is the child's (unshare
/// and sh exec, they do not fork).
fn withlock_in(dev: &Path) -> Command {
    in_namespace(dev, &bin_argv())
}

/// busybox syslogd, serving `DEV/log` and writing what it gets to a file.
struct Syslogd {
    child: Child,
    dev: PathBuf,
    messages: PathBuf,
}

/// A test's directory and a syslogd serving it, or `None` when the syslog tests are
/// skipped on purpose (see `syslogd_or_skip`).
#[track_caller]
fn with_syslogd(test: &str) -> Option<(TempDir, Syslogd)> {
    if !syslogd_or_skip(test) {
        return None;
    }
    let t = TempDir::new();
    let daemon = Syslogd::start(&t);
    Some((t, daemon))
}

impl Syslogd {
    #[track_caller]
    fn start(t: &TempDir) -> Syslogd {
        let dev = fake_dev(t);
        let messages = t.join("messages");
        let busybox = PathBuf::from("/bin/busybox");
        let busybox = if busybox.exists() { busybox } else { PathBuf::from("/usr/bin/busybox") };
        let child = in_namespace(&dev, &[busybox.into()])
            .args(["syslogd", "-n", "-O"])
            .arg(&messages)
            .stdout(Stdio::null())
            .spawn()
            .expect("start busybox syslogd");
        let mut daemon = Syslogd { child, dev, messages };
        let log = daemon.dev.join("log");
        let up = wait_until(Duration::from_secs(10), || {
            fs::symlink_metadata(&log).is_ok_and(|m| m.file_type().is_socket()) && daemon.messages.exists()
        });
        assert!(up, "busybox syslogd made no {} ({:?})", log.display(), daemon.child.try_wait());
        daemon
    }

    /// withlock, logging to this daemon: add the arguments.
    fn withlock(&self) -> Command {
        withlock_in(&self.dev)
    }

    /// withlock's lines so far: (facility.priority as the daemon decoded them, the text
    /// from the tag on).
    fn lines(&self) -> Vec<(String, String)> {
        let text = fs::read_to_string(&self.messages).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let at = line.find(" withlock[")?;
                let priority = line[..at].rsplit(' ').next()?.to_string();
                Some((priority, line[at + 1..].to_string()))
            })
            .collect()
    }

    /// Waits (up to 10 s) until there are `n` lines from withlock, and returns them.
    #[track_caller]
    fn wait_lines(&self, n: usize) -> Vec<(String, String)> {
        wait_until(Duration::from_secs(10), || self.lines().len() >= n);
        self.lines()
    }
}

impl Drop for Syslogd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A finished run of withlock, and its pid (which its log lines name).
struct Ran {
    pid: u32,
    out: Out,
}

impl std::ops::Deref for Ran {
    type Target = Out;
    fn deref(&self) -> &Out {
        &self.out
    }
}

/// Runs `cmd` to completion (at most `DEFAULT_TIMEOUT`), keeping its pid.
#[track_caller]
fn run_ran(cmd: &mut Command) -> Ran {
    let running = start(cmd);
    let pid = running.pid() as u32;
    Ran { pid, out: running.wait(DEFAULT_TIMEOUT) }
}

/// Does `text` match `pattern`, where each `*` stands for any text (the clock's parts)?
fn matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// The lines are exactly `expected`, each (priority, pattern) in order.
#[track_caller]
fn assert_lines(got: &[(String, String)], expected: &[(&str, String)]) {
    let ok = got.len() == expected.len()
        && got.iter().zip(expected).all(|((p, text), (ep, pattern))| p == ep && matches(pattern, text));
    assert!(ok, "the log has other lines than expected\n  got:      {got:#?}\n  expected: {expected:#?}");
}

/// An argv as withlock shows a command (as its holder record writes it): a plain argument
/// as is, any other in double quotes with `\"`, `\\`, `\n`, `\t`, `\r` and `\xHH`.
fn shown(args: &[&str]) -> String {
    let one = |arg: &str| {
        let plain = |b: u8| (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\';
        if !arg.is_empty() && arg.bytes().all(plain) {
            return arg.to_string();
        }
        let mut out = String::from("\"");
        for b in arg.bytes() {
            match b {
                b'\\' => out += "\\\\",
                b'"' => out += "\\\"",
                b'\n' => out += "\\n",
                b'\t' => out += "\\t",
                b'\r' => out += "\\r",
                0x20..0x7f => out.push(b as char),
                _ => out += &format!("\\x{b:02x}"),
            }
        }
        out + "\""
    };
    args.iter().map(|a| one(a)).collect::<Vec<_>>().join(" ")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// The command `hold_until_killed` runs, as shown.
fn holder_command(t: &TempDir) -> String {
    // Its ready file's name has a counter in it: find it.
    let ready = fs::read_dir(t.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".ready")))
        .expect("the holder's ready file");
    shown(&["sh", "-c", r#": > "$1"; exec sleep 300"#, "sh", path_str(&ready)])
}

/// The pid a job wrote to `file` (setup: waits up to 10 s for it).
#[track_caller]
fn pid_in(file: &Path) -> u32 {
    assert!(wait_until(Duration::from_secs(10), || read_string_opt(file).is_some()), "no {}", file.display());
    read_string_opt(file).unwrap().trim().parse().unwrap()
}

fn read_string_opt(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().filter(|s| s.ends_with('\n'))
}

// ---------------------------------------------------------------------------------------------
// Outcomes, each as the daemon logged it.

/// A run skipped because the lock is busy: with `-q` stderr says nothing and the exit status
/// is 0, but the log has the line the busy message would be (the holder's pid, command and
/// since when), at cron.notice.
#[test]
fn a_busy_run_is_logged_even_with_quiet() {
    let Some((t, daemon)) = with_syslogd("a_busy_run_is_logged_even_with_quiet") else { return };
    let lock = t.lock();
    let holder = hold_until_killed(&t, &lock);
    let quiet = run_ran(daemon.withlock().args(["-q", "--syslog"]).arg(&lock).arg("true"));
    quiet.assert_code(0).assert_silent();
    let loud = run_ran(daemon.withlock().arg("--syslog").arg(&lock).arg("true"));
    loud.assert_code(75);
    let busy = format!(
        "{} is held by pid {h}, user root; the record says: pid {h} ({}), user root, since *Z (* ago) \
         (use -w DURATION to wait for it, or -q to skip quietly)",
        path_str(&lock),
        holder_command(&t),
        h = holder.pid(),
    );
    // The log's line is the message stderr has, without its "withlock: ".
    assert!(matches(&format!("withlock: {busy}\n"), &loud.stderr_str()), "{}", loud.describe());
    assert_lines(
        &daemon.wait_lines(2),
        &[
            ("cron.notice", format!("withlock[{}]: {busy}", quiet.pid)),
            ("cron.notice", format!("withlock[{}]: {busy}", loud.pid)),
        ],
    );
    holder.kill(libc::SIGKILL);
}

/// A wait that expired: cron.warn, with how long it waited and who still holds the lock.
#[test]
fn an_expired_wait_is_a_warning() {
    let Some((t, daemon)) = with_syslogd("an_expired_wait_is_a_warning") else { return };
    let lock = t.lock();
    let holder = hold_until_killed(&t, &lock);
    let out = run_ran(daemon.withlock().args(["-q", "-w", "0.2", "--syslog"]).arg(&lock).arg("true"));
    out.assert_code(0).assert_silent();
    assert_lines(
        &daemon.wait_lines(1),
        &[(
            "cron.warn",
            format!(
                "withlock[{}]: {} is still busy after waiting 0.2s: held by pid {h}, user root; the record \
                 says: pid {h} ({}), user root, since *Z (* ago); giving up (use a longer -w, or -w forever)",
                out.pid,
                path_str(&lock),
                holder_command(&t),
                h = holder.pid(),
            ),
        )],
    );
    holder.kill(libc::SIGKILL);
}

/// A refused location: cron.err, saying why, as stderr does.
#[test]
fn a_refused_location_is_an_error_that_says_why() {
    let Some((t, daemon)) = with_syslogd("a_refused_location_is_an_error_that_says_why") else { return };
    let open = t.mkdir("open", 0o777);
    let lock = open.join("x.lock");
    let out = run_ran(daemon.withlock().args(["-q", "--syslog"]).arg(&lock).arg("true"));
    out.assert_code(77);
    let why = format!(
        "refusing lock {}: directory {} (mode 0777) is writable by group or others, who could \
         plant or hold the lock file; use a directory that only you or root can write, or \
         --insecure if you trust everyone who can",
        path_str(&lock),
        path_str(&open)
    );
    assert_eq!(out.stderr_str(), format!("withlock: {why}\n"), "{}", out.describe());
    assert_lines(&daemon.wait_lines(1), &[("cron.err", format!("withlock[{}]: {why}", out.pid))]);
}

/// A command that cannot be run: cron.err, naming the command, why and the lock; there was
/// no job, so no "started" line; the exit status and stderr are those of the plain path.
#[test]
fn a_command_that_cannot_run_is_an_error_and_never_started() {
    let Some((t, daemon)) = with_syslogd("a_command_that_cannot_run_is_an_error_and_never_started") else {
        return;
    };
    let lock = t.lock();
    let missing = run_ran(daemon.withlock().arg("--syslog").arg(&lock).arg("withlock-test-no-such-command"));
    let plain = run_ran(withlock_in(&daemon.dev).arg(&lock).arg("withlock-test-no-such-command"));
    missing.assert_code(127);
    assert_eq!(missing.stderr_str(), plain.stderr_str(), "{}\n{}", missing.describe(), plain.describe());
    let script = t.write("not-executable", b"#!/bin/sh\n", 0o644);
    let denied = run_ran(daemon.withlock().arg("--syslog").arg(&lock).arg(&script));
    denied.assert_code(126);
    assert_lines(
        &daemon.wait_lines(2),
        &[
            (
                "cron.err",
                format!(
                    "withlock[{}]: cannot run withlock-test-no-such-command: No such file or directory \
                     (is it installed, and in PATH?) (lock {})",
                    missing.pid,
                    path_str(&lock)
                ),
            ),
            (
                "cron.err",
                format!(
                    "withlock[{}]: cannot run {}: Permission denied (lock {})",
                    denied.pid,
                    path_str(&script),
                    path_str(&lock)
                ),
            ),
        ],
    );
}

/// A job that runs: "started" with its pid and command (cron.info), then "exited with status
/// N after T" (cron.info for 0, cron.warn otherwise). withlock stays its parent (the job has
/// its own pid), and the status is passed through.
#[test]
fn a_job_is_logged_when_it_starts_and_when_it_ends() {
    let Some((t, daemon)) = with_syslogd("a_job_is_logged_when_it_starts_and_when_it_ends") else { return };
    let lock = t.lock();
    let mut expected = Vec::new();
    for (code, priority) in [(3, "cron.warn"), (0, "cron.info")] {
        let pid_file = t.join(format!("pid-{code}"));
        let script = format!("echo $$ >$0; exit {code}");
        let out =
            run_ran(daemon.withlock().arg("--syslog").arg(&lock).args(["sh", "-c", &script]).arg(&pid_file));
        out.assert_code(code).assert_silent();
        let job = pid_in(&pid_file);
        assert_ne!(job, out.pid, "with --syslog withlock stays the job's parent");
        let command = shown(&["sh", "-c", &script, path_str(&pid_file)]);
        let lock = path_str(&lock);
        let pid = out.pid;
        expected.push(("cron.info", format!("withlock[{pid}]: {lock}: started pid {job} ({command})")));
        expected.push((
            priority,
            format!("withlock[{pid}]: {lock}: pid {job} ({command}) exited with status {code} after *s"),
        ));
    }
    assert_lines(&daemon.wait_lines(4), &expected);
}

/// A job killed by a signal: withlock dies of the same signal, and the log says which, and
/// after how long (cron.warn).
#[test]
fn a_job_killed_by_a_signal_is_logged_with_the_signal() {
    let Some((t, daemon)) = with_syslogd("a_job_killed_by_a_signal_is_logged_with_the_signal") else {
        return;
    };
    let lock = t.lock();
    let out = run_ran(daemon.withlock().arg("--syslog").arg(&lock).args(["sh", "-c", "kill -s KILL $$"]));
    out.assert_signal(libc::SIGKILL);
    let lock = path_str(&lock);
    let (pid, command) = (out.pid, shown(&["sh", "-c", "kill -s KILL $$"]));
    assert_lines(
        &daemon.wait_lines(2),
        &[
            ("cron.info", format!("withlock[{pid}]: {lock}: started pid * ({command})")),
            (
                "cron.warn",
                format!("withlock[{pid}]: {lock}: pid * ({command}) was killed by signal 9 after *s"),
            ),
        ],
    );
}

/// A job stopped by --max-runtime: cron.err, and exit 124.
#[test]
fn a_job_stopped_by_max_runtime_is_an_error() {
    let Some((t, daemon)) = with_syslogd("a_job_stopped_by_max_runtime_is_an_error") else { return };
    let lock = t.lock();
    let out = run_ran(
        daemon.withlock().args(["--syslog", "--max-runtime", "0.3"]).arg(&lock).args(["sleep", "30"]),
    );
    out.assert_code(124);
    let (pid, lock) = (out.pid, path_str(&lock));
    assert_lines(
        &daemon.wait_lines(2),
        &[
            ("cron.info", format!("withlock[{pid}]: {lock}: started pid * (sleep 30)")),
            (
                "cron.err",
                format!(
                    "withlock[{pid}]: {lock}: pid * (sleep 30) ran longer than --max-runtime and was stopped after *s (exit 124)"
                ),
            ),
        ],
    );
}

/// --replace: the log says whose job it stopped (pid, command, since when) and how, then the
/// new job's start and end.
#[test]
fn a_replaced_holder_is_named_in_the_log() {
    let Some((t, daemon)) = with_syslogd("a_replaced_holder_is_named_in_the_log") else { return };
    let lock = t.lock();
    let holder = hold_until_killed(&t, &lock);
    let holder_pid = holder.pid();
    let command = holder_command(&t);
    let out = run_ran(daemon.withlock().args(["--replace", "--syslog"]).arg(&lock).arg("true"));
    out.assert_code(0).assert_silent();
    let (pid, lock) = (out.pid, path_str(&lock));
    assert_lines(
        &daemon.wait_lines(3),
        &[
            (
                "cron.notice",
                format!(
                    "withlock[{pid}]: replacing the holder of {lock} (held by pid {holder_pid}, user root; the \
                     record says: pid {holder_pid} ({command}), user root, since *Z (* ago)): sending SIGTERM \
                     to pid {holder_pid}"
                ),
            ),
            ("cron.info", format!("withlock[{pid}]: {lock}: started pid * (true)")),
            ("cron.info", format!("withlock[{pid}]: {lock}: pid * (true) exited with status 0 after *s")),
        ],
    );
    holder.wait(Duration::from_secs(10)).assert_signal(libc::SIGTERM);
}

/// `--syslog=FACILITY` picks the facility; a facility that is not one is a usage error
/// (64), and so is kern (only the kernel logs there).
#[test]
fn the_facility_can_be_chosen() {
    let Some((t, daemon)) = with_syslogd("the_facility_can_be_chosen") else { return };
    let lock = t.lock();
    let local3 = run_ran(daemon.withlock().arg("--syslog=local3").arg(&lock).arg("true"));
    local3.assert_code(0);
    let holder = hold_until_killed(&t, &lock);
    let daemon_run = run_ran(daemon.withlock().args(["-q", "--syslog=daemon"]).arg(&lock).arg("true"));
    daemon_run.assert_code(0).assert_silent();
    let got = daemon.wait_lines(3);
    let priorities: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(priorities, ["local3.info", "local3.info", "daemon.notice"], "{got:#?}");
    for bad in ["--syslog=", "--syslog=kern", "--syslog=CRON", "--syslog=local8", "--syslog=9"] {
        let out = run_ran(daemon.withlock().arg(bad).arg(&lock).arg("true"));
        out.assert_code(64).assert_stderr_mentions("bad facility for --syslog");
    }
    holder.kill(libc::SIGKILL);
    assert_eq!(daemon.lines().len(), 3, "usage errors are not logged: {:#?}", daemon.lines());
}

// ---------------------------------------------------------------------------------------------
// Staying the job's parent.

/// With --syslog withlock stays the job's parent, as --max-runtime makes it: signals sent to
/// withlock reach the job, whose death by that signal is withlock's; and the job holds the
/// lock itself, so a SIGKILLed withlock does not free it. Without --syslog, withlock still
/// becomes the job (the same pid).
#[test]
fn syslog_stays_the_parent_and_the_job_keeps_the_lock() {
    if !syslogd_or_skip("syslog_stays_the_parent_and_the_job_keeps_the_lock") {
        return;
    }
    let t = TempDir::new();
    let dev = fake_dev(&t);
    let lock = t.lock();
    let pid_file = t.join("pid");
    let job_of = |pid_file: &Path| {
        let mut cmd = withlock_in(&dev);
        cmd.arg("--syslog").arg(&lock).args(["sh", "-c", "echo $$ >$0; exec sleep 300"]).arg(pid_file);
        cmd
    };

    let running = start(&mut job_of(&pid_file));
    let job = pid_in(&pid_file);
    assert_ne!(job, running.pid() as u32, "the job should be withlock's child");
    assert_eq!(parent_of(job), Some(running.pid() as u32));
    send_signal(running.pid(), libc::SIGKILL);
    let out = running.wait(Duration::from_secs(10));
    out.assert_signal(libc::SIGKILL);
    assert_busy(&lock);
    send_signal(job as i32, libc::SIGKILL);
    assert!(wait_until(Duration::from_secs(10), || dead(job as i32)), "the job did not die");
    assert_free(&lock);

    let pid_file = t.join("pid2");
    let running = start(&mut job_of(&pid_file));
    let job = pid_in(&pid_file);
    send_signal(running.pid(), libc::SIGTERM);
    running.wait(Duration::from_secs(10)).assert_signal(libc::SIGTERM);
    assert!(dead(job as i32), "SIGTERM to withlock did not reach the job");

    let pid_file = t.join("pid3");
    let plain = run_ran(withlock_in(&dev).arg(&lock).args(["sh", "-c", "echo $$ >$0"]).arg(&pid_file));
    plain.assert_code(0);
    assert_eq!(pid_in(&pid_file), plain.pid, "without --syslog withlock becomes the job");
}

/// The parent of `pid`, from /proc/PID/stat.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// The datagrams as sent, and a log that cannot take them.

/// What withlock sends is one datagram per line in the classic format, `<PRI>withlock[PID]:
/// TEXT` with PRI = facility * 8 + severity (cron = 9, info = 6), no timestamp and no line
/// break, and nothing but printable ASCII: a lock path and arguments with a line break, an
/// escape sequence, a tab and UTF-8 come out escaped (`\xNN`, and the record's `\t`).
#[test]
fn each_line_is_one_datagram_of_printable_ascii() {
    if !syslogd_or_skip("each_line_is_one_datagram_of_printable_ascii") {
        return;
    }
    let t = TempDir::new();
    let dev = fake_dev(&t);
    let socket = UnixDatagram::bind(dev.join("log")).unwrap();
    let dir = t.mkdir("x\u{1b}[31m\ny é", 0o700);
    let lock = dir.join("j.lock");
    let out = run_ran(withlock_in(&dev).arg("--syslog").arg(&lock).args(["sh", "-c", "exit 0", "a\tb\n"]));
    out.assert_code(0).assert_silent();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut datagrams = Vec::new();
    for _ in 0..2 {
        let mut buf = [0u8; 2048];
        let n = socket.recv(&mut buf).expect("a datagram from withlock");
        datagrams.push(buf[..n].to_vec());
    }
    for datagram in &datagrams {
        assert!(datagram.iter().all(|b| (0x20..0x7f).contains(b)), "not printable ASCII: {datagram:?}");
    }
    let text: Vec<String> = datagrams.into_iter().map(|d| String::from_utf8(d).unwrap()).collect();
    let shown_lock = format!("{}/x\\x1b[31m\\x0ay \\xc3\\xa9/j.lock", path_str(t.path()));
    let pid = out.pid;
    assert!(
        matches(
            &format!("<78>withlock[{pid}]: {shown_lock}: started pid * (sh -c \"exit 0\" \"a\\tb\\n\")"),
            &text[0]
        ),
        "{text:#?}"
    );
    assert!(
        matches(
            &format!(
                "<78>withlock[{pid}]: {shown_lock}: pid * (sh -c \"exit 0\" \"a\\tb\\n\") exited with status 0 after *s"
            ),
            &text[1]
        ),
        "{text:#?}"
    );
}

/// Logging never changes the outcome: with no /dev/log, a dead one (a socket nobody serves,
/// or a plain file), or one whose reader is too slow (its queue full), the job runs, its
/// status is passed through, nothing is said on stderr, and nothing waits (a blocking send
/// to a full queue would hang until the runner's limit). With -v, withlock says once that
/// its lines are dropped, and why.
#[test]
fn a_missing_dead_or_full_log_changes_nothing() {
    if !syslogd_or_skip("a_missing_dead_or_full_log_changes_nothing") {
        return;
    }
    let t = TempDir::new();
    let dev = fake_dev(&t);
    let lock = t.lock();
    let log = dev.join("log");
    let attempt = |verbose: bool| -> Out {
        let mut cmd = withlock_in(&dev);
        cmd.arg("--syslog");
        if verbose {
            cmd.arg("-v");
        }
        run_within(cmd.arg(&lock).args(["sh", "-c", "exit 5"]), Duration::from_secs(10))
    };
    let dropped = |why: &str| {
        format!("withlock: cannot write to the system log (/dev/log): {why}; lines for it are dropped\n")
    };

    // None at all.
    attempt(false).assert_code(5).assert_silent();
    let out = attempt(true);
    out.assert_code(5);
    assert!(out.stderr_str().contains(&dropped("No such file or directory")), "{}", out.describe());
    assert_eq!(out.stderr_str().matches("cannot write to the system log").count(), 1, "{}", out.describe());

    // A socket whose server is gone.
    drop(UnixDatagram::bind(&log).unwrap());
    attempt(false).assert_code(5).assert_silent();
    assert!(attempt(true).stderr_str().contains(&dropped("Connection refused")));
    fs::remove_file(&log).unwrap();

    // A plain file.
    fs::write(&log, b"").unwrap();
    attempt(false).assert_code(5).assert_silent();
    fs::remove_file(&log).unwrap();

    // A server that never reads, its queue full.
    let server = UnixDatagram::bind(&log).unwrap();
    let filler = UnixDatagram::unbound().unwrap();
    filler.set_nonblocking(true).unwrap();
    let mut queued = 0;
    loop {
        match filler.send_to(b"<13>filler: x", &log) {
            Ok(_) => queued += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the queue: {e}"),
        }
        assert!(queued < 1_000_000, "the queue never filled");
    }
    let started = Instant::now();
    attempt(false).assert_code(5).assert_silent();
    assert!(attempt(true).stderr_str().contains(&dropped("Resource temporarily unavailable")));
    eprintln!("two runs with a full log queue ({queued} datagrams) took {:?}", started.elapsed());
    drop(server);
}

/// Without --syslog nothing is logged: around runs that would log (busy, failing, a job),
/// two marker runs with --syslog show that the daemon is listening, and theirs are the only
/// lines.
#[test]
fn without_syslog_nothing_is_logged() {
    let Some((t, daemon)) = with_syslogd("without_syslog_nothing_is_logged") else { return };
    let lock = t.lock();
    let marker = |name: &str| {
        let ran = run_ran(daemon.withlock().arg("--syslog").arg(t.join(name)).arg("true"));
        ran.assert_code(0);
        ran.pid
    };
    let first = marker("first.lock");
    run_ran(daemon.withlock().arg(&lock).args(["sh", "-c", "exit 3"])).assert_code(3);
    run_ran(daemon.withlock().arg(&lock).arg("withlock-test-no-such-command")).assert_code(127);
    run_ran(daemon.withlock().args(["--max-runtime", "10"]).arg(&lock).arg("true")).assert_code(0);
    let holder = hold_until_killed(&t, &lock);
    run_ran(daemon.withlock().arg("-q").arg(&lock).arg("true")).assert_code(0);
    run_ran(daemon.withlock().arg(&lock).arg("true")).assert_code(75);
    holder.kill(libc::SIGKILL);
    let last = marker("last.lock");
    let got = daemon.wait_lines(4);
    let pids: Vec<String> = got.iter().map(|(_, text)| text[..text.find(':').unwrap()].to_string()).collect();
    let expected: Vec<String> =
        [first, first, last, last].iter().map(|pid| format!("withlock[{pid}]")).collect();
    assert_eq!(pids, expected, "{got:#?}");
}

/// --slots: a slot job is logged as any job (withlock stays its parent; the line names
/// LOCK), with WITHLOCK_SLOT and its status as usual.
#[test]
fn slot_jobs_are_logged_too() {
    let Some((t, daemon)) = with_syslogd("slot_jobs_are_logged_too") else { return };
    let lock = t.lock();
    let script = "echo $WITHLOCK_SLOT; exit 4";
    let out =
        run_ran(daemon.withlock().args(["--slots", "2", "--syslog"]).arg(&lock).args(["sh", "-c", script]));
    out.assert_code(4).assert_stdout("0\n");
    let (pid, lock, command) = (out.pid, path_str(&lock), shown(&["sh", "-c", script]));
    assert_lines(
        &daemon.wait_lines(2),
        &[
            ("cron.info", format!("withlock[{pid}]: {lock}: started pid * ({command})")),
            (
                "cron.warn",
                format!("withlock[{pid}]: {lock}: pid * ({command}) exited with status 4 after *s"),
            ),
        ],
    );
}

/// --slots: all slots busy is logged as a busy lock is.
#[test]
fn busy_slots_are_logged() {
    let Some((t, daemon)) = with_syslogd("busy_slots_are_logged") else { return };
    let lock = t.lock();
    let slot = t.join("x.lock.0");
    let holder = hold_until_killed(&t, &slot);
    let out = run_ran(daemon.withlock().args(["-q", "--slots", "1", "--syslog"]).arg(&lock).arg("true"));
    out.assert_code(0).assert_silent();
    assert_lines(
        &daemon.wait_lines(1),
        &[(
            "cron.notice",
            format!(
                "withlock[{}]: {} is busy: all 1 slots are taken (use -w DURATION to wait for it, or -q to skip quietly)",
                out.pid,
                path_str(&lock)
            ),
        )],
    );
    holder.kill(libc::SIGKILL);
}

/// A slot past N that may be held where withlock cannot look (here: no /proc) is refused
/// (69) with why, on stderr and, as an error, in the log.
#[test]
fn an_unseen_slot_refusal_is_logged() {
    let Some((t, daemon)) = with_syslogd("an_unseen_slot_refusal_is_logged") else { return };
    let lock = t.lock();
    let holder = hold_until_killed(&t, &t.join("x.lock.2"));
    let mut words: Vec<OsString> =
        ["sh", "-c", r#"umount -l /proc && exec "$@""#, "sh"].map(OsString::from).into();
    words.extend(bin_argv());
    let marker = t.join("ran");
    let out = run_ran(
        in_namespace(&daemon.dev, &words)
            .args(["--slots", "2", "--syslog"])
            .arg(&lock)
            .arg("touch")
            .arg(&marker),
    );
    let why = format!(
        "refusing {}.2: a job with more slots may hold it unseen; if none does, remove it",
        path_str(&lock)
    );
    out.assert_code(69).assert_stderr_mentions(&why);
    assert!(!marker.exists(), "the job ran");
    assert_lines(&daemon.wait_lines(1), &[("cron.err", format!("withlock[{}]: {why}", out.pid))]);
    holder.kill(libc::SIGKILL);
}

/// A lock in etcd: busy (cron.notice), then the holder's lease lost when the server freezes
/// (cron.err: why, then the job stopped, exit 76), and a service that cannot be reached
/// (each endpoint's failure, then exit 69).
#[test]
fn etcd_outcomes_are_logged() {
    let Some((t, daemon)) = with_syslogd("etcd_outcomes_are_logged") else { return };
    let server = EtcdServer::start();
    let url = server.url("syslog");
    let pid_file = t.join("pid");
    let script = "echo $$ >$0; exec sleep 300";
    let mut holder = start(
        daemon
            .withlock()
            .args(["-q", "--syslog", "--lease", "3s", "--kill-after", "1s"])
            .arg(&url)
            .args(["sh", "-c", script])
            .arg(&pid_file),
    );
    let holder_pid = holder.pid();
    let job = pid_in(&pid_file);
    let busy = run_ran(daemon.withlock().args(["-q", "--syslog"]).arg(&url).arg("true"));
    busy.assert_code(0).assert_silent();
    assert!(holder.is_running(), "the holder ended early: {}", holder.stderr_so_far());
    server.freeze();
    let out = holder.wait(Duration::from_secs(30));
    server.thaw();
    out.assert_code(76);
    let unreachable = format!("etcd://{}/syslog", refused_endpoint());
    let endpoint = &unreachable["etcd://".len()..unreachable.len() - "/syslog".len()];
    let refused = run_ran(daemon.withlock().args(["-q", "--syslog"]).arg(&unreachable).arg("true"));
    refused.assert_code(69);
    let command = shown(&["sh", "-c", script, path_str(&pid_file)]);
    let (b, r) = (busy.pid, refused.pid);
    assert_lines(
        &daemon.wait_lines(6),
        &[
            ("cron.info", format!("withlock[{holder_pid}]: {url}: started pid {job} ({command})")),
            (
                "cron.notice",
                format!(
                    "withlock[{b}]: busy: etcd lock syslog is held by pid {job} ({command}), user root, on host *, \
                     since *Z (* ago), recorded by withlock * (fencing token *) (use -w DURATION to wait for it, \
                     or -q to skip quietly)"
                ),
            ),
            (
                "cron.err",
                format!(
                    "withlock[{holder_pid}]: lost the etcd lock syslog: its lease could not be renewed in time*; \
                     stopping the job before another host can take it (SIGTERM to its process group, SIGKILL in *s)"
                ),
            ),
            (
                "cron.err",
                format!(
                    "withlock[{holder_pid}]: {url}: pid {job} ({command}) was stopped after *s: the etcd lock was lost (exit 76)"
                ),
            ),
            ("cron.warn", format!("withlock[{r}]: cannot reach etcd at {endpoint}: *")),
            (
                "cron.err",
                format!("withlock[{r}]: no etcd endpoint granted a lease; the job was not run (exit 69)"),
            ),
        ],
    );
}
