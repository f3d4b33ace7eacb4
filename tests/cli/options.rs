//! Options: -q, -E, -v, --help, --version, and every documented spelling of them
//! (bundled, attached and separate values, long forms with `=`).

use std::time::Duration;

use crate::support::{TempDir, exists, hold, run, run_touch, timing, withlock};

#[test]
fn success_prints_nothing_of_its_own() {
    let t = TempDir::new();
    run(withlock().arg(t.lock()).arg("true")).assert_code(0).assert_silent();
}

#[test]
fn quiet_busy_lock_exits_0_silently_without_running() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let marker = t.join("ran");
    for opt in ["-q", "--quiet"] {
        run_touch(&[opt], &lock, &marker).assert_code(0).assert_silent();
    }
    assert!(!exists(&marker), "the command ran although the lock was busy");
    holder.release();
}

#[test]
fn quiet_expired_wait_exits_0_silently() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let marker = t.join("ran");
    let out = run_touch(&["-q", "-w", "0.3"], &lock, &marker);
    out.assert_code(0).assert_silent();
    assert!(out.elapsed >= Duration::from_millis(250), "-q -w 0.3 did not wait\n{}", out.describe());
    assert!(!exists(&marker));
    holder.release();
}

#[test]
fn quiet_does_not_silence_the_command_or_change_its_status() {
    let t = TempDir::new();
    run(withlock().arg("-q").arg(t.lock()).args(["sh", "-c", "echo out; echo err >&2; exit 9"]))
        .assert_code(9)
        .assert_stdout("out\n")
        .assert_stderr_mentions("err\n");
}

#[test]
fn conflict_exit_code_replaces_75_and_keeps_the_message() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let marker = t.join("ran");
    for (opts, code) in [
        (&["-E", "3"][..], 3),
        (&["-E3"], 3),
        (&["--conflict-exit-code", "3"], 3),
        (&["--conflict-exit-code=3"], 3),
        (&["-E", "0"], 0),
        (&["-E", "255"], 255),
        (&["-E", "1"], 1),
    ] {
        let out = run_touch(opts, &lock, &marker);
        assert_eq!(out.code(), Some(code), "{opts:?}\n{}", out.describe());
        out.assert_one_message_naming(&lock);
    }
    assert!(!exists(&marker), "the command ran although the lock was busy");
    holder.release();
}

#[test]
fn quiet_with_conflict_exit_code_exits_that_code_silently() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let marker = t.join("ran");
    for opts in [
        &["-q", "-E", "3"][..],
        &["-E", "3", "-q"],
        &["-qE3"],
        &["-qE", "3"],
        &["--quiet", "--conflict-exit-code=3"],
    ] {
        let out = run_touch(opts, &lock, &marker);
        assert_eq!(out.code(), Some(3), "{opts:?}\n{}", out.describe());
        out.assert_silent();
    }
    assert!(!exists(&marker));
    holder.release();
}

#[test]
fn conflict_exit_code_applies_to_an_expired_wait() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let marker = t.join("ran");
    run_touch(&["-w", "0.2", "-E", "9"], &lock, &marker).assert_code(9).assert_one_message_naming(&lock);
    assert!(!exists(&marker));
    holder.release();
}

/// Every documented spelling is accepted with a free lock and the command runs.
#[test]
fn all_option_spellings_are_accepted() {
    let t = TempDir::new();
    for opts in [
        &["-w5"][..],
        &["-w", "5"],
        &["--wait", "5"],
        &["--wait=5"],
        &["-q"],
        &["--quiet"],
        &["-v"],
        &["--verbose"],
        &["-qv"],
        &["-vq"],
        &["-qw5"],
        &["-qw", "5"],
        &["-vqw5"],
        &["-E3"],
        &["-E", "3"],
        &["--conflict-exit-code", "3"],
        &["--conflict-exit-code=3"],
        &["-qE3"],
        &["--insecure"],
        &["-q", "-v", "-w", "1", "-E", "9", "--insecure"],
        &["--"],
    ] {
        let out = run(withlock().args(opts).arg(t.lock()).args(["echo", "ran"]));
        assert_eq!(out.code(), Some(0), "withlock {opts:?} LOCK echo ran\n{}", out.describe());
        assert_eq!(out.stdout_str(), "ran\n", "{opts:?}\n{}", out.describe());
    }
}

