//! Safety checks on the lock location and the lock file: refusals exit 77 (73 for a
//! directory), name the culprit, and run nothing; --insecure lifts only the location and
//! ownership checks. The lock file is created 0600 and never truncated.

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;
use std::time::Duration;

use crate::support::{
    TempDir, chown, exists, is_root, mkfifo, mknod_null, mode_of, read_string, require_root_and_nobody, run,
    run_touch, run_within, set_mode, unique_name, withlock,
};

/// Runs `withlock [opts] LOCK touch MARKER` and checks it was refused with 77, naming the
/// lock and `culprit`, without running the command.
#[track_caller]
fn assert_refused(t: &TempDir, opts: &[&str], lock: &Path, culprit: &Path) -> String {
    let marker = t.join("ran");
    let _ = fs::remove_file(&marker);
    let out = run_within(withlock().args(opts).arg(lock).arg("touch").arg(&marker), Duration::from_secs(10));
    out.assert_code(77).assert_one_message_naming(lock).assert_stderr_mentions(culprit);
    assert!(!exists(&marker), "the command ran although the lock was refused");
    out.stderr_str()
}

/// A refusal that --insecure would lift must say so.
#[track_caller]
fn assert_refused_suggesting_insecure(t: &TempDir, lock: &Path, culprit: &Path) {
    let err = assert_refused(t, &[], lock, culprit);
    assert!(err.contains("--insecure"), "the refusal should mention --insecure: {err:?}");
}

#[track_caller]
fn assert_runs(t: &TempDir, opts: &[&str], lock: &Path) {
    let marker = t.join("ran");
    let _ = fs::remove_file(&marker);
    run_touch(opts, lock, &marker).assert_code(0);
    assert!(exists(&marker), "the command did not run");
}

#[test]
fn symlink_as_lock_file_is_refused_even_with_insecure() {
    let t = TempDir::new();
    let target = t.write("target", b"precious\n", 0o600);
    let lock = t.lock();
    symlink("target", &lock).unwrap();
    assert_refused(&t, &[], &lock, &lock);
    assert_refused(&t, &["--insecure"], &lock, &lock);
    assert_eq!(read_string(&target), "precious\n", "the link's target was modified");
    assert_eq!(mode_of(&target) & 0o7777, 0o600);
}

#[test]
fn dangling_symlink_is_refused_and_its_target_not_created() {
    let t = TempDir::new();
    let target = t.join("target");
    let lock = t.lock();
    symlink(&target, &lock).unwrap();
    assert_refused(&t, &[], &lock, &lock);
    assert!(!exists(&target), "withlock created the dangling link's target");
    assert_refused(&t, &["--insecure"], &lock, &lock);
    assert!(!exists(&target), "withlock --insecure created the dangling link's target");
}

#[test]
fn world_writable_lock_directory_is_refused() {
    let t = TempDir::new();
    let dir = t.mkdir("open", 0o777);
    assert_refused_suggesting_insecure(&t, &dir.join("x.lock"), &dir);
}

#[test]
fn group_writable_lock_directory_is_refused() {
    let t = TempDir::new();
    let dir = t.mkdir("group", 0o770);
    assert_refused_suggesting_insecure(&t, &dir.join("x.lock"), &dir);
    let dir = t.mkdir("group-only-w", 0o720);
    assert_refused_suggesting_insecure(&t, &dir.join("x.lock"), &dir);
}

#[test]
fn others_writable_lock_directory_is_refused() {
    let t = TempDir::new();
    let dir = t.mkdir("others", 0o703);
    assert_refused_suggesting_insecure(&t, &dir.join("x.lock"), &dir);
}

#[test]
fn sticky_world_writable_lock_directory_is_refused() {
    let t = TempDir::new();
    let dir = t.mkdir("sticky", 0o1777);
    assert_refused_suggesting_insecure(&t, &dir.join("x.lock"), &dir);
}

#[test]
fn lock_directly_in_the_system_temp_dir_is_refused() {
    let tmp = std::env::temp_dir();
    let meta = fs::metadata(&tmp).unwrap();
    if meta.mode() & 0o1002 != 0o1002 {
        eprintln!("skipping: {} is not a sticky world-writable directory", tmp.display());
        return;
    }
    let t = TempDir::new();
    let lock = tmp.join(unique_name("direct.lock"));
    let marker = t.join("ran");
    let out = run_touch(&[], &lock, &marker);
    let _ = fs::remove_file(&lock);
    out.assert_code(77).assert_one_message_naming(&lock).assert_stderr_mentions("--insecure");
    assert!(!exists(&marker), "the command ran in /tmp");
}

#[test]
fn world_writable_intermediate_directory_without_sticky_is_refused() {
    let t = TempDir::new();
    let open = t.mkdir("open", 0o777);
    t.mkdir("open/sub", 0o700);
    assert_refused_suggesting_insecure(&t, &open.join("sub/x.lock"), &open);
}

#[test]
fn group_writable_intermediate_directory_is_refused() {
    let t = TempDir::new();
    let group = t.mkdir("group", 0o775);
    t.mkdir("group/sub", 0o700);
    assert_refused_suggesting_insecure(&t, &group.join("sub/x.lock"), &group);
}

