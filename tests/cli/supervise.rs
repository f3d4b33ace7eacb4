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
        .assert_stderr_mentions("the job's main process ended; waiting for the rest of its group")
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
    // It closes the descriptor first thing (it may not have run yet).
    assert!(
        wait_until(Duration::from_secs(5), || !has_open(guardian.pid, &lock)),
        "the guardian {} holds the lock file open",
        guardian.pid
    );
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
        // withlock keeps an ignored SIGINT ignored (a background job of a script).
        if !require_catchable("sigterm_and_sigint_are_stop_requests (SIGINT)", sig) {
            continue;
        }
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
            .args(crate::support::bin_argv())
            .args(mode)
            .arg(t.lock())
            .args(["sh", "-c", "kill -QUIT $$"])
            .env("PATH", crate::support::TEST_PATH)
            .stdin(std::process::Stdio::null());
        in_work(&mut cmd);
        let out = run(&mut cmd);
        out.assert_signal(libc::SIGQUIT).assert_stderr_mentions(format!(
            "withlock: the job was killed by signal {} (core dumped)",
            libc::SIGQUIT
        ));
        assert!(!out.status.core_dumped(), "{mode:?}: withlock dumped a core of its own\n{}", out.describe());
    }
}

// ---------------------------------------------------------------------------------------------
// Issue 10, item 6: leftovers never make two holders.

/// --unlink: the job exits at once, leaving a process that inherited the lock. In the
/// job's group, it is still the job: withlock waits for it, then removes the file. In a
/// session of its own (a daemon), withlock cannot wait for it: the file must stay, or the
/// next run would take a new file and run beside it. Either way the next run finds the lock
/// busy while the leftover runs, and free afterwards.
#[test]
fn unlink_keeps_the_file_while_a_leftover_holds_the_lock() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let (bg, ready) = (t.join("bg"), t.join("ready"));

    let script = r#"sleep 1.5 & echo $! > "$1"; : > "$2""#;
    let mut cmd = withlock();
    cmd.args(["-v", "--unlink"]).arg(&lock).args(["sh", "-c", script, "sh"]).arg(&bg).arg(&ready);
    let mut running = start_holding(&mut cmd, &ready);
    wait_for_pid_file(&bg);
    let leftover = Seen::from_file(&bg);
    thread::sleep(Duration::from_millis(300));
    assert!(running.is_running(), "withlock did not wait for what its job left in its group");
    assert!(exists(&lock));
    assert_busy(&lock);
    let out = running.wait(Duration::from_secs(10));
    out.assert_code(0).assert_stderr_mentions("removed the lock file");
    assert!(leftover.is_dead());
    assert!(!exists(&lock), "--unlink kept the file once the job's group was gone");

    let _ = fs::remove_file(&bg);
    let script = r#"setsid sleep 30 & echo $! > "$1""#;
    let out = run(withlock().args(["-v", "--unlink"]).arg(&lock).args(["sh", "-c", script, "sh"]).arg(&bg));
    out.assert_code(0);
    let leftover = Seen::from_file(&bg);
    assert!(exists(&lock), "--unlink removed the file a daemon of its job holds locked");
    assert_busy(&lock);
    out.assert_stderr_mentions("the lock file stays");
    send_signal(leftover.pid, libc::SIGKILL);
    assert!(wait_until(Duration::from_secs(5), || leftover.is_dead()));
    assert_free(&lock);
    // With nothing left behind, the file is removed as usual.
    run(withlock().arg("--unlink").arg(&lock).arg("true")).assert_code(0);
    assert!(!exists(&lock), "--unlink kept the file of a job that left nothing behind");
}

/// --no-inherit: withlock alone holds the lock, so when it is SIGKILLed nothing of the
/// job may run on: not the job, nor what it started in its group.
#[test]
fn no_inherit_sigkill_of_withlock_kills_the_jobs_whole_group() {
    let t = TempDir::new();
    let (gc, ready) = (t.join("grandchild"), t.join("ready"));
    let script = r#"sleep 60 & echo $! > "$1"; : > "$2"; wait"#;
    let mut cmd = withlock();
    cmd.arg("--no-inherit").arg(t.lock()).args(["sh", "-c", script, "sh"]).arg(&gc).arg(&ready);
    let running = start_holding(&mut cmd, &ready);
    wait_for_pid_file(&gc);
    let grandchild = Seen::from_file(&gc);
    send_signal(running.pid(), libc::SIGKILL);
    running.wait(Duration::from_secs(10)).assert_signal(libc::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(5), || grandchild.is_dead()),
        "the job's child {} runs on, unlocked, after withlock was killed",
        grandchild.pid
    );
    assert_free(&t.lock());
}

