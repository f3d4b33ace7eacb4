//! `--max-runtime DURATION`: withlock stays the job's parent, runs it in a process group of
//! its own, and when DURATION has passed sends that group SIGTERM, then SIGKILL after
//! `--kill-after` (default 10 s), waits until the whole group is gone, and exits 124. A job
//! that ends in time keeps its own status. In a terminal the job's group takes the
//! terminal, so Ctrl-C reaches it once and Ctrl-Z / `fg` work as for any job.
//!
//! Time bounds here are coarse on purpose: each only separates "did it" from "did not".

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::exit_codes::{assert_busy, assert_free};
use crate::support::{
    Out, TempDir, bin, bin_argv, exists, mkfifo, read_string, require_catchable, run, run_within,
    send_signal, start_holding, timing, wait_until, withlock,
};

/// The process `pid` as it is now: its state letter and start time (clock ticks after
/// boot), or None if there is no such process.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After "pid (comm) ": state, then 18 more fields up to starttime (field 22).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some((fields.first()?.chars().next()?, fields.get(19)?.parse().ok()?))
}

/// A process seen while it ran, to ask later whether it is gone.
pub struct Seen {
    pub pid: i32,
    started: u64,
}

impl Seen {
    /// Reads the pid a job wrote to `file` and notes the process's start time.
    #[track_caller]
    pub fn from_file(file: &Path) -> Seen {
        Seen::of(read_string(file).trim().parse().expect("a pid"))
    }

    /// The process `pid`, which must be running.
    #[track_caller]
    pub fn of(pid: i32) -> Seen {
        let (_, started) = proc_stat(pid).unwrap_or_else(|| panic!("process {pid} is not running"));
        Seen { pid, started }
    }

    /// Still there, running or a zombie (None: gone, its pid free or reused).
    pub fn state(&self) -> Option<char> {
        proc_stat(self.pid).filter(|&(_, started)| started == self.started).map(|(state, _)| state)
    }

    /// Dead: gone, or a zombie (its descriptors, and so its copy of the lock, are closed).
    pub fn is_dead(&self) -> bool {
        matches!(self.state(), None | Some('Z'))
    }
}

/// Waits (setup only) until `file` exists and is not empty: a job wrote its pid there.
#[track_caller]
pub fn wait_for_pid_file(file: &Path) {
    let ok = wait_until(Duration::from_secs(10), || exists(file) && !read_string(file).trim().is_empty());
    assert!(ok, "{} was never written", file.display());
}

// ---------------------------------------------------------------------------------------------
// Stopping a job that runs too long.

/// A job that ends on SIGTERM (here, it traps it, says so and exits 0) is stopped soon
/// after DURATION, long before the default --kill-after of 10 s, and withlock exits 124,
/// not with the job's own status.
#[test]
fn a_job_past_max_runtime_gets_sigterm_and_withlock_exits_124() {
    if !require_catchable("a_job_past_max_runtime_gets_sigterm", libc::SIGTERM) {
        return;
    }
    let _load = timing();
    let t = TempDir::new();
    let said = t.join("said");
    let script = r#"trap 'echo TERM > "$1"; exit 0' TERM; sleep 30 & wait"#;
    let out = run_within(
        withlock().args(["--max-runtime", "0.3"]).arg(t.lock()).args(["sh", "-c", script, "sh"]).arg(&said),
        Duration::from_secs(20),
    );
    out.assert_code(124).assert_silent();
    assert_eq!(read_string(&said), "TERM\n", "the job did not get SIGTERM");
    assert!(
        out.elapsed >= Duration::from_millis(300) && out.elapsed < Duration::from_secs(5),
        "stopped after {:?}: not about --max-runtime 0.3\n{}",
        out.elapsed,
        out.describe()
    );
    assert_free(&t.lock());
}

/// A job that ignores SIGTERM gets SIGKILL after --kill-after (not after the default
/// 10 s, and not when its own 30 s are up).
#[test]
fn a_job_that_ignores_sigterm_is_killed_after_kill_after() {
    let _load = timing();
    let t = TempDir::new();
    let pid = t.join("pid");
    // An ignored signal stays ignored across exec: `sleep` itself ignores SIGTERM.
    let script = r#"trap '' TERM; echo $$ > "$1"; exec sleep 30"#;
    let out = run_within(
        withlock()
            .args(["--max-runtime", "0.3", "--kill-after", "1.5"])
            .arg(t.lock())
            .args(["sh", "-c", script, "sh"])
            .arg(&pid),
        Duration::from_secs(25),
    );
    out.assert_code(124);
    assert!(
        out.elapsed >= Duration::from_millis(1800) && out.elapsed < Duration::from_secs(8),
        "ended after {:?}: not about --max-runtime 0.3 + --kill-after 1.5\n{}",
        out.elapsed,
        out.describe()
    );
    let job: i32 = read_string(&pid).trim().parse().unwrap();
    assert!(proc_stat(job).is_none(), "the job {job} is still there after withlock exited");
    assert_free(&t.lock());
}

