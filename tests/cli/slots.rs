//! `--slots N`: at most N jobs at once, each in its own slot file `LOCK.i` and told its
//! slot in `WITHLOCK_SLOT`; waiting (`-w`) in turn at the gate LOCK for any slot, in the
//! kernel; mixed N refused; and the contention torture: never more than N, every slot used,
//! no two running jobs with the same slot.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{
    Out, Running, TempDir, bin_argv, exclusive, exists, hold, is_root, mode_of, read_epoch_ns, read_string,
    run, run_within, runs_withlock, send_signal, start, start_holding, timing, unique_name, wait_until,
    wait_until_has_open, withlock,
};

/// `LOCK.i`
fn slot_file(lock: &Path, slot: usize) -> PathBuf {
    let mut name = lock.as_os_str().to_owned();
    name.push(format!(".{slot}"));
    PathBuf::from(name)
}

/// A job holding a slot until released: it writes its `WITHLOCK_SLOT` to its ready file,
/// then idles until the release file appears (or its ready file is gone: the test ended),
/// then writes the time to its done file.
const SLOT_HOLDER: &str = r#"printf %s "$WITHLOCK_SLOT" > "$1.tmp" && mv "$1.tmp" "$1"
while [ ! -e "$2" ] && [ -e "$1" ]; do sleep 0.01; done
date +%s%N > "$3""#;

struct SlotHolder {
    run: Running,
    slot: usize,
    release: PathBuf,
    done: PathBuf,
}

impl SlotHolder {
    fn release(self) -> (Out, i128) {
        fs::write(&self.release, b"").unwrap();
        let out = self.run.wait(Duration::from_secs(10));
        out.assert_code(0);
        (out, read_epoch_ns(&self.done))
    }
}

/// `withlock OPTS --slots N LOCK <holder job>`, returned once the job runs.
#[track_caller]
fn hold_slot(t: &TempDir, lock: &Path, slots: usize, opts: &[&str]) -> SlotHolder {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let (ready, release, done) = (
        t.join(format!("slot-{n}.ready")),
        t.join(format!("slot-{n}.release")),
        t.join(format!("slot-{n}.done")),
    );
    let mut cmd = withlock();
    cmd.args(opts).arg("--slots").arg(slots.to_string()).arg(lock);
    cmd.args(["sh", "-c", SLOT_HOLDER, "sh"]).arg(&ready).arg(&release).arg(&done);
    let run = start_holding(&mut cmd, &ready);
    let slot = read_string(&ready)
        .parse()
        .unwrap_or_else(|e| panic!("WITHLOCK_SLOT {:?}: {e}", read_string(&ready)));
    SlotHolder { run, slot, release, done }
}

/// `withlock --slots N LOCK sh -c 'printf %s "$WITHLOCK_SLOT"'`
fn run_slot(opts: &[&str], slots: usize, lock: &Path) -> Out {
    run(withlock().args(opts).arg("--slots").arg(slots.to_string()).arg(lock).args([
        "sh",
        "-c",
        r#"printf %s "$WITHLOCK_SLOT""#,
    ]))
}

/// Processes running the withlock binary itself (not a job it became) that have `path`
/// open: watchers or waiters.
fn withlocks_with_open(path: &Path) -> Vec<i32> {
    let target = fs::canonicalize(path).unwrap();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        if !runs_withlock(pid) {
            continue;
        }
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else { continue };
        if fds.flatten().any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l == target)) {
            found.push(pid);
        }
    }
    found
}

