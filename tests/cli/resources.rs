//! Running out of something is said as such (issue 10, item 10): no descriptor left to open
//! the lock file is a resource error (71), not "cannot open lock file" (73); an environment
//! that a plain exec takes is taken with `--slots` and in etcd mode too, where withlock adds
//! variables (it used to copy it into a fixed array of 4096 entries: E2BIG).

use std::process::Command;

use crate::etcd_support::EtcdServer;
use crate::support::{TEST_PATH, TempDir, exists, read_string, run, with_rlimit, withlock};

/// `cmd` with RLIMIT_NOFILE at `n`: descriptors 0-2 and nothing more for n = 3.
fn with_open_file_limit(cmd: &mut Command, n: libc::rlim_t) -> &mut Command {
    with_rlimit(cmd, libc::RLIMIT_NOFILE, n)
}

#[test]
fn no_descriptor_left_for_the_lock_file_is_a_resource_error_71() {
    let t = TempDir::new();
    let lock = t.lock();
    let marker = t.join("ran");
    for opts in [&[][..], &["--slots", "2"], &["-w", "1"]] {
        let out = run(with_open_file_limit(withlock().args(opts).arg(&lock).arg("touch").arg(&marker), 3));
        out.assert_code(71).assert_one_message_naming(&lock);
        let err = out.stderr_str();
        assert!(err.contains("out of resources") && err.contains("ulimit -n"), "{opts:?}: {err}");
        assert!(!err.contains("create the directory") && !err.contains("choose a directory"), "{err}");
        assert!(!exists(&marker), "the command ran");
    }
    // With a few more (the lock's, and what touch needs to load), it runs.
    run(with_open_file_limit(withlock().arg(&lock).arg("touch").arg(&marker), 6)).assert_code(0);
    assert!(exists(&marker));
}

/// An environment of `n` variables (and PATH).
fn big_environment(cmd: &mut Command, n: usize) -> &mut Command {
    cmd.env_clear().env("PATH", TEST_PATH);
    for i in 0..n {
        cmd.env(format!("BIG_{i}"), "x");
    }
    cmd
}

/// The job counts its environment's BIG_ variables and prints the one withlock added.
const COUNT_JOB: &str = r#"env | grep -c '^BIG_' > "$0"; printf '%s\n' "$1=$(printenv "$1")" >> "$0""#;

#[test]
fn slots_take_an_environment_as_large_as_a_plain_exec_does() {
    let t = TempDir::new();
    let lock = t.lock();
    let got = t.join("got");
    let n = 6000;
    // A plain exec takes it.
    run(big_environment(withlock().arg(&lock).args(["sh", "-c", COUNT_JOB]).arg(&got).arg("PATH"), n))
        .assert_code(0);
    assert_eq!(read_string(&got), format!("{n}\nPATH={TEST_PATH}\n"));
    let out = run(big_environment(
        withlock()
            .args(["--slots", "2"])
            .arg(&lock)
            .args(["sh", "-c", COUNT_JOB])
            .arg(&got)
            .arg("WITHLOCK_SLOT"),
        n,
    ));
    out.assert_code(0);
    assert_eq!(read_string(&got), format!("{n}\nWITHLOCK_SLOT=0\n"), "{}", out.describe());
}

#[test]
fn etcd_takes_an_environment_as_large_as_a_plain_exec_does() {
    let t = TempDir::new();
    let server = EtcdServer::start();
    let got = t.join("got");
    let n = 6000;
    let out = run(big_environment(
        withlock().arg(server.url("big-env")).args(["sh", "-c", COUNT_JOB]).arg(&got).arg("ETCD_LOCK_KEY"),
        n,
    ));
    out.assert_code(0);
    let text = read_string(&got);
    assert!(text.starts_with(&format!("{n}\nETCD_LOCK_KEY=big-env/")), "{text:?}\n{}", out.describe());
}
