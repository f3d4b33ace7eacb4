//! `--name NAME`: the lock goes in a directory withlock picks and creates — `/run/withlock`
//! for root, `$XDG_RUNTIME_DIR/withlock` or `/tmp/withlock-UID` for anyone else — and that
//! directory is judged like any lock's.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use crate::support::{
    TEST_PATH, TempDir, argv_for, chown, exists, hold_using, require_root, run, runnable_copy, set_mode,
    unique_name, withlock,
};

/// The test user: not in /etc/passwd, so nothing else on the machine uses its uid.
const UID: u32 = 54333;
/// Another user, who plants a directory for `UID`.
const OTHER: u32 = 54334;

/// The tests share `/run/withlock` and `/tmp/withlock-54333`: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static SHARED: Mutex<()> = Mutex::new(());
    SHARED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A copy of the binary that `UID` can run (the build directory may not be searchable).
/// withlock (the copy at `bin`) as `UID`, with no XDG_RUNTIME_DIR unless `runtime_dir`.
fn as_user(bin: &Path, runtime_dir: Option<&Path>) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={UID}"))
        .arg(format!("--regid={UID}"))
        .arg("--clear-groups")
        .args(argv_for(bin))
        .env("PATH", TEST_PATH)
        .env_remove("XDG_RUNTIME_DIR")
        .current_dir("/")
        .stdin(Stdio::null());
    if let Some(dir) = runtime_dir {
        cmd.env("XDG_RUNTIME_DIR", dir);
    }
    cmd
}

fn owner_and_mode(path: &Path) -> (u32, u32) {
    let meta = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (meta.uid(), meta.mode() & 0o7777)
}

/// Removes a directory and what is in it when dropped.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn as_root_the_lock_goes_in_run_withlock_created_0755() {
    if !require_root("as_root_the_lock_goes_in_run_withlock_created_0755") {
        return;
    }
    let _serial = serial();
    let dir = Path::new("/run/withlock");
    // Start without the directory when no one else uses it, to see it created.
    let _ = fs::remove_dir(dir);
    let name = unique_name("named");
    let lock = dir.join(&name);
    let t = TempDir::new();
    let marker = t.join("ran");
    run(withlock().args(["--name", &name, "touch"]).arg(&marker)).assert_code(0);
    assert!(exists(&marker));
    assert_eq!(owner_and_mode(dir), (0, 0o755));
    assert_eq!(owner_and_mode(&lock), (0, 0o600));
    // The inline spelling names the same lock; a holder's messages name its path.
    let mut locker = withlock();
    locker.arg(format!("--name={name}"));
    let holder = hold_using(&t, locker, None);
    let out = run(withlock().args(["--name", &name, "true"]));
    out.assert_code(75).assert_one_message_naming(&lock);
    run(withlock().args(["-q", "--name", &name, "true"])).assert_code(0).assert_silent();
    let status = run(withlock().args(["--status", "--name", &name]));
    status.assert_code(75);
    let held = format!("{}: held by pid {}", lock.display(), holder.pid());
    assert!(status.stdout_str().starts_with(&held), "{}", status.describe());
    holder.release();
    run(withlock().args(["--status", "--name", &name])).assert_code(0);
    fs::remove_file(&lock).unwrap();
}

#[test]
fn status_with_a_name_creates_nothing() {
    if !require_root("status_with_a_name_creates_nothing") {
        return;
    }
    let _serial = serial();
    let dir = Path::new("/run/withlock");
    let _ = fs::remove_dir(dir);
    if exists(dir) {
        eprintln!("skipping status_with_a_name_creates_nothing: /run/withlock is in use");
        return;
    }
    let name = unique_name("status");
    let t = TempDir::new();
    let other = t.lock();
    let out = run(withlock().args(["--status", "--name", &name]).arg(&other));
    out.assert_code(0);
    let stdout = out.stdout_str();
    assert!(stdout.starts_with(&format!("/run/withlock/{name}: free")), "{}", out.describe());
    assert!(stdout.contains(&format!("{}: free", other.display())), "{}", out.describe());
    assert!(!exists(dir), "--status created /run/withlock");
    assert!(!exists(&other));
}

#[test]
fn a_user_gets_xdg_runtime_dir_withlock_0700() {
    if !require_root("a_user_gets_xdg_runtime_dir_withlock_0700") {
        return;
    }
    let _serial = serial();
    let t = TempDir::new();
    let bin = runnable_copy(&t);
    let runtime = t.mkdir("runtime", 0o700);
    chown(&runtime, UID, UID);
    let out = run(as_user(&bin, Some(&runtime)).args(["--name", "job", "true"]));
    out.assert_code(0);
    let dir = runtime.join("withlock");
    assert_eq!(owner_and_mode(&dir), (UID, 0o700));
    assert_eq!(owner_and_mode(&dir.join("job")), (UID, 0o600));
    assert!(!exists(Path::new(&format!("/tmp/withlock-{UID}"))));
    // Two runs of the same name exclude each other. (The holder's files go where it can
    // write them.)
    let theirs = TempDir::new();
    chown(theirs.path(), UID, UID);
    let mut locker = as_user(&bin, Some(&runtime));
    locker.args(["--name", "job"]);
    let holder = hold_using(&theirs, locker, None);
    run(as_user(&bin, Some(&runtime)).args(["--name", "job", "true"]))
        .assert_code(75)
        .assert_stderr_mentions(dir.join("job"));
    holder.release();
}