/// CPU time (user + system, in clock ticks) of `pid` and of its children so far.
fn cpu_ticks(pid: i32) -> u64 {
    let fields = |pid: &str| -> u64 {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let f: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15; f[0] is field 3.
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
            + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    fields(&pid.to_string()) + children.split_whitespace().map(fields).sum::<u64>()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn bad_slot_counts_and_combinations_are_usage_errors() {
    let t = TempDir::new();
    let lock = t.lock();
    for bad in ["0", "65", "100", "", "x", "-1", "2.5", "0003"] {
        let out = run(withlock().args(["--slots", bad]).arg(&lock).arg("true"));
        out.assert_code(64).assert_stderr_mentions("bad number for --slots (from 1 to 64)");
    }
    for other in ["-s", "--shared", "--replace", "--unlink", "--no-inherit", "--fcntl"] {
        let out = run(withlock().args(["--slots", "2", other]).arg(&lock).arg("true"));
        out.assert_code(64).assert_stderr_mentions("--slots does not go with");
    }
    let out = run(withlock().args(["--status", "--slots", "2"]).arg(&lock));
    out.assert_code(64).assert_stderr_mentions("--slots");
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0, "a usage error created files");
    // An etcd lock has one holder: N of them is refused before anything is contacted (no
    // server listens there; a run would be 69).
    let marker = t.join("ran");
    let out = run(withlock().args(["--slots", "2", "etcd://127.0.0.1:9/slots"]).arg("touch").arg(&marker));
    out.assert_code(64).assert_stderr_mentions("--slots does not go with an etcd:// LOCK");
    assert!(!exists(&marker));
    // The largest N is fine.
    run_slot(&[], 64, &lock).assert_code(0).assert_stdout("0");
}

/// Slots are taken in order, each job learns its own, and the N+1st is busy like a busy
/// lock: 75 with one line, 0 and silence with -q, N with -E N; its command does not run.
#[test]
fn n_jobs_run_and_the_next_one_is_busy() {
    let t = TempDir::new();
    let lock = t.lock();
    let holders: Vec<_> = (0..3).map(|_| hold_slot(&t, &lock, 3, &[])).collect();
    assert_eq!(holders.iter().map(|h| h.slot).collect::<Vec<_>>(), [0, 1, 2]);
    let marker = t.join("ran");
    let out = run(withlock().args(["--slots", "3"]).arg(&lock).arg("touch").arg(&marker));
    out.assert_code(75).assert_one_message_naming(&lock).assert_stderr_mentions("all 3 slots are taken");
    run(withlock().args(["-q", "--slots", "3"]).arg(&lock).arg("touch").arg(&marker))
        .assert_code(0)
        .assert_silent();
    run(withlock().args(["-E", "9", "--slots", "3"]).arg(&lock).arg("touch").arg(&marker)).assert_code(9);
    assert!(!exists(&marker), "a job ran while all slots were taken");
    // A slot freed in the middle is the one the next job gets.
    let mut holders = holders.into_iter();
    let (first, middle, last) = (holders.next().unwrap(), holders.next().unwrap(), holders.next().unwrap());
    middle.release();
    run_slot(&[], 3, &lock).assert_code(0).assert_stdout("1");
    first.release();
    last.release();
    run_slot(&[], 3, &lock).assert_code(0).assert_stdout("0");
}

/// Each slot is a lock file like any other: created 0600 next to LOCK, holding a record that
/// names its slot, readable by --status; LOCK itself is made only by waiters (the gate), and
/// LOCK.N never.
#[test]
fn slot_files_hold_their_own_records() {
    let t = TempDir::new();
    let lock = t.lock();
    let holders: Vec<_> = (0..2).map(|_| hold_slot(&t, &lock, 3, &[])).collect();
    for (i, holder) in holders.iter().enumerate() {
        let file = slot_file(&lock, i);
        assert_eq!(mode_of(&file) & 0o7777, 0o600, "{}", file.display());
        assert!(fs::symlink_metadata(&file).unwrap().is_file());
        let record = read_string(&file);
        assert!(record.starts_with("withlock-holder 1\n"), "{record}");
        assert!(record.contains(&format!("\npid={}\n", holder.run.pid())), "{record}");
        assert!(record.contains(&format!("\nslots=3\nslot={i}\n")), "{record}");
        let status = run(withlock().arg("--status").arg(&file));
        status.assert_code(75);
        assert!(
            status.stdout_str().contains(&format!("held by pid {}", holder.run.pid())),
            "{}",
            status.describe()
        );
    }
    assert!(!exists(&lock), "the gate was made without -w");
    assert!(!exists(&slot_file(&lock, 2)) && !exists(&slot_file(&lock, 3)));
    run_slot(&["-w", "5"], 3, &lock).assert_code(0).assert_stdout("2");
    assert_eq!(mode_of(&lock) & 0o7777, 0o600, "the gate");
    assert!(!exists(&slot_file(&lock, 3)), "LOCK.N was created");
    for holder in holders {
        holder.release();
    }
}

/// Slot numbers of two digits: the file, the record and `WITHLOCK_SLOT` agree.
#[test]
fn slots_past_nine() {
    let t = TempDir::new();
    let lock = t.lock();
    // Slots 0 to 10 held by plain withlocks, which record no N.
    let holders: Vec<_> = (0..11).map(|i| hold(&t, &slot_file(&lock, i))).collect();
    run_slot(&[], 20, &lock).assert_code(0).assert_stdout("11");
    assert!(read_string(&slot_file(&lock, 11)).contains("\nslots=20\nslot=11\n"));
    for holder in holders {
        holder.release();
    }
}

/// The job's environment is the caller's, with exactly one `WITHLOCK_SLOT`.
#[test]
fn withlock_slot_replaces_any_inherited_one() {
    let t = TempDir::new();
    let out = run(withlock()
        .env("WITHLOCK_SLOT", "stale")
        .env("KEEP_ME", "yes")
        .args(["--slots", "2"])
        .arg(t.lock())
        .arg("env"));
    out.assert_code(0);
    let env = out.stdout_str();
    let slots: Vec<_> = env.lines().filter(|l| l.starts_with("WITHLOCK_SLOT=")).collect();
    assert_eq!(slots, ["WITHLOCK_SLOT=0"], "{env}");
    assert!(env.lines().any(|l| l == "KEEP_ME=yes"), "{env}");
    assert!(env.lines().any(|l| l == "PATH=/usr/bin:/bin"), "{env}");
}

/// A waiter starts as soon as any slot is freed, not only slot 0, within a bound only a
/// poller could miss; the job it becomes holds its slot's descriptor and no other (not the
/// gate's), and has no children left (every watcher was reaped).
#[test]
fn a_waiter_takes_whichever_slot_frees_first() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    for freed in [1, 2, 0] {
        let mut holders: Vec<_> = (0..3).map(|_| Some(hold_slot(&t, &lock, 3, &[]))).collect();
        let ready = t.join(format!("waiter-{freed}.ready"));
        let started = t.join(format!("waiter-{freed}.started"));
        let release = t.join(format!("waiter-{freed}.release"));
        let mut waiter = start(
            withlock()
                .args(["-w", "30", "--slots", "3"])
                .arg(&lock)
                .args(["sh", "-c", r#"date +%s%N > "$2"; printf %s "$WITHLOCK_SLOT" > "$1.tmp"; mv "$1.tmp" "$1"; while [ ! -e "$3" ]; do sleep 0.01; done"#, "sh"])
                .arg(&ready)
                .arg(&started)
                .arg(&release),
        );
        wait_until_has_open(waiter.pid(), &slot_file(&lock, 2));
        thread::sleep(Duration::from_millis(200));
        assert!(!exists(&started), "the waiter ran while every slot was taken");
        let (_, done) = holders[freed].take().unwrap().release();
        assert!(wait_until(Duration::from_secs(10), || exists(&ready)), "the waiter never ran");
        assert!(waiter.is_running());
        assert_eq!(read_string(&ready), freed.to_string());
        let gap_ms = (read_epoch_ns(&started) - done) / 1_000_000;
        assert!((0..500).contains(&gap_ms), "the waiter started {gap_ms} ms after slot {freed} was freed");

        let pid = waiter.pid();
        let open: BTreeSet<PathBuf> = fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .filter_map(|fd| fs::read_link(fd.path()).ok())
            .filter(|target| target.starts_with(t.path()))
            .collect();
        let mine = fs::canonicalize(slot_file(&lock, freed)).unwrap();
        assert_eq!(open, BTreeSet::from([mine]), "the job's descriptors in the lock directory");
        let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        assert!(
            children.split_whitespace().all(|child| !runs_withlock(child.parse().unwrap())),
            "the job has a watcher for a child: {children}"
        );
        assert!(withlocks_with_open(&slot_file(&lock, 0)).is_empty(), "a watcher outlived the wait");
        // The gate is free while the job runs.
        let gate = run(Command::new("flock").args(["-n"]).arg(&lock).arg("true"));
        gate.assert_code(0);
        fs::write(&release, b"").unwrap();
        waiter.wait(Duration::from_secs(10)).assert_code(0);
        for holder in holders.into_iter().flatten() {
            holder.release();
        }
    }
}

/// Waiting for a slot blocks in the kernel: a waiter and its watchers use no CPU to speak
/// of while they wait.
#[test]
fn waiting_for_a_slot_uses_no_cpu() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let holders: Vec<_> = (0..2).map(|_| hold_slot(&t, &lock, 2, &[])).collect();
    let waiter = start(withlock().args(["-w", "forever", "--slots", "2"]).arg(&lock).arg("true"));
    wait_until_has_open(waiter.pid(), &slot_file(&lock, 1));
    thread::sleep(Duration::from_millis(100));
    let before = cpu_ticks(waiter.pid());
    thread::sleep(Duration::from_millis(1500));
    let used = cpu_ticks(waiter.pid()) - before;
    assert!(used <= 2, "the waiter and its watchers used {used} clock ticks in 1.5 s");
    for holder in holders {
        holder.release();
    }
    waiter.wait(Duration::from_secs(10)).assert_code(0);
}

/// -w gives up on time, says so, and leaves no watcher behind; so does a waiter that is
/// killed.
#[test]
fn an_expired_or_killed_waiter_leaves_no_watcher() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let holders: Vec<_> = (0..2).map(|_| hold_slot(&t, &lock, 2, &[])).collect();
    let marker = t.join("ran");
    let out = run_within(
        withlock().args(["-w", "0.4", "--slots", "2"]).arg(&lock).arg("touch").arg(&marker),
        Duration::from_secs(10),
    );
    out.assert_code(75)
        .assert_one_message_naming(&lock)
        .assert_stderr_mentions("still busy after waiting 0.4s");
    assert!(
        out.elapsed >= Duration::from_millis(350) && out.elapsed < Duration::from_secs(3),
        "gave up after {:?}",
        out.elapsed
    );
    assert!(!exists(&marker));
    assert!(withlocks_with_open(&slot_file(&lock, 0)).is_empty(), "a watcher outlived the wait");

    let waiter = start(withlock().args(["-w", "30", "--slots", "2"]).arg(&lock).arg("touch").arg(&marker));
    wait_until_has_open(waiter.pid(), &slot_file(&lock, 1));
    assert!(
        wait_until(Duration::from_secs(5), || withlocks_with_open(&slot_file(&lock, 1)).len() >= 2),
        "no watchers while waiting: {:?}",
        withlocks_with_open(&slot_file(&lock, 1))
    );
    send_signal(waiter.pid(), libc::SIGKILL);
    waiter.wait(Duration::from_secs(5)).assert_signal(libc::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(5), || withlocks_with_open(&slot_file(&lock, 1)).is_empty()),
        "watchers outlived their killed parent: {:?}",
        withlocks_with_open(&slot_file(&lock, 1))
    );
    for holder in holders {
        holder.release();
    }
    assert!(!exists(&marker));
}

