//! The harness: a private temporary directory, a runner that captures a child's status,
//! output and run time (with a hard timeout so no test can hang), background holders that
//! keep a lock until told to let go, and thin wrappers over the few system calls std lacks.
//!
//! Output is captured in unlinked temporary files, not pipes: a job's background children
//! may keep the descriptors open long after the job itself is gone, and the runner must not
//! wait for them.

use std::ffi::{CString, OsStr};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest any single withlock run may take before the runner kills it and fails the test.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The binary under test: `$WITHLOCK_BIN` (the Makefile points it at the static musl build),
/// else the one Cargo built for this test run. To run it, use `withlock()` or `argv_for`:
/// a binary for another architecture runs under its emulator.
pub fn bin() -> PathBuf {
    match std::env::var_os("WITHLOCK_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_withlock")),
    }
}

/// What runs the binary under test when it is for another architecture: `$WITHLOCK_RUNNER`,
/// split at spaces (ci/test.sh sets `qemu-aarch64` or `qemu-arm`); none by default. qemu-user
/// runs withlock in the process it was started as (same pid, same signals) and the job it
/// execs natively, so the lock passes to the job as on real hardware.
pub fn runner() -> Vec<String> {
    std::env::var("WITHLOCK_RUNNER").unwrap_or_default().split_whitespace().map(String::from).collect()
}

/// The words that run the withlock binary at `path` (the one under test or a copy of it):
/// the runner's, then the path. For command lines: `sh -c '"$@"'`, `setpriv ... PROGRAM`,
/// a job that is withlock again.
pub fn argv_for(path: &Path) -> Vec<std::ffi::OsString> {
    runner().into_iter().map(Into::into).chain([path.as_os_str().to_owned()]).collect()
}

/// The words that run the binary under test.
pub fn bin_argv() -> Vec<std::ffi::OsString> {
    argv_for(&bin())
}

/// The binary under test as one word, for a script that runs it as "$1": the binary itself,
/// or under a runner a script in `dir` that execs the runner with it (so the pid is the same).
pub fn bin_as_one_word(dir: &TempDir) -> PathBuf {
    if runner().is_empty() {
        return bin();
    }
    let quoted: Vec<String> = bin_argv().iter().map(|w| format!("'{}'", w.to_string_lossy())).collect();
    let script = format!("#!/bin/sh\nexec {} \"$@\"\n", quoted.join(" "));
    dir.write("withlock-run", script.as_bytes(), 0o755)
}

/// Whether the binary under test is for i386 (ELF machine 3), which this x86-64 kernel runs
/// natively: /proc then shows its processes' system calls by i386's numbers.
pub fn bin_is_i386() -> bool {
    let header = fs::read(bin()).unwrap_or_else(|e| panic!("read {}: {e}", bin().display()));
    header.get(18..20) == Some(&[3, 0])
}

/// Whether process `pid` is the binary under test itself (a waiter, a watcher; not a job it
/// became). Under a runner, /proc shows the emulator as its executable, and the binary as
/// the word after the runner's in its command line.
pub fn runs_withlock(pid: i32) -> bool {
    let canonical = |path: &Path| fs::canonicalize(path).ok();
    let Ok(exe) = fs::read_link(format!("/proc/{pid}/exe")) else { return false };
    let runner = runner();
    let Some(emulator) = runner.first() else { return Some(exe) == canonical(&bin()) };
    let argv = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let program = argv.split(|&b| b == 0).nth(runner.len()).map(|word| Path::new(OsStr::from_bytes(word)));
    Some(exe) == find_program(emulator) && program.and_then(canonical) == canonical(&bin())
}

/// Where `program` is, as Command::new would find it (a path, or a name in PATH).
fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return fs::canonicalize(program).ok();
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| fs::canonicalize(dir.join(program)).ok())
}

/// The PATH every withlock run gets unless a test sets its own: the tests' helpers
/// (sh, printf, flock, ...) are all there, and the caller's PATH may hold directories this
/// user cannot search, which would make "not found" cases depend on the environment.
pub const TEST_PATH: &str = "/usr/bin:/bin";