/// `/tmp/withlock-UID`, the fallback directory, removed now and again when the guard drops.
fn fresh_tmp_dir() -> (PathBuf, Cleanup) {
    let dir = PathBuf::from(format!("/tmp/withlock-{UID}"));
    let _ = fs::remove_dir_all(&dir);
    (dir.clone(), Cleanup(dir))
}

#[test]
fn without_xdg_runtime_dir_a_user_gets_tmp_withlock_uid_0700() {
    if !require_root("without_xdg_runtime_dir_a_user_gets_tmp_withlock_uid_0700") {
        return;
    }
    let _serial = serial();
    let t = TempDir::new();
    let bin = runnable_copy(&t);
    let (dir, _cleanup) = fresh_tmp_dir();
    run(as_user(&bin, None).args(["--name", "job", "true"])).assert_code(0);
    assert_eq!(owner_and_mode(&dir), (UID, 0o700));
    assert_eq!(owner_and_mode(&dir.join("job")), (UID, 0o600));
    // A relative or missing XDG_RUNTIME_DIR is not used either.
    for runtime in ["relative/dir", "/nonexistent/withlock-test"] {
        run(as_user(&bin, Some(Path::new(runtime))).args(["--name", "job2", "true"])).assert_code(0);
        assert!(exists(&dir.join("job2")), "XDG_RUNTIME_DIR={runtime}");
        fs::remove_file(dir.join("job2")).unwrap();
    }
}

#[test]
fn a_tmp_directory_planted_by_someone_else_is_refused() {
    if !require_root("a_tmp_directory_planted_by_someone_else_is_refused") {
        return;
    }
    let _serial = serial();
    let t = TempDir::new();
    let bin = runnable_copy(&t);
    let (dir, _cleanup) = fresh_tmp_dir();
    fs::create_dir(&dir).unwrap();
    set_mode(&dir, 0o777);
    chown(&dir, OTHER, OTHER);
    let marker = t.join("ran");
    let out = run(as_user(&bin, None).args(["--name", "job", "touch"]).arg(&marker));
    out.assert_code(77).assert_stderr_mentions(&dir);
    assert!(!exists(&marker));
    assert!(!exists(&dir.join("job")));
}

#[test]
fn invalid_names_are_usage_errors_and_create_nothing() {
    let _serial = serial();
    // As root, start without /run/withlock (if no one uses it) to see that none is made.
    let dir = Path::new("/run/withlock");
    let _ = fs::remove_dir(dir);
    let had_dir = exists(dir);
    let t = TempDir::new();
    let marker = t.join("ran");
    let long = "x".repeat(201);
    for name in ["", "a/b", "/etc/passwd", "../x", ".", "..", ".hidden", &long] {
        let out = run(withlock().arg(format!("--name={name}")).arg("touch").arg(&marker));
        out.assert_code(64).assert_stderr_mentions("--name");
        assert!(!exists(&marker), "{name:?}");
    }
    // No LOCK with --name: the first argument is COMMAND; -c takes none.
    run(withlock().args(["--name", "n"])).assert_code(64).assert_stderr_mentions("missing COMMAND");
    run(withlock().args(["--name", "n", "-c", "true", "extra"])).assert_code(64);
    assert!(!exists(&marker));
    assert_eq!(exists(dir), had_dir, "a usage error created /run/withlock");
}

/// The place for withlock's directory is judged before anything is made there (issue 15,
/// item 9): an XDG_RUNTIME_DIR that others may change (root's, mode 0777, not sticky) is
/// refused (77) and left as it was, with no `withlock` directory in it; the directory made
/// in a good place has its final mode from the start, whatever the umask.
#[test]
fn a_refused_place_is_left_as_it_was() {
    if !require_root("a_refused_place_is_left_as_it_was") {
        return;
    }
    let _serial = serial();
    let t = TempDir::new();
    let bin = runnable_copy(&t);
    let shared = t.mkdir("shared", 0o777);
    let marker = t.join("ran");
    let out = run(as_user(&bin, Some(&shared)).args(["--name", "job", "touch"]).arg(&marker));
    out.assert_code(77).assert_stderr_mentions(&shared);
    assert!(!exists(&marker));
    assert!(!exists(&shared.join("withlock")), "a directory was made in a refused place");

    // Made with its final mode under any umask (0777 would give a directory 0000 that
    // withlock itself could not use, were the mode not set exactly).
    let runtime = t.mkdir("runtime", 0o700);
    chown(&runtime, UID, UID);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", r#"umask 0777; exec "$@""#, "sh", "setpriv"])
        .arg(format!("--reuid={UID}"))
        .arg(format!("--regid={UID}"))
        .arg("--clear-groups")
        .args(argv_for(&bin))
        .args(["--name", "job", "true"])
        .env("PATH", TEST_PATH)
        .env("XDG_RUNTIME_DIR", &runtime)
        .current_dir("/")
        .stdin(Stdio::null());
    run(&mut cmd).assert_code(0);
    assert_eq!(owner_and_mode(&runtime.join("withlock")), (UID, 0o700));
}
