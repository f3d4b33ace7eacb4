//! withlock's etcd mode (`etcd://HOST:PORT[,HOST:PORT...]/NAME`), end to end against real
//! etcd servers, clusters and proxies the tests start, `etcdctl lock` on the same locks, a
//! fake server that answers garbage, and other "hosts" in network namespaces cut off by
//! taking their link down.
//!
//! The contract these tests hold withlock to (issue 5): the lock is etcdctl's (`NAME/<lease
//! hex>`, the holder record as the key's value); busy is 75 and "cannot reach or trust the
//! service" is 69, never silenced by `-q`, the job never run; the job's status passes
//! through; `WITHLOCK_FENCING_TOKEN` is the key's create revision; when the lease is lost the
//! job's process group is stopped before the lease can expire on the server (exit 76); the
//! job dies with withlock; on exit or SIGTERM the lease is revoked at once.
//!
//! `etcd_facts` checks what these tests assume about etcd itself.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::etcd_support::{
    EtcdCluster, EtcdProxy, EtcdServer, Etcdctl, FakeEtcd, FakeReply, Job, JobLog, Kv, Netns, ProxyKind,
    SynDrop, eventually, lock_key, netns_or_skip, refused_endpoint,
};
use crate::json::Json;
use crate::support::{
    Out, Running, TempDir, dead, exists, hold_using, now_epoch_ns, read_string, run, run_within, send_signal,
    start, timing, wait_until, withlock,
};

/// The holder record's first line (the key's value starts with it).
const MAGIC: &str = "withlock-holder 1";
/// Lease lost: withlock stopped the job.
const LEASE_LOST: i32 = 76;
/// The lock service cannot be reached or trusted.
const UNAVAILABLE: i32 = 69;
const BUSY: i32 = 75;
const USAGE: i32 = 64;
const REFUSED: i32 = 77;

/// Long enough for anything that works; only a hang reaches it.
const COARSE: Duration = Duration::from_secs(30);

/// `withlock ARGS... LOCK JOB...` in the background, returned once the job runs.
#[track_caller]
fn hold(opts: &[&str], lock: &str, job: &Job) -> Running {
    let mut run = start(withlock().args(opts).arg(lock).args(job.argv()));
    job.wait_started(&mut run, COARSE);
    run
}

/// The same, inside a namespace (another "host").
#[track_caller]
fn hold_in(ns: &Netns, opts: &[&str], lock: &str, job: &Job) -> Running {
    let mut run = start(ns.withlock().args(opts).arg(lock).args(job.argv()));
    job.wait_started(&mut run, COARSE);
    run
}

/// `withlock ARGS... LOCK touch MARKER`, to completion (bounded by `COARSE`).
#[track_caller]
fn run_touch(opts: &[&str], lock: &str, marker: &Path) -> Out {
    run_within(withlock().args(opts).arg(lock).arg("touch").arg(marker), COARSE)
}

/// withlock said something on stderr: a line `withlock: ...` that mentions `what`.
#[track_caller]
fn assert_said(out: &Out, what: &str) {
    assert!(
        out.stderr_str().lines().any(|l| l.starts_with("withlock: ") && l.contains(what)),
        "no `withlock: ` line mentioning {what:?} on stderr\n{}",
        out.describe()
    );
}

/// withlock's own failure, whatever `-q` says: a message on stderr and the job not run.
#[track_caller]
fn assert_failed_without_running(out: &Out, code: i32, marker: &Path) {
    out.assert_code(code);
    assert!(!exists(marker), "the job ran\n{}", out.describe());
    assert_said(out, "");
}

/// The one key under NAME/, which must be withlock's: `NAME/<lease hex>` holding a record.
#[track_caller]
fn the_withlock_key(ctl: &Etcdctl, name: &str) -> Kv {
    let kvs = ctl.get_prefix(name);
    assert_eq!(kvs.len(), 1, "expected exactly one key under {name}/: {kvs:?}");
    let kv = kvs.into_iter().next().unwrap();
    assert_ne!(kv.lease, 0, "the lock key has no lease: {kv:?}");
    assert_eq!(kv.key, lock_key(name, kv.lease), "not etcdctl's key layout");
    assert!(kv.value_str().starts_with(MAGIC), "the key's value is not a holder record: {kv:?}");
    kv
}

/// Nothing left under NAME/ and no lease left on the server (each test has its own server):
/// the lease was revoked, not left to expire.
#[track_caller]
fn assert_released(ctl: &Etcdctl, name: &str) {
    let kvs = ctl.get_prefix(name);
    assert!(kvs.is_empty(), "keys left under {name}/: {kvs:?}");
    let leases = ctl.leases();
    assert!(leases.is_empty(), "leases left (not revoked): {leases:x?}");
}

/// A job that writes `WITHLOCK_FENCING_TOKEN`, `ETCD_LOCK_KEY`, `ETCD_LOCK_REV` (one per line)
/// to $1, then says it runs ($2) and idles until $3 exists (or $2 is gone).
const ENV_JOB: &str = r#"printf '%s\n%s\n%s\n' "$WITHLOCK_FENCING_TOKEN" "$ETCD_LOCK_KEY" "$ETCD_LOCK_REV" > "$1.tmp"
mv "$1.tmp" "$1"; : > "$2"
while [ ! -e "$3" ] && [ -e "$2" ]; do sleep 0.02; done"#;

/// What a job saw of its lock.
#[derive(Debug)]
struct LockEnv {
    token: u64,
    key: String,
    rev: u64,
}

fn read_env(path: &Path) -> LockEnv {
    let text = read_string(path);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "job environment: {text:?}");
    let num = |s: &str, what: &str| s.parse().unwrap_or_else(|e| panic!("{what} = {s:?}: {e}"));
    LockEnv {
        token: num(lines[0], "WITHLOCK_FENCING_TOKEN"),
        key: lines[1].to_string(),
        rev: num(lines[2], "ETCD_LOCK_REV"),
    }
}

/// A job that records its lock environment and holds until released.
struct EnvJob {
    env: PathBuf,
    ready: PathBuf,
    release: PathBuf,
}

impl EnvJob {
    fn new(t: &TempDir, tag: &str) -> EnvJob {
        EnvJob {
            env: t.join(format!("{tag}.env")),
            ready: t.join(format!("{tag}.ready")),
            release: t.join(format!("{tag}.release")),
        }
    }

    fn command(&self, opts: &[&str], lock: &str) -> Command {
        let mut cmd = withlock();
        cmd.args(opts)
            .arg(lock)
            .args(["sh", "-c", ENV_JOB, "sh"])
            .arg(&self.env)
            .arg(&self.ready)
            .arg(&self.release);
        cmd
    }

    fn release(&self) {
        fs::write(&self.release, b"").unwrap();
    }