/// A `Command` for withlock with stdin from /dev/null and PATH set to `TEST_PATH`; add the
/// arguments with `.arg(s)`.
pub fn withlock() -> Command {
    command_for(&bin())
}

/// As `withlock()`, for the withlock binary at `path` (a copy of the one under test).
pub fn command_for(path: &Path) -> Command {
    let argv = argv_for(path);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null()).env("PATH", TEST_PATH);
    cmd
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A unique name prefix for this process, for files created outside a `TempDir`.
pub fn unique_name(what: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("withlock-test-{}-{}-{nanos}-{what}", std::process::id(), unique())
}

// ---------------------------------------------------------------------------------------------
// Serialising timing-sensitive tests against the CPU-hungry torture tests.

static LOAD: RwLock<()> = RwLock::new(());

/// Held by tests that assert a (coarse) time bound: they may run together, but not while a
/// torture test saturates the machine.
pub fn timing() -> RwLockReadGuard<'static, ()> {
    LOAD.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Held by the torture tests: they run alone.
pub fn exclusive() -> RwLockWriteGuard<'static, ()> {
    LOAD.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Temporary directories.

/// A fresh directory under the system temp dir, mode 0700 (so it passes withlock's safety
/// checks), removed with everything in it on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new() -> Self {
        let base = std::env::temp_dir();
        loop {
            let path = base.join(unique_name("dir"));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    // The umask may have removed bits we need; set the mode exactly.
                    set_mode(&path, 0o700);
                    return TempDir { path };
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => panic!("cannot create a temp dir in {}: {e}", base.display()),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// The conventional lock path for a test: `DIR/x.lock`.
    pub fn lock(&self) -> PathBuf {
        self.join("x.lock")
    }

    /// Creates `DIR/name` (parents must exist) and sets its mode exactly (umask ignored).
    pub fn mkdir(&self, name: impl AsRef<Path>, mode: u32) -> PathBuf {
        let path = self.join(name);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        set_mode(&path, mode);
        path
    }

    /// Writes `DIR/name` with `content` and sets its mode exactly. An executable file is
    /// written so that it can be run at once (see `copy_executable`).
    pub fn write(&self, name: impl AsRef<Path>, content: &[u8], mode: u32) -> PathBuf {
        let path = self.join(name);
        if mode & 0o111 == 0 {
            fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        } else {
            let side = std::env::temp_dir().join(unique_name("content"));
            fs::write(&side, content).unwrap_or_else(|e| panic!("write {}: {e}", side.display()));
            copy_executable(&side, &path);
            fs::remove_file(&side).unwrap();
        }
        set_mode(&path, mode);
        path
    }
}

/// Copies `from` to `to` (with `from`'s mode, less the umask) by cp(1), so that no
/// process has `to` open for writing once this returns: written from this process, it
/// could be, as a child that another test thread is spawning at that moment holds a copy
/// of every descriptor until it execs; running `to` would fail with ETXTBSY meanwhile.
/// cp is a process of its own that starts nothing.
pub fn copy_executable(from: &Path, to: &Path) {
    let out = run(Command::new("cp").arg(from).arg(to).stdin(Stdio::null()));
    assert!(out.status.success(), "cp {} {}\n{}", from.display(), to.display(), out.describe());
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // As non-root, a test may have left a directory without write or search permission.
        fn open_up(dir: &Path) {
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
            if let Ok(entries) = fs::read_dir(dir) {
                for entry in entries.flatten() {
                    if entry.file_type().is_ok_and(|t| t.is_dir()) {
                        open_up(&entry.path());
                    }
                }
            }
        }
        if fs::remove_dir_all(&self.path).is_err() {
            open_up(&self.path);
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

pub fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display())).mode()
}

pub fn inode_of(path: &Path) -> u64 {
    fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display())).ino()
}

pub fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

