//! What withlock promises as the job's parent, in every mode that makes it stay the parent
//! (`--max-runtime`, `--unlink`, `--no-inherit`, and `--slots` with one of them): the limit
//! covers what the job leaves running, the guardian keeps no lock, forwarded signals are not
//! stop requests, the job's own status comes back, and nothing outlives a killed withlock
//! while the lock is free.
//!
//! Time bounds are coarse on purpose: each only separates "did it" from "did not".

use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use crate::exit_codes::{assert_busy, assert_free};
use crate::max_runtime::{Seen, wait_for_pid_file};
use crate::support::{
    TempDir, exists, read_string, require_catchable, run, run_within, send_signal, start, start_holding,
    timing, wait_until, withlock,
};

/// The children of `pid` now.
fn children_of(pid: i32) -> Vec<i32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Does process `pid` have the file `path` open?
fn has_open(pid: i32, path: &Path) -> bool {
    let target = fs::canonicalize(path).unwrap();
    fs::read_dir(format!("/proc/{pid}/fd"))
        .is_ok_and(|fds| fds.flatten().any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l == target)))
}

// ---------------------------------------------------------------------------------------------
// Issue 15, item 2: the limit covers what the job leaves running in its group.

/// The job's main process exits at once, leaving a child in its group that inherited the
/// lock: withlock stays, the lock stays held, and at --max-runtime the leftover is stopped
/// and withlock exits 124 — the lock is never held past the limit, and free when withlock
/// has exited. -v says why withlock waits.
#[test]
fn leftovers_in_the_jobs_group_are_stopped_at_max_runtime() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let (bg, ready) = (t.join("bg"), t.join("ready"));
    let script = r#"sleep 30 & echo $! > "$1"; : > "$2"; exit 3"#;
    let mut cmd = withlock();
    cmd.args(["-v", "--max-runtime", "1.5", "--kill-after", "1"])
        .arg(&lock)
        .args(["sh", "-c", script, "sh"])
        .arg(&bg)
        .arg(&ready);
    let mut running = start_holding(&mut cmd, &ready);
    wait_for_pid_file(&bg);
    let leftover = Seen::from_file(&bg);
    thread::sleep(Duration::from_millis(400));
    assert!(running.is_running(), "withlock exited with the main process, its leftover unlimited");
    assert_busy(&lock);
    let out = running.wait(Duration::from_secs(20));
    out.assert_code(124)
        .assert_stderr_mentions("the job's main process ended (exited with status 3); other processes")
        .assert_stderr_mentions("the job ran longer than --max-runtime: stopping it");
    assert!(
        out.elapsed >= Duration::from_millis(1400) && out.elapsed < Duration::from_secs(8),
        "ended after {:?}: not about --max-runtime 1.5\n{}",
        out.elapsed,
        out.describe()
    );
    assert!(leftover.is_dead(), "the leftover {} outlived withlock", leftover.pid);
    assert_free(&lock);
}

/// Leftovers that end by themselves within the limit: withlock waits for them (they hold
/// the lock), then exits with the main process's status, not 124.
#[test]
fn leftovers_that_end_in_time_leave_the_main_process_status() {
    let _load = timing();
    let t = TempDir::new();
    let out = run_within(
        withlock().args(["--max-runtime", "20"]).arg(t.lock()).args(["sh", "-c", "sleep 1 & exit 3"]),
        Duration::from_secs(20),
    );
    out.assert_code(3);
    assert!(
        out.elapsed >= Duration::from_millis(900) && out.elapsed < Duration::from_secs(10),
        "ended after {:?}: not when the leftover ended\n{}",
        out.elapsed,
        out.describe()
    );
    assert_free(&t.lock());
}

// ---------------------------------------------------------------------------------------------
// Issue 15, item 4: the guardian keeps no lock.

/// With --no-inherit and --max-runtime a guardian process waits to take the job's group
/// down with withlock. It has no descriptor of the lock file, and it is gone (reaped, not a
/// zombie for pid 1) the moment withlock has exited. Then, over many quick runs, the next
/// withlock always finds the lock free.
#[test]
fn the_guardian_holds_no_lock_and_is_reaped() {
    let t = TempDir::new();
    let lock = t.lock();
    let (job_pid, ready, go) = (t.join("job"), t.join("ready"), t.join("go"));
    let script = r#"echo $$ > "$1"; : > "$2"; while [ ! -e "$3" ]; do sleep 0.01; done"#;
    let mut cmd = withlock();
    cmd.args(["--no-inherit", "--max-runtime", "60"])
        .arg(&lock)
        .args(["sh", "-c", script, "sh"])
        .arg(&job_pid)
        .arg(&ready)
        .arg(&go);
    let running = start_holding(&mut cmd, &ready);
    wait_for_pid_file(&job_pid);
    let job: i32 = read_string(&job_pid).trim().parse().unwrap();
    let mut others = Vec::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            others = children_of(running.pid()).into_iter().filter(|&c| c != job).collect();
            !others.is_empty()
        }),
        "no guardian beside the job"
    );
    let guardian = Seen::of(others[0]);
    assert!(has_open(running.pid(), &lock), "withlock does not hold the lock file");
    assert!(!has_open(guardian.pid, &lock), "the guardian {} holds the lock file open", guardian.pid);
    fs::write(&go, b"").unwrap();
    running.wait(Duration::from_secs(10)).assert_code(0);
    assert_eq!(guardian.state(), None, "the guardian {} was left behind by withlock", guardian.pid);

    for round in 0..300 {
        run(withlock().args(["--no-inherit", "--max-runtime", "10"]).arg(&lock).arg("true")).assert_code(0);
        let next = run(withlock().arg(&lock).arg("true"));
        assert_eq!(next.code(), Some(0), "round {round}: the lock was still held\n{}", next.describe());
    }
}