/// The job exits on SIGTERM, but a grandchild in its group ignores it: withlock sends the
/// group SIGKILL after --kill-after and exits only once the grandchild is gone — reaped by
/// withlock itself (it is the job's subreaper), not left a zombie for pid 1 — so the lock
/// the grandchild inherited is free the moment withlock exits.
#[test]
fn a_grandchild_that_ignores_sigterm_is_killed_and_reaped_before_withlock_exits() {
    let _load = timing();
    let t = TempDir::new();
    let gc = t.join("grandchild");
    let ready = t.join("ready");
    let script = r#"(trap '' TERM; exec sleep 60) & echo $! > "$1"; : > "$2"; wait"#;
    for round in 0..3 {
        let _ = fs::remove_file(&gc);
        let _ = fs::remove_file(&ready);
        let mut cmd = withlock();
        cmd.args(["--max-runtime", "0.5", "--kill-after", "0.5"])
            .arg(t.lock())
            .args(["sh", "-c", script, "sh"])
            .arg(&gc)
            .arg(&ready);
        let running = start_holding(&mut cmd, &ready);
        let grandchild = Seen::from_file(&gc);
        let out = running.wait(Duration::from_secs(20));
        // Right away, before anything else can reap it.
        let state = grandchild.state();
        out.assert_code(124);
        assert_eq!(
            state,
            None,
            "round {round}: the grandchild {} was left {} when withlock exited\n{}",
            grandchild.pid,
            if state == Some('Z') { "a zombie (not reaped by withlock)" } else { "running" },
            out.describe()
        );
        assert!(
            out.elapsed >= Duration::from_millis(1000),
            "SIGKILL before --kill-after\n{}",
            out.describe()
        );
        assert_free(&t.lock());
    }
}

/// The lock is held until the job's whole group is gone: after the job itself died on
/// SIGTERM, while its TERM-ignoring grandchild still runs, withlock still runs and the lock
/// is busy; once withlock exits (124) the lock is free at once.
#[test]
fn the_lock_is_held_until_the_whole_group_is_gone() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let (job_pid, gc, ready) = (t.join("job"), t.join("grandchild"), t.join("ready"));
    let script = r#"echo $$ > "$1"; (trap '' TERM; exec sleep 60) & echo $! > "$2"; : > "$3"; wait"#;
    let mut cmd = withlock();
    cmd.args(["-v", "--max-runtime", "0.3", "--kill-after", "3"])
        .arg(&lock)
        .args(["sh", "-c", script, "sh"])
        .arg(&job_pid)
        .arg(&gc)
        .arg(&ready);
    let mut running = start_holding(&mut cmd, &ready);
    let job = Seen::from_file(&job_pid);
    let grandchild = Seen::from_file(&gc);
    assert!(
        wait_until(Duration::from_secs(5), || job.state().is_none()),
        "the job did not end on SIGTERM after --max-runtime: {:?}\n{}",
        job.state(),
        running.stderr_so_far()
    );
    assert!(!grandchild.is_dead(), "the grandchild died before --kill-after");
    assert!(running.is_running(), "withlock exited while its job's group still ran");
    assert_busy(&lock);
    let out = running.wait(Duration::from_secs(20));
    out.assert_code(124);
    assert!(grandchild.is_dead(), "withlock exited before the grandchild");
    assert_free(&lock);
}

// ---------------------------------------------------------------------------------------------
// A job that ends in time.