pub fn read_string(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Reads a file holding `date +%s%N` output: nanoseconds since the epoch.
pub fn read_epoch_ns(path: &Path) -> i128 {
    let text = read_string(path);
    text.trim().parse().unwrap_or_else(|e| panic!("{}: not a timestamp {text:?}: {e}", path.display()))
}

pub fn now_epoch_ns() -> i128 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i128::try_from(d.as_nanos()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Running withlock.

/// What a finished child did.
pub struct Out {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Everything about the run, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "status: {:?}\nelapsed: {:?}\nstdout: {:?}\nstderr: {:?}",
            self.status,
            self.elapsed,
            self.stdout_str(),
            self.stderr_str()
        )
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "expected exit code {code}\n{}", self.describe());
        self
    }

    #[track_caller]
    pub fn assert_signal(&self, signal: i32) -> &Self {
        assert_eq!(self.signal(), Some(signal), "expected death by signal {signal}\n{}", self.describe());
        self
    }

    #[track_caller]
    pub fn assert_stdout(&self, expected: &str) -> &Self {
        assert_eq!(self.stdout_str(), expected, "stdout\n{}", self.describe());
        self
    }

    /// stderr mentions `text` (a path is compared as its bytes).
    #[track_caller]
    pub fn assert_stderr_mentions(&self, text: impl AsRef<OsStr>) -> &Self {
        let needle = text.as_ref().as_bytes();
        assert!(
            self.stderr.windows(needle.len()).any(|w| w == needle),
            "stderr should mention {:?}\n{}",
            text.as_ref(),
            self.describe()
        );
        self
    }

    /// withlock's own failure: one line on stderr, prefixed `withlock: `, naming `what`.
    #[track_caller]
    pub fn assert_one_message_naming(&self, what: impl AsRef<OsStr>) -> &Self {
        let err = self.stderr_str();
        assert!(
            err.starts_with("withlock: ") && err.ends_with('\n') && err.lines().count() == 1,
            "expected exactly one stderr line starting `withlock: `\n{}",
            self.describe()
        );
        self.assert_stderr_mentions(what)
    }

    #[track_caller]
    pub fn assert_silent(&self) -> &Self {
        assert!(
            self.stdout.is_empty() && self.stderr.is_empty(),
            "expected no output at all\n{}",
            self.describe()
        );
        self
    }
}

/// An anonymous (already unlinked) file to receive a child's output.
fn capture_file() -> File {
    let path = std::env::temp_dir().join(unique_name("out"));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    fs::remove_file(&path).unwrap();
    file
}

fn slurp(mut file: &File) -> Vec<u8> {
    let mut buf = Vec::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut buf).unwrap();
    buf
}

/// A child running in the background with its output captured.
pub struct Running {
    child: Child,
    out: File,
    err: File,
    started: Instant,
    reaped: bool,
    what: String,
}

/// Starts `cmd` with stdout and stderr captured (stdin is whatever `cmd` says; `withlock()`
/// sets /dev/null).
pub fn start(cmd: &mut Command) -> Running {
    let out = capture_file();
    let err = capture_file();
    cmd.stdout(out.try_clone().unwrap());
    cmd.stderr(err.try_clone().unwrap());
    let what = format!("{cmd:?}");
    let started = Instant::now();
    let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"));
    Running { child, out, err, started, reaped: false, what }
}

impl Running {
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// The status if the child has exited (it is then reaped).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().unwrap();
        if status.is_some() {
            self.reaped = true;
        }
        status
    }

    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Output so far, for diagnostics.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&slurp(&self.err)).into_owned()
    }

    /// Waits for the child; if it is still running `timeout` from now it is killed and
    /// the test fails.
    #[track_caller]
    pub fn wait(mut self, timeout: Duration) -> Out {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.try_status() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.reaped = true;
                panic!(
                    "timed out after {timeout:?}: {}\nstdout: {:?}\nstderr: {:?}",
                    self.what,
                    String::from_utf8_lossy(&slurp(&self.out)),
                    String::from_utf8_lossy(&slurp(&self.err)),
                );
            }
            thread::sleep(Duration::from_millis(2));
        };
        let elapsed = self.started.elapsed();
        Out { status, stdout: slurp(&self.out), stderr: slurp(&self.err), elapsed }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to completion (at most `DEFAULT_TIMEOUT`).