    fn env(&self) -> LockEnv {
        read_env(&self.env)
    }
}

// ---------------------------------------------------------------------------------------------
// Acquire, busy, wait, quiet.

#[test]
fn the_lock_is_etcdctls_key_holding_the_record_and_is_revoked_at_exit() {
    let t = TempDir::new();
    let server = EtcdServer::start();
    let ctl = server.ctl();
    let job = Job::new(&t, &JobLog::new(&t), "A");
    let holder = hold(&[], &server.url("locks/backup"), &job);
    let kv = the_withlock_key(&ctl, "locks/backup");
    assert_eq!(ctl.leases(), vec![kv.lease], "withlock's lease is not the only one");
    job.release();
    holder.wait(COARSE).assert_code(0);
    // Revoked before withlock exits: no waiting for anything.
    assert_released(&ctl, "locks/backup");
}

#[test]
fn a_busy_lock_exits_75_or_as_told_and_runs_nothing() {
    let t = TempDir::new();
    let server = EtcdServer::start();
    let ctl = server.ctl();
    let url = server.url("jobs/nightly");
    let job = Job::new(&t, &JobLog::new(&t), "A");
    let holder = hold(&[], &url, &job);
    let kv = the_withlock_key(&ctl, "jobs/nightly");
    let marker = t.join("ran");

    let out = run_touch(&[], &url, &marker);
    assert_failed_without_running(&out, BUSY, &marker);
    // One line, naming the lock.
    out.assert_stderr_mentions("jobs/nightly");
    assert_eq!(out.stderr_str().lines().count(), 1, "one line\n{}", out.describe());

    run_touch(&["-q"], &url, &marker).assert_code(0).assert_silent();
    run_touch(&["-E", "9"], &url, &marker).assert_code(9);
    // As for a local lock: -E says the code, -q only silences.
    run_touch(&["-q", "-E", "9"], &url, &marker).assert_code(9).assert_silent();
    assert!(!exists(&marker), "a busy run ran its job");

    // The failed tries left no key and no lease behind (a waiter's key would block others).
    assert_eq!(ctl.get_prefix("jobs/nightly"), vec![kv.clone()]);
    assert_eq!(ctl.leases(), vec![kv.lease]);
    job.release();
    holder.wait(COARSE).assert_code(0);
}

#[test]
fn waiting_is_bounded_and_takes_the_lock_when_it_frees() {
    let _timing = timing();
    let t = TempDir::new();
    let server = EtcdServer::start();
    let ctl = server.ctl();
    let url = server.url("w");
    let log = JobLog::new(&t);
    let job = Job::new(&t, &log, "A");
    let holder = hold(&[], &url, &job);
    let marker = t.join("ran");

    let out = run_touch(&["-w", "1s"], &url, &marker);
    assert_failed_without_running(&out, BUSY, &marker);
    assert!(out.elapsed >= Duration::from_millis(950), "gave up early\n{}", out.describe());
    assert!(out.elapsed < Duration::from_secs(10), "waited far too long\n{}", out.describe());
    run_touch(&["-q", "-w", "0.5"], &url, &marker).assert_code(0).assert_silent();
    assert_eq!(ctl.get_prefix("w").len(), 1, "a waiter that gave up left its key");

    let second = Job::new(&t, &log, "B");
    let mut waiter = start(withlock().args(["-w", "20s"]).arg(&url).args(second.argv()));
    eventually("the waiter queues", COARSE, || ctl.get_prefix("w").len() == 2);
    assert!(!second.started());
    job.release();
    holder.wait(COARSE).assert_code(0);
    second.wait_started(&mut waiter, COARSE);
    let handoff = log.time("start", "B").unwrap() - log.time("end", "A").unwrap();
    assert!(handoff < 3_000_000_000, "the waiter started {handoff} ns after the holder let go");
    second.release();
    waiter.wait(COARSE).assert_code(0);
    assert_released(&ctl, "w");
}

#[test]
fn the_jobs_exit_status_passes_through_exactly() {
    let server = EtcdServer::start();
    let url = server.url("status");
    for code in [0, 3, 255] {
        run_within(withlock().arg(&url).args(["sh", "-c", "exit $1", "sh"]).arg(code.to_string()), COARSE)
            .assert_code(code);
        assert_released(&server.ctl(), "status");
    }
    for (sig, name) in [(libc::SIGUSR1, "USR1"), (libc::SIGKILL, "KILL")] {
        run_within(withlock().arg(&url).args(["sh", "-c", "kill -$1 $$", "sh", name]), COARSE)
            .assert_signal(sig);
        assert_released(&server.ctl(), "status");
    }
}

// ---------------------------------------------------------------------------------------------
// etcdctl lock: the same lock.

#[test]
fn etcdctl_lock_and_withlock_exclude_each_other_both_ways() {
    let t = TempDir::new();
    let server = EtcdServer::start();
    let ctl = server.ctl();
    let url = server.url("both");
    let marker = t.join("ran");

    // etcdctl holds: withlock is busy, and a waiting withlock runs once etcdctl lets go.
    let etcdctl = hold_using(&t, ctl.lock("both", None), None);
    run_touch(&[], &url, &marker).assert_code(BUSY);
    let waiter = start(withlock().args(["-w", "20s"]).arg(&url).arg("touch").arg(&marker));
    eventually("withlock queues behind etcdctl", COARSE, || ctl.get_prefix("both").len() == 2);
    assert!(!exists(&marker));
    etcdctl.release().assert_code(0);
    waiter.wait(COARSE).assert_code(0);
    assert!(exists(&marker));
    fs::remove_file(&marker).unwrap();

    // withlock holds: `etcdctl lock` waits, and runs once withlock lets go.
    let job = Job::new(&t, &JobLog::new(&t), "A");
    let holder = hold(&[], &url, &job);
    let other = start(ctl.lock("both", None).arg("touch").arg(&marker));
    eventually("etcdctl queues behind withlock", COARSE, || ctl.get_prefix("both").len() == 2);
    thread::sleep(Duration::from_millis(500));
    assert!(!exists(&marker), "etcdctl lock ran while withlock held the lock");
    assert!(ctl.owner("both").unwrap().value_str().starts_with(MAGIC));
    job.release();
    holder.wait(COARSE).assert_code(0);
    other.wait(COARSE).assert_code(0);
    assert!(exists(&marker));
}

// ---------------------------------------------------------------------------------------------
// The job's environment: fencing token, etcdctl's variables.