/// Waiters queue at the gate, LOCK itself: a plain `withlock LOCK` holds it too, so
/// `--slots -w` waits behind it even with free slots, while `--slots` without -w does not
/// look at it.
#[test]
fn a_plain_lock_on_lock_holds_the_gate() {
    let t = TempDir::new();
    let lock = t.lock();
    let plain = hold(&t, &lock);
    run_slot(&[], 2, &lock).assert_code(0).assert_stdout("0");
    let out = run_within(
        withlock().args(["-w", "0.3", "--slots", "2"]).arg(&lock).arg("true"),
        Duration::from_secs(10),
    );
    out.assert_code(75).assert_stderr_mentions("still busy after waiting");
    plain.release();
    run_slot(&["-w", "1"], 2, &lock).assert_code(0).assert_stdout("0");
}

/// Jobs with different N on one LOCK are refused (64), naming the slot file: a busy slot
/// whose holder records another N, or a held LOCK.N. A stale record of another N (not the
/// holder's), or a LOCK.N nobody holds, is no reason to refuse.
#[test]
fn mixing_slot_counts_is_refused() {
    let t = TempDir::new();
    let lock = t.lock();
    let three = hold_slot(&t, &lock, 3, &[]);
    let marker = t.join("ran");
    for n in ["2", "5"] {
        let out = run(withlock().args(["--slots", n]).arg(&lock).arg("touch").arg(&marker));
        out.assert_code(64).assert_one_message_naming(slot_file(&lock, 0));
        out.assert_stderr_mentions(format!("held by a job with --slots 3, not {n}"));
    }
    let out = run(withlock().args(["-w", "5", "--slots", "2"]).arg(&lock).arg("touch").arg(&marker));
    out.assert_code(64);
    assert!(!exists(&marker), "a job with another N ran");
    three.release();

    // LOCK.3 held by anyone: a job with more slots (here, a plain withlock).
    let past = slot_file(&lock, 3);
    let plain = hold(&t, &past);
    let out = run(withlock().args(["--slots", "3"]).arg(&lock).arg("touch").arg(&marker));
    out.assert_code(64).assert_one_message_naming(&past).assert_stderr_mentions("above 3");
    plain.release();
    run_slot(&[], 3, &lock).assert_code(0).assert_stdout("0");

    // Slot 0 held by flock(1), its file still holding an old record of --slots 5: stale.
    let five = hold_slot(&t, &lock, 5, &[]);
    five.release();
    assert!(read_string(&slot_file(&lock, 0)).contains("\nslots=5\n"));
    let flock = crate::support::hold_with_flock(&t, &slot_file(&lock, 0));
    run_slot(&[], 3, &lock).assert_code(0).assert_stdout("1");
    flock.release();
}

