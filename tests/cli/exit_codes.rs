//! Every exit status withlock can produce: the command's own (exit code or signal death),
//! and withlock's own codes (75 busy, 64 usage, 77 refused, 73 cannot open, 126, 127), in
//! which case the command never ran.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::{
    TempDir, chown, exists, hold, is_root, require_catchable, require_root_and_nobody, run, run_touch,
    run_within, set_mode, timing, withlock,
};

#[test]
fn command_exit_status_is_passed_through() {
    let t = TempDir::new();
    for code in [0, 1, 2, 42, 64, 75, 126, 127, 255] {
        run(withlock().arg(t.lock()).args(["sh", "-c", "exit $1", "sh"]).arg(code.to_string()))
            .assert_code(code);
    }
}

#[test]
fn command_killed_by_a_signal_is_reported_as_the_same_signal() {
    let t = TempDir::new();
    let signals = [
        (libc::SIGTERM, "TERM"),
        (libc::SIGKILL, "KILL"),
        (libc::SIGINT, "INT"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
        (libc::SIGSEGV, "SEGV"),
        (libc::SIGABRT, "ABRT"),
        (libc::SIGPIPE, "PIPE"),
        (libc::SIGALRM, "ALRM"),
    ];
    for (sig, name) in signals {
        if !require_catchable("command_killed_by_a_signal (that signal)", sig) {
            continue;
        }
        run(withlock().current_dir(t.path()).arg(t.lock()).args([
            "sh",
            "-c",
            "kill -s $1 $$; exit 99",
            "sh",
            name,
        ]))
        .assert_signal(sig);
    }
}

#[test]
fn busy_lock_exits_75_naming_the_lock_and_does_not_run_the_command() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let marker = t.join("ran");
    run_touch(&[], &lock, &marker).assert_code(75).assert_one_message_naming(&lock);
    assert!(!exists(&marker), "the command ran although the lock was busy");
    holder.release().assert_code(0);
}

#[test]
fn expired_wait_exits_75_naming_the_lock() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let marker = t.join("ran");
    run_touch(&["-w", "0.3"], &lock, &marker).assert_code(75).assert_one_message_naming(&lock);
    assert!(!exists(&marker), "the command ran although the wait expired");
    holder.release();
}

#[track_caller]
fn assert_usage_error(t: &TempDir, args: &[&str]) {
    let marker = t.join("ran");
    let out = run_within(
        withlock().current_dir(t.path()).args(args).env("MARKER", &marker),
        Duration::from_secs(10),
    );
    assert_eq!(out.code(), Some(64), "withlock {args:?} should be a usage error\n{}", out.describe());
    assert!(out.stdout.is_empty(), "usage error wrote to stdout: {args:?}\n{}", out.describe());
    assert!(
        out.stderr_str().starts_with("withlock: "),
        "usage error message should start `withlock: `: {args:?}\n{}",
        out.describe()
    );
    assert!(!exists(&marker), "the command ran despite a usage error: {args:?}");
}

/// The command every usage-error case would run if withlock got that far.
const TOUCH: [&str; 4] = ["sh", "-c", ": > \"$MARKER\"", "sh"];

fn with_lock_and_touch<'a>(opts: &[&'a str]) -> Vec<&'a str> {
    let mut v = opts.to_vec();
    v.push("x.lock");
    v.extend_from_slice(&TOUCH);
    v
}

#[test]
fn no_arguments_is_a_usage_error() {
    let t = TempDir::new();
    assert_usage_error(&t, &[]);
}

#[test]
fn lock_without_command_is_a_usage_error() {
    let t = TempDir::new();
    assert_usage_error(&t, &["x.lock"]);
    assert_usage_error(&t, &["-w", "5", "x.lock"]);
    assert_usage_error(&t, &["--", "x.lock"]);
    assert!(!exists(&t.join("x.lock")), "a usage error still created the lock file");
}

#[test]
fn bad_durations_are_usage_errors() {
    let t = TempDir::new();
    for bad in [
        "",
        "-1",
        "1e3",
        "5x",
        "abc",
        "1..2",
        "-0.5",
        "5 s",
        " 5",
        "5ms5",
        "m",
        ".",
        "1.5.5",
        "0x10",
        "nan",
        "infinity5",
        "5sm",
        "1d",
    ] {
        assert_usage_error(&t, &with_lock_and_touch(&["-w", bad]));
    }
    assert_usage_error(&t, &with_lock_and_touch(&["--wait=abc"]));
    assert_usage_error(&t, &with_lock_and_touch(&["--wait="]));
    assert_usage_error(&t, &with_lock_and_touch(&["-w5x"]));
}