/// A job that ends before DURATION keeps its status: exit codes and death by a signal pass
/// through, and withlock does not wait for the limit.
#[test]
fn a_job_that_ends_in_time_keeps_its_status() {
    let _load = timing();
    let t = TempDir::new();
    for (script, code) in [("exit 0", 0), ("exit 3", 3), ("exit 124", 124)] {
        let out = run(withlock().args(["--max-runtime", "20"]).arg(t.lock()).args(["sh", "-c", script]));
        out.assert_code(code);
        assert!(out.elapsed < Duration::from_secs(10), "waited for the limit\n{}", out.describe());
    }
    if require_catchable("a_job_that_ends_in_time (USR1)", libc::SIGUSR1) {
        run(withlock().args(["--max-runtime", "20"]).arg(t.lock()).args(["sh", "-c", "kill -USR1 $$"]))
            .assert_signal(libc::SIGUSR1);
    }
    run(withlock().args(["--max-runtime", "20"]).arg(t.lock()).args(["sh", "-c", "echo out; echo err >&2"]))
        .assert_code(0)
        .assert_stdout("out\n")
        .assert_stderr_mentions("err");
    // Not found / not executable: withlock's own codes, from the child.
    run(withlock().args(["--max-runtime", "20"]).arg(t.lock()).arg("no-such-command-for-withlock"))
        .assert_code(127);
    assert_free(&t.lock());
}

/// The job leads a process group of its own (that is what gets stopped), and the lock file
/// names the job and that group.
#[test]
fn the_job_leads_its_own_process_group() {
    let t = TempDir::new();
    let out = run(withlock().args(["--max-runtime", "20"]).arg(t.lock()).args([
        "sh",
        "-c",
        r#"echo "$$ $(cut -d' ' -f5 /proc/$$/stat)""#,
    ]));
    out.assert_code(0);
    let text = out.stdout_str();
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words.len(), 2, "{}", out.describe());
    assert_eq!(words[0], words[1], "the job does not lead its own process group\n{}", out.describe());
    let record = read_string(&t.lock());
    assert!(record.contains(&format!("pgid={}\n", words[0])), "the record names another group:\n{record}");
}

/// With --unlink too, the lock file is removed after a stopped job, still under the lock.
#[test]
fn unlink_still_removes_the_file_after_a_stopped_job() {
    let _load = timing();
    let t = TempDir::new();
    run_within(
        withlock().args(["--unlink", "--max-runtime", "0.2"]).arg(t.lock()).args(["sleep", "30"]),
        Duration::from_secs(20),
    )
    .assert_code(124);
    assert!(!exists(&t.lock()), "--unlink left the lock file after --max-runtime");
}

// ---------------------------------------------------------------------------------------------
// What withlock says, and what it refuses.

#[test]
fn verbose_says_it_stops_the_job_and_when_it_kills_it() {
    let _load = timing();
    let t = TempDir::new();
    let out = run_within(
        withlock().args(["-v", "--max-runtime", "0.2"]).arg(t.lock()).args(["sleep", "30"]),
        Duration::from_secs(20),
    );
    out.assert_code(124)
        .assert_stderr_mentions("started the job as pid ")
        .assert_stderr_mentions("the job ran longer than --max-runtime: stopping it")
        .assert_stderr_mentions("SIGKILL in 10s)"); // the default --kill-after
    assert!(!out.stderr_str().contains("sent SIGKILL"), "{}", out.describe());

    let out = run_within(
        withlock().args(["-v", "--max-runtime", "0.2", "--kill-after", "0.3"]).arg(t.lock()).args([
            "sh",
            "-c",
            "trap '' TERM; exec sleep 30",
        ]),
        Duration::from_secs(20),
    );
    out.assert_code(124)
        .assert_stderr_mentions("SIGKILL in 0.3s)")
        .assert_stderr_mentions("sent SIGKILL to the job's process group after --kill-after");

    // A job that ends in time: no word about stopping it.
    let out = run(withlock().args(["-v", "--max-runtime", "20"]).arg(t.lock()).arg("true"));
    out.assert_code(0);
    assert!(!out.stderr_str().contains("stopping"), "{}", out.describe());
}