/// --no-inherit: SIGTERM to withlock stops the job's whole group before withlock exits and
/// the lock is free: a child of the job gets it too, and one that ignores it is SIGKILLed
/// after --kill-after.
#[test]
fn no_inherit_sigterm_of_withlock_ends_the_jobs_whole_group_first() {
    let _load = timing();
    let t = TempDir::new();
    let (gc, ready) = (t.join("grandchild"), t.join("ready"));
    for (child, opts) in [
        ("exec sleep 60", &["--no-inherit"][..]),
        ("trap '' TERM; exec sleep 60", &["--no-inherit", "--kill-after", "0.5"]),
    ] {
        let _ = fs::remove_file(&gc);
        let _ = fs::remove_file(&ready);
        let script = format!(r#"({child}) & echo $! > "$1"; : > "$2"; wait"#);
        let mut cmd = withlock();
        cmd.args(opts).arg(t.lock()).args(["sh", "-c", &script, "sh"]).arg(&gc).arg(&ready);
        let running = start_holding(&mut cmd, &ready);
        wait_for_pid_file(&gc);
        let grandchild = Seen::from_file(&gc);
        send_signal(running.pid(), libc::SIGTERM);
        let out = running.wait(Duration::from_secs(20));
        let state = grandchild.state();
        assert!(
            state.is_none(),
            "{child}: the job's child {} was {:?} when withlock exited: it runs on unlocked",
            grandchild.pid,
            state
        );
        out.assert_signal(libc::SIGTERM);
        assert_free(&t.lock());
    }
}

// ---------------------------------------------------------------------------------------------
// Issue 10, item 7: signals at start-up are not lost.

/// Skips (returns false after saying so) unless strace(1) can run here.
pub fn require_strace(test: &str) -> bool {
    let ok = std::process::Command::new("strace")
        .args(["-o", "/dev/null", "true"])
        .stdin(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipping {test}: strace cannot run here");
    }
    ok
}

/// A signal sent to withlock after it forked the job but before the job has exec'd must
/// still reach the job. strace holds the job's first system call (inside fork, before
/// withlock's code in the child runs) for 0.5 s; SIGTERM sent to withlock meanwhile is
/// passed on to the job's group and waits, blocked, in the child. The child must let it act
/// as it would on the job (it dies of it), not run withlock's own handler, which would
/// swallow it: then `sleep 5` runs on.
#[test]
fn a_signal_between_fork_and_exec_reaches_the_job() {
    if !require_strace("a_signal_between_fork_and_exec_reaches_the_job")
        || !require_catchable("a_signal_between_fork_and_exec", libc::SIGTERM)
    {
        return;
    }
    let _load = timing();
    let t = TempDir::new();
    let modes: [&[&str]; 4] = [
        &["--unlink"],
        &["--no-inherit"],
        &["--max-runtime", "60"],
        &["--slots", "2", "--max-runtime", "60"],
    ];
    for mode in modes {
        // Each process's first rt_sigprocmask: withlock's, as it blocks signals before the
        // fork (it starts 0.5 s late), and the child's, in the C library's fork.
        let mut cmd = std::process::Command::new("strace");
        cmd.args(["-f", "-o", "/dev/null", "-e", "trace=rt_sigprocmask"])
            .args(["-e", "inject=rt_sigprocmask:delay_enter=500000:when=1"])
            .args(crate::support::bin_argv())
            .args(mode)
            .arg(t.lock())
            .args(["sleep", "5"])
            .env("PATH", crate::support::TEST_PATH)
            .stdin(std::process::Stdio::null());
        let tracer = start(&mut cmd);
        // strace's own probes are children too, for an instant: wait for withlock.
        let mut traced = None;
        assert!(
            wait_until(Duration::from_secs(5), || {
                traced =
                    children_of(tracer.pid()).into_iter().find(|&pid| crate::support::runs_withlock(pid));
                traced.is_some()
            }),
            "strace did not start withlock"
        );
        // withlock forks at about 0.5 s, the child runs on at about 1 s.
        thread::sleep(Duration::from_millis(750));
        send_signal(traced.unwrap(), libc::SIGTERM);
        let out = tracer.wait(Duration::from_secs(20));
        // strace ends as its tracee did.
        assert_eq!(
            out.signal(),
            Some(libc::SIGTERM),
            "{mode:?}: the SIGTERM sent before the job started was lost\n{}",
            out.describe()
        );
        assert!(out.elapsed < Duration::from_secs(4), "{mode:?}: the job ran on\n{}", out.describe());
    }
}
