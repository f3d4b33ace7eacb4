//! `-s, --shared`: readers together, never with a writer. Shared holders keep no record.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{TempDir, exists, run, run_within, start, start_holding, timing, wait_until, withlock};

/// `withlock [opts] LOCK sh -c ': > READY; sleep SECS'`, returned once it holds the lock.
fn holder(t: &TempDir, opts: &[&str], secs: &str) -> crate::support::Running {
    let ready = t.join(format!("ready-{}", crate::support::unique_name("h")));
    let mut cmd = withlock();
    cmd.args(opts)
        .arg(t.lock())
        .args(["sh", "-c", r#": > "$1"; exec sleep "$2""#, "sh"])
        .arg(&ready)
        .arg(secs);
    start_holding(&mut cmd, &ready)
}

#[test]
fn shared_holders_run_together_and_exclude_an_exclusive_one() {
    let t = TempDir::new();
    let _a = holder(&t, &["-s"], "30");
    let _b = holder(&t, &["--shared"], "30");
    run(withlock().arg("-s").arg(t.lock()).arg("true")).assert_code(0);
    let out = run(withlock().arg(t.lock()).arg("true"));
    out.assert_code(75).assert_stderr_mentions("held shared by 2 processes");
}

#[test]
fn an_exclusive_holder_excludes_shared_ones() {
    let t = TempDir::new();
    let _w = holder(&t, &[], "30");
    run(withlock().arg("-s").arg(t.lock()).arg("true")).assert_code(75);
}

#[test]
fn an_exclusive_waiter_starts_when_the_last_shared_holder_ends() {
    let _t = timing();
    let t = TempDir::new();
    let reader = holder(&t, &["-s"], "0.5");
    let began = Instant::now();
    run_within(withlock().args(["-w", "10"]).arg(t.lock()).arg("true"), Duration::from_secs(15))
        .assert_code(0);
    assert!(began.elapsed() >= Duration::from_millis(200), "the writer did not wait for the reader");
    drop(reader);
}

/// A waiting writer gets no priority (Linux flock(2)): while shared holders keep
/// overlapping, new ones are let in and the writer waits. This documents the behaviour the
/// README and man page describe; if the kernel ever changes it, this test says so.
#[test]
fn a_stream_of_overlapping_shared_holders_keeps_a_writer_out() {
    let _t = timing();
    let t = TempDir::new();
    // The first reader outlasts the writer's wait, so the outcome does not depend on how
    // fast readers start; each later reader getting in (holder() waits until it holds
    // the lock) while the writer waits is the point: waiting writers get no priority.
    let mut readers = vec![holder(&t, &["-s"], "3")];
    let mut writer = start(withlock().args(["-w", "1"]).arg(t.lock()).arg("true"));
    let until = Instant::now() + Duration::from_millis(800);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
        readers.push(holder(&t, &["-s"], "0.5"));
    }
    let out = writer_wait(&mut writer);
    assert_eq!(out, Some(75), "the writer got in between overlapping readers");
    drop(readers);
}

fn writer_wait(writer: &mut crate::support::Running) -> Option<i32> {
    assert!(wait_until(Duration::from_secs(10), || !writer.is_running()));
    writer.try_status().and_then(|s| s.code())
}

#[test]
fn status_counts_shared_holders_and_shared_runs_write_no_record() {
    let t = TempDir::new();
    let _a = holder(&t, &["-s"], "30");
    let _b = holder(&t, &["-s"], "30");
    assert_eq!(std::fs::metadata(t.lock()).unwrap().len(), 0, "a shared holder wrote a record");
    let out = run(withlock().args(["--status", "--json"]).arg(t.lock()));
    out.assert_code(75);
    let text = out.stdout_str();
    assert!(text.contains(r#""state":"held""#) && text.contains(r#""shared_holders":2"#), "{text}");
    let out = run(withlock().arg("--status").arg(t.lock()));
    assert!(out.stdout_str().contains("held shared by 2 processes"), "{}", out.describe());
}

#[test]
fn shared_locks_interoperate_with_flock_s() {
    let t = TempDir::new();
    let ready = t.join("ready");
    let mut cmd = Command::new("flock");
    cmd.arg("-s").arg(t.lock()).args(["sh", "-c", r#": > "$1"; exec sleep 30"#, "sh"]).arg(&ready);
    let _flock = start(&mut cmd);
    assert!(wait_until(Duration::from_secs(10), || exists(&ready)));
    run(withlock().arg("-s").arg(t.lock()).arg("true")).assert_code(0);
    run(withlock().arg(t.lock()).arg("true")).assert_code(75);
}

#[test]
fn shared_does_not_go_with_replace_or_unlink() {
    let t = TempDir::new();
    for opt in ["--replace", "--unlink"] {
        run(withlock().args(["-s", opt]).arg(t.lock()).arg("true")).assert_code(64);
        assert!(!exists(&t.lock()));
    }
}