#[track_caller]
pub fn run(cmd: &mut Command) -> Out {
    start(cmd).wait(DEFAULT_TIMEOUT)
}

/// Runs `cmd` to completion, failing the test if it takes longer than `timeout`.
#[track_caller]
pub fn run_within(cmd: &mut Command, timeout: Duration) -> Out {
    start(cmd).wait(timeout)
}

/// `withlock [opts] LOCK touch MARKER`: the standard "would it have run?" probe.
pub fn run_touch(opts: &[&str], lock: &Path, marker: &Path) -> Out {
    run(withlock().args(opts).arg(lock).arg("touch").arg(marker))
}

/// Polls `cond` every few milliseconds until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(3));
    }
}

/// Waits (setup only, not a timing assertion) until `pid` has `path` open: a waiter that
/// has opened the lock file is about to block on it, or already blocks.
#[track_caller]
pub fn wait_until_has_open(pid: i32, path: &Path) {
    let target = fs::canonicalize(path).unwrap();
    let fd_dir = PathBuf::from(format!("/proc/{pid}/fd"));
    let found = wait_until(Duration::from_secs(10), || {
        fs::read_dir(&fd_dir).is_ok_and(|entries| {
            entries.flatten().any(|e| fs::read_link(e.path()).is_ok_and(|l| l == target))
        })
    });
    assert!(found, "process {pid} never opened {}", path.display());
}

// ---------------------------------------------------------------------------------------------
// Holders: a process that has the lock until released.

/// A background locker (withlock or flock(1)) whose job has signalled that it runs.
pub struct Holder {
    run: Running,
    release: PathBuf,
}

/// The holder job: announce, then idle until the release file appears. It also ends when
/// its ready file is gone (the test's TempDir was removed): a holder under flock(1), whose
/// idle job is flock's child, must not outlive a test that panicked.
const HOLD_SCRIPT: &str =
    r#": > "$1"; while [ ! -e "$2" ] && [ -e "$1" ]; do sleep 0.01; done; [ -z "$3" ] || date +%s%N > "$3""#;

/// Starts `locker` (a command ending with the lock path, e.g. `withlock L` or `flock L`)
/// running the holder job, and returns once the job runs, that is, holds the lock.
#[track_caller]
pub fn hold_using(dir: &TempDir, mut locker: Command, done_stamp: Option<&Path>) -> Holder {
    let n = unique();
    let ready = dir.join(format!("holder-{n}.ready"));
    let release = dir.join(format!("holder-{n}.release"));
    locker
        .stdin(Stdio::null())
        .args(["sh", "-c", HOLD_SCRIPT, "sh"])
        .arg(&ready)
        .arg(&release)
        .arg(done_stamp.map_or(OsStr::new(""), Path::as_os_str));
    Holder { run: start_holding(&mut locker, &ready), release }
}

/// Starts `cmd`, whose job creates `ready` once it runs (that is, holds the lock), and
/// returns once it does; fails the test if it ends first or takes over 10 s.
#[track_caller]
pub fn start_holding(cmd: &mut Command, ready: &Path) -> Running {
    let mut run = start(cmd);
    let ok = wait_until(Duration::from_secs(10), || exists(ready) || !run.is_running());
    assert!(
        ok && exists(ready),
        "holder never got the lock: {}\nstderr: {:?}",
        run.what,
        run.stderr_so_far()
    );
    run
}

/// A copy of the binary that another user can run: `t` becomes 0711 and the copy sits in
/// `t/bin` (0755), since `t` itself is the tests' private 0700 directory.
pub fn runnable_copy(t: &TempDir) -> PathBuf {
    set_mode(t.path(), 0o711);
    let dir = t.mkdir("bin", 0o755);
    let copy = dir.join("withlock");
    copy_executable(&bin(), &copy);
    set_mode(&copy, 0o755);
    copy
}