#[test]
fn the_job_gets_the_fencing_token_and_etcdctls_variables() {
    let t = TempDir::new();
    let server = EtcdServer::start();
    let ctl = server.ctl();
    let job = EnvJob::new(&t, "a");
    let mut holder = start(&mut job.command(&[], &server.url("env/x")));
    eventually("the job runs", COARSE, || exists(&job.ready) || !holder.is_running());
    let kv = the_withlock_key(&ctl, "env/x");
    let env = job.env();
    assert_eq!(env.token, kv.create_revision, "WITHLOCK_FENCING_TOKEN is not the key's create revision");
    assert_eq!(env.key, kv.key, "ETCD_LOCK_KEY");
    // Uncontended, etcdctl's ETCD_LOCK_REV is the key's create revision too.
    assert_eq!(env.rev, kv.create_revision, "ETCD_LOCK_REV");
    job.release();
    holder.wait(COARSE).assert_code(0);
}

#[test]
fn fencing_tokens_strictly_increase_across_holders() {
    let t = TempDir::new();
    let server = EtcdServer::start();
    let ctl = server.ctl();
    let url = server.url("fence");
    let mut tokens = Vec::new();

    for i in 0..3 {
        let job = EnvJob::new(&t, &format!("run{i}"));
        job.release();
        run_within(&mut job.command(&[], &url), COARSE).assert_code(0);
        tokens.push(job.env().token);
        ctl.put("unrelated", &i.to_string()); // revisions move on between holders
    }

    // A holder and a waiter: the waiter's token is its own key's create revision, above the
    // holder's; its ETCD_LOCK_REV is, as etcdctl's, the revision at which the lock passed.
    let first = EnvJob::new(&t, "holder");
    let second = EnvJob::new(&t, "waiter");
    let mut holder = start(&mut first.command(&[], &url));
    eventually("the holder runs", COARSE, || exists(&first.ready) || !holder.is_running());
    let mut waiter = start(&mut second.command(&["-w", "20s"], &url));
    eventually("the waiter queues", COARSE, || ctl.get_prefix("fence").len() == 2);
    let waiter_key = ctl.get_prefix("fence").into_iter().max_by_key(|kv| kv.create_revision).unwrap();
    ctl.put("unrelated", "while waiting");
    first.release();
    holder.wait(COARSE).assert_code(0);
    eventually("the waiter runs", COARSE, || exists(&second.ready) || !waiter.is_running());
    let w = second.env();
    assert_eq!(w.token, waiter_key.create_revision, "the waiter's token is not its key's create revision");
    assert_eq!(w.key, waiter_key.key);
    assert!(w.rev > w.token, "ETCD_LOCK_REV {} should be the hand-over revision, after {}", w.rev, w.token);
    tokens.push(first.env().token);
    tokens.push(w.token);
    second.release();
    waiter.wait(COARSE).assert_code(0);

    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "tokens do not strictly increase: {tokens:?}");
}

// ---------------------------------------------------------------------------------------------
// withlock killed or terminated.

#[test]
fn withlock_killed_the_job_dies_and_the_lock_frees_when_the_lease_expires() {
    let _timing = timing();
    let t = TempDir::new();
    let server = EtcdServer::start();
    let ctl = server.ctl();
    let url = server.url("k9");
    let job = Job::new(&t, &JobLog::new(&t), "A");
    let holder = hold(&["--lease", "3s"], &url, &job);
    let kv = the_withlock_key(&ctl, "k9");
    let killed = Instant::now();
    send_signal(holder.pid(), libc::SIGKILL);
    holder.wait(COARSE).assert_signal(libc::SIGKILL);
    eventually("the job dies with withlock", Duration::from_secs(5), || dead(job.pid()));
    // Nobody revoked the lease: the key stays until it expires.
    assert_eq!(ctl.get_prefix("k9"), vec![kv]);
    let marker = t.join("ran");
    run_touch(&["-w", "20s"], &url, &marker).assert_code(0);
    let freed = killed.elapsed();
    assert!(freed < Duration::from_secs(3 + 10), "the lock freed {freed:?} after the kill (lease 3 s)");
}

#[test]
fn withlock_terminated_stops_the_job_and_revokes_the_lease_at_once() {
    let _timing = timing();
    let t = TempDir::new();
    let server = EtcdServer::start();
    let ctl = server.ctl();
    let url = server.url("term");
    let log = JobLog::new(&t);
    let job = Job::new(&t, &log, "A");
    let holder = hold(&["--lease", "15s"], &url, &job);
    let next = Job::new(&t, &log, "B");
    let mut waiter = start(withlock().args(["-w", "30s"]).arg(&url).args(next.argv()));
    eventually("the waiter queues", COARSE, || ctl.get_prefix("term").len() == 2);

    let term = now_epoch_ns();
    send_signal(holder.pid(), libc::SIGTERM);
    let out = holder.wait(COARSE);
    assert_ne!(out.code(), Some(0), "withlock SIGTERMed exited 0\n{}", out.describe());
    assert!(job.dead(), "the job (or its process group) outlived withlock");
    assert!(log.time("end", "A").is_some(), "the job did not get SIGTERM:\n{}", log.dump());
    next.wait_started(&mut waiter, COARSE);
    let after = log.time("start", "B").unwrap() - term;
    assert!(
        after < 5_000_000_000,
        "the next holder started {after} ns after the SIGTERM: the lease (15 s) was not revoked"
    );
    next.release();
    waiter.wait(COARSE).assert_code(0);
}

#[test]
fn a_job_deaf_to_sigterm_is_killed_after_kill_after() {
    let _timing = timing();
    let t = TempDir::new();
    let server = EtcdServer::start();
    let job = Job::new(&t, &JobLog::new(&t), "A").ignoring_term();
    let holder = hold(&["--lease", "15s", "--kill-after", "1s"], &server.url("deaf"), &job);
    let term = Instant::now();
    send_signal(holder.pid(), libc::SIGTERM);
    thread::sleep(Duration::from_millis(500));
    assert!(!dead(job.pid()), "the job died before --kill-after");
    eventually("SIGKILL after --kill-after", Duration::from_secs(10), || job.dead());
    assert!(term.elapsed() >= Duration::from_millis(900));
    holder.wait(COARSE);
    assert_released(&server.ctl(), "deaf");
}

// ---------------------------------------------------------------------------------------------
// Lease settings.

#[test]
fn lease_settings_that_cannot_stop_the_job_in_time_are_refused() {
    let t = TempDir::new();
    let server = EtcdServer::start();
    let marker = t.join("ran");
    for opts in [&["--lease", "3s", "--kill-after", "10s"][..], &["--lease", "3s", "--kill-after", "3s"]] {
        let out = run_touch(opts, &server.url("cfg"), &marker);
        out.assert_code(USAGE);
        out.assert_stderr_mentions("--kill-after");
        assert!(!exists(&marker));
    }
    assert!(server.ctl().get_prefix("cfg").is_empty());
    // A short lease with the default kill-after (a third of it) is fine.
    run_touch(&["--lease", "3s"], &server.url("cfg"), &marker).assert_code(0);
}