/// A slot file removed while a waiter waited on it (by its holder, the safe way) guards
/// nothing: the waiter must not run on it, but take the slot's new file.
#[test]
fn a_slot_file_removed_while_waiting_is_not_trusted() {
    let t = TempDir::new();
    let lock = t.lock();
    let keep = hold_slot(&t, &lock, 2, &[]);
    let ready = t.join("remover.ready");
    let go = t.join("remover.go");
    let mut cmd = withlock();
    cmd.args(["--slots", "2"]).arg(&lock).args([
        "sh",
        "-c",
        r#": > "$1"; while [ ! -e "$2" ]; do sleep 0.01; done; rm "$3""#,
        "sh",
    ]);
    cmd.arg(&ready).arg(&go).arg(slot_file(&lock, 1));
    let remover = start_holding(&mut cmd, &ready);
    // The job checks that its descriptor is the file its slot's name now names.
    let check = r#"n=$WITHLOCK_SLOT; for fd in /proc/$$/fd/*; do
        [ "$(readlink "$fd")" = "$1.$n" ] && [ "$(stat -L -c %i "$fd")" = "$(stat -c %i "$1.$n")" ] && exit 0
    done; exit 3"#;
    let waiter = start(
        withlock()
            .args(["-w", "10", "--slots", "2"])
            .arg(&lock)
            .args(["sh", "-c", check, "sh"])
            .arg(fs::canonicalize(t.path()).unwrap().join("x.lock")),
    );
    wait_until_has_open(waiter.pid(), &slot_file(&lock, 1));
    thread::sleep(Duration::from_millis(200));
    fs::write(&go, b"").unwrap();
    remover.wait(Duration::from_secs(10)).assert_code(0);
    waiter.wait(Duration::from_secs(10)).assert_code(0);
    assert!(exists(&slot_file(&lock, 1)), "slot 1's file was not made anew");
    keep.release();
}