/// `withlock LOCK <idle job>`, returned once it holds the lock.
#[track_caller]
pub fn hold(dir: &TempDir, lock: &Path) -> Holder {
    let mut cmd = withlock();
    cmd.arg(lock);
    hold_using(dir, cmd, None)
}

/// `withlock LOCK sh -c '...; exec sleep 300'`: a holder that is one process with no
/// children (so killing it leaves no other copy of the lock descriptor). End it with
/// `Holder::kill`.
#[track_caller]
pub fn hold_until_killed(dir: &TempDir, lock: &Path) -> Holder {
    let ready = dir.join(format!("holder-{}.ready", unique()));
    let mut cmd = withlock();
    cmd.arg(lock).args(["sh", "-c", r#": > "$1"; exec sleep 300"#, "sh"]).arg(&ready);
    Holder { run: start_holding(&mut cmd, &ready), release: dir.join("never-released") }
}

/// `flock LOCK <idle job>` (util-linux), returned once it holds the lock.
#[track_caller]
pub fn hold_with_flock(dir: &TempDir, lock: &Path) -> Holder {
    let mut cmd = Command::new("flock");
    cmd.arg(lock);
    hold_using(dir, cmd, None)
}

impl Holder {
    pub fn pid(&self) -> i32 {
        self.run.pid()
    }

    /// Tells the job to finish and waits for it; returns its outcome.
    #[track_caller]
    pub fn release(self) -> Out {
        fs::write(&self.release, b"").unwrap();
        self.run.wait(Duration::from_secs(10))
    }

    /// Waits for the holder to end (something else stops it).
    #[track_caller]
    pub fn wait(self, timeout: Duration) -> Out {
        self.run.wait(timeout)
    }

    /// Sends a signal and waits for the holder to end. (The idle loop of `hold` may have a
    /// `sleep` child that briefly keeps the lock; use `hold_until_killed` to avoid that.)
    #[track_caller]
    pub fn kill(self, sig: i32) -> Out {
        send_signal(self.pid(), sig);
        self.run.wait(Duration::from_secs(10))
    }
}

// ---------------------------------------------------------------------------------------------
// System calls std does not offer.

fn cstring(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// Removes the lock file the documented safe way: lock it (flock, as withlock does), check
/// the path still names the file we locked, unlink it, and only then let go. Returns
/// whether a file was removed.
pub fn remove_while_holding(lock: &Path) -> bool {
    use std::os::unix::io::AsRawFd;
    let Ok(file) = File::open(lock) else {
        return false;
    };
    // SAFETY: flock(2) on a descriptor owned by `file`, which outlives the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}: {}", lock.display(), io::Error::last_os_error());
    let held = file.metadata().unwrap();
    let same = fs::symlink_metadata(lock).is_ok_and(|m| m.dev() == held.dev() && m.ino() == held.ino());
    if same {
        fs::remove_file(lock).unwrap();
    }
    same
}

/// kill(2); `pid` may be negative to name a process group.
pub fn send_signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", io::Error::last_os_error());
}

/// Is `pid` gone, or a zombie nobody reaps (this sandbox's pid 1 reaps no orphans)?
pub fn dead(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and has no arguments.
    unsafe { libc::geteuid() == 0 }
}

/// Skips (returns false after saying so) unless the tests run as root.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        true
    } else {
        eprintln!("skipping {test}: needs root");
        false
    }
}

/// uid and gid of the `nobody` account, from /etc/passwd.
pub fn nobody() -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() > 3 && fields[0] == "nobody" {
            Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
        } else {
            None
        }
    })
}

/// Root and a `nobody` account, or skip.
pub fn require_root_and_nobody(test: &str) -> Option<(u32, u32)> {
    if !require_root(test) {
        return None;
    }
    let ids = nobody();
    if ids.is_none() {
        eprintln!("skipping {test}: no `nobody` user in /etc/passwd");
    }
    ids
}

pub fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

