//! Contention torture: many concurrent workers run a critical section that detects overlap
//! (an atomic mkdir) and lost updates (a read-increment-write counter). Also with lock files
//! deleted during the run (by processes that hold the lock, the documented safe way), with
//! util-linux flock(1) workers mixed in, and with `--unlink` removing the lock file after
//! every run. These tests take the machine to themselves.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{TempDir, exclusive, exists, remove_while_holding, run_within, withlock};

/// $1: work dir, $2: lock path, $3: `delete` to remove the lock file at the end (the last
/// thing done while holding the lock).
const CRITICAL: &str = r#"d=$1
mkdir "$d/in" 2>/dev/null || echo OVERLAP >> "$d/log"
read n < "$d/counter"
sleep 0.001
echo $((n + 1)) > "$d/counter"
rmdir "$d/in" 2>/dev/null || echo OVERLAP >> "$d/log"
if [ "$3" = delete ] && [ $((n % 3)) = 0 ]; then rm -f "$2"; fi"#;

#[derive(Clone, Copy, PartialEq)]
enum Locker {
    Withlock,
    Flock,
}

struct Plan {
    workers: usize,
    flock_workers: usize,
    rounds: usize,
    delete: bool,
    /// withlock workers run with `--unlink`.
    unlink: bool,
}