#[test]
fn unknown_options_are_usage_errors() {
    let t = TempDir::new();
    for bad in [&["--bogus"][..], &["-Z"], &["-qZ"], &["--quiet=yes"], &["---"]] {
        assert_usage_error(&t, &with_lock_and_touch(bad));
    }
}

#[test]
fn missing_option_values_are_usage_errors() {
    let t = TempDir::new();
    assert_usage_error(&t, &["-w"]);
    assert_usage_error(&t, &["--wait"]);
    assert_usage_error(&t, &["-E"]);
    assert_usage_error(&t, &["--conflict-exit-code"]);
    assert_usage_error(&t, &["-q", "-w"]);
}

#[test]
fn bad_conflict_exit_codes_are_usage_errors() {
    let t = TempDir::new();
    for bad in ["abc", "300", "256", "-1", "", "3x", "1.5", "99999999999999999999"] {
        assert_usage_error(&t, &with_lock_and_touch(&["-E", bad]));
    }
    assert_usage_error(&t, &with_lock_and_touch(&["--conflict-exit-code=300"]));
    assert_usage_error(&t, &with_lock_and_touch(&["-E300"]));
}

#[test]
fn missing_directory_exits_73_naming_the_lock() {
    let t = TempDir::new();
    let lock = t.join("no-such-dir/x.lock");
    let marker = t.join("ran");
    run_touch(&[], &lock, &marker).assert_code(73).assert_one_message_naming(&lock);
    assert!(!exists(&marker), "the command ran without a lock");
}

#[test]
fn directory_at_the_lock_path_exits_73() {
    let t = TempDir::new();
    let lock = t.mkdir("x.lock", 0o700);
    let marker = t.join("ran");
    run_touch(&[], &lock, &marker).assert_code(73).assert_one_message_naming(&lock);
    run_touch(&["--insecure"], &lock, &marker).assert_code(73).assert_one_message_naming(&lock);
    assert!(!exists(&marker), "the command ran without a lock");
}

/// Creating the lock file is denied (EACCES) -> 73. As root, run withlock as `nobody`
/// through setpriv, in a root-owned 0755 directory (safe for nobody, but not writable).
#[test]
fn permission_denied_exits_73() {
    let t = TempDir::new();
    if !is_root() {
        let dir = t.mkdir("ro", 0o500);
        let lock = dir.join("x.lock");
        let marker = t.join("ran");
        run_touch(&[], &lock, &marker).assert_code(73).assert_one_message_naming(&lock);
        assert!(!exists(&marker), "the command ran without a lock");
        return;
    }
    let Some((uid, gid)) = require_root_and_nobody("permission_denied_exits_73") else {
        return;
    };
    // nobody must be able to reach the binary and the directory, but not write there.
    let bin = crate::support::runnable_copy(&t);
    let dir = t.mkdir("d", 0o755);
    // Both a file that cannot be created and an existing root-only file cannot be opened.
    let existing = dir.join("root-only.lock");
    fs::write(&existing, b"").unwrap();
    set_mode(&existing, 0o600);
    for lock in [dir.join("x.lock"), existing] {
        let out = run(std::process::Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .args(crate::support::argv_for(&bin))
            .arg(&lock)
            .args(["echo", "RAN"]));
        out.assert_code(73).assert_one_message_naming(&lock);
        assert!(out.stdout.is_empty(), "the command ran:\n{}", out.describe());
    }
}

#[test]
fn non_executable_file_exits_126_naming_the_command() {
    let t = TempDir::new();
    t.write("script", b"#!/bin/sh\necho RAN\n", 0o644);
    let out = run(withlock().current_dir(t.path()).args(["x.lock", "./script"]));
    out.assert_code(126).assert_one_message_naming("./script");
    assert!(out.stdout.is_empty(), "{}", out.describe());
}

#[test]
fn non_executable_file_found_through_path_exits_126() {
    let t = TempDir::new();
    let bin = t.mkdir("bin", 0o700);
    fs::write(bin.join("only-readable"), "#!/bin/sh\necho RAN\n").unwrap();
    set_mode(&bin.join("only-readable"), 0o644);
    let out = run(withlock().env("PATH", &bin).arg(t.lock()).arg("only-readable"));
    out.assert_code(126).assert_one_message_naming("only-readable");
    assert!(out.stdout.is_empty(), "{}", out.describe());
}

