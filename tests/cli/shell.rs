//! `-c STRING`: a shell snippet, run with `/bin/sh -c`, explicitly. Without `-c` nothing
//! goes through a shell (see args.rs).

use std::fs;

use crate::support::{TempDir, exists, read_string, run, withlock};

#[test]
fn a_snippet_runs_in_the_shell_with_its_quoting() {
    let t = TempDir::new();
    let sub = t.mkdir("sub dir", 0o700);
    let snippet =
        format!(r#"cd '{}' && printf '%s|' "$(basename "$PWD")" 'a b' "c\"d" && echo"#, sub.display());
    let out = run(withlock().args(["-c", &snippet]).arg(t.lock()));
    out.assert_code(0).assert_stdout("sub dir|a b|c\"d|\n");
}

#[test]
fn every_spelling_of_the_option_works() {
    let t = TempDir::new();
    let marker = t.join("ran");
    for opts in [
        vec!["-c".to_string(), format!("echo 1 >> '{}'", marker.display())],
        vec![format!("-cecho 2 >> '{}'", marker.display())],
        vec![format!("-qcecho 3 >> '{}'", marker.display())],
        vec!["--command".to_string(), format!("echo 4 >> '{}'", marker.display())],
        vec![format!("--command=echo 5 >> '{}'", marker.display())],
    ] {
        run(withlock().args(&opts).arg(t.lock())).assert_code(0);
    }
    assert_eq!(read_string(&marker), "1\n2\n3\n4\n5\n");
}

#[test]
fn the_snippets_exit_status_and_signal_come_back() {
    let t = TempDir::new();
    run(withlock().args(["-c", "exit 42"]).arg(t.lock())).assert_code(42);
    run(withlock().args(["-c", "kill -TERM $$"]).arg(t.lock())).assert_signal(libc::SIGTERM);
    // With --unlink, withlock stays the parent: the same status, and the file is gone.
    run(withlock().args(["--unlink", "-c", "exit 3"]).arg(t.lock())).assert_code(3);
    assert!(!exists(&t.lock()));
}

#[test]
fn a_busy_lock_runs_nothing_and_names_the_snippet() {
    let t = TempDir::new();
    let marker = t.join("ran");
    let ready = t.join("ready");
    let mut holder = withlock();
    holder.args(["-c", &format!(": > '{}'; sleep 30", ready.display())]).arg(t.lock());
    let running = crate::support::start(&mut holder);
    assert!(crate::support::wait_until(std::time::Duration::from_secs(10), || exists(&ready)));
    let out = run(withlock().args(["-c", &format!("touch '{}'", marker.display())]).arg(t.lock()));
    out.assert_code(75).assert_stderr_mentions(" (/bin/sh -c \"");
    assert!(!exists(&marker));
    // The holder record shows the shell and the snippet.
    let record = fs::read_to_string(t.lock()).unwrap();
    assert!(record.contains("\ncommand=/bin/sh -c \":"), "{record}");
    drop(running);
}

#[test]
fn usage_errors() {
    let t = TempDir::new();
    for args in [
        vec!["-c".to_string(), "true".to_string(), t.lock().display().to_string(), "touch".to_string()],
        vec!["-c".to_string(), "true".to_string()],
        vec!["-c".to_string(), String::new(), t.lock().display().to_string()],
        vec!["-c".to_string()],
    ] {
        let out = run(withlock().args(&args));
        out.assert_code(64);
        assert!(!exists(&t.lock()), "a usage error created the lock file: {args:?}");
    }
}