/// The values in bundled and attached spellings are really used, not just accepted.
#[test]
fn bundled_and_attached_values_take_effect() {
    let _load = timing();
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let marker = t.join("ran");
    for opts in
        [&["-qw0.3"][..], &["-qw", "0.3"], &["--wait=0.3", "-q"], &["-q", "--wait", "300ms"], &["-vqw0.3"]]
    {
        let out = run_touch(opts, &lock, &marker);
        assert_eq!(out.code(), Some(0), "{opts:?}\n{}", out.describe());
        assert!(
            out.elapsed >= Duration::from_millis(250) && out.elapsed < Duration::from_secs(3),
            "{opts:?} should give up after about 0.3 s\n{}",
            out.describe()
        );
        assert!(out.stdout.is_empty(), "{opts:?}\n{}", out.describe());
    }
    assert!(!exists(&marker));
    holder.release();
}

#[test]
fn verbose_reports_on_stderr_with_prefix_and_still_runs_the_command() {
    let t = TempDir::new();
    for opt in ["-v", "--verbose"] {
        let out = run(withlock().arg(opt).arg(t.lock()).args(["echo", "hi"]));
        out.assert_code(0).assert_stdout("hi\n");
        let err = out.stderr_str();
        assert!(!err.is_empty(), "{opt} printed nothing on stderr\n{}", out.describe());
        for line in err.lines() {
            assert!(
                line.starts_with("withlock: "),
                "{opt}: stderr line without the `withlock: ` prefix: {line:?}\n{}",
                out.describe()
            );
        }
    }
}

#[test]
fn verbose_busy_lock_still_exits_75_with_prefixed_lines() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let marker = t.join("ran");
    let out = run_touch(&["-v"], &lock, &marker);
    out.assert_code(75).assert_stderr_mentions(&lock);
    for line in out.stderr_str().lines() {
        assert!(line.starts_with("withlock: "), "stderr line without prefix: {line:?}\n{}", out.describe());
    }
    assert!(!exists(&marker));
    holder.release();
}

#[test]
fn help_lists_every_option_and_exit_code() {
    for opt in ["--help", "-h"] {
        let out = run(withlock().arg(opt));
        out.assert_code(0);
        assert!(out.stderr.is_empty(), "{opt}\n{}", out.describe());
        let help = out.stdout_str();
        for needle in [
            "-w",
            "--wait",
            "-q",
            "--quiet",
            "-v",
            "--verbose",
            "-E",
            "--conflict-exit-code",
            "--insecure",
            "-h",
            "--help",
            "-V",
            "--version",
            "LOCK",
            "COMMAND",
            "64",
            "71",
            "73",
            "75",
            "77",
            "126",
            "127",
        ] {
            assert!(help.contains(needle), "{opt} output lacks {needle:?}:\n{help}");
        }
    }
}

#[test]
fn help_and_version_do_not_need_a_lock_or_create_one() {
    let t = TempDir::new();
    run(withlock().current_dir(t.path()).args(["-q", "--help"])).assert_code(0);
    run(withlock().current_dir(t.path()).args(["-q", "--version"])).assert_code(0);
    let entries = std::fs::read_dir(t.path()).unwrap().count();
    assert_eq!(entries, 0, "--help/--version created files");
}

#[test]
fn version_prints_name_and_version() {
    let expected = format!("withlock {}\n", env!("CARGO_PKG_VERSION"));
    for opt in ["--version", "-V"] {
        let out = run(withlock().arg(opt));
        out.assert_code(0).assert_stdout(&expected);
        assert!(out.stderr.is_empty(), "{opt}\n{}", out.describe());
    }
}

/// --status only looks: options about taking a lock, waiting for it or what a busy one
/// means are refused with it (64), not silently ignored (issue 15, item 10); -v is fine.
#[test]
fn status_refuses_options_that_would_change_nothing() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    for other in [&["-w", "5"][..], &["-c", "true"], &["--fcntl"], &["--shared"], &["-q"], &["-E", "3"]] {
        let out = run(withlock().arg("--status").args(other).arg(&lock));
        out.assert_code(64).assert_stderr_mentions("--status only looks");
        assert!(out.stdout.is_empty(), "{other:?}\n{}", out.describe());
    }
    run(withlock().args(["--status", "-v"]).arg(&lock)).assert_code(75);
    holder.release();
}