/// With --name, the slot files are next to the named lock; with -c the snippet sees its
/// slot; -v says what happens.
#[test]
fn slots_with_name_shell_and_verbose() {
    let t = TempDir::new();
    // Root's named locks are in /run/withlock, anyone else's in $XDG_RUNTIME_DIR/withlock.
    let dir = if is_root() { PathBuf::from("/run/withlock") } else { t.join("withlock") };
    let name = unique_name("slots");
    let out = run(withlock().env("XDG_RUNTIME_DIR", t.path()).args([
        "--slots",
        "2",
        "--name",
        &name,
        "sh",
        "-c",
        r#"printf %s "$WITHLOCK_SLOT""#,
    ]));
    out.assert_code(0).assert_stdout("0");
    let record = read_string(&dir.join(format!("{name}.0")));
    let _ = fs::remove_file(dir.join(format!("{name}.0")));
    assert!(record.contains("\nslots=2\nslot=0\n"), "{record}");
    let out = run(withlock().args(["--slots", "2", "-c", r#"printf %s "$WITHLOCK_SLOT""#]).arg(t.lock()));
    out.assert_code(0).assert_stdout("0");
    let holders: Vec<_> = (0..2).map(|_| hold_slot(&t, &t.lock(), 2, &[])).collect();
    let waiter = start(withlock().args(["-v", "-w", "10", "--slots", "2"]).arg(t.lock()).arg("true"));
    wait_until_has_open(waiter.pid(), &slot_file(&t.lock(), 1));
    for holder in holders {
        holder.release();
    }
    let out = waiter.wait(Duration::from_secs(10));
    out.assert_code(0).assert_stderr_mentions("is busy; waiting for it up to 10s");
    out.assert_stderr_mentions(" of 2: ").assert_stderr_mentions("withlock: took slot ");
}

/// The torture: 40 workers, 3 rounds each, on `--slots 3` (most with -w, some retrying on
/// busy), each job leaving evidence in a directory: never more than 3 at once, never two
/// running with the same slot, every slot used, every round run.
#[test]
fn torture_never_more_than_n_and_slots_distinct() {
    let _alone = exclusive();
    let t = TempDir::new();
    let work = t.mkdir("work", 0o700);
    fs::create_dir(work.join("running")).unwrap();
    let lock = t.lock();
    let (workers, rounds, slots) = (40, 3, 3);
    let job = r#"d=$1
mkdir "$d/slot-$WITHLOCK_SLOT" 2>/dev/null || echo "SAME SLOT $WITHLOCK_SLOT" >> "$d/log"
: > "$d/running/$$"
n=$(ls "$d/running" | wc -l)
[ "$n" -le 3 ] || echo "OVERLAP $n" >> "$d/log"
echo "$n $WITHLOCK_SLOT" >> "$d/seen"
sleep 0.02
rm "$d/running/$$"
rmdir "$d/slot-$WITHLOCK_SLOT""#;
    let began = Instant::now();
    let busy = AtomicUsize::new(0);
    thread::scope(|s| {
        for w in 0..workers {
            let (work, lock, busy) = (&work, &lock, &busy);
            s.spawn(move || {
                let mut done = 0;
                while done < rounds {
                    let mut cmd = withlock();
                    if w % 8 != 0 {
                        cmd.args(["-w", "forever"]);
                    }
                    cmd.args(["--slots", "3"]).arg(lock).args(["sh", "-c", job, "sh"]).arg(work);
                    let out = run_within(&mut cmd, Duration::from_secs(120));
                    match out.code() {
                        Some(75) if w % 8 == 0 => {
                            busy.fetch_add(1, Ordering::Relaxed);
                            thread::sleep(Duration::from_millis(5));
                        }
                        _ => {
                            out.assert_code(0);
                            done += 1;
                        }
                    }
                }
            });
        }
    });
    let log = fs::read_to_string(work.join("log")).unwrap_or_default();
    let seen = read_string(&work.join("seen"));
    let lines: Vec<(usize, usize)> = seen
        .lines()
        .map(|l| {
            let (n, slot) = l.split_once(' ').unwrap();
            (n.parse().unwrap(), slot.parse().unwrap_or(usize::MAX))
        })
        .collect();
    eprintln!(
        "slots torture: {workers} workers x {rounds} rounds, {} busy retries, {:?}",
        busy.load(Ordering::Relaxed),
        began.elapsed()
    );
    assert!(log.is_empty(), "exclusion broken:\n{log}");
    assert_eq!(lines.len(), workers * rounds, "rounds run");
    let used: BTreeSet<usize> = lines.iter().map(|&(_, slot)| slot).collect();
    assert_eq!(used, (0..slots).collect(), "slots used");
    let most = lines.iter().map(|&(n, _)| n).max().unwrap();
    assert_eq!(most, slots, "never {slots} jobs at once: --slots did not let them run together");
    for slot in 0..slots {
        let st = fs::metadata(slot_file(&lock, slot)).unwrap();
        assert!(st.is_file() && st.mode() & 0o7777 == 0o600);
    }
}

/// A slot job is supervised like any job (issue 15, item 1): `--max-runtime` stops it and its
/// group (TERM, then KILL after `--kill-after`) and withlock exits 124, the slot is free at
/// once afterwards, and the slot file's record names the job while it runs (withlock, its
/// parent, took the lock). A `-w` waiter that gets a slot is limited the same way.
#[test]
fn slot_jobs_are_stopped_at_max_runtime() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let deaf = r#"trap '' TERM; printf %s "$WITHLOCK_SLOT" > "$1"; exec sleep 6"#;
    let said = t.join("slot");
    let out = run_within(
        withlock()
            .args(["--slots", "2", "--max-runtime", "0.5", "--kill-after", "0.5"])
            .arg(&lock)
            .args(["sh", "-c", deaf, "sh"])
            .arg(&said),
        Duration::from_secs(20),
    );
    out.assert_code(124);
    assert_eq!(read_string(&said), "0", "the job did not get its slot");
    assert!(
        out.elapsed >= Duration::from_millis(900) && out.elapsed < Duration::from_secs(4),
        "ended after {:?}: not about --max-runtime 0.5 + --kill-after 0.5\n{}",
        out.elapsed,
        out.describe()
    );
    run_slot(&[], 2, &lock).assert_code(0).assert_stdout("0");

    // While a supervised slot job runs, its slot file names it as the holder.
    let holder = hold_slot(&t, &lock, 2, &["--max-runtime", "60"]);
    let status = run(withlock().arg("--status").arg(slot_file(&lock, holder.slot)));
    status.assert_code(75);
    assert!(status.stdout_str().contains(": held by pid "), "{}", status.describe());
    assert!(!status.stdout_str().contains("stale"), "{}", status.describe());

    // A waiter that gets a slot is limited too.
    let other = hold_slot(&t, &lock, 2, &[]);
    let waiter =
        start(withlock().args(["-w", "20", "--slots", "2", "--max-runtime", "0.5"]).arg(&lock).args([
            "sh",
            "-c",
            r#"printf %s "$WITHLOCK_SLOT"; exec sleep 6"#,
        ]));
    wait_until_has_open(waiter.pid(), &slot_file(&lock, 1));
    thread::sleep(Duration::from_millis(200));
    let freed = holder.slot;
    holder.release();
    let out = waiter.wait(Duration::from_secs(20));
    out.assert_code(124).assert_stdout(&freed.to_string());
    assert!(out.elapsed < Duration::from_secs(5), "the waiter's job ran past its limit\n{}", out.describe());
    other.release();
}

/// The withlock processes watching the slots of `lock` for the waiter `waiter`: the slot
/// each of its children blocks on in `flock` (from /proc/PID/syscall), by slot.
fn watchers_of(waiter: i32, lock: &Path, slots: usize) -> Vec<Option<i32>> {
    let mut found = vec![None; slots];
    let children = fs::read_to_string(format!("/proc/{waiter}/task/{waiter}/children")).unwrap_or_default();
    // flock's number as /proc shows it: i386's for an i686 binary (a qemu-user one makes
    // this machine's own system calls).
    let flock = if crate::support::bin_is_i386() { 143 } else { libc::SYS_flock };
    for child in children.split_whitespace() {
        let Ok(call) = fs::read_to_string(format!("/proc/{child}/syscall")) else { continue };
        let mut words = call.split_whitespace();
        if words.next() != Some(&flock.to_string()) {
            continue;
        }
        let Some(fd) = words.next().and_then(|fd| i64::from_str_radix(fd.trim_start_matches("0x"), 16).ok())
        else {
            continue;
        };
        let Ok(file) = fs::read_link(format!("/proc/{child}/fd/{fd}")) else { continue };
        for (slot, watcher) in found.iter_mut().enumerate() {
            if fs::canonicalize(slot_file(lock, slot)).is_ok_and(|f| f == file) {
                *watcher = child.parse().ok();
            }
        }
    }
    found
}

/// Waits (setup only) until every slot of `lock` has a watcher of `waiter`; returns them.
#[track_caller]
fn wait_for_watchers(waiter: i32, lock: &Path, slots: usize) -> Vec<i32> {
    let mut found = Vec::new();
    let all = wait_until(Duration::from_secs(10), || {
        found = watchers_of(waiter, lock, slots).into_iter().flatten().collect();
        found.len() == slots
    });
    assert!(all, "not every slot has a watcher: {:?}", watchers_of(waiter, lock, slots));
    found
}

/// A watcher that is killed does not lose its slot (issue 15, item 5): when that slot
/// frees, the waiter still takes it at once; and a waiter whose watchers are all killed
/// waits on, and takes the next slot that frees.
#[test]
fn a_killed_watcher_does_not_lose_its_slot() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let job = ["sh", "-c", r#"printf %s "$WITHLOCK_SLOT""#];
    let mut holders: Vec<Option<SlotHolder>> = (0..2).map(|_| Some(hold_slot(&t, &lock, 2, &[]))).collect();

    let waiter = start(withlock().args(["-w", "30", "--slots", "2"]).arg(&lock).args(job));
    let watchers = wait_for_watchers(waiter.pid(), &lock, 2);
    send_signal(watchers[0], libc::SIGKILL);
    thread::sleep(Duration::from_millis(200));
    holders[0].take().unwrap().release();
    let out = waiter.wait(Duration::from_secs(10));
    out.assert_code(0).assert_stdout("0");

    let again = hold_slot(&t, &lock, 2, &[]);
    assert_eq!(again.slot, 0);
    let mut waiter = start(withlock().args(["-w", "30", "--slots", "2"]).arg(&lock).args(job));
    for watcher in wait_for_watchers(waiter.pid(), &lock, 2) {
        send_signal(watcher, libc::SIGKILL);
    }
    thread::sleep(Duration::from_millis(300));
    assert!(
        waiter.is_running(),
        "the waiter gave up when its watchers were killed\n{}",
        waiter.stderr_so_far()
    );
    holders[1].take().unwrap().release();
    waiter.wait(Duration::from_secs(10)).assert_code(0).assert_stdout("1");
    again.release();
}

/// Watchers cannot be started (the process limit of a user, here 1: withlock itself), yet
/// -w was given: withlock tries the slots itself instead, and takes the slot once it frees
/// (issue 15, item 7), instead of failing at once with 71.
#[test]
fn without_watchers_a_waiter_tries_the_slots_itself() {
    let _load = timing();
    let t = TempDir::new();
    let Some((uid, gid)) = crate::support::require_root_and_nobody("without_watchers_a_waiter") else {
        return;
    };
    let bin = crate::support::runnable_copy(&t);
    // root's directory and files, which nobody may lock (read-only) but not create.
    let dir = t.mkdir("locks", 0o755);
    let lock = dir.join("x.lock");
    for file in [lock.clone(), slot_file(&lock, 0)] {
        fs::write(&file, b"").unwrap();
        crate::support::set_mode(&file, 0o644);
    }
    let holder = crate::support::hold_with_flock(&t, &slot_file(&lock, 0));
    let waiter = start(
        Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .args(["prlimit", "--nproc=1:1", "--"])
            .args(crate::support::argv_for(&bin))
            .args(["-v", "-w", "20", "--slots", "1"])
            .arg(&lock)
            .args(["sh", "-c", r#"printf %s "$WITHLOCK_SLOT""#])
            .env("PATH", crate::support::TEST_PATH)
            .stdin(std::process::Stdio::null()),
    );
    thread::sleep(Duration::from_millis(600));
    holder.release();
    let out = waiter.wait(Duration::from_secs(10));
    out.assert_code(0).assert_stdout("0");
}

/// Long waits: poll(2) caps its timeout at 24.8 days, and may return early; only the clock
/// says when -w is up (issue 15, item 7). strace makes the waiter's first poll return 0 at
/// once, as the cap would after 24.8 days: a waiter with -w 720h must wait on, and take the
/// slot when it frees.
#[test]
fn a_poll_that_returns_early_is_not_the_end_of_the_wait() {
    if !crate::supervise::require_strace("a_poll_that_returns_early") {
        return;
    }
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold_slot(&t, &lock, 1, &[]);
    let mut waiter = start(
        Command::new("strace")
            .args(["-o", "/dev/null", "-e", "trace=poll,ppoll", "-e", "inject=poll,ppoll:retval=0:when=1"])
            .args(bin_argv())
            .args(["-w", "720h", "--slots", "1"])
            .arg(&lock)
            .args(["sh", "-c", r#"printf %s "$WITHLOCK_SLOT""#])
            .env("PATH", crate::support::TEST_PATH)
            .stdin(std::process::Stdio::null()),
    );
    thread::sleep(Duration::from_millis(500));
    assert!(waiter.is_running(), "the waiter gave up when poll returned early\n{}", waiter.stderr_so_far());
    holder.release();
    waiter.wait(Duration::from_secs(10)).assert_code(0).assert_stdout("0");
}

/// Mixed N is found whichever slot is free (issue 15, item 8): a job with another N holding
/// any slot is refused, also one past the first free slot; and a job that got its slot by
/// waiting is named by the kernel as the holder, so its record counts.
#[test]
fn mixed_n_is_found_whichever_slot_is_free() {
    let t = TempDir::new();
    let lock = t.lock();
    let marker = t.join("ran");
    let four0 = hold_slot(&t, &lock, 4, &[]);
    let four1 = hold_slot(&t, &lock, 4, &[]);
    four0.release();
    // Slot 0 is free; slot 1 is a --slots 4 job's.
    let out = run(withlock().args(["--slots", "2"]).arg(&lock).arg("touch").arg(&marker));
    out.assert_code(64).assert_one_message_naming(slot_file(&lock, 1));
    out.assert_stderr_mentions("held by a job with --slots 4, not 2");
    assert!(!exists(&marker), "a job with another N ran");
    four1.release();

    // A waiter gets slot 2 of 4 when it frees; then it is the only holder, and a job with
    // --slots 3 (slot 0 free) sees it.
    let holders: Vec<_> = (0..4).map(|_| hold_slot(&t, &lock, 4, &[])).collect();
    let (ready, release) = (t.join("waiter.ready"), t.join("waiter.release"));
    let waiter = start(
        withlock()
            .args(["-w", "20", "--slots", "4"])
            .arg(&lock)
            .args([
                "sh",
                "-c",
                r#"printf %s "$WITHLOCK_SLOT" > "$1.tmp"; mv "$1.tmp" "$1"; while [ ! -e "$2" ]; do sleep 0.01; done"#,
                "sh",
            ])
            .arg(&ready)
            .arg(&release),
    );
    wait_for_watchers(waiter.pid(), &lock, 4);
    let mut holders: Vec<_> = holders.into_iter().map(Some).collect();
    holders[2].take().unwrap().release();
    assert!(wait_until(Duration::from_secs(10), || exists(&ready)), "the waiter never ran");
    assert_eq!(read_string(&ready), "2");
    for holder in holders.into_iter().flatten() {
        holder.release();
    }
    let status = run(withlock().arg("--status").arg(slot_file(&lock, 2)));
    assert!(
        !status.stdout_str().contains("stale"),
        "the waiter's record is not current\n{}",
        status.describe()
    );
    let out = run(withlock().args(["--slots", "3"]).arg(&lock).arg("touch").arg(&marker));
    out.assert_code(64).assert_one_message_naming(slot_file(&lock, 2));
    assert!(!exists(&marker), "a job with another N ran");
    fs::write(&release, b"").unwrap();
    waiter.wait(Duration::from_secs(10)).assert_code(0);
}

/// A LOCK whose longest slot name (LOCK.N) is too long for the file system is refused up
/// front (73, naming it), not only once the slots with shorter names are busy; and nothing
/// is created or run (issue 15, item 8).
#[test]
fn a_slot_name_too_long_is_refused_up_front() {
    let t = TempDir::new();
    // 253 bytes: LOCK.0 to LOCK.9 fit in 255, LOCK.10 does not.
    let lock = t.join("x".repeat(253));
    let marker = t.join("ran");
    let out = run(withlock().args(["--slots", "11"]).arg(&lock).arg("touch").arg(&marker));
    out.assert_code(73).assert_one_message_naming(slot_file(&lock, 10));
    assert!(!exists(&marker), "the job ran");
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0, "files were created");
    // With -w too (the gate would fit).
    let out = run(withlock().args(["-w", "1", "--slots", "11"]).arg(&lock).arg("touch").arg(&marker));
    out.assert_code(73).assert_one_message_naming(slot_file(&lock, 10));
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0, "files were created");
    // Ten slots fit (LOCK.10, only looked at, need not).
    run_slot(&[], 10, &lock).assert_code(0).assert_stdout("0");
}

/// LOCK must be what it would be as the gate, with or without -w (issue 15, item 8): a
/// directory is 73, a symlink or a FIFO 77, and nothing runs.
#[test]
fn lock_is_judged_with_or_without_wait() {
    let t = TempDir::new();
    let marker = t.join("ran");
    let dir = t.mkdir("dir", 0o700);
    let link = t.join("link");
    std::os::unix::fs::symlink(t.join("elsewhere"), &link).unwrap();
    let fifo = t.join("fifo");
    crate::support::mkfifo(&fifo, 0o600);
    for (lock, code) in [(&dir, 73), (&link, 77), (&fifo, 77)] {
        for wait in [&[][..], &["-w", "1"]] {
            let out = run(withlock().args(wait).args(["--slots", "2"]).arg(lock).arg("touch").arg(&marker));
            out.assert_code(code).assert_one_message_naming(lock);
            assert!(!exists(&marker), "{}: {wait:?}: the job ran", lock.display());
        }
    }
    assert!(!exists(&slot_file(&dir, 0)), "a slot file was made next to a directory");
}

/// A `--slots -w` waiter holding the gate says so in LOCK's record: `--status LOCK` and the
/// busy messages of those behind it name it as a waiter for a slot, not as something
/// withlock did not take (issue 15, item 8).
#[test]
fn a_waiter_at_the_gate_is_shown_as_one() {
    let t = TempDir::new();
    let lock = t.lock();
    let holders: Vec<_> = (0..2).map(|_| hold_slot(&t, &lock, 2, &[])).collect();
    let waiter = start(withlock().args(["-w", "30", "--slots", "2"]).arg(&lock).args(["sleep", "0"]));
    wait_for_watchers(waiter.pid(), &lock, 2);
    // The kernel names the waiter as the gate's holder; its record says what it waits for.
    let who = format!("; the record says: a waiter for one of its 2 slots, pid {} (sleep 0)", waiter.pid());
    let status = run(withlock().arg("--status").arg(&lock));
    status.assert_code(75);
    assert!(status.stdout_str().contains(&who), "{}", status.describe());
    assert!(
        status.stdout_str().contains(&format!("held by pid {}, ", waiter.pid())),
        "{}",
        status.describe()
    );
    let behind = run(withlock().args(["-w", "0.2", "--slots", "2"]).arg(&lock).arg("true"));
    behind.assert_code(75).assert_stderr_mentions(&who);
    run(withlock().arg(&lock).arg("true")).assert_code(75).assert_stderr_mentions(&who);
    for holder in holders {
        holder.release();
    }
    waiter.wait(Duration::from_secs(10)).assert_code(0);
}

/// A slot file opened read-only (an executable one, whose job must not inherit a writable
/// descriptor) still gets its record, through a second descriptor, as LOCK itself does.
#[test]
fn an_executable_slot_file_gets_its_record() {
    let t = TempDir::new();
    let lock = t.lock();
    let file = slot_file(&lock, 0);
    fs::write(&file, b"").unwrap();
    fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    run_slot(&[], 2, &lock).assert_code(0).assert_stdout("0");
    let record = read_string(&file);
    assert!(record.contains("\nslots=2\nslot=0\n"), "no record in the executable slot file: {record:?}");
}
