//! Signals and process lifetime: withlock execs the job, so signals sent to its pid reach
//! the job, the lock lives exactly as long as some process keeps the descriptor, and a
//! waiting withlock dies of signals like any process that has run nothing yet.

use std::os::unix::process::CommandExt;
use std::thread;
use std::time::Duration;

use crate::exit_codes::{assert_busy, assert_free};
use crate::support::{
    TempDir, exists, hold, hold_until_killed, now_epoch_ns, read_epoch_ns, require_catchable, run,
    send_signal, start, timing, wait_until, wait_until_has_open, withlock,
};

/// SIGKILL to withlock's pid kills the job (they are one process), but a background child
/// that inherited the lock descriptor keeps the lock until it exits.
#[test]
fn sigkill_of_withlock_leaves_the_lock_with_a_background_child_that_inherited_it() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let ready = t.join("ready");
    let bg_done = t.join("bg-done");
    let job = start(
        withlock()
            .arg(&lock)
            .args(["sh", "-c", r#"(sleep 1.5; date +%s%N > "$2") & : > "$1"; wait"#, "sh"])
            .arg(&ready)
            .arg(&bg_done),
    );
    assert!(wait_until(Duration::from_secs(10), || exists(&ready)));
    send_signal(job.pid(), libc::SIGKILL);
    job.wait(Duration::from_secs(10)).assert_signal(libc::SIGKILL);
    // The job is dead; its background child still runs and holds the lock.
    assert!(!exists(&bg_done), "the background child finished too early");
    assert_busy(&lock);
    let started = t.join("started");
    run(withlock()
        .args(["-w", "10"])
        .arg(&lock)
        .args(["sh", "-c", r#"date +%s%N > "$1""#, "sh"])
        .arg(&started))
    .assert_code(0);
    assert!(
        read_epoch_ns(&started) > read_epoch_ns(&bg_done),
        "the lock was free before the background child that held it exited"
    );
    assert_free(&lock);
}

/// When the job dies (even by SIGKILL) the lock is free at once: a waiter starts promptly.
#[test]
fn sigkill_of_the_job_frees_the_lock_at_once() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold_until_killed(&t, &lock);
    let started = t.join("started");
    let waiter = start(
        withlock()
            .args(["-w", "10"])
            .arg(&lock)
            .args(["sh", "-c", r#"date +%s%N > "$1""#, "sh"])
            .arg(&started),
    );
    wait_until_has_open(waiter.pid(), &lock);
    let killed_at = now_epoch_ns();
    holder.kill(libc::SIGKILL).assert_signal(libc::SIGKILL);
    waiter.wait(Duration::from_secs(10)).assert_code(0);
    let gap_ns = read_epoch_ns(&started) - killed_at;
    assert!(gap_ns < 500_000_000, "the waiter started {} ms after the holder was killed", gap_ns / 1_000_000);
}

/// Each signal sent to withlock's pid reaches the job, which traps it and exits with a
/// code of its own.
#[test]
fn signals_sent_to_withlock_reach_the_job() {
    let t = TempDir::new();
    let lock = t.lock();
    let cases = [
        (libc::SIGTERM, "TERM", 81),
        (libc::SIGINT, "INT", 82),
        (libc::SIGHUP, "HUP", 83),
        (libc::SIGQUIT, "QUIT", 84),
        (libc::SIGUSR1, "USR1", 85),
        (libc::SIGUSR2, "USR2", 86),
    ];
    for (sig, name, code) in cases {
        if !require_catchable("signals_sent_to_withlock_reach_the_job", sig) {
            continue;
        }
        let ready = t.join(format!("ready-{name}"));
        let job = start(
            withlock()
                .arg(&lock)
                .args(["sh", "-c", r#"trap "exit $2" $3; : > "$1"; while :; do sleep 0.02; done"#, "sh"])
                .arg(&ready)
                .arg(code.to_string())
                .arg(name),
        );
        assert!(wait_until(Duration::from_secs(10), || exists(&ready)), "{name}: the job never ran");
        send_signal(job.pid(), sig);
        let out = job.wait(Duration::from_secs(10));
        assert_eq!(out.code(), Some(code), "SIG{name} did not reach the job's trap\n{}", out.describe());
    }
    assert_free(&lock);
}

/// Ctrl-C goes to the whole foreground process group: the job must see it exactly once
/// (a wrapper that forwarded it as well would deliver it twice).
#[test]
fn ctrl_c_to_the_process_group_reaches_the_job_exactly_once() {
    if !require_catchable("ctrl_c_to_the_process_group", libc::SIGINT) {
        return;
    }
    let t = TempDir::new();
    let lock = t.lock();
    let ready = t.join("ready");
    let script = r#"n=0; trap 'n=$((n + 1))' INT; sleep 1 & pid=$!; : > "$1"
        while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done; echo "$n""#;
    let mut cmd = withlock();
    cmd.process_group(0).arg(&lock).args(["sh", "-c", script, "sh"]).arg(&ready);
    let job = start(&mut cmd);
    assert!(wait_until(Duration::from_secs(10), || exists(&ready)));
    send_signal(-job.pid(), libc::SIGINT);
    job.wait(Duration::from_secs(10)).assert_code(0).assert_stdout("1\n");
}

/// While waiting, withlock has run nothing: a signal simply ends it, and the command
/// never runs, not even after the lock is released.
#[test]
fn signal_while_waiting_ends_withlock_and_nothing_runs() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    for (sig, wait) in
        [(libc::SIGTERM, "10"), (libc::SIGINT, "forever"), (libc::SIGHUP, "10"), (libc::SIGUSR1, "forever")]
    {
        if !require_catchable("signal_while_waiting", sig) {
            continue;
        }
        let marker = t.join(format!("ran-{sig}"));
        let waiter = start(withlock().args(["-w", wait]).arg(&lock).arg("touch").arg(&marker));
        wait_until_has_open(waiter.pid(), &lock);
        send_signal(waiter.pid(), sig);
        waiter.wait(Duration::from_secs(10)).assert_signal(sig);
        assert!(!exists(&marker));
    }
    holder.release().assert_code(0);
    thread::sleep(Duration::from_millis(100));
    let leftovers: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("ran-"))
        .collect();
    assert!(leftovers.is_empty(), "a killed waiter's command ran");
}

/// SIGTERM to withlock's pid kills the job itself (no trap): the caller sees that death and
/// the lock is free at once (a forking wrapper would leave the job running with the lock).
#[test]
fn sigterm_to_withlock_kills_the_job_and_frees_the_lock() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold_until_killed(&t, &lock);
    holder.kill(libc::SIGTERM).assert_signal(libc::SIGTERM);
    assert_free(&lock);
}
