//! Waiting with -w: giving up on time, taking the lock as soon as it is released, the
//! duration syntax; and lock files that are stale, deleted or replaced while in use.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::Duration;

use crate::exit_codes::{assert_busy, assert_free};
use crate::support::{
    TempDir, exists, hold, hold_until_killed, inode_of, read_epoch_ns, run, run_touch, run_within, start,
    timing, wait_until_has_open, withlock,
};

#[test]
fn expired_wait_gives_up_within_a_sane_window() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let marker = t.join("ran");
    for (value, min_ms) in [("0.3", 250), ("250ms", 200), (".5", 450), ("0.4s", 350)] {
        let out = run_within(
            withlock().args(["-w", value]).arg(&lock).arg("touch").arg(&marker),
            Duration::from_secs(10),
        );
        out.assert_code(75).assert_one_message_naming(&lock);
        assert!(
            out.elapsed >= Duration::from_millis(min_ms) && out.elapsed < Duration::from_secs(3),
            "-w {value}: gave up after {:?}\n{}",
            out.elapsed,
            out.describe()
        );
    }
    assert!(!exists(&marker), "the command ran although the lock was busy");
    holder.release();
}

#[test]
fn wait_zero_does_not_wait() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let marker = t.join("ran");
    for value in ["0", "0s", "0ms", "0.0"] {
        let out = run_within(
            withlock().args(["-w", value]).arg(&lock).arg("touch").arg(&marker),
            Duration::from_secs(10),
        );
        out.assert_code(75);
        assert!(out.elapsed < Duration::from_secs(2), "-w {value} waited {:?}", out.elapsed);
    }
    assert!(!exists(&marker));
    holder.release();
}

/// The waiter blocks in the kernel: it must start within a coarse bound of the holder's
/// exit (a polling implementation with a 1 s period fails this), and never before it.
#[test]
fn waiter_takes_the_lock_as_soon_as_the_holder_exits() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let ready = t.join("ready");
    let holder_done = t.join("holder-done");
    let waiter_start = t.join("waiter-start");
    let holder = start(
        withlock()
            .arg(&lock)
            .args(["sh", "-c", r#": > "$1"; sleep 0.5; date +%s%N > "$2""#, "sh"])
            .arg(&ready)
            .arg(&holder_done),
    );
    assert!(crate::support::wait_until(Duration::from_secs(10), || exists(&ready)), "holder never ran");
    let waiter = start(
        withlock()
            .args(["-w", "10"])
            .arg(&lock)
            .args(["sh", "-c", r#"date +%s%N > "$1""#, "sh"])
            .arg(&waiter_start),
    );
    holder.wait(Duration::from_secs(10)).assert_code(0);
    let out = waiter.wait(Duration::from_secs(15));
    out.assert_code(0);
    let gap_ns = read_epoch_ns(&waiter_start) - read_epoch_ns(&holder_done);
    assert!(gap_ns > 0, "the waiter ran {gap_ns} ns before the holder was done");
    assert!(gap_ns < 500_000_000, "the waiter started {} ms after the holder exited", gap_ns / 1_000_000);
}

#[test]
fn wait_forever_waits_until_the_lock_is_free() {
    let t = TempDir::new();
    let lock = t.lock();
    for value in ["forever", "inf"] {
        let holder = hold(&t, &lock);
        let marker = t.join(format!("ran-{value}"));
        let waiter = start(withlock().args(["-w", value]).arg(&lock).arg("touch").arg(&marker));
        wait_until_has_open(waiter.pid(), &lock);
        thread::sleep(Duration::from_millis(300));
        assert!(!exists(&marker), "-w {value}: ran while the lock was held");
        holder.release().assert_code(0);
        waiter.wait(Duration::from_secs(10)).assert_code(0);
        assert!(exists(&marker), "-w {value}: the command never ran");
    }
}

/// Minutes and hours are not misread as seconds or milliseconds: waiters with long limits
/// are all still waiting after 2 s, and each gets the lock in turn.
#[test]
fn long_and_suffixed_durations_wait_long_enough() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let values = ["1m", "2h", "1.5h", "0.05h", "90s", "5000ms", "3", "3.5", "10m", "forever", "inf"];
    let waiters: Vec<_> = values
        .iter()
        .map(|v| {
            let w = start(withlock().args(["-w", v]).arg(&lock).args(["echo", v]));
            (v, w)
        })
        .collect();
    thread::sleep(Duration::from_millis(2000));
    holder.release().assert_code(0);
    for (v, w) in waiters {
        let out = w.wait(Duration::from_secs(20));
        assert_eq!(out.code(), Some(0), "-w {v}\n{}", out.describe());
        assert_eq!(out.stdout_str(), format!("{v}\n"));
    }
}

#[test]
fn fractional_and_suffixed_durations_are_accepted_with_a_free_lock() {
    let t = TempDir::new();
    for value in [
        "0.2", ".5", "10", "0", "200ms", "250ms", "1m", "5m", "1.5h", "2h", "5s", "0.5s", "1.0", "forever",
        "inf",
    ] {
        let out = run(withlock().args(["-w", value]).arg(t.lock()).args(["echo", "ok"]));
        assert_eq!(out.code(), Some(0), "-w {value}\n{}", out.describe());
        assert_eq!(out.stdout_str(), "ok\n", "-w {value}");
    }
}

#[test]
fn stale_lock_file_from_an_earlier_run_does_not_block() {
    let t = TempDir::new();
    let lock = t.lock();
    run(withlock().arg(&lock).arg("true")).assert_code(0);
    assert!(exists(&lock), "the lock file should stay after a run");
    let marker = t.join("ran");
    run_touch(&[], &lock, &marker).assert_code(0);
    assert!(exists(&marker));
}

#[test]
fn lock_file_of_a_killed_holder_does_not_block() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold_until_killed(&t, &lock);
    holder.kill(libc::SIGKILL).assert_signal(libc::SIGKILL);
    assert!(exists(&lock));
    let marker = t.join("ran");
    run_touch(&[], &lock, &marker).assert_code(0);
    assert!(exists(&marker));
}

/// Deleting the lock file while it is held lets the next withlock create a new file and
/// run (documented: the lock belongs to the old, now nameless, file).
#[test]
fn lock_file_deleted_while_held_lets_the_next_run_start_on_a_new_file() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let old_inode = inode_of(&lock);
    assert_busy(&lock);
    fs::remove_file(&lock).unwrap();
    let marker = t.join("ran");
    let out = run(withlock().arg(&lock).arg("touch").arg(&marker));
    out.assert_code(0);
    assert!(exists(&marker), "the second withlock did not run");
    assert!(exists(&lock), "no new lock file was created");
    // The old inode may be reused once the holder is gone, but not while it still runs.
    assert_ne!(inode_of(&lock), old_inode, "the lock file was not recreated");
    holder.release().assert_code(0);
}