#[test]
fn sticky_intermediate_directory_is_accepted() {
    let t = TempDir::new();
    t.mkdir("sticky", 0o1777);
    let sub = t.mkdir("sticky/private", 0o700);
    assert_runs(&t, &[], &sub.join("x.lock"));
}

#[test]
fn relative_lock_in_an_unsafe_working_directory_is_refused() {
    let t = TempDir::new();
    let open = t.mkdir("open", 0o777);
    let marker = t.join("ran");
    let out = run(withlock().current_dir(&open).args(["x.lock", "touch"]).arg(&marker));
    out.assert_code(77).assert_one_message_naming("x.lock");
    assert!(!exists(&marker));
}

#[test]
fn relative_lock_in_a_safe_working_directory_is_accepted() {
    let t = TempDir::new();
    let marker = t.join("ran");
    run(withlock().current_dir(t.path()).args(["x.lock", "touch"]).arg(&marker)).assert_code(0);
    assert!(exists(&marker) && exists(&t.lock()));
}

#[test]
fn insecure_accepts_an_unsafe_directory() {
    let t = TempDir::new();
    let open = t.mkdir("open", 0o777);
    t.mkdir("open/sub", 0o777);
    assert_runs(&t, &["--insecure"], &open.join("x.lock"));
    assert_runs(&t, &["--insecure"], &open.join("sub/x.lock"));
    let sticky = t.mkdir("sticky", 0o1777);
    assert_runs(&t, &["--insecure"], &sticky.join("x.lock"));
    assert_eq!(mode_of(&sticky.join("x.lock")) & 0o777, 0o600);
}

#[test]
fn intermediate_symlink_in_a_safe_directory_is_followed() {
    let t = TempDir::new();
    let real = t.mkdir("real", 0o700);
    symlink("real", t.join("link")).unwrap();
    assert_runs(&t, &[], &t.join("link/x.lock"));
    assert!(exists(&real.join("x.lock")), "the lock file is not in the link's target");
    // An absolute link works as well.
    symlink(&real, t.join("abs-link")).unwrap();
    assert_runs(&t, &[], &t.join("abs-link/x.lock"));
}

#[test]
fn intermediate_symlink_to_an_unsafe_directory_is_refused() {
    let t = TempDir::new();
    t.mkdir("sticky", 0o1777);
    symlink("sticky", t.join("link")).unwrap();
    let lock = t.join("link/x.lock");
    let marker = t.join("ran");
    run_touch(&[], &lock, &marker).assert_code(77).assert_one_message_naming(&lock);
    assert!(!exists(&marker));
    assert_runs(&t, &["--insecure"], &lock);
}

#[test]
fn fifo_as_lock_file_is_refused_without_hanging() {
    let t = TempDir::new();
    let lock = t.lock();
    mkfifo(&lock, 0o600);
    assert_refused(&t, &[], &lock, &lock);
    assert_refused(&t, &["--insecure"], &lock, &lock);
}

#[test]
fn device_as_lock_file_is_refused() {
    let t = TempDir::new();
    // /dev/null sits in a root-owned 0755 directory: only the file type is wrong.
    let dev = Path::new("/dev/null");
    let dev_dir_safe = fs::metadata("/dev").is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0);
    if dev_dir_safe {
        assert_refused(&t, &[], dev, dev);
        assert_refused(&t, &["--insecure"], dev, dev);
    } else {
        eprintln!("skipping the /dev/null case: /dev is not a root-owned 0755 directory");
    }
    if !is_root() {
        eprintln!("skipping the mknod case: needs root");
        return;
    }
    let node = t.join("dev.lock");
    match mknod_null(&node) {
        Ok(()) => {
            assert_refused(&t, &[], &node, &node);
            assert_refused(&t, &["--insecure"], &node, &node);
        }
        Err(e) => eprintln!("skipping the mknod case: {e}"),
    }
}

#[test]
fn lock_file_with_two_hard_links_is_refused() {
    let t = TempDir::new();
    let lock = t.write("x.lock", b"", 0o600);
    fs::hard_link(&lock, t.join("other-name")).unwrap();
    assert_refused(&t, &[], &lock, &lock);
}

#[test]
fn lock_file_owned_by_another_user_is_refused() {
    let Some((uid, gid)) = require_root_and_nobody("lock_file_owned_by_another_user_is_refused") else {
        return;
    };
    let t = TempDir::new();
    let lock = t.write("x.lock", b"", 0o600);
    chown(&lock, uid, gid);
    assert_refused_suggesting_insecure(&t, &lock, &lock);
    assert_runs(&t, &["--insecure"], &lock);
}

#[test]
fn lock_directory_owned_by_another_user_is_refused() {
    let Some((uid, gid)) = require_root_and_nobody("lock_directory_owned_by_another_user_is_refused") else {
        return;
    };
    let t = TempDir::new();
    let dir = t.mkdir("theirs", 0o755);
    chown(&dir, uid, gid);
    assert_refused_suggesting_insecure(&t, &dir.join("x.lock"), &dir);
    assert_runs(&t, &["--insecure"], &dir.join("x.lock"));
}

