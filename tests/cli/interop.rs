//! withlock takes the same flock(2) locks as util-linux flock(1): each excludes the other.

use std::time::Duration;

use crate::support::{TempDir, exists, hold, hold_with_flock, run, run_touch, start};

#[test]
fn lock_held_by_flock_makes_withlock_busy() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold_with_flock(&t, &lock);
    let marker = t.join("ran");
    run_touch(&[], &lock, &marker).assert_code(75).assert_one_message_naming(&lock);
    assert!(!exists(&marker), "withlock ran while flock(1) held the lock");
    holder.release().assert_code(0);
    run_touch(&[], &lock, &marker).assert_code(0);
    assert!(exists(&marker));
}

#[test]
fn lock_held_by_withlock_makes_flock_fail() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let out = run(std::process::Command::new("flock").arg("-n").arg(&lock).arg("true"));
    assert_eq!(out.code(), Some(1), "flock -n succeeded while withlock held the lock\n{}", out.describe());
    holder.release().assert_code(0);
    let out = run(std::process::Command::new("flock").arg("-n").arg(&lock).arg("true"));
    assert_eq!(out.code(), Some(0), "{}", out.describe());
}

#[test]
fn withlock_waits_for_a_flock_holder() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold_with_flock(&t, &lock);
    let marker = t.join("ran");
    let waiter = start(crate::support::withlock().args(["-w", "20"]).arg(&lock).arg("touch").arg(&marker));
    crate::support::wait_until_has_open(waiter.pid(), &lock);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!exists(&marker), "withlock ran while flock(1) held the lock");
    holder.release().assert_code(0);
    waiter.wait(Duration::from_secs(10)).assert_code(0);
    assert!(exists(&marker));
}