// ---------------------------------------------------------------------------------------------
// Losing the lease.

/// Freezes the server under a holder with a `lease` s lease; returns withlock's outcome and
/// how long after the freeze the job (and its process group) was dead.
fn freeze_under_holder(job: &Job, server: &EtcdServer, opts: &[&str]) -> (Out, Duration) {
    let holder = hold(opts, &server.url("frozen"), job);
    thread::sleep(Duration::from_millis(500));
    server.freeze();
    let frozen = Instant::now();
    let mut dead_after = None;
    let ok = wait_until(COARSE, || {
        if dead_after.is_none() && job.dead() {
            dead_after = Some(frozen.elapsed());
        }
        dead_after.is_some()
    });
    let out = holder.wait(COARSE);
    server.thaw();
    assert!(ok, "the job was never stopped\n{}", out.describe());
    (out, dead_after.unwrap())
}

#[test]
fn a_frozen_server_stops_the_job_within_the_lease_and_says_so_even_with_q() {
    let _timing = timing();
    let t = TempDir::new();
    let server = EtcdServer::start();
    let log = JobLog::new(&t);
    let job = Job::new(&t, &log, "A");
    let (out, dead_after) =
        freeze_under_holder(&job, &server, &["-q", "--lease", "3s", "--kill-after", "1s"]);
    out.assert_code(LEASE_LOST);
    assert_said(&out, "frozen"); // even with -q, naming the lock
    // The time left before SIGKILL is measured, so it is told to the millisecond, as every
    // measured time is ("SIGKILL in 0.998s"), not to the nanosecond.
    let stderr = out.stderr_str();
    let shown = stderr.split("SIGKILL in ").nth(1).and_then(|rest| rest.split("s)").next());
    let shown = shown.unwrap_or_else(|| panic!("no \"SIGKILL in ...s)\" on stderr\n{}", out.describe()));
    assert!(
        shown.parse::<f64>().is_ok() && shown.split('.').nth(1).is_none_or(|decimals| decimals.len() <= 3),
        "SIGKILL in {shown:?}: not to the millisecond\n{}",
        out.describe()
    );
    // The last keepalive was sent before the freeze, so the lease could expire on the server
    // as early as 3 s after the freeze: the job must be dead by then.
    assert!(dead_after < Duration::from_secs(3), "the job died {dead_after:?} after the freeze (lease 3 s)");
    assert!(log.time("end", "A").is_some(), "the job was not sent SIGTERM first:\n{}", log.dump());
}

#[test]
fn a_frozen_server_and_a_job_deaf_to_sigterm_still_dead_within_the_lease() {
    let _timing = timing();
    let t = TempDir::new();
    let server = EtcdServer::start();
    let job = Job::new(&t, &JobLog::new(&t), "A").ignoring_term();
    let (out, dead_after) = freeze_under_holder(&job, &server, &["--lease", "4s", "--kill-after", "1s"]);
    out.assert_code(LEASE_LOST);
    assert!(dead_after < Duration::from_secs(4), "the job died {dead_after:?} after the freeze (lease 4 s)");
}

/// A real partition: the holder's host (a namespace) loses its link; a second host waits for
/// the lock. From the jobs' own timestamps: the first job was dead before the second started.
/// `silent`: the link goes down on this host's side, so the holder sees only silence (no
/// error), and its job ignores SIGTERM, so it must be SIGKILLed in time too.
fn partition_test(test: &str, silent: bool) {
    if !netns_or_skip(test) {
        return;
    }
    let _timing = timing();
    let t = TempDir::new();
    let (a, b) = (Netns::create(), Netns::create());
    let server = EtcdServer::start_on(&[a.host_ip(), b.host_ip()]);
    let log = JobLog::new(&t);
    let job_a = if silent { Job::new(&t, &log, "A").ignoring_term() } else { Job::new(&t, &log, "A") };
    let job_b = Job::new(&t, &log, "B");
    let holder = hold_in(
        &a,
        &["--insecure", "--lease", "3s", "--kill-after", "1s"],
        &server.url_on(a.host_ip(), "part"),
        &job_a,
    );
    let mut waiter = start(
        b.withlock()
            .args(["--insecure", "-w", "30s"])
            .arg(server.url_on(b.host_ip(), "part"))
            .args(job_b.argv()),
    );
    eventually("B queues", COARSE, || server.ctl().get_prefix("part").len() == 2);

    if silent {
        a.cut_silently();
    } else {
        a.cut();
    }
    let mut a_dead_at = None;
    let ok = wait_until(COARSE, || {
        if a_dead_at.is_none() && job_a.dead() {
            a_dead_at = Some(now_epoch_ns());
        }
        job_b.started() || !waiter.is_running()
    });
    assert!(ok && job_b.started(), "B never got the lock\n{}", log.dump());
    let start_b = log.time("start", "B").unwrap();
    if !silent {
        // It was sent SIGTERM, and logged its end, before B's job started.
        let end_a =
            log.time("end", "A").unwrap_or_else(|| panic!("A's job never got SIGTERM:\n{}", log.dump()));
        assert!(end_a < start_b, "A's job ran on after B's started:\n{}", log.dump());
    }
    let a_dead_at =
        a_dead_at.unwrap_or_else(|| panic!("A's job still ran when B's started:\n{}", log.dump()));
    assert!(a_dead_at < start_b, "A's job was dead only at {a_dead_at}, B started at {start_b}");

    let out = holder.wait(COARSE);
    out.assert_code(LEASE_LOST);
    assert_said(&out, "part");
    job_b.release();
    waiter.wait(COARSE).assert_code(0);
}

#[test]
fn a_partitioned_holder_stops_its_job_before_another_host_starts() {
    partition_test("a_partitioned_holder_stops_its_job_before_another_host_starts", false);
}

#[test]
fn a_silently_partitioned_holder_stops_its_job_before_another_host_starts() {
    partition_test("a_silently_partitioned_holder_stops_its_job_before_another_host_starts", true);
}