#[test]
fn bad_max_runtime_and_kill_after_are_usage_errors() {
    let t = TempDir::new();
    let marker = t.join("ran");
    let cases: [&[&str]; 10] = [
        &["--max-runtime", "0"],
        &["--max-runtime=0s"],
        &["--max-runtime", "0ms"],
        &["--max-runtime", "soon"],
        &["--max-runtime", "-1"],
        &["--max-runtime", ""],
        &["--max-runtime", "1e3"],
        &["--max-runtime", "forever"],
        &["--max-runtime", "5", "--kill-after", "x"],
        &["--kill-after", "1"],
    ];
    for args in cases {
        let out = run(withlock().args(args).arg(t.lock()).arg("touch").arg(&marker));
        out.assert_code(64);
        let named = if args.contains(&"--kill-after") { "--kill-after" } else { "--max-runtime" };
        assert!(out.stderr_str().starts_with("withlock: "), "{args:?}\n{}", out.describe());
        out.assert_stderr_mentions(named);
        assert!(!exists(&marker), "{args:?}: the command ran");
    }
    let out = run(withlock().args(["--status", "--max-runtime", "5"]).arg(t.lock()));
    out.assert_code(64).assert_stderr_mentions("--max-runtime");
    // LOCK taken as the value: a bad duration.
    run(withlock().arg("--max-runtime").arg(t.lock()).arg("true")).assert_code(64);
    let out = run(withlock().arg("--max-runtime"));
    out.assert_code(64).assert_stderr_mentions("needs a value");
    // Accepted: with units, fractions, and --kill-after.
    for args in
        [&["--max-runtime", "1.5"][..], &["--max-runtime=2m"], &["--max-runtime", "1h", "--kill-after", "0"]]
    {
        run(withlock().args(args).arg(t.lock()).arg("true")).assert_code(0);
    }
}

// ---------------------------------------------------------------------------------------------
// Signals.

/// SIGTERM sent to withlock (as `kill PID` or `systemctl stop` do) reaches the job's whole
/// group: the job and a grandchild both trap it. The job's status is withlock's (no 124:
/// the limit was not reached).
#[test]
fn sigterm_to_withlock_reaches_the_jobs_whole_group() {
    if !require_catchable("sigterm_to_withlock_reaches_the_jobs_whole_group", libc::SIGTERM) {
        return;
    }
    let t = TempDir::new();
    let (said, ready) = (t.join("said"), t.join("ready"));
    let script = r#"trap 'echo job >> "$1"; wait; exit 5' TERM
        (trap 'echo grandchild >> "$1"; exit 0' TERM; : > "$2"; while :; do sleep 0.05; done) &
        wait"#;
    let mut cmd = withlock();
    cmd.args(["--max-runtime", "60"]).arg(t.lock()).args(["sh", "-c", script, "sh"]).arg(&said).arg(&ready);
    let running = start_holding(&mut cmd, &ready);
    send_signal(running.pid(), libc::SIGTERM);
    running.wait(Duration::from_secs(15)).assert_code(5);
    let mut lines: Vec<String> = read_string(&said).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(lines, ["grandchild", "job"], "each process of the group should see SIGTERM once");
}

/// Asked to stop (SIGTERM to withlock), withlock passes the signal to the job's group and,
/// if the group ignores it, SIGKILLs it after --kill-after (well before --max-runtime), so
/// that stopping withlock stops everything the job started.
#[test]
fn sigterm_to_withlock_ends_a_deaf_group_after_kill_after() {
    let _load = timing();
    let t = TempDir::new();
    let (pid, ready) = (t.join("pid"), t.join("ready"));
    let script = r#"trap '' TERM; echo $$ > "$1"; : > "$2"; exec sleep 60"#;
    let mut cmd = withlock();
    cmd.args(["--max-runtime", "60", "--kill-after", "1"])
        .arg(t.lock())
        .args(["sh", "-c", script, "sh"])
        .arg(&pid)
        .arg(&ready);
    let running = start_holding(&mut cmd, &ready);
    let job = Seen::from_file(&pid);
    send_signal(running.pid(), libc::SIGTERM);
    thread::sleep(Duration::from_millis(300));
    assert!(!job.is_dead(), "the job was killed before --kill-after");
    let out = running.wait(Duration::from_secs(20));
    assert!(out.elapsed < Duration::from_secs(15), "not stopped after --kill-after\n{}", out.describe());
    out.assert_signal(libc::SIGKILL);
    assert!(job.is_dead(), "the job outlived withlock");
    assert_free(&t.lock());
}