fn torture(plan: &Plan) {
    let _alone = exclusive();
    let t = TempDir::new();
    let work = t.mkdir("work", 0o700);
    fs::write(work.join("counter"), "0\n").unwrap();
    let lock = t.lock();
    let done = AtomicBool::new(false);
    let deletions = AtomicUsize::new(0);
    let began = Instant::now();
    let mode = if plan.delete { "delete" } else { "keep" };
    thread::scope(|s| {
        let mut handles = Vec::new();
        for w in 0..plan.workers {
            let locker = if w < plan.flock_workers { Locker::Flock } else { Locker::Withlock };
            let (work, lock) = (&work, &lock);
            handles.push(s.spawn(move || worker(locker, plan, work, lock, mode)));
        }
        if plan.delete {
            let (lock, done, deletions) = (&lock, &done, &deletions);
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let out = run_within(
                        withlock().args(["-w", "forever"]).arg(lock).args(["rm", "-f"]).arg(lock),
                        Duration::from_secs(60),
                    );
                    out.assert_code(0);
                    deletions.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(2));
                }
            });
        }
        let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        // Stop the deleter before reporting a failed worker, or the scope never ends.
        done.store(true, Ordering::Relaxed);
        for r in results {
            if let Err(panic) = r {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let expected = plan.workers * plan.rounds;
    let log = fs::read_to_string(work.join("log")).unwrap_or_default();
    let counter = fs::read_to_string(work.join("counter")).unwrap();
    eprintln!(
        "torture: {} workers ({} flock) x {} rounds, delete: {}, unlink: {}, {} deleter runs, {:?}",
        plan.workers,
        plan.flock_workers,
        plan.rounds,
        plan.delete,
        plan.unlink,
        deletions.load(Ordering::Relaxed),
        began.elapsed()
    );
    assert!(
        !log.contains("OVERLAP"),
        "critical sections overlapped {} times",
        log.matches("OVERLAP").count()
    );
    assert_eq!(
        counter.trim(),
        expected.to_string(),
        "lost updates: counter {} after {expected} rounds",
        counter.trim()
    );
    if plan.unlink {
        assert!(!exists(&lock), "the lock file is still there after the last --unlink run");
    }
}

fn worker(locker: Locker, plan: &Plan, work: &Path, lock: &Path, mode: &str) {
    for _ in 0..plan.rounds {
        let mut cmd = match locker {
            Locker::Withlock => {
                let mut c = withlock();
                c.args(["-w", "forever"]);
                if plan.unlink {
                    c.arg("--unlink");
                }
                c
            }
            Locker::Flock => Command::new("flock"),
        };
        cmd.arg(lock).args(["sh", "-c", CRITICAL, "sh"]).arg(work).arg(lock).arg(mode);
        let out = run_within(&mut cmd, Duration::from_secs(60));
        out.assert_code(0);
    }
}

#[test]
fn torture_concurrent_waiters_never_overlap_or_lose_updates() {
    torture(&Plan { workers: 16, flock_workers: 0, rounds: 20, delete: false, unlink: false });
}

#[test]
fn torture_with_lock_files_deleted_during_the_run() {
    torture(&Plan { workers: 16, flock_workers: 0, rounds: 20, delete: true, unlink: false });
}

#[test]
fn torture_mixed_with_flock_holders() {
    torture(&Plan { workers: 12, flock_workers: 4, rounds: 15, delete: false, unlink: false });
}

/// `--unlink` removes the lock file after every run, while waiters hold descriptors on it:
/// each must start over on a new file, never run beside the holder of the new one.
#[test]
fn torture_with_unlink_after_every_run() {
    torture(&Plan { workers: 16, flock_workers: 0, rounds: 20, delete: false, unlink: true });
}

/// Lock files removed at any moment by processes that hold the lock (the documented safe
/// way) must never make withlock fail: a file that vanishes between withlock's open and its
/// checks is a file to start over with, not an unsafe one (it has 0 links at that point).
#[test]
fn torture_lock_files_removed_by_holders_never_cause_a_failure() {
    let _alone = exclusive();
    let t = TempDir::new();
    let lock = t.lock();
    let done = AtomicBool::new(false);
    let removed = AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    let began = Instant::now();
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    if remove_while_holding(&lock) {
                        removed.fetch_add(1, Ordering::Relaxed);
                    }
                    thread::yield_now();
                }
            });
        }
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..250 {
                        let out = run_within(
                            withlock().args(["-w", "forever"]).arg(&lock).arg("true"),
                            Duration::from_secs(60),
                        );
                        if out.code() != Some(0) {
                            failures.lock().unwrap().push(out.describe());
                        }
                    }
                })
            })
            .collect();
        let results: Vec<_> = workers.into_iter().map(|h| h.join()).collect();
        done.store(true, Ordering::Relaxed);
        for r in results {
            if let Err(panic) = r {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let failures = failures.into_inner().unwrap();
    eprintln!(
        "removal torture: 1000 runs, {} files removed, {} failures, {:?}",
        removed.load(Ordering::Relaxed),
        failures.len(),
        began.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of 1000 runs failed while lock files were being removed; first:\n{}",
        failures.len(),
        failures[0]
    );
}

/// A writer's critical section: alone, no reader inside. $1: work dir.
const WRITER: &str = r#"d=$1
mkdir "$d/writer" 2>/dev/null || echo "OVERLAP writer+writer" >> "$d/log"
[ -z "$(ls "$d/readers")" ] || echo "OVERLAP writer+reader" >> "$d/log"
read n < "$d/counter"
sleep 0.002
echo $((n + 1)) > "$d/counter"
[ -z "$(ls "$d/readers")" ] || echo "OVERLAP writer+reader" >> "$d/log"
rmdir "$d/writer""#;

/// A reader's critical section: never beside a writer; readers may meet (and count that).
const READER: &str = r#"d=$1
[ ! -d "$d/writer" ] || echo "OVERLAP reader+writer" >> "$d/log"
: > "$d/readers/$$"
[ "$(ls "$d/readers" | wc -l)" -lt 2 ] || echo together >> "$d/met"
sleep 0.002
[ ! -d "$d/writer" ] || echo "OVERLAP reader+writer" >> "$d/log"
rm "$d/readers/$$""#;

/// Readers (`--shared`) and writers on one lock: a writer is never beside anyone, readers
/// do meet, and no writer's update is lost.
#[test]
fn torture_readers_and_writers() {
    let _alone = exclusive();
    let t = TempDir::new();
    let work = t.mkdir("work", 0o700);
    fs::create_dir(work.join("readers")).unwrap();
    fs::write(work.join("counter"), "0\n").unwrap();
    let lock = t.lock();
    let (writers, readers, rounds) = (4, 8, 15);
    thread::scope(|s| {
        for w in 0..writers + readers {
            let (work, lock) = (&work, &lock);
            s.spawn(move || {
                for _ in 0..rounds {
                    let mut cmd = withlock();
                    cmd.args(["-w", "forever"]);
                    if w >= writers {
                        cmd.arg("--shared");
                    }
                    let script = if w >= writers { READER } else { WRITER };
                    cmd.arg(lock).args(["sh", "-c", script, "sh"]).arg(work);
                    run_within(&mut cmd, Duration::from_secs(60)).assert_code(0);
                }
            });
        }
    });
    let log = fs::read_to_string(work.join("log")).unwrap_or_default();
    assert!(log.is_empty(), "exclusion broken:\n{log}");
    assert_eq!(fs::read_to_string(work.join("counter")).unwrap().trim(), (writers * rounds).to_string());
    let met = fs::read_to_string(work.join("met")).unwrap_or_default();
    assert!(met.lines().count() > 0, "readers never held the lock together: --shared did not share");
}
