//! `--no-inherit`: only withlock holds the lock, as the job's parent; a daemon the job
//! leaves behind cannot pin it, and the job dies with withlock (Linux: PR_SET_PDEATHSIG).

use std::time::Duration;

use crate::support::{TempDir, dead, exists, read_string, run, send_signal, start, wait_until, withlock};

fn read_pid(path: &std::path::Path) -> i32 {
    read_string(path).trim().parse().unwrap()
}

#[test]
fn a_daemon_left_by_the_job_does_not_pin_the_lock() {
    let t = TempDir::new();
    let bg = t.join("bg");
    let daemonize = r#"sleep 30 & echo $! > "$1""#;
    run(withlock().arg("--no-inherit").arg(t.lock()).args(["sh", "-c", daemonize, "sh"]).arg(&bg))
        .assert_code(0);
    let daemon = read_pid(&bg);
    assert!(!dead(daemon), "the test's daemon is not running");
    run(withlock().arg(t.lock()).arg("true")).assert_code(0);
    send_signal(daemon, libc::SIGKILL);

    // Without --no-inherit the daemon keeps the lock: the difference the option makes.
    let other = t.join("other.lock");
    run(withlock().arg(&other).args(["sh", "-c", daemonize, "sh"]).arg(&bg)).assert_code(0);
    run(withlock().arg(&other).arg("true")).assert_code(75);
    send_signal(read_pid(&bg), libc::SIGKILL);
}

#[test]
fn the_job_does_not_get_the_lock_descriptor() {
    let t = TempDir::new();
    let out = run(withlock().arg("--no-inherit").arg(t.lock()).args([
        "sh",
        "-c",
        r#"for f in /proc/$$/fd/*; do readlink "$f"; done; true"#,
    ]));
    out.assert_code(0);
    let lock = t.lock().display().to_string();
    assert!(
        !out.stdout_str().lines().any(|l| l == lock),
        "the job holds the lock file open:\n{}",
        out.stdout_str()
    );
    // Without the option it does (the default, documented behaviour).
    let out = run(withlock().arg(t.lock()).args([
        "sh",
        "-c",
        r#"for f in /proc/$$/fd/*; do readlink "$f"; done; true"#,
    ]));
    assert!(out.stdout_str().lines().any(|l| l == lock), "{}", out.stdout_str());
}

#[test]
fn killing_withlock_kills_the_job() {
    let t = TempDir::new();
    let job_pid = t.join("job");
    let mut running = start(
        withlock()
            .arg("--no-inherit")
            .arg(t.lock())
            .args(["sh", "-c", r#"echo $$ > "$1"; exec sleep 30"#, "sh"])
            .arg(&job_pid),
    );
    assert!(wait_until(Duration::from_secs(10), || exists(&job_pid) && !read_string(&job_pid).is_empty()));
    let job = read_pid(&job_pid);
    send_signal(running.pid(), libc::SIGKILL);
    assert!(wait_until(Duration::from_secs(5), || dead(job)), "the job outlived withlock, running unlocked");
    assert!(!running.is_running());
    run(withlock().arg(t.lock()).arg("true")).assert_code(0);
}

#[test]
fn status_and_signals_come_back_and_unlink_works_too() {
    let t = TempDir::new();
    run(withlock().arg("--no-inherit").arg(t.lock()).args(["sh", "-c", "exit 9"])).assert_code(9);
    run(withlock().arg("--no-inherit").arg(t.lock()).args(["sh", "-c", "kill -TERM $$"]))
        .assert_signal(libc::SIGTERM);
    run(withlock().args(["--no-inherit", "--unlink"]).arg(t.lock()).arg("true")).assert_code(0);
    assert!(!exists(&t.lock()), "--unlink with --no-inherit left the lock file");
}