/// With --no-inherit the lock is withlock's alone, so when withlock is SIGKILLed its job
/// must not run on: with --max-runtime (the job leads its own group) the whole group dies,
/// grandchildren too, not only the job the parent-death signal reaches.
#[test]
fn no_inherit_with_max_runtime_the_whole_group_dies_with_withlock() {
    let t = TempDir::new();
    let (gc, ready) = (t.join("grandchild"), t.join("ready"));
    let script = r#"(exec sleep 60) & echo $! > "$1"; : > "$2"; wait"#;
    let mut cmd = withlock();
    cmd.args(["--no-inherit", "--max-runtime", "60"])
        .arg(t.lock())
        .args(["sh", "-c", script, "sh"])
        .arg(&gc)
        .arg(&ready);
    let running = start_holding(&mut cmd, &ready);
    let grandchild = Seen::from_file(&gc);
    send_signal(running.pid(), libc::SIGKILL);
    running.wait(Duration::from_secs(10));
    assert!(
        wait_until(Duration::from_secs(5), || grandchild.is_dead()),
        "the job's grandchild {} runs on after withlock was killed",
        grandchild.pid
    );
}

/// A job started with SIGINT ignored (a background job of a script) still ignores it when
/// withlock stays its parent, in every such mode.
#[test]
fn an_ignored_sigint_stays_ignored_for_the_job() {
    let t = TempDir::new();
    let sigint_ignored = |out: &Out| -> bool {
        out.assert_code(0);
        let text = out.stdout_str();
        let mask = text.trim().strip_prefix("SigIgn:").unwrap_or_else(|| panic!("{}", out.describe()));
        u64::from_str_radix(mask.trim(), 16).unwrap() & (1 << (libc::SIGINT - 1)) != 0
    };
    for mode in [&["--max-runtime", "20"][..], &["--unlink"], &["--no-inherit"], &[]] {
        let ignored = run(Command::new("sh")
            .args(["-c", r#"trap '' INT; exec "$@""#, "sh"])
            .args(bin_argv())
            .args(mode)
            .arg(t.lock())
            .args(["grep", "^SigIgn:", "/proc/self/status"])
            .stdin(Stdio::null()));
        assert!(
            sigint_ignored(&ignored),
            "{mode:?}: the job lost the ignored SIGINT\n{}",
            ignored.describe()
        );
        // The control: withlock does not ignore it by itself.
        if require_catchable("an_ignored_sigint_stays_ignored (control)", libc::SIGINT) {
            let caught =
                run(withlock().args(mode).arg(t.lock()).args(["grep", "^SigIgn:", "/proc/self/status"]));
            assert!(!sigint_ignored(&caught), "{mode:?}: the job ignores SIGINT\n{}", caught.describe());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// In a terminal.

/// A pseudo-terminal: the master side, read all the time into `output` (so nothing written
/// to the terminal can block), and the path of the slave side.
struct Pty {
    master: File,
    slave: PathBuf,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn open() -> Pty {
        // SAFETY: posix_openpt, grantpt and unlockpt take a flag or the descriptor it
        // returned; ptsname_r fills our buffer, NUL-terminated, within its length.
        let (fd, name) = unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
            assert_eq!(libc::grantpt(fd), 0, "grantpt");
            assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
            let mut buf = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()), 0, "ptsname_r");
            (fd, std::ffi::CStr::from_ptr(buf.as_ptr()).to_bytes().to_vec())
        };
        // SAFETY: `fd` is ours alone from here on.
        let master = unsafe { File::from_raw_fd(fd) };
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = Arc::clone(&output);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once no process has the slave open any more.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty { master, slave: PathBuf::from(std::ffi::OsStr::from_bytes(&name)), output }
    }

    fn slave_file(&self) -> File {
        OpenOptions::new().read(true).write(true).custom_flags(libc::O_NOCTTY).open(&self.slave).unwrap()
    }

    /// `cmd` in a new session whose controlling terminal is this one, with the terminal as
    /// stdin, and as stdout and stderr unless `cmd` has them set already by `start`.
    fn session(&self, cmd: &mut Command) {
        cmd.stdin(self.slave_file());
        // SAFETY: setsid and ioctl are async-signal-safe and touch no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }

    fn type_in(&self, bytes: &[u8]) {
        (&self.master).write_all(bytes).unwrap();
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until the terminal has shown `needle` `count` times.
    fn wait_for(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.text().matches(needle).count() >= count)
    }
}

/// Ctrl-C in the terminal reaches the job exactly once (the terminal sends it to the job's
/// group, which has the terminal; withlock neither gets it nor passes it on), and withlock
/// exits with the job's status.
#[test]
fn ctrl_c_in_a_terminal_reaches_the_job_once() {
    // An ignored SIGINT stays ignored for the job, which then cannot trap it.
    if !require_catchable("ctrl_c_in_a_terminal_reaches_the_job_once", libc::SIGINT) {
        return;
    }
    let t = TempDir::new();
    let (ready, done) = (t.join("ready"), t.join("done"));
    let pty = Pty::open();
    let script = r#"n=0; trap 'n=$((n + 1))' INT; : > "$1"
        while [ ! -e "$2" ]; do sleep 0.02; done; echo "interrupts: $n"; exit 7"#;
    let mut cmd = withlock();
    cmd.args(["--max-runtime", "60"]).arg(t.lock()).args(["sh", "-c", script, "sh"]).arg(&ready).arg(&done);
    pty.session(&mut cmd);
    let running = start_holding(&mut cmd, &ready);
    pty.type_in(b"\x03");
    // Time for a second, forwarded SIGINT to arrive, if there were one.
    thread::sleep(Duration::from_millis(300));
    fs::write(&done, b"").unwrap();
    running.wait(Duration::from_secs(15)).assert_code(7).assert_stdout("interrupts: 1\n");

    // A job that does not catch it dies of it, and so does withlock.
    let ready = t.join("ready2");
    let mut cmd = withlock();
    cmd.args(["--max-runtime", "60"])
        .arg(t.lock())
        .args(["sh", "-c", r#": > "$1"; exec sleep 30"#, "sh"])
        .arg(&ready);
    pty.session(&mut cmd);
    let running = start_holding(&mut cmd, &ready);
    pty.type_in(b"\x03");
    running.wait(Duration::from_secs(15)).assert_signal(libc::SIGINT);
}

/// Under a script (no job control: withlock shares the script's process group), the job
/// has the terminal while it runs, and the script has it back when it ends: the script can
/// read from it again.
#[test]
fn the_terminal_comes_back_to_the_script_when_the_job_ends() {
    let t = TempDir::new();
    let pty = Pty::open();
    let script = r#""$@"; echo "status $?"; read line; echo "read [$line]""#;
    let job = r#"[ "$(ps -o tpgid= -p $$)" -eq $$ ] && echo "job has the terminal"; exit 3"#;
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script, "sh"])
        .args(bin_argv())
        .args(["--max-runtime", "60"])
        .arg(t.lock())
        .args(["sh", "-c", job])
        .env("PATH", crate::support::TEST_PATH)
        .stdout(pty.slave_file())
        .stderr(pty.slave_file());
    pty.session(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let shown = pty.wait_for("status 3", 1, Duration::from_secs(10));
    pty.type_in(b"hello\n");
    let ended = wait_until(Duration::from_secs(10), || child.try_wait().unwrap().is_some());
    if !ended {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    // What the script wrote last may still be on its way to our reader.
    pty.wait_for("read [", 1, Duration::from_secs(5));
    let text = pty.text();
    assert!(shown && ended && status.success(), "{status:?}\n{text}");
    assert!(text.contains("job has the terminal"), "{text}");
    assert!(text.contains("read [hello]"), "the script could not read its terminal after the job:\n{text}");
}

/// An interactive shell in a terminal, driven as a user would.
struct Shell {
    pty: Pty,
    child: Child,
}

impl Shell {
    fn start(home: &Path) -> Shell {
        let pty = Pty::open();
        let mut cmd = Command::new("bash");
        cmd.args(["--norc", "--noprofile", "-i"])
            .env_clear()
            .env("PATH", crate::support::TEST_PATH)
            .env("HOME", home)
            .env("TERM", "dumb")
            .env("PS1", "$ ")
            .stdout(pty.slave_file())
            .stderr(pty.slave_file());
        pty.session(&mut cmd);
        let child = cmd.spawn().expect("bash");
        assert!(pty.wait_for("$ ", 1, Duration::from_secs(10)), "no prompt from bash -i: {:?}", pty.text());
        Shell { pty, child }
    }

    /// Types `line` and Enter.
    fn run(&self, line: &str) {
        self.pty.type_in(format!("{line}\n").as_bytes());
    }

    #[track_caller]
    fn expect(&self, needle: &str, count: usize) {
        if !self.pty.wait_for(needle, count, Duration::from_secs(15)) {
            let ps = Command::new("ps")
                .args(["-s", &self.child.id().to_string(), "-o", "pid,ppid,pgid,tpgid,stat,wchan:24,args"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            panic!("the terminal never showed {needle:?} ({count}×); it shows:\n{}\n{ps}", self.pty.text());
        }
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

/// The command line that runs `script` (which must not contain `'`) under
/// `withlock --max-runtime 60`, with `args` as its `$1`, `$2`...
fn withlock_line(lock: &Path, script: &str, args: &[&Path]) -> String {
    let args: Vec<String> = args.iter().map(|a| quoted(a)).collect();
    let runner: String = crate::support::runner().iter().map(|word| format!("{word} ")).collect();
    format!(
        "{runner}{} --max-runtime 60 {} sh -c '{script}' sh {}",
        quoted(&bin()),
        quoted(lock),
        args.join(" ")
    )
}

/// The process group of `pid`, and the foreground process group of its terminal.
fn groups_of(pid: u32) -> (i32, i32) {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    (fields[2].parse().unwrap(), fields[5].parse().unwrap())
}

/// Writes `bytes` into the FIFO at `path` once a reader has opened it (without blocking:
/// if no one ever does, the test fails instead of hanging).
#[track_caller]
fn write_fifo(path: &Path, bytes: &[u8]) {
    let mut writer = None;
    wait_until(Duration::from_secs(10), || {
        writer = OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(path).ok();
        writer.is_some()
    });
    writer.expect("no one opened the FIFO").write_all(bytes).unwrap();
}

/// The parent of `pid` (withlock, for the job).
fn parent_of(pid: i32) -> i32 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("PPid:")).unwrap();
    line["PPid:".len()..].trim().parse().unwrap()
}

/// The job: writes its pid to $1, says "started", reads a line from the terminal and says
/// "finished LINE". It starts no process: a Ctrl-Z that caught dash between vfork and exec
/// would leave it hung (the vfork child stopped, dash waiting for it), with or without
/// withlock. (The quotes split the words so that the terminal's echo of the typed command
/// line does not show them.)
const TERMINAL_JOB: &str = r#"echo $$ > "$1"; echo "st""arted"; read line; echo "fin""ished $line""#;

/// Ctrl-Z under an interactive shell stops the job and withlock (the shell says
/// "Stopped"); `fg` gives the job the terminal again (its read of the terminal works) and
/// it runs on to its end; the shell then has its terminal back.
#[test]
fn ctrl_z_and_fg_under_an_interactive_shell() {
    let t = TempDir::new();
    let job_pid = t.join("job");
    let mut shell = Shell::start(t.path());
    shell.run(&withlock_line(&t.lock(), TERMINAL_JOB, &[&job_pid]));
    shell.expect("started", 1);
    wait_for_pid_file(&job_pid);
    let job = Seen::from_file(&job_pid);
    let withlock = Seen::of(parent_of(job.pid));
    shell.pty.type_in(b"\x1a");
    shell.expect("Stopped", 1);
    assert_eq!(job.state(), Some('T'), "the job is not stopped");
    assert_eq!(withlock.state(), Some('T'), "withlock is not stopped");
    shell.run("fg");
    assert!(wait_until(Duration::from_secs(5), || job.state() != Some('T')), "fg did not continue the job");
    shell.run("typed-after-fg");
    shell.expect("finished typed-after-fg", 1);
    shell.run(r#"echo "status=$?""#);
    shell.expect("status=0", 1);
    assert!(shell.is_running(), "the shell died:\n{}", shell.pty.text());
    assert!(job.is_dead() && withlock.is_dead());
}

/// After Ctrl-Z and `bg`, the job runs in the background. When it reads the terminal it is
/// stopped (SIGTTIN) and so is withlock, without taking the terminal from the shell; `fg`
/// then lets it read. When a background job ends, withlock leaves the terminal to the
/// shell, which goes on working.
#[test]
fn bg_leaves_the_terminal_to_the_shell() {
    let t = TempDir::new();
    let mut shell = Shell::start(t.path());

    // A job that reads the terminal while in the background.
    let job_pid = t.join("job");
    shell.run(&withlock_line(&t.lock(), TERMINAL_JOB, &[&job_pid]));
    shell.expect("started", 1);
    wait_for_pid_file(&job_pid);
    let job = Seen::from_file(&job_pid);
    let withlock = Seen::of(parent_of(job.pid));
    shell.pty.type_in(b"\x1a");
    shell.expect("Stopped", 1);
    shell.run("bg");
    // It goes on reading, in the background: SIGTTIN stops it, and withlock stops too.
    assert!(
        wait_until(Duration::from_secs(5), || withlock.state() == Some('T') && job.state() == Some('T')),
        "not both stopped after bg: withlock {:?}, job {:?}",
        withlock.state(),
        job.state()
    );
    // The shell has kept the terminal. (When it reports the stop varies: not checked.)
    let (shell_group, foreground) = groups_of(shell.child.id());
    assert_eq!(foreground, shell_group, "the terminal was taken from the shell");
    shell.run(r#"echo "al""ive-1""#);
    shell.expect("alive-1", 1);
    shell.run("fg");
    assert!(wait_until(Duration::from_secs(5), || job.state() != Some('T')), "fg did not continue the job");
    shell.run("typed-after-fg");
    shell.expect("finished typed-after-fg", 1);
    shell.run(r#"echo "status=$?""#);
    shell.expect("status=0", 1);

    // A job that ends in the background: it waits for a line from a FIFO, not the terminal.
    let (job_pid, fifo) = (t.join("job2"), t.join("fifo"));
    mkfifo(&fifo, 0o600);
    let script = r#"echo $$ > "$1"; echo "st""arted"; read line < "$2"; echo "fin""ished-$line""#;
    shell.run(&withlock_line(&t.lock(), script, &[&job_pid, &fifo]));
    shell.expect("started", 2);
    wait_for_pid_file(&job_pid);
    let withlock = Seen::of(parent_of(Seen::from_file(&job_pid).pid));
    let stops = shell.pty.text().matches("Stopped").count();
    shell.pty.type_in(b"\x1a");
    shell.expect("Stopped", stops + 1);
    shell.run("bg");
    write_fifo(&fifo, b"2\n");
    shell.expect("finished-2", 1);
    assert!(wait_until(Duration::from_secs(10), || withlock.is_dead()), "withlock did not end");
    shell.run(r#"echo "al""ive-2""#);
    shell.expect("alive-2", 1);
    assert!(shell.is_running(), "the shell died:\n{}", shell.pty.text());
}

/// Started in the background (`&`), the job is not given the terminal, but gets it once
/// it is brought to the foreground: a job that read the terminal was stopped (SIGTTIN), and
/// so was withlock, which the shell reports; `fg` lets it read. And after `fg` of a job
/// still running, its first read of the terminal works at once.
#[test]
fn a_job_started_in_the_background_gets_the_terminal_with_fg() {
    let t = TempDir::new();
    let mut shell = Shell::start(t.path());

    // It reads the terminal at once, in the background: stopped, with withlock.
    let job_pid = t.join("job");
    shell.run(&format!("{} &", withlock_line(&t.lock(), TERMINAL_JOB, &[&job_pid])));
    shell.expect("started", 1);
    wait_for_pid_file(&job_pid);
    let job = Seen::from_file(&job_pid);
    let withlock = Seen::of(parent_of(job.pid));
    assert!(
        wait_until(Duration::from_secs(5), || withlock.state() == Some('T') && job.state() == Some('T')),
        "a background read did not stop the job and withlock: withlock {:?}, job {:?}",
        withlock.state(),
        job.state()
    );
    shell.run(r#"echo "al""ive-1""#);
    shell.expect("alive-1", 1);
    shell.run("fg");
    assert!(wait_until(Duration::from_secs(5), || job.state() != Some('T')), "fg did not continue the job");
    shell.run("typed-after-fg");
    shell.expect("finished typed-after-fg", 1);
    shell.run(r#"echo "status=$?""#);
    shell.expect("status=0", 1);

    // Brought to the foreground while it waits for a FIFO; then it reads the terminal.
    let (job_pid, fifo) = (t.join("job2"), t.join("fifo"));
    mkfifo(&fifo, 0o600);
    let script = r#"echo $$ > "$1"; echo "st""arted"; read go < "$2"; read line; echo "fin""ished-$line""#;
    shell.run(&format!("{} &", withlock_line(&t.lock(), script, &[&job_pid, &fifo])));
    shell.expect("started", 2);
    wait_for_pid_file(&job_pid);
    let job = Seen::from_file(&job_pid);
    shell.run("fg");
    thread::sleep(Duration::from_millis(200));
    let stops = shell.pty.text().matches("Stopped").count();
    write_fifo(&fifo, b"go\n");
    shell.run("typed-after-fg");
    shell.expect("finished-typed-after-fg", 1);
    assert_eq!(shell.pty.text().matches("Stopped").count(), stops, "{}", shell.pty.text());
    shell.run(r#"echo "status=$?""#);
    shell.expect("status=0", 2);
    assert!(job.is_dead());
    assert!(shell.is_running(), "the shell died:\n{}", shell.pty.text());
}
