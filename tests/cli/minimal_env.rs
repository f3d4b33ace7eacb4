//! The places withlock is made for: an initramfs or a container with no /etc/passwd entry
//! for the user, no environment (no PATH, no locale) and no /proc. The core path must
//! need none of them.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::support::{
    TempDir, bin_argv, chown, hold, read_string, require_root, run, set_mode, without_proc,
};

/// A uid with no /etc/passwd entry.
const UNLISTED_UID: u32 = 54321;

#[test]
fn runs_for_a_user_without_passwd_entry_and_with_an_empty_environment() {
    if !require_root("runs_for_a_user_without_passwd_entry_and_with_an_empty_environment") {
        return;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    assert!(!passwd.lines().any(|l| l.split(':').nth(2) == Some(&UNLISTED_UID.to_string())));
    let t = TempDir::new();
    set_mode(t.path(), 0o711); // Root's, searchable: the user may pass through.
    let home = t.mkdir("home", 0o700);
    chown(&home, UNLISTED_UID, UNLISTED_UID);
    let lock = home.join("x.lock");
    let out_file = home.join("out");
    // `env -i`: no PATH (withlock's execvp falls back to the C library's default PATH
    // for the bare name `sh`), no HOME, no LANG.
    let out = run(Command::new("setpriv")
        .args([
            format!("--reuid={UNLISTED_UID}"),
            format!("--regid={UNLISTED_UID}"),
            "--clear-groups".to_string(),
        ])
        .args(["env", "-i"])
        .args(bin_argv())
        .arg(&lock)
        .args(["sh", "-c", r#"id -u > "$1""#, "sh"])
        .arg(&out_file));
    out.assert_code(0);
    let written = read_string(&out_file);
    assert_eq!(written, format!("{UNLISTED_UID}\n"));
    let meta = fs::metadata(&lock).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (UNLISTED_UID, 0o600));
}

#[test]
fn locks_waits_and_runs_without_proc() {
    let t = TempDir::new();
    let lock = t.lock();
    let marker = t.join("ran");
    let Some(out) = without_proc(&[
        lock.as_os_str(),
        "sh".as_ref(),
        "-c".as_ref(),
        r#"[ -e /proc/self ] && echo proc > "$1" || echo no-proc > "$1""#.as_ref(),
        "sh".as_ref(),
        marker.as_os_str(),
    ]) else {
        return;
    };
    out.assert_code(0);
    assert_eq!(read_string(&marker), "no-proc\n");

    // A busy lock and an expiring wait: the timer needs no /proc either.
    let holder = hold(&t, &lock);
    let out = without_proc(&["-w".as_ref(), "0.2".as_ref(), lock.as_os_str(), "true".as_ref()]).unwrap();
    out.assert_code(75).assert_stderr_mentions(&lock);
    drop(holder);
}