#[test]
fn a_cluster_losing_its_leader_keeps_the_holder_running() {
    let _timing = timing();
    let t = TempDir::new();
    let mut cluster = EtcdCluster::start(3);
    let leader = cluster.leader();
    let log = JobLog::new(&t);
    let job = Job::new(&t, &log, "A");
    // The leader first: withlock talks to it until it dies.
    let holder = hold(&["--lease", "6s"], &cluster.url_from(leader, "c"), &job);
    let before = the_withlock_key(&cluster.ctl(), "c");
    cluster.member_mut(leader).kill();
    assert_ne!(cluster.leader(), leader);
    thread::sleep(Duration::from_secs(8)); // longer than the lease
    assert!(
        !job.dead() && log.time("end", "A").is_none(),
        "the job was stopped:\n{}withlock said: {}",
        log.dump(),
        holder.stderr_so_far()
    );
    assert_eq!(the_withlock_key(&cluster.ctl(), "c"), before, "the lock changed hands");
    job.release();
    holder.wait(COARSE).assert_code(0);
    assert!(cluster.ctl().get_prefix("c").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Once per schedule.

#[test]
fn min_hold_keeps_a_short_jobs_lock_from_the_other_host() {
    if !netns_or_skip("min_hold_keeps_a_short_jobs_lock_from_the_other_host") {
        return;
    }
    let _timing = timing();
    let t = TempDir::new();
    let (a, b) = (Netns::create(), Netns::create());
    let server = EtcdServer::start_on(&[a.host_ip(), b.host_ip()]);
    let log = JobLog::new(&t);
    let short = |who: &str| {
        vec![
            "sh".to_string(),
            "-c".into(),
            format!(r#"echo "start {who} $(date +%s%N)" >> "$1""#),
            "sh".into(),
            log.path().display().to_string(),
        ]
    };
    let mut first = start(
        a.withlock()
            .args(["--insecure", "--min-hold", "4s"])
            .arg(server.url_on(a.host_ip(), "tick"))
            .args(short("A")),
    );
    eventually("A's job runs", COARSE, || log.time("start", "A").is_some());
    let start_a = log.time("start", "A").unwrap();
    let url_b = server.url_on(b.host_ip(), "tick");
    for at in [1_000_000_000, 3_500_000_000] {
        while now_epoch_ns() < start_a + at {
            thread::sleep(Duration::from_millis(10));
        }
        let out = run_within(b.withlock().args(["--insecure"]).arg(&url_b).args(short("B")), COARSE);
        assert!(now_epoch_ns() < start_a + 4_000_000_000, "too slow to test within the hold");
        out.assert_code(BUSY);
        assert!(first.is_running(), "A let go before --min-hold");
    }
    first.wait(COARSE).assert_code(0);
    assert!(log.time("start", "B").is_none(), "B ran during A's hold:\n{}", log.dump());
    run_within(b.withlock().args(["--insecure"]).arg(&url_b).args(short("B")), COARSE).assert_code(0);
    assert!(log.time("start", "B").is_some());
}

// ---------------------------------------------------------------------------------------------
// Reaching the service.

#[test]
fn an_unreachable_service_exits_69_runs_nothing_and_says_so_even_with_q() {
    let _timing = timing();
    let t = TempDir::new();
    let marker = t.join("ran");
    let refused = format!("etcd://{}/x", refused_endpoint());
    for opts in [&[][..], &["-q"]] {
        let out = run_touch(opts, &refused, &marker);
        assert_failed_without_running(&out, UNAVAILABLE, &marker);
        assert!(out.elapsed < Duration::from_secs(10), "{}", out.describe());
    }

    // Connection attempts that hang are bounded by --connect-timeout (default 5 s).
    let drop = SynDrop::new();
    let dropped = format!("etcd://{}/x", drop.endpoint());
    let out = run_touch(&["-q", "--connect-timeout", "1s"], &dropped, &marker);
    assert_failed_without_running(&out, UNAVAILABLE, &marker);
    assert!(
        out.elapsed >= Duration::from_millis(900) && out.elapsed < Duration::from_secs(10),
        "{}",
        out.describe()
    );
    let out = run_touch(&[], &dropped, &marker);
    assert_failed_without_running(&out, UNAVAILABLE, &marker);
    assert!(
        out.elapsed >= Duration::from_millis(4500) && out.elapsed < Duration::from_secs(20),
        "{}",
        out.describe()
    );
}

#[test]
fn a_dead_first_endpoint_falls_through_to_a_live_one() {
    let t = TempDir::new();
    let server = EtcdServer::start();
    let marker = t.join("ran");
    let url = format!("etcd://{},{}/multi", refused_endpoint(), server.endpoint());
    run_touch(&[], &url, &marker).assert_code(0);
    assert!(exists(&marker));
    // --connect-timeout bounds each endpoint's connection and lease grant: the live server
    // must grant within it too (a grant that took over 1 s under load failed this test).
    let drop = SynDrop::new();
    let url = format!("etcd://{},{}/multi", drop.endpoint(), server.endpoint());
    let out = run_touch(&["--connect-timeout", "3s"], &url, &marker);
    out.assert_code(0);
    assert!(out.elapsed < Duration::from_secs(15), "{}", out.describe());
    // An endpoint that accepts connections but never answers (a stopped server does that:
    // the kernel completes the handshake) is passed over too.
    let silent = FakeEtcd::start(FakeReply::Silent);
    let url = format!("etcd://{},{}/multi", silent.endpoint(), server.endpoint());
    let out = run_touch(&["--connect-timeout", "3s"], &url, &marker);
    out.assert_code(0);
    assert!(out.elapsed < Duration::from_secs(15), "{}", out.describe());
    assert_released(&server.ctl(), "multi");
}

#[test]
fn plain_http_off_loopback_is_refused_unless_insecure() {
    if !netns_or_skip("plain_http_off_loopback_is_refused_unless_insecure") {
        return;
    }
    let t = TempDir::new();
    // A namespace's link gives this host a local address that is not loopback.
    let ns = Netns::create();
    let server = EtcdServer::start_on(&[ns.host_ip()]);
    let url = server.url_on(ns.host_ip(), "plain");
    let marker = t.join("ran");
    let out = run_touch(&["-q"], &url, &marker);
    assert_eq!(out.code(), Some(REFUSED), "{}", out.describe());
    assert!(!exists(&marker), "the job ran");
    out.assert_stderr_mentions("--insecure").assert_stderr_mentions("TLS tunnel");
    assert!(server.ctl().get_prefix("plain").is_empty(), "it talked to the server anyway");
    run_touch(&["--insecure"], &url, &marker).assert_code(0);
    assert!(exists(&marker));
}

#[test]
fn through_a_tcp_gateway_but_not_a_grpc_proxy() {
    let t = TempDir::new();
    let server = EtcdServer::start();
    let gateway = EtcdProxy::start(ProxyKind::Gateway, &server.endpoint());
    let job = EnvJob::new(&t, "gw");
    let mut holder = start(&mut job.command(&[], &gateway.url("via")));
    eventually("the job runs through the gateway", COARSE, || exists(&job.ready) || !holder.is_running());
    let kv = the_withlock_key(&server.ctl(), "via");
    assert_eq!(job.env().token, kv.create_revision);
    let marker = t.join("ran");
    run_touch(&[], &server.url("via"), &marker).assert_code(BUSY);
    job.release();
    holder.wait(COARSE).assert_code(0);

    // etcd grpc-proxy serves no JSON gateway (404): cannot be used, and says so.
    let grpc = EtcdProxy::start(ProxyKind::Grpc, &server.endpoint());
    let out = run_touch(&["-q"], &grpc.url("via"), &marker);
    assert_failed_without_running(&out, UNAVAILABLE, &marker);
}

/// Broken servers: whatever comes back (or does not), withlock exits 69 without running the
/// job, says so even with -q, and never hangs.
#[test]
fn malformed_replies_exit_69_and_never_hang() {
    let t = TempDir::new();
    let marker = t.join("ran");
    let ok_head = |len: usize| {
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n")
    };
    let cases: Vec<(&str, FakeReply)> = vec![
        ("garbage", FakeReply::Close(b"\x00\xff\xfegarbage, not HTTP\r\n\r\n".to_vec())),
        (
            "truncated JSON",
            FakeReply::http("200 OK", r#"{"header":{"cluster_id":"1","member_id":"2"},"ID":"76"#),
        ),
        ("not JSON", FakeReply::http("200 OK", "<html>hello</html>")),
        ("JSON of the wrong shape", FakeReply::http("200 OK", r#"{"header":{},"kvs":"nope","ID":[1]}"#)),
        ("empty object", FakeReply::http("200 OK", "{}")),
        (
            "HTTP 500",
            FakeReply::http(
                "500 Internal Server Error",
                r#"{"error":"etcdserver: request timed out","code":14}"#,
            ),
        ),
        ("HTTP 404", FakeReply::http("404 Not Found", "404 page not found\n")),
        (
            "body shorter than Content-Length, closed",
            FakeReply::Close(format!("{}{{\"ID\":\"1\"", ok_head(500)).into_bytes()),
        ),
        (
            "body shorter than Content-Length, left open",
            FakeReply::Stall(format!("{}{{\"ID\":\"1\"", ok_head(500)).into_bytes()),
        ),
        (
            "body longer than Content-Length",
            FakeReply::Close(format!("{}{{\"ID\":\"1\",\"TTL\":\"3\"}}", ok_head(3)).into_bytes()),
        ),
        ("huge Content-Length", FakeReply::Stall(ok_head(usize::MAX).into_bytes())),
        (
            "headers without end",
            FakeReply::Endless(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".to_vec()),
        ),
        ("silence", FakeReply::Silent),
        ("hang-up", FakeReply::Hangup),
    ];
    for (what, reply) in cases {
        let fake = FakeEtcd::start(reply);
        let out = run_within(
            withlock().args(["-q", "--connect-timeout", "1s"]).arg(fake.url("x")).arg("touch").arg(&marker),
            COARSE,
        );
        assert_eq!(out.code(), Some(UNAVAILABLE), "{what}: expected 69\n{}", out.describe());
        assert!(!exists(&marker), "{what}: the job ran");
        assert!(!out.stderr.is_empty(), "{what}: no message with -q");
        assert!(fake.requests() >= 1, "{what}: withlock never asked");
        assert!(out.elapsed < Duration::from_secs(15), "{what}: took {:?}", out.elapsed);
    }
    // Silence with the default bounds: still bounded.
    let fake = FakeEtcd::start(FakeReply::Silent);
    let out = run_within(withlock().arg(fake.url("x")).arg("touch").arg(&marker), COARSE);
    assert_failed_without_running(&out, UNAVAILABLE, &marker);
}

// ---------------------------------------------------------------------------------------------
// --status.

fn host_name() -> String {
    let out = run(Command::new("uname").arg("-n").stdin(Stdio::null()));
    out.stdout_str().trim().to_string()
}

#[test]
fn status_shows_the_holder_or_says_free() {
    let t = TempDir::new();
    let server = EtcdServer::start();
    let url = server.url("st");
    let free = run_within(withlock().arg("--status").arg(&url), COARSE);
    free.assert_code(0);
    assert!(free.stdout_str().contains("free"), "{}", free.describe());

    let job = Job::new(&t, &JobLog::new(&t), "A");
    let holder = hold(&[], &url, &job);
    let kv = the_withlock_key(&server.ctl(), "st");
    let held = run_within(withlock().arg("--status").arg(&url), COARSE);
    held.assert_code(BUSY);
    let text = held.stdout_str();
    assert!(text.contains(&host_name()), "no host: {text}");
    assert!(text.contains(&kv.create_revision.to_string()), "no token: {text}");
    assert!(
        text.contains(&holder.pid().to_string()) || text.contains(&job.pid().to_string()),
        "no pid: {text}"
    );

    let json = run_within(withlock().args(["--status", "--json"]).arg(&url), COARSE);
    json.assert_code(BUSY);
    let o = Json::parse(json.stdout_str().trim()).unwrap_or_else(|e| panic!("{e}\n{}", json.describe()));
    assert_eq!(o.str_at("lock"), url);
    assert_eq!(o.u64_at("fencing_token"), kv.create_revision);
    assert_eq!(o.str_at("host"), host_name());
    let pid = o.u64_at("pid");
    assert!(pid == holder.pid() as u64 || pid == job.pid() as u64, "pid {pid}");
    assert!(!o.str_at("since").is_empty());
    job.release();
    holder.wait(COARSE).assert_code(0);
    run_within(withlock().arg("--status").arg(&url), COARSE).assert_code(0);
}

/// Children killed and reaped when the test ends, however it ends.
struct Reaped(Vec<std::process::Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The TLS recipe the README gives: etcd serving clients over TLS only (here with its own
/// generated certificate), a socat tunnel on loopback that speaks TLS to it, and withlock
/// locking through the tunnel, as `etcdctl lock` sees.
#[test]
fn through_a_tls_tunnel_to_a_tls_only_server() {
    crate::etcd_support::require_tool("socat", "socat");
    let t = TempDir::new();
    let (client, peer, tunnel) = (
        crate::etcd_support::free_port(),
        crate::etcd_support::free_port(),
        crate::etcd_support::free_port(),
    );
    let mut children = Reaped(Vec::new());
    let client_url = format!("https://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    children.0.push(
        Command::new("etcd")
            .args(["--name", "tls", "--auto-tls", "--data-dir"])
            .arg(t.join("data"))
            .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("tls={peer_url}"), "--initial-cluster-state", "new"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd"),
    );
    children.0.push(
        Command::new("socat")
            .arg(format!("TCP-LISTEN:{tunnel},bind=127.0.0.1,reuseaddr,fork"))
            .arg(format!("OPENSSL:127.0.0.1:{client},verify=0"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("socat"),
    );
    let url = format!("etcd://127.0.0.1:{tunnel}/tls/job");
    // Plain HTTP straight to the TLS port is not etcd's gateway: 69, not a hang.
    let plain = run_within(
        withlock()
            .args(["--connect-timeout", "2s"])
            .arg(format!("etcd://127.0.0.1:{client}/tls/job"))
            .arg("true"),
        COARSE,
    );
    eventually("etcd answers through the tunnel", COARSE, || {
        run_within(withlock().args(["--status"]).arg(&url), COARSE).code() == Some(0)
    });
    plain.assert_code(UNAVAILABLE);
    let job = EnvJob::new(&t, "tls");
    let mut holder = start(&mut job.command(&[], &url));
    eventually("the job runs through the tunnel", COARSE, || exists(&job.ready) || !holder.is_running());
    let status = run_within(withlock().args(["--status"]).arg(&url), COARSE);
    status.assert_code(BUSY);
    assert!(status.stdout_str().contains(&job.env().token.to_string()), "{}", status.describe());
    job.release();
    holder.wait(COARSE).assert_code(0);
}

// ---------------------------------------------------------------------------------------------
// etcd's replies are input (issue 10, item 9).

/// `body` with the first `"FIELD":"` value made negative (`"revision":"-5"`).
fn negated(body: &str, field: &str) -> Option<String> {
    let at = body.find(&format!("\"{field}\":\""))? + field.len() + 4;
    Some(format!("{}-{}", &body[..at], &body[at..]))
}

/// `body` with the first key of the first `"kvs"` list replaced by `key`.
fn with_first_key(body: &str, key: &str) -> Option<String> {
    let at = body.find(r#""kvs":[{"key":""#)? + r#""kvs":[{"key":""#.len();
    let end = at + body[at..].find('"')?;
    Some(format!("{}{}{}", &body[..at], crate::etcd_support::base64(key.as_bytes()), &body[end..]))
}

/// A lease shorter than asked (or none), a revision or count that is not positive, an owner
/// key outside `NAME/`: each from a real etcd with that one field altered on its way. withlock
/// must refuse with 69 before the job runs, say why even with -q, and leave no key or lease.
#[test]
fn replies_that_cannot_be_trusted_exit_69_before_the_job_runs() {
    let t = TempDir::new();
    let server = EtcdServer::start();
    let ctl = server.ctl();
    type Rule = fn(&str, &str) -> Option<String>;
    let cases: [(&str, &str, Rule); 6] = [
        ("shorter lease", "shorter than the 15s asked", |path, body| {
            (path == "/v3/lease/grant").then(|| body.replace(r#""TTL":"15""#, r#""TTL":"5""#))
        }),
        ("lease without TTL", "without a time to live", |path, body| {
            (path == "/v3/lease/grant").then(|| body.replace(r#""TTL":"15""#, r#""TTL":"0""#))
        }),
        ("negative lease TTL", "without a time to live", |path, body| {
            (path == "/v3/lease/grant").then(|| body.replace(r#""TTL":"15""#, r#""TTL":"-15""#))
        }),
        ("negative revision", "not positive", |path, body| {
            (path == "/v3/kv/txn").then(|| negated(body, "revision")).flatten()
        }),
        ("negative count", "negative count", |path, body| {
            (path == "/v3/kv/txn").then(|| negated(body, "count")).flatten()
        }),
        ("owner outside NAME/", "outside the lock's name", |path, body| {
            (path == "/v3/kv/txn").then(|| with_first_key(body, "elsewhere/1")).flatten()
        }),
    ];
    for (what, said, rule) in cases {
        let proxy = crate::etcd_support::TamperingProxy::start(&server.endpoint(), rule);
        let marker = t.join("ran");
        let out = run_touch(&["-q"], &proxy.url("input"), &marker);
        assert!(proxy.tampered() >= 1, "{what}: the reply was never altered\n{}", out.describe());
        assert_eq!(out.code(), Some(UNAVAILABLE), "{what}: expected 69\n{}", out.describe());
        assert!(!exists(&marker), "{what}: the job ran\n{}", out.describe());
        assert_said(&out, said);
        assert!(out.elapsed < Duration::from_secs(10), "{what}: took {:?}", out.elapsed);
        assert_released(&ctl, "input");
    }

    // --status: an owner key outside NAME/ is not a holder of NAME.
    let job = Job::new(&t, &JobLog::new(&t), "A");
    let holder = hold(&[], &server.url("input"), &job);
    let proxy = crate::etcd_support::TamperingProxy::start(&server.endpoint(), |path, body| {
        (path == "/v3/kv/range").then(|| with_first_key(body, "elsewhere/1")).flatten()
    });
    let out = run_within(withlock().arg("--status").arg(proxy.url("input")), COARSE);
    assert_eq!(out.code(), Some(UNAVAILABLE), "{}", out.describe());
    out.assert_stderr_mentions("outside the lock's name");
    job.release();
    holder.wait(COARSE).assert_code(0);
}

/// `--status` on an etcd lock says what it says of a lock file's holder: the job's pid (not
/// withlock's), its command line and its user, and the host; in JSON too.
#[test]
fn status_names_the_jobs_pid_command_and_user() {
    let t = TempDir::new();
    let server = EtcdServer::start();
    let url = server.url("who");
    let pid_file = t.join("job.pid");
    let argv = ["sh", "-c", r#"echo $$ > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 60"#, "sh"];
    let mut holder = start(withlock().arg(&url).args(argv).arg(&pid_file));
    eventually("the job runs", COARSE, || exists(&pid_file) || !holder.is_running());
    let job: i32 = read_string(&pid_file).trim().parse().unwrap();
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let user = crate::holder::user_name(uid).unwrap_or_else(|| format!("uid {uid}"));
    let mut text = String::new();
    let shows_job = wait_until(Duration::from_secs(10), || {
        text = run_within(withlock().arg("--status").arg(&url), COARSE).stdout_str();
        text.contains(&format!("pid {job} "))
    });
    assert!(shows_job, "the job's pid {job} is not shown: {text}");
    assert!(!text.contains(&format!("pid {} ", holder.pid())), "withlock's pid is shown: {text}");
    assert!(text.contains("(sh -c "), "no command line: {text}");
    assert!(text.contains(&format!("user {user}")) || text.contains(&format!("user \"{user}\"")), "{text}");
    assert!(text.contains(&host_name()), "no host: {text}");

    let out = run_within(withlock().args(["--status", "--json"]).arg(&url), COARSE);
    out.assert_code(BUSY);
    let o = Json::parse(out.stdout_str().trim()).unwrap_or_else(|e| panic!("{e}\n{}", out.describe()));
    assert_eq!(o.u64_at("pid"), job as u64);
    assert_eq!(o.u64_at("pgid"), job as u64, "the job leads its own group");
    assert_eq!(o.u64_at("uid"), u64::from(uid));
    assert_eq!(o.str_at("user"), user);
    assert_eq!(o.str_at("host"), host_name());
    let Json::Arr(shown) = o.at("argv") else { panic!("argv is not a list: {o:?}") };
    let shown: Vec<&str> =
        shown.iter().map(|a| if let Json::Str(s) = a { s.as_str() } else { panic!("{a:?}") }).collect();
    assert_eq!(shown[..4], argv);
    assert_eq!(shown[4], pid_file.to_str().unwrap());
    assert_eq!(o.at("command_cut"), &Json::Bool(false));
    send_signal(holder.pid(), libc::SIGTERM);
    holder.wait(COARSE);
}

// ---------------------------------------------------------------------------------------------
// withlock itself stopped: the watchdog (issue 14).

/// A job that appends `tick WHO NANOS` to the log $1 every 20 ms for as long as the log
/// exists (so it ends with the test's TempDir, whatever happened to its locker).
const TICKER: &str = r#"exec 2>/dev/null
while [ -e "$1" ]; do echo "tick $2 $(date +%s%N)" >> "$1"; sleep 0.02; done"#;

/// The pids of `pid`'s children.
fn children(pid: i32) -> Vec<i32> {
    let text = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    text.split_whitespace().map(|p| p.parse().unwrap()).collect()
}

/// The process group of `pid`, from /proc.
fn pgid_of(pid: i32) -> i32 {
    let stat = read_string(Path::new(&format!("/proc/{pid}/stat")));
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    fields[2].parse().unwrap()
}

/// `pid`'s descriptors and what they point at (`socket:[...]`, `pipe:[...]`, paths).
fn descriptors(pid: i32) -> Vec<(i32, String)> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    dir.filter_map(|e| {
        let path = e.ok()?.path();
        let fd = path.file_name()?.to_str()?.parse().ok()?;
        Some((fd, fs::read_link(&path).ok()?.display().to_string()))
    })
    .collect()
}

/// SIGSTOP withlock alone while its job writes timestamps and another withlock waits: the
/// job must be dead before the waiter's job starts (the lease expires while withlock is
/// stopped), and withlock, once continued, exits 76 and says why.
#[test]
fn a_stopped_withlock_still_has_its_job_killed_before_the_lease_can_expire() {
    let _timing = timing();
    let t = TempDir::new();
    let server = EtcdServer::start();
    let ctl = server.ctl();
    let url = server.url("frozen-holder");
    let log = JobLog::new(&t);
    fs::write(log.path(), b"").unwrap();
    let mut holder = start(
        withlock()
            .args(["--lease", "3s"])
            .arg(&url)
            .args(["sh", "-c", TICKER, "sh"])
            .arg(log.path())
            .arg("A"),
    );
    eventually("A's job ticks", COARSE, || log.time("tick", "A").is_some() || !holder.is_running());
    let next = Job::new(&t, &log, "B");
    let mut waiter = start(withlock().args(["-w", "30s"]).arg(&url).args(next.argv()));
    eventually("B queues", COARSE, || ctl.get_prefix("frozen-holder").len() == 2);

    send_signal(holder.pid(), libc::SIGSTOP);
    let stopped = Instant::now();
    next.wait_started(&mut waiter, COARSE);
    let start_b = log.time("start", "B").unwrap();
    thread::sleep(Duration::from_millis(500)); // room for late ticks of A to show
    let last_a = log.events().into_iter().filter(|e| e.what == "tick" && e.who == "A").map(|e| e.ns).max();
    let last_a = last_a.unwrap();
    assert!(
        last_a < start_b,
        "A's job ran on {} ms after B's started (withlock stopped {:?} before B started):\n{}",
        (last_a - start_b) / 1_000_000,
        stopped.elapsed(),
        log.dump()
    );

    send_signal(holder.pid(), libc::SIGCONT);
    let out = holder.wait(COARSE);
    out.assert_code(LEASE_LOST);
    assert_said(&out, "lost the etcd lock");
    out.assert_stderr_mentions("frozen-holder");
    next.release();
    waiter.wait(COARSE).assert_code(0);
}

/// The watchdog alone stopped (for longer than the lease) changes nothing while withlock
/// runs: the job runs on, under the same key. It holds no etcd connection, keeps a pin in the
/// job's group, and withlock stands it down and reaps it (and its pin) at the end, even while
/// it is stopped.
#[test]
fn a_stopped_watchdog_changes_nothing_and_is_reaped() {
    let _timing = timing();
    let t = TempDir::new();
    let server = EtcdServer::start();
    let ctl = server.ctl();
    let log = JobLog::new(&t);
    let job = Job::new(&t, &log, "A");
    let holder = hold(&["--lease", "3s"], &server.url("dog"), &job);
    let before = the_withlock_key(&ctl, "dog");
    let others: Vec<i32> = children(holder.pid()).into_iter().filter(|&p| p != job.pid()).collect();
    assert_eq!(others.len(), 1, "withlock's children besides the job: {others:?}");
    let watchdog = others[0];
    // Its pipes with withlock, and stderr: no lock, no connection to etcd.
    let held = descriptors(watchdog);
    assert!(
        held.iter().all(|(fd, what)| *fd == 2 || what.starts_with("pipe:")),
        "the watchdog holds more than pipes and stderr: {held:?}"
    );
    assert!(held.len() <= 3, "the watchdog holds more than its two pipes and stderr: {held:?}");
    assert_ne!(pgid_of(watchdog), pgid_of(holder.pid()), "the watchdog shares withlock's group");
    let pins = children(watchdog);
    assert_eq!(pins.len(), 1, "the watchdog's children: {pins:?}");
    assert_eq!(pgid_of(pins[0]), job.pid(), "the pin is not in the job's group");
    assert!(descriptors(pins[0]).is_empty(), "the pin holds descriptors: {:?}", descriptors(pins[0]));

    send_signal(watchdog, libc::SIGSTOP);
    thread::sleep(Duration::from_secs(5)); // longer than the lease
    assert!(!job.dead() && log.time("end", "A").is_none(), "the job was stopped:\n{}", log.dump());
    send_signal(watchdog, libc::SIGCONT);
    thread::sleep(Duration::from_millis(500));
    assert!(!job.dead(), "the job died once the watchdog was continued");
    assert_eq!(the_withlock_key(&ctl, "dog"), before, "the lock changed hands");

    // Stopped again at the end: withlock still stands it down, promptly.
    send_signal(watchdog, libc::SIGSTOP);
    job.release();
    let out = holder.wait(COARSE);
    out.assert_code(0);
    assert!(out.stderr.is_empty(), "{}", out.describe());
    assert!(out.elapsed < COARSE, "{}", out.describe());
    for pid in [watchdog, pins[0]] {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "pid {pid} was not reaped (a zombie left)");
    }
    assert_released(&ctl, "dog");
}
