//! `--jitter DURATION`: a random sleep in [0, DURATION] before the lock is even looked at,
//! from the kernel's randomness (getrandom(2), else AT_RANDOM), said with -v.

use std::process::Command;
use std::time::Duration;

use crate::etcd_support::refused_endpoint;
use crate::support::{
    Running, TempDir, exists, filter_syscall, now_epoch_ns, read_epoch_ns, run, run_within, start,
    wait_until, withlock,
};

/// The line -v gives: "withlock: --jitter: sleeping 12.345s (at most 60s) before trying the
/// lock"; the chosen time, as written, and in seconds.
#[track_caller]
fn chosen(stderr: &str, most: &str) -> (String, f64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("withlock: --jitter: sleeping "))
        .unwrap_or_else(|| panic!("-v did not say how long: {stderr:?}"));
    let rest = &line["withlock: --jitter: sleeping ".len()..];
    let (time, tail) = rest.split_once(' ').unwrap();
    assert_eq!(tail, format!("(at most {most}) before trying the lock"), "{line:?}");
    let secs: f64 = time.strip_suffix('s').unwrap().parse().unwrap_or_else(|_| panic!("{line:?}"));
    (time.to_string(), secs)
}

/// Starts `withlock -v --jitter 100h ...` and returns it, once it has said how long it sleeps,
/// with the time it chose.
#[track_caller]
fn sleeping(cmd: &mut Command) -> (Running, String) {
    let mut running = start(cmd);
    let said = wait_until(Duration::from_secs(10), || {
        running.stderr_so_far().contains("before trying the lock") || !running.is_running()
    });
    let stderr = running.stderr_so_far();
    assert!(said && running.is_running(), "no jitter sleep: {stderr:?}");
    let (time, _) = chosen(&stderr, "100h");
    (running, time)
}

/// The job starts only after the sleep -v announced, which lies within [0, DURATION].
#[test]
fn jitter_sleeps_a_random_time_first_and_says_how_long() {
    let t = TempDir::new();
    let stamp = t.join("stamp");
    for _ in 0..3 {
        let before = now_epoch_ns();
        let out = run(withlock()
            .args(["-v", "--jitter", "0.4"])
            .arg(t.lock())
            .args(["sh", "-c", "date +%s%N > \"$0\""])
            .arg(&stamp));
        out.assert_code(0);
        let (_, secs) = chosen(&out.stderr_str(), "0.4s");
        assert!((0.0..=0.4).contains(&secs), "{}", out.describe());
        let waited = (read_epoch_ns(&stamp) - before) as f64 / 1e9;
        assert!(waited >= secs, "the job started {waited}s after withlock, before its {secs}s jitter");
    }
    // 0 is a valid DURATION: no sleep.
    let out = run(withlock().args(["-v", "--jitter", "0"]).arg(t.lock()).arg("true"));
    out.assert_code(0);
    assert_eq!(chosen(&out.stderr_str(), "0s").0, "0s");
    // Without -v, nothing is said.
    run(withlock().args(["--jitter", "50ms"]).arg(t.lock()).arg("true")).assert_code(0).assert_silent();
}

/// While it sleeps, withlock holds nothing: the lock file is not even created, and another
/// withlock takes the lock at once.
#[test]
fn jitter_sleeps_before_the_lock_is_looked_at() {
    let t = TempDir::new();
    let lock = t.lock();
    let (sleeper, _) = sleeping(withlock().args(["-v", "--jitter", "100h"]).arg(&lock).arg("true"));
    assert!(!exists(&lock), "the lock file was made before the jitter sleep ended");
    run(withlock().arg(&lock).arg("true")).assert_code(0);
    drop(sleeper);
}

/// Each run picks another time: eight runs, eight different times (out of 360 million
/// milliseconds). Also where getrandom(2) fails (a seccomp filter makes it ENOSYS, as on a
/// kernel without it): then the kernel's AT_RANDOM bytes still differ per run.
#[test]
fn jitter_differs_from_run_to_run() {
    let t = TempDir::new();
    for without_getrandom in [false, true] {
        let mut times = Vec::new();
        for _ in 0..8 {
            let mut cmd = withlock();
            cmd.args(["-v", "--jitter", "100h"]).arg(t.lock()).arg("true");
            if without_getrandom {
                deny_getrandom(&mut cmd);
            }
            let (running, time) = sleeping(&mut cmd);
            drop(running);
            times.push(time);
        }
        let mut distinct = times.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), times.len(), "without getrandom: {without_getrandom}: {times:?}");
    }
}

/// Makes getrandom(2) fail with ENOSYS in `cmd`: a seccomp filter installed between fork
/// and exec.
fn deny_getrandom(cmd: &mut Command) {
    const I386_GETRANDOM: u32 = 355;
    filter_syscall(cmd, libc::SYS_getrandom, I386_GETRANDOM, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
}

/// A DURATION that is not one (or none at all) is a usage error, and nothing runs; so is
/// --jitter with --status, which only looks.
#[test]
fn bad_jitter_values_are_usage_errors() {
    let t = TempDir::new();
    let marker = t.join("ran");
    for bad in ["soon", "-1", "forever", "", "1d", "5x", "1e3", " 5"] {
        let out = run(withlock().args(["--jitter", bad]).arg(t.lock()).arg("touch").arg(&marker));
        out.assert_code(64).assert_stderr_mentions("bad duration for --jitter");
        let out = run(withlock().arg(format!("--jitter={bad}")).arg(t.lock()).arg("touch").arg(&marker));
        out.assert_code(64).assert_stderr_mentions("bad duration for --jitter");
    }
    run(withlock().arg("--jitter")).assert_code(64).assert_stderr_mentions("option needs a value");
    let out = run(withlock().args(["--status", "--jitter", "5"]).arg(t.lock()));
    out.assert_code(64).assert_stderr_mentions("--jitter");
    assert!(!exists(&marker) && !exists(&t.lock()), "a usage error ran something");
}

/// The sleep comes before an etcd lock too (before any connection): -v says so first.
#[test]
fn jitter_comes_before_an_etcd_lock_too() {
    let url = format!("etcd://{}/jitter", refused_endpoint());
    let out =
        run_within(withlock().args(["-v", "--jitter", "0.1"]).arg(&url).arg("true"), Duration::from_secs(30));
    out.assert_code(69);
    let first = out.stderr_str().lines().next().unwrap_or("").to_string();
    assert!(first.starts_with("withlock: --jitter: sleeping "), "{}", out.describe());
}