/// A waiter that opened the lock file before it was deleted must notice, after getting the
/// lock on the old file, that the path now names another file held by someone else, and
/// wait for that one instead of running alongside its holder.
#[test]
fn waiter_on_a_replaced_lock_file_starts_over_on_the_new_file() {
    let t = TempDir::new();
    let lock = t.lock();
    let first = hold(&t, &lock);
    let marker = t.join("waiter-ran");
    let waiter = start(withlock().args(["-w", "20"]).arg(&lock).arg("touch").arg(&marker));
    wait_until_has_open(waiter.pid(), &lock);
    fs::remove_file(&lock).unwrap();
    let second = hold(&t, &lock);
    // The waiter now gets the lock on the old, deleted file.
    first.release().assert_code(0);
    thread::sleep(Duration::from_millis(400));
    assert!(!exists(&marker), "the waiter ran on the deleted lock file while the new one was held");
    assert_busy(&lock);
    second.release().assert_code(0);
    waiter.wait(Duration::from_secs(10)).assert_code(0);
    assert!(exists(&marker), "the waiter never ran");
    assert_free(&lock);
}

/// A job may delete its own lock file as the last thing it does (the safe way to remove
/// one): waiters that already hold a descriptor on the old file must start over on the new
/// one, so jobs still run one at a time.
#[test]
fn job_deleting_its_own_lock_file_last_hands_over_cleanly() {
    let t = TempDir::new();
    let lock = t.lock();
    let log = t.join("log");
    let script = r#"echo "start $3" >> "$2"; sleep 0.05; echo "end $3" >> "$2"; rm -f "$1""#;
    let runs: Vec<_> = (0..8)
        .map(|i| {
            start(
                withlock()
                    .args(["-w", "20"])
                    .arg(&lock)
                    .args(["sh", "-c", script, "sh"])
                    .arg(&lock)
                    .arg(&log)
                    .arg(i.to_string()),
            )
        })
        .collect();
    for r in runs {
        r.wait(Duration::from_secs(20)).assert_code(0);
    }
    assert_alternating(&log, 8);
}

/// The log holds `start i` / `end i` lines: every start must be followed by its own end.
#[track_caller]
pub fn assert_alternating(log: &Path, expected_runs: usize) {
    let text = fs::read_to_string(log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2 * expected_runs, "log:\n{text}");
    for pair in lines.chunks(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(
            a.starts_with("start ") && b.starts_with("end ") && a[6..] == b[4..],
            "two jobs overlapped:\n{text}"
        );
    }
}

/// A wait shorter than a nanosecond is not "do not wait": it is rounded up, and the
/// message says how long withlock waited (issue 15, item 7). Durations are echoed in the
/// largest unit that says them exactly, as a user would write them (item 10): `-w 720h`
/// is "720h", not "2592000s".
#[test]
fn durations_are_rounded_up_and_echoed_as_written() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let marker = t.join("ran");
    let out = run(withlock().args(["-v", "-w", "0.0000000001"]).arg(&lock).arg("touch").arg(&marker));
    out.assert_code(75)
        .assert_stderr_mentions("is busy; waiting for it up to 0.000000001s")
        .assert_stderr_mentions("is still busy after waiting 0.000000001s");
    for (value, shown) in
        [("720h", "720h"), ("90", "90s"), ("1.5h", "90m"), ("3600", "1h"), ("250ms", "0.25s")]
    {
        // Only the announcement is looked at: the holder is released after it.
        let mut waiter = start(withlock().args(["-v", "-w", value]).arg(&lock).arg("true"));
        let said = crate::support::wait_until(Duration::from_secs(10), || {
            waiter.stderr_so_far().contains("waiting for it up to") || !waiter.is_running()
        });
        let text = waiter.stderr_so_far();
        assert!(said, "-w {value}: no announcement: {text}");
        assert!(text.contains(&format!("waiting for it up to {shown}\n")), "-w {value}: {text}");
    }
    holder.release();
    assert!(!exists(&marker));
}
