//! What withlock prints is safe to print on a terminal and names what it should (issue 10,
//! items 8 and 10): C1 controls (U+0080..U+009F, raw or UTF-8 encoded; 0x9b is CSI) in a
//! path, a record field (host, since, version) or a user name are escaped like C0 ones, in
//! messages, `--status` lines and `--json`, and so are bidirectional formatting characters
//! (which reorder what a terminal shows after them); a LOCK too long to walk is named without an
//! empty "(at )" place.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use crate::support::{TempDir, exists, hold_with_flock, run, withlock};

/// Bidirectional formatting characters: a terminal that honours them reorders what follows.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// The C0, DEL and C1 controls a terminal could obey in `bytes`, the bidirectional
/// formatting characters, and any byte that is not part of valid UTF-8 (a lone 0x9b is CSI
/// to an 8-bit terminal), described.
fn controls(bytes: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if (c.is_control() && c != '\n') || is_bidi(c) {
                found.push(format!("{:?}", c));
            }
        }
        if !chunk.invalid().is_empty() {
            found.push(format!("raw {:x?}", chunk.invalid()));
        }
    }
    found
}

#[track_caller]
fn assert_safe_to_print(what: &str, bytes: &[u8]) {
    let found = controls(bytes);
    assert!(found.is_empty(), "{what} holds controls {found:?}: {:?}", String::from_utf8_lossy(bytes));
}

/// `ESC [ 2 J` (clear the screen) as a C1 CSI, UTF-8 encoded and as a raw byte.
const CSI_ENCODED: &[u8] = b"\xc2\x9b2J";
const CSI_RAW: &[u8] = b"\x9b2J";

/// Runs withlock on a lock in the missing directory `dir`, then `--status` and `--json` on
/// it: all of it safe to print, the message naming the directory as `shown`. Returns what
/// `--json` printed.
#[track_caller]
fn a_missing_directory_is_shown(dir: &[u8], shown: &str) -> String {
    let t = TempDir::new();
    let lock = t.join(OsStr::from_bytes(dir)).join("x.lock");
    let marker = t.join("ran");
    let out = run(withlock().arg(&lock).arg("touch").arg(&marker));
    out.assert_code(73);
    assert!(!exists(&marker));
    assert_safe_to_print("the message", &out.stderr);
    let err = out.stderr_str();
    assert!(err.contains(shown), "{err}");

    // --status, in words and in JSON.
    let out = run(withlock().arg("--status").arg(&lock));
    assert_safe_to_print("--status", &[&out.stdout[..], &out.stderr[..]].concat());
    let out = run(withlock().args(["--status", "--json"]).arg(&lock));
    assert_safe_to_print("--status --json", &out.stdout);
    out.stdout_str()
}

#[test]
fn c1_controls_in_a_lock_path_are_escaped_in_messages() {
    let mut name = b"missing-".to_vec();
    name.extend_from_slice(CSI_ENCODED);
    name.extend_from_slice(b"-");
    name.extend_from_slice(CSI_RAW);
    name.extend_from_slice(b"-\xc2\x85-caf\xc3\xa9");
    // Shown by value, and the rest as it is.
    a_missing_directory_is_shown(&name, r"missing-\xc2\x9b2J-\x9b2J-\xc2\x85-café");
}

/// A bidirectional override in a path ("Trojan Source") would show the rest of the line
/// reversed: it is escaped like a control in messages, `--status` and `--json`.
#[test]
fn bidi_controls_in_a_lock_path_are_escaped() {
    // Shown raw, "missing-\u{202e}kcol.x" reads as "missing-x.lock".
    let json = a_missing_directory_is_shown(
        "missing-\u{202e}kcol.x\u{2066}".as_bytes(),
        r"missing-\xe2\x80\xaekcol.x\xe2\x81\xa6",
    );
    assert!(json.contains(r"missing-\u202ekcol.x\u2066"), "{json}");
}

/// A record anyone who can write the lock file may forge: its fields are shown escaped
/// in the busy message, `--status` and `--json`.
#[test]
fn c1_controls_in_record_fields_are_escaped() {
    let t = TempDir::new();
    let lock = t.lock();
    let mut record = b"withlock-holder 1\npid=1\nlocker=1\npgid=1\nuid=0\nhost=evil".to_vec();
    record.extend_from_slice(CSI_ENCODED);
    record.extend_from_slice(CSI_RAW);
    record.extend_from_slice(b"\nsince=2026-01-01T00:00:00Z");
    record.extend_from_slice(CSI_ENCODED);
    record.extend_from_slice(b"\nsince_unix=1767225600\nboot_ns=1\nversion=0.1.0");
    record.extend_from_slice(CSI_RAW);
    record.extend_from_slice(b"\xc2\x90\ncommand=job ");
    record.extend_from_slice(CSI_ENCODED);
    record.extend_from_slice(b"\npad=\nend\n");
    fs::write(&lock, &record).unwrap();
    let holder = hold_with_flock(&t, &lock);

    let out = run(withlock().arg("-v").arg(&lock).arg("true"));
    out.assert_code(75);
    assert_safe_to_print("the busy message", &out.stderr);
    assert!(out.stderr_str().contains(r"\xc2\x9b2J"), "a field is not shown at all:\n{}", out.describe());

    let out = run(withlock().arg("--status").arg(&lock));
    out.assert_code(75);
    assert_safe_to_print("--status", &out.stdout);
    assert!(out.stdout_str().contains(r"\xc2\x9b2J"), "{}", out.describe());

    let out = run(withlock().args(["--status", "--json"]).arg(&lock));
    out.assert_code(75);
    assert_safe_to_print("--status --json", &out.stdout);
    assert!(out.stdout_str().contains(r"\u009b2J"), "{}", out.describe());
    holder.release().assert_code(0);
}

/// Longer than PATH_MAX: "cannot open lock file ...: File name too long", without an empty
/// "(at )" for a place on the way (there is none: LOCK itself is too long).
#[test]
fn a_lock_longer_than_path_max_names_no_empty_place() {
    let t = TempDir::new();
    let mut lock = t.path().to_path_buf();
    for _ in 0..5 {
        lock.push("x".repeat(1000));
    }
    let marker = t.join("ran");
    for opts in [&[][..], &["--insecure"]] {
        let out = run(withlock().args(opts).arg(&lock).arg("touch").arg(&marker));
        out.assert_code(73).assert_one_message_naming(&lock).assert_stderr_mentions("too long");
        assert!(!out.stderr_str().contains("(at )"), "{opts:?}: {}", out.describe());
        assert!(!exists(&marker));
    }
}