pub fn mkfifo(path: &Path, mode: u32) {
    let c = cstring(path);
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), mode) };
    assert_eq!(rc, 0, "mkfifo {}: {}", path.display(), io::Error::last_os_error());
}

/// `setpriv` as `uid`:`gid`, no supplementary groups; add the command.
pub fn as_user(uid: u32, gid: u32) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .env("PATH", TEST_PATH)
        .stdin(Stdio::null());
    cmd
}

/// Creates a character device node like /dev/null (1,3); fails where mknod is not allowed.
pub fn mknod_null(path: &Path) -> io::Result<()> {
    let c = cstring(path);
    let dev = libc::makedev(1, 3);
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, dev) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Whether the children this test process spawns start with `sig` ignored (a
/// non-interactive sh cannot trap a signal that was ignored when it started). std resets
/// SIGPIPE for children, so ask a child rather than look at ourselves.
pub fn signal_ignored_in_children(sig: i32) -> bool {
    static MASK: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let mask = *MASK.get_or_init(|| {
        let out = run(Command::new("grep").args(["^SigIgn:", "/proc/self/status"]).stdin(Stdio::null()));
        out.assert_code(0);
        let text = out.stdout_str();
        u64::from_str_radix(text["SigIgn:".len()..].trim(), 16).unwrap()
    });
    mask & (1 << (sig - 1)) != 0
}

/// Skips (returns false after saying so) when `sig` is ignored in this test process.
pub fn require_catchable(test: &str, sig: i32) -> bool {
    if signal_ignored_in_children(sig) {
        eprintln!("skipping {test}: signal {sig} is ignored in the children of this test process");
        false
    } else {
        true
    }
}

/// Makes the system call `nr` end as `action` says (a `SECCOMP_RET_*` value) in `cmd`: a
/// seccomp filter installed between fork and exec. The call is known by this architecture's
/// number `nr`, and by i386's `i386_nr` for an i686 binary under test (a qemu-user one
/// makes this machine's own system calls).
pub fn filter_syscall(cmd: &mut Command, nr: libc::c_long, i386_nr: u32, action: u32) {
    use std::os::unix::process::CommandExt;
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    // SAFETY: between fork and exec the closure only builds the filter on its own stack and
    // makes two system calls (prctl, seccomp), both async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let op = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter { code: code as u16, jt, jf, k };
            let mut filter = [
                op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 4), // seccomp_data.arch
                op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 2, AUDIT_ARCH_I386),
                op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0), // seccomp_data.nr
                op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 2, 3, i386_nr),
                op(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0), // seccomp_data.nr
                op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, nr as u32),
                op(libc::BPF_RET | libc::BPF_K, 0, 0, action),
                op(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
            ];
            let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_mut_ptr() };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `withlock ARGS...` in a private mount namespace without /proc; `None` (after
/// saying why) where that is not possible.
pub fn without_proc(args: &[&OsStr]) -> Option<Out> {
    if !is_root() {
        eprintln!("skipping: needs root to unmount /proc in a private namespace");
        return None;
    }
    let out = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"umount -l /proc || exit 99; [ ! -e /proc/self ] || exit 98; exec "$@""#)
        .arg("sh")
        .args(bin_argv())
        .args(args)
        .env("PATH", TEST_PATH)
        .stdin(Stdio::null()));
    if matches!(out.code(), Some(98 | 99)) || out.stderr_str().contains("unshare failed") {
        eprintln!("skipping: cannot unmount /proc here: {}", out.describe());
        return None;
    }
    Some(out)
}

/// `cmd` with the resource limit `resource` (RLIMIT_NOFILE, RLIMIT_FSIZE, ...) set to `limit`,
/// soft and hard, in the child just before it execs.
pub fn with_rlimit(
    cmd: &mut Command,
    resource: libc::__rlimit_resource_t,
    limit: libc::rlim_t,
) -> &mut Command {
    // SAFETY: setrlimit is async-signal-safe, and the closure touches nothing else.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, move || {
            let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(resource, &rlimit) == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
        })
    }
}