// ---------------------------------------------------------------------------------------------
// Issue 15, item 6: forwarded signals are not stop requests.

/// SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to withlock reach the job's group and that is
/// all: the job, which handles them, runs on well past --kill-after and ends with its own
/// status. (SIGTERM and SIGINT are stop requests: see the next test.)
#[test]
fn forwarded_signals_do_not_stop_the_job() {
    let _load = timing();
    let t = TempDir::new();
    let (seen, ready, go) = (t.join("seen"), t.join("ready"), t.join("go"));
    let signals =
        [(libc::SIGHUP, "HUP"), (libc::SIGQUIT, "QUIT"), (libc::SIGUSR1, "USR1"), (libc::SIGUSR2, "USR2")];
    let signals: Vec<_> =
        signals.into_iter().filter(|&(sig, _)| require_catchable("forwarded", sig)).collect();
    for mode in [&["--max-runtime", "60"][..], &["--no-inherit"], &["--unlink"]] {
        let _ = fs::remove_file(&ready);
        let _ = fs::remove_file(&go);
        let _ = fs::remove_file(&seen);
        let script = r#"for s in HUP QUIT USR1 USR2; do trap "echo $s >> '$1'" $s; done
            : > "$2"; while [ ! -e "$3" ]; do sleep 0.01; done; exit 7"#;
        let mut cmd = withlock();
        cmd.args(mode)
            .args(["--kill-after", "0.3"])
            .arg(t.lock())
            .args(["sh", "-c", script, "sh"])
            .arg(&seen)
            .arg(&ready)
            .arg(&go);
        let mut running = start_holding(&mut cmd, &ready);
        for &(sig, name) in &signals {
            send_signal(running.pid(), sig);
            let got = wait_until(Duration::from_secs(5), || {
                exists(&seen) && read_string(&seen).lines().any(|l| l == name)
            });
            assert!(got, "{mode:?}: SIG{name} did not reach the job");
        }
        thread::sleep(Duration::from_millis(1000));
        assert!(
            running.is_running(),
            "{mode:?}: a forwarded signal ended the job\n{}",
            running.stderr_so_far()
        );
        fs::write(&go, b"").unwrap();
        running.wait(Duration::from_secs(10)).assert_code(7);
    }
}

/// SIGTERM and SIGINT sent to withlock are stop requests: passed to the job's group, and
/// a group that does not end is SIGKILLed after --kill-after, in every mode.
#[test]
fn sigterm_and_sigint_are_stop_requests() {
    let _load = timing();
    let t = TempDir::new();
    for (sig, mode) in [
        (libc::SIGTERM, &["--unlink"][..]),
        (libc::SIGINT, &["--max-runtime", "60"]),
        (libc::SIGTERM, &["--no-inherit"]),
    ] {
        let ready = t.join("ready");
        let _ = fs::remove_file(&ready);
        let script = r#"trap '' TERM INT; : > "$1"; exec sleep 60"#;
        let mut cmd = withlock();
        cmd.args(mode)
            .args(["--kill-after", "0.5"])
            .arg(t.lock())
            .args(["sh", "-c", script, "sh"])
            .arg(&ready);
        let running = start_holding(&mut cmd, &ready);
        send_signal(running.pid(), sig);
        let out = running.wait(Duration::from_secs(20));
        out.assert_signal(libc::SIGKILL);
        assert!(
            out.elapsed < Duration::from_secs(10),
            "{mode:?}: not stopped after --kill-after\n{}",
            out.describe()
        );
        assert_free(&t.lock());
    }
}

/// A job that dumps core: withlock dies of the same signal without a core of its own, and
/// says that the job dumped core (the shell, seeing withlock's status, cannot).
#[test]
fn a_job_that_dumped_core_is_said_to_have() {
    let t = TempDir::new();
    let work = t.mkdir("work", 0o700);
    let in_work = |cmd: &mut std::process::Command| {
        cmd.current_dir(&work);
    };
    // Can a job dump core here at all? (Not where core_pattern pipes to a handler that
    // takes it away, or RLIMIT_CORE cannot be raised.)
    let mut control = std::process::Command::new("sh");
    control.args(["-c", "ulimit -c unlimited && exec sh -c 'kill -QUIT $$'"]);
    in_work(&mut control);
    let control = run(&mut control);
    use std::os::unix::process::ExitStatusExt;
    if !control.status.core_dumped() {
        eprintln!(
            "skipping a_job_that_dumped_core_is_said_to_have: no core dumps here ({:?})",
            control.status
        );
        return;
    }
    for mode in [&["--max-runtime", "60"][..], &["--unlink"]] {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", r#"ulimit -c unlimited && exec "$@""#, "sh"])
            .arg(crate::support::bin())
            .args(mode)
            .arg(t.lock())
            .args(["sh", "-c", "kill -QUIT $$"])
            .env("PATH", crate::support::TEST_PATH)
            .stdin(std::process::Stdio::null());
        in_work(&mut cmd);
        let out = run(&mut cmd);
        out.assert_signal(libc::SIGQUIT)
            .assert_stderr_mentions("withlock: the job was killed by SIGQUIT (core dumped)");
        assert!(!out.status.core_dumped(), "{mode:?}: withlock dumped a core of its own\n{}", out.describe());
    }
}
