//! `--fcntl`: an OFD fcntl lock instead of flock(2) (Linux). It excludes other fcntl
//! lockers (lckdo, with-lock-ex, withlock --fcntl), and not flock(2) users.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{TempDir, exists, run, start_holding, timing, withlock};

const JOB: [&str; 4] = ["sh", "-c", r#": > "$1"; exec sleep 30"#, "sh"];

fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("skipping: {tool} is not installed (make test installs it)");
    }
    found
}

#[test]
fn fcntl_locks_exclude_each_other_and_not_flock() {
    let t = TempDir::new();
    let ready = t.join("ready");
    let _h = start_holding(withlock().arg("--fcntl").arg(t.lock()).args(JOB).arg(&ready), &ready);
    run(withlock().arg("--fcntl").arg(t.lock()).arg("true")).assert_code(75);
    // flock(2) and fcntl locks ignore each other on Linux: the documented limit.
    run(withlock().arg(t.lock()).arg("true")).assert_code(0);
    let out = run(withlock().args(["--status", "--json"]).arg(t.lock()));
    out.assert_code(75);
    assert!(out.stdout_str().contains(r#""state":"held""#), "{}", out.describe());
}

#[test]
fn a_fcntl_waiter_starts_when_the_holder_ends() {
    let _t = timing();
    let t = TempDir::new();
    let ready = t.join("ready");
    let mut holder = withlock();
    holder.arg("--fcntl").arg(t.lock()).args(["sh", "-c", r#": > "$1"; exec sleep 0.4"#, "sh"]).arg(&ready);
    let _h = start_holding(&mut holder, &ready);
    let began = Instant::now();
    run(withlock().args(["--fcntl", "-w", "10"]).arg(t.lock()).arg("true")).assert_code(0);
    assert!(began.elapsed() >= Duration::from_millis(100), "the waiter did not wait");
    // And an expiring wait gives up.
    let _h2 = start_holding(
        withlock().arg("--fcntl").arg(t.lock()).args(JOB).arg(t.join("ready2")),
        &t.join("ready2"),
    );
    run(withlock().args(["--fcntl", "-w", "0.2"]).arg(t.lock()).arg("true")).assert_code(75);
}

#[test]
fn shared_fcntl_locks() {
    let t = TempDir::new();
    let ready = t.join("ready");
    let _h = start_holding(withlock().args(["--fcntl", "-s"]).arg(t.lock()).args(JOB).arg(&ready), &ready);
    run(withlock().args(["--fcntl", "-s"]).arg(t.lock()).arg("true")).assert_code(0);
    run(withlock().arg("--fcntl").arg(t.lock()).arg("true")).assert_code(75);
}

#[test]
fn lckdo_and_withlock_fcntl_exclude_each_other() {
    if !have("lckdo") {
        return;
    }
    let t = TempDir::new();
    let ready = t.join("ready");
    let mut lckdo = Command::new("lckdo");
    lckdo.arg(t.lock()).args(JOB).arg(&ready);
    let h = start_holding(&mut lckdo, &ready);
    run(withlock().arg("--fcntl").arg(t.lock()).arg("true")).assert_code(75);
    drop(h);
    let ready2 = t.join("ready2");
    let _h = start_holding(withlock().arg("--fcntl").arg(t.lock()).args(JOB).arg(&ready2), &ready2);
    let out = Command::new("lckdo").args(["-q"]).arg(t.lock()).arg("true").output().unwrap();
    assert_eq!(out.status.code(), Some(75), "lckdo ran beside withlock --fcntl: {out:?}");
}

#[test]
fn with_lock_ex_and_withlock_fcntl_exclude_each_other() {
    if !have("with-lock-ex") {
        return;
    }
    let t = TempDir::new();
    let ready = t.join("ready");
    let mut wle = Command::new("with-lock-ex");
    wle.arg("-w").arg(t.lock()).args(JOB).arg(&ready);
    let h = start_holding(&mut wle, &ready);
    run(withlock().arg("--fcntl").arg(t.lock()).arg("true")).assert_code(75);
    drop(h);
    let ready2 = t.join("ready2");
    let _h = start_holding(withlock().arg("--fcntl").arg(t.lock()).args(JOB).arg(&ready2), &ready2);
    let marker = t.join("ran");
    let out =
        Command::new("with-lock-ex").arg("-f").arg(t.lock()).arg("touch").arg(&marker).output().unwrap();
    assert!(!out.status.success() && !exists(&marker), "with-lock-ex ran beside withlock --fcntl: {out:?}");
}