#[test]
fn directory_as_command_exits_126() {
    let t = TempDir::new();
    let dir = t.mkdir("subdir", 0o700);
    run(withlock().arg(t.lock()).arg(&dir)).assert_code(126).assert_one_message_naming(&dir);
}

#[test]
fn missing_command_exits_127_naming_the_command() {
    let t = TempDir::new();
    for cmd in ["withlock-test-no-such-command", "./no-such-file", "/no/such/dir/cmd"] {
        let out = run(withlock().current_dir(t.path()).args(["x.lock", cmd]));
        out.assert_code(127).assert_one_message_naming(cmd);
        assert!(out.stdout.is_empty(), "{}", out.describe());
    }
}

#[test]
fn command_missing_from_an_empty_path_exits_127() {
    let t = TempDir::new();
    let empty = t.mkdir("empty", 0o700);
    run(withlock().env("PATH", &empty).arg(t.lock()).arg("echo"))
        .assert_code(127)
        .assert_one_message_naming("echo");
}

/// A PATH directory the user cannot search does not hold the command: "not found" (127),
/// as the contract defines 126 as "found but cannot be executed". (execvp(3) reports EACCES
/// here, which is easy to pass on as 126 by mistake; bash says 127.)
#[test]
fn unsearchable_path_directory_does_not_turn_not_found_into_126() {
    let t = TempDir::new();
    let secret = t.mkdir("secret", 0o700);
    let path = format!("{}:{}", secret.display(), crate::support::TEST_PATH);
    let cmd = "withlock-test-no-such-command";
    if is_root() {
        let Some((uid, gid)) =
            require_root_and_nobody("unsearchable_path_directory_does_not_turn_not_found_into_126")
        else {
            return;
        };
        // Run as nobody: t (0711) and the binary copy are reachable, `secret` is not.
        let bin = crate::support::runnable_copy(&t);
        let locks = t.mkdir("locks", 0o755);
        chown(&locks, uid, gid);
        let out = run(std::process::Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .env("PATH", &path)
            .args(crate::support::argv_for(&bin))
            .arg(locks.join("x.lock"))
            .arg(cmd));
        out.assert_code(127).assert_one_message_naming(cmd);
    } else {
        set_mode(&secret, 0o000);
        let out = run(withlock().env("PATH", &path).arg(t.lock()).arg(cmd));
        set_mode(&secret, 0o700);
        out.assert_code(127).assert_one_message_naming(cmd);
    }
}

/// -E and -q change only the busy / expired outcome, never withlock's other failures.
#[test]
fn conflict_exit_code_and_quiet_do_not_mask_other_failures() {
    let t = TempDir::new();
    let missing_dir = t.join("nope/x.lock");
    let marker = t.join("ran");
    run_touch(&["-E", "3"], &missing_dir, &marker).assert_code(73);
    run_touch(&["-q"], &missing_dir, &marker).assert_code(73).assert_one_message_naming(&missing_dir);
    run(withlock().args(["-q", "-E", "0"]).arg(t.lock()).arg("withlock-test-nope"))
        .assert_code(127)
        .assert_one_message_naming("withlock-test-nope");
    assert_usage_error(&t, &with_lock_and_touch(&["-q", "-E", "3", "--bogus"]));
    let open = t.mkdir("open", 0o777);
    run_touch(&["-q", "-E", "3"], &open.join("x.lock"), &marker).assert_code(77);
    // And the command's own failures pass through untouched.
    run(withlock().args(["-q", "-E", "3"]).arg(t.lock()).args(["sh", "-c", "exit 75"])).assert_code(75);
    assert!(!exists(&marker));
}

/// Helper for other modules: asserts the lock at `lock` is held right now (withlock is busy).
#[track_caller]
pub fn assert_busy(lock: &Path) {
    let out = run(withlock().arg(lock).arg("true"));
    assert_eq!(out.code(), Some(75), "expected the lock {} to be held\n{}", lock.display(), out.describe());
}

/// Asserts the lock at `lock` is free right now (withlock runs the command at once).
#[track_caller]
pub fn assert_free(lock: &Path) {
    let out = run(withlock().arg(lock).arg("true"));
    assert_eq!(out.code(), Some(0), "expected the lock {} to be free\n{}", lock.display(), out.describe());
}
