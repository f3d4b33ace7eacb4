//! What the job inherits: no blocked signals, no ignored or pending SIGALRM and no live
//! timer from withlock's own wait, and no descriptors but stdin/stdout/stderr and the lock.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::support::{Out, TempDir, hold, run, start, wait_until_has_open, withlock};

/// Runs `withlock OPTS LOCK COMMAND...` either with a free lock or, when `contended`, while
/// a holder has it, releasing the holder once withlock waits; returns the job's outcome.
fn run_job(t: &TempDir, opts: &[&str], contended: bool, command: &[&str]) -> Out {
    let lock = t.lock();
    let mut cmd = withlock();
    cmd.env("LC_ALL", "C").args(opts).arg(&lock).args(command);
    if !contended {
        return run(&mut cmd);
    }
    let holder = hold(t, &lock);
    let waiter = start(&mut cmd);
    wait_until_has_open(waiter.pid(), &lock);
    thread::sleep(Duration::from_millis(100));
    holder.release().assert_code(0);
    waiter.wait(Duration::from_secs(20))
}

const MODES: [(&[&str], bool); 5] = [
    (&[], false),
    (&["-w", "5"], false),
    (&["-w", "5"], true),
    (&["-w", "forever"], true),
    (&["-v", "-w", "5"], true),
];

/// `SigBlk` and `SigIgn` of the process running `grep` on its own status file.
fn signal_masks(out: &Out) -> (u64, u64) {
    let text = out.stdout_str();
    let field = |name: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line\n{}", out.describe()));
        u64::from_str_radix(line[name.len()..].trim(), 16).unwrap()
    };
    (field("SigBlk:"), field("SigIgn:"))
}

const GREP_MASKS: [&str; 3] = ["grep", "-E", "^(SigBlk|SigIgn):"];
const GREP_FILE: &str = "/proc/self/status";

#[test]
fn job_inherits_no_blocked_or_ignored_signals_from_withlock() {
    let baseline =
        run(Command::new(GREP_MASKS[0]).args(&GREP_MASKS[1..]).arg(GREP_FILE).stdin(Stdio::null()));
    baseline.assert_code(0);
    let (base_blk, base_ign) = signal_masks(&baseline);
    let alrm = 1u64 << (libc::SIGALRM - 1);
    let t = TempDir::new();
    for (opts, contended) in MODES {
        let mut command = GREP_MASKS.to_vec();
        command.push(GREP_FILE);
        let out = run_job(&t, opts, contended, &command);
        out.assert_code(0);
        let (blk, ign) = signal_masks(&out);
        let mode = format!("{opts:?}, contended: {contended}");
        assert_eq!(blk, base_blk, "{mode}: job's blocked signals {blk:#x}, expected {base_blk:#x}");
        assert_eq!(ign, base_ign, "{mode}: job's ignored signals {ign:#x}, expected {base_ign:#x}");
        assert_eq!(ign & alrm, 0, "{mode}: SIGALRM is ignored in the job");
        assert_eq!(blk & alrm, 0, "{mode}: SIGALRM is blocked in the job");
    }
}

/// The wait timer must be gone when the job starts: a job that runs longer than the -w
/// limit must not be hit by SIGALRM (timers survive execve).
#[test]
fn job_outliving_the_wait_limit_gets_no_sigalrm() {
    let t = TempDir::new();
    run_job(&t, &["-w", "0.3"], false, &["sleep", "1"]).assert_code(0);
    run_job(&t, &["-w", "0.8"], true, &["sleep", "1.5"]).assert_code(0);
    run_job(&t, &["-w", "300ms"], false, &["sleep", "0.8"]).assert_code(0);
}

/// `ls -l /proc/self/fd/` output as (fd, link target), without ls's own directory fd.
fn open_fds(out: &Out) -> Vec<(u32, String)> {
    let text = out.stdout_str();
    let mut fds = Vec::new();
    let mut ls_dir_fds = 0;
    for line in text.lines() {
        let Some((left, target)) = line.split_once(" -> ") else {
            continue;
        };
        let fd: u32 = left
            .split_whitespace()
            .last()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("cannot parse {line:?}\n{}", out.describe()));
        let is_ls_dir = target
            .strip_prefix("/proc/")
            .and_then(|r| r.strip_suffix("/fd"))
            .is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit()));
        if is_ls_dir {
            ls_dir_fds += 1;
        } else {
            fds.push((fd, target.to_string()));
        }
    }
    assert_eq!(ls_dir_fds, 1, "unexpected ls output\n{}", out.describe());
    fds
}

const LS_FDS: [&str; 3] = ["ls", "-l", "/proc/self/fd/"];

#[test]
fn job_inherits_only_the_standard_descriptors_and_the_lock() {
    let baseline = run(Command::new(LS_FDS[0]).args(&LS_FDS[1..]).env("LC_ALL", "C").stdin(Stdio::null()));
    baseline.assert_code(0);
    let base: BTreeSet<u32> = open_fds(&baseline).into_iter().map(|(fd, _)| fd).collect();
    let t = TempDir::new();
    for (opts, contended) in MODES {
        let out = run_job(&t, opts, contended, &LS_FDS);
        out.assert_code(0);
        let mode = format!("{opts:?}, contended: {contended}");
        let lock = std::fs::canonicalize(t.lock()).unwrap();
        let fds = open_fds(&out);
        let extra: Vec<_> = fds.iter().filter(|(fd, _)| !base.contains(fd)).collect();
        let have: BTreeSet<u32> = fds.iter().map(|(fd, _)| *fd).collect();
        assert!(
            base.is_subset(&have),
            "{mode}: the job lost standard descriptors: {fds:?}, expected {base:?}"
        );
        assert_eq!(extra.len(), 1, "{mode}: expected exactly one extra descriptor (the lock), got {extra:?}");
        assert_eq!(
            Path::new(&extra[0].1),
            lock,
            "{mode}: the extra descriptor is not the lock file: {extra:?}"
        );
    }
}