#[test]
fn intermediate_directory_owned_by_another_user_is_refused() {
    let Some((uid, gid)) = require_root_and_nobody("intermediate_directory_owned_by_another_user_is_refused")
    else {
        return;
    };
    let t = TempDir::new();
    let dir = t.mkdir("theirs", 0o755);
    t.mkdir("theirs/mine", 0o700);
    chown(&dir, uid, gid);
    assert_refused_suggesting_insecure(&t, &dir.join("mine/x.lock"), &dir);
}

#[test]
fn lock_file_is_created_mode_0600_even_with_umask_0() {
    let t = TempDir::new();
    for (name, opts) in [("a.lock", &[][..]), ("b.lock", &["--insecure"])] {
        let lock = t.join(name);
        run(std::process::Command::new("sh")
            .args(["-c", "umask 0; exec \"$@\"", "sh"])
            .args(crate::support::bin_argv())
            .args(opts)
            .arg(&lock)
            .arg("true"))
        .assert_code(0);
        let meta = fs::symlink_metadata(&lock).unwrap();
        assert!(meta.file_type().is_file(), "{name}: not a regular file");
        assert_eq!(meta.mode() & 0o7777, 0o600, "{name}: lock file created mode {:o}", meta.mode() & 0o7777);
    }
}

#[test]
fn existing_lock_file_is_never_truncated_or_rechmodded() {
    let t = TempDir::new();
    let lock = t.write("x.lock", b"keep me\n", 0o600);
    assert_runs(&t, &[], &lock);
    assert_runs(&t, &["--insecure"], &lock);
    assert_eq!(read_string(&lock), "keep me\n");
    // A file made by flock(1) with mode 0644 is accepted as it is.
    let other = t.write("flock-made.lock", b"data", 0o644);
    assert_runs(&t, &[], &other);
    assert_eq!(read_string(&other), "data");
    assert_eq!(mode_of(&other) & 0o7777, 0o644);
}

#[test]
fn refused_lock_file_is_left_alone() {
    let t = TempDir::new();
    let dir = t.mkdir("open", 0o777);
    let lock = dir.join("x.lock");
    fs::write(&lock, b"content").unwrap();
    set_mode(&lock, 0o644);
    assert_refused(&t, &[], &lock, &dir);
    assert_eq!(read_string(&lock), "content");
    assert_eq!(mode_of(&lock) & 0o7777, 0o644);
}

/// In a sticky shared directory anyone can create a symlink: one planted by another user
/// must not be followed (the man page: "links planted by others do not" work), while the
/// caller's own link there is fine.
#[test]
fn symlink_planted_by_another_user_in_a_sticky_directory_is_not_followed() {
    let Some((uid, gid)) =
        require_root_and_nobody("symlink_planted_by_another_user_in_a_sticky_directory_is_not_followed")
    else {
        return;
    };
    let t = TempDir::new();
    let real = t.mkdir("real", 0o700);
    let sticky = t.mkdir("sticky", 0o1777);
    symlink(&real, sticky.join("mine")).unwrap();
    assert_runs(&t, &[], &sticky.join("mine/x.lock"));
    let planted = sticky.join("planted");
    symlink(&real, &planted).unwrap();
    chown(&planted, uid, gid);
    assert_refused(&t, &[], &planted.join("y.lock"), &planted);
    assert!(!exists(&real.join("y.lock")), "a lock file was created through the planted link");
}

/// Lock paths longer than the walk's short buffers (512 bytes) are walked again with room
/// for any path, with the same checks; one longer than the kernel accepts is a clear 73.
#[test]
fn long_lock_paths_are_walked_and_judged_like_short_ones() {
    let t = TempDir::new();
    let mut deep = t.path().to_path_buf();
    for i in 0..40 {
        deep.push(format!("a-rather-long-directory-name-{i:02}"));
    }
    fs::create_dir_all(&deep).unwrap();
    let lock = deep.join("x.lock");
    assert!(lock.as_os_str().len() > 1024, "the test path is not long enough");
    assert_runs(&t, &[], &lock);
    assert!(exists(&lock));

    // Through a short symlink whose target is long: the expansion outgrows the short buffers.
    symlink(&deep, t.join("short")).unwrap();
    assert_runs(&t, &[], &t.join("short/y.lock"));
    assert!(exists(&deep.join("y.lock")));

    // The checks still apply deep down, and the culprit is named in full.
    let open = deep.join("open");
    fs::create_dir(&open).unwrap();
    set_mode(&open, 0o777);
    assert_refused_suggesting_insecure(&t, &open.join("x.lock"), &open);

    // Longer than PATH_MAX: refused as a name too long, nothing run.
    let mut too_long = t.path().to_path_buf();
    for _ in 0..5 {
        too_long.push("x".repeat(1000));
    }
    let marker = t.join("ran");
    let out = run_touch(&[], &too_long.join("x.lock"), &marker);
    out.assert_code(73).assert_stderr_mentions("too long");
    assert!(!exists(&marker));
}
