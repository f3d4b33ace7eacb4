//! Argument handling: options are parsed only before LOCK, and everything from COMMAND on
//! reaches the command exactly, byte for byte, without a shell in between.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use crate::support::{TempDir, exists, run, withlock};

/// Runs `withlock LOCK printf '%s\0' SENTINEL ARGS...` and checks the command saw exactly
/// `ARGS` (the sentinel keeps printf's output well-defined for an empty list).
#[track_caller]
fn assert_args_arrive(dir: &TempDir, args: &[OsString]) {
    let out = run(withlock().arg(dir.lock()).args(["printf", "%s\\0", "SENTINEL"]).args(args));
    out.assert_code(0);
    let mut expected = b"SENTINEL\0".to_vec();
    for a in args {
        expected.extend_from_slice(a.as_bytes());
        expected.push(0);
    }
    assert_eq!(
        out.stdout,
        expected,
        "arguments changed on the way to the command: {args:?}\n{}",
        out.describe()
    );
}

#[test]
fn options_after_the_command_belong_to_the_command() {
    let t = TempDir::new();
    run(withlock().arg(t.lock()).args(["echo", "-v", "--help"])).assert_code(0).assert_stdout("-v --help\n");
}

#[test]
fn options_after_lock_are_not_parsed_so_dash_q_is_the_command() {
    let t = TempDir::new();
    let out = run(withlock().arg(t.lock()).arg("-q"));
    out.assert_code(127).assert_stderr_mentions("-q");
    assert!(out.stdout.is_empty(), "{}", out.describe());
}

#[test]
fn help_after_lock_is_a_command_not_the_help_option() {
    let t = TempDir::new();
    let out = run(withlock().arg(t.lock()).arg("--help"));
    out.assert_code(127).assert_stderr_mentions("--help");
    assert!(out.stdout.is_empty(), "usage was printed:\n{}", out.describe());
}

#[test]
fn double_dash_ends_options() {
    let t = TempDir::new();
    run(withlock().arg("--").arg(t.lock()).args(["echo", "hi"])).assert_code(0).assert_stdout("hi\n");
    run(withlock().args(["-q", "--"]).arg(t.lock()).args(["echo", "hi"]))
        .assert_code(0)
        .assert_stdout("hi\n");
}

#[test]
fn double_dash_allows_a_lock_path_starting_with_a_dash() {
    let t = TempDir::new();
    run(withlock().current_dir(t.path()).args(["--", "-dash.lock", "echo", "hi"]))
        .assert_code(0)
        .assert_stdout("hi\n");
    assert!(exists(&t.join("-dash.lock")), "lock file `-dash.lock` not created");
}

#[test]
fn double_dash_after_the_command_reaches_the_command() {
    let t = TempDir::new();
    run(withlock().arg(t.lock()).args(["echo", "--", "-q", "x"])).assert_code(0).assert_stdout("-- -q x\n");
}

#[test]
fn shell_metacharacters_spaces_and_empty_arguments_arrive_verbatim() {
    let t = TempDir::new();
    let args: Vec<OsString> = [
        "a b",
        "  leading and trailing  ",
        "",
        "'single'",
        "\"double\"",
        "$HOME",
        "${PATH}",
        "`id`",
        "$(touch pwned)",
        "x; touch pwned",
        "a && b || c",
        "*",
        "?",
        "[a-z]",
        "~",
        "line1\nline2",
        "\ttab",
        "back\\slash",
        "%s%d%n",
        "-",
        "--",
        "-q",
        "--wait=5",
        "\u{e9}t\u{e9} \u{1f512}",
        "",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    assert_args_arrive(&t, &args);
    assert!(!exists(&t.join("pwned")), "an argument was interpreted by a shell");
}

#[test]
fn non_utf8_arguments_arrive_verbatim() {
    let t = TempDir::new();
    let args = vec![
        OsString::from_vec(vec![0xff, 0xfe, b'a', 0x80]),
        OsString::from_vec(vec![b'-', 0xc3]),
        OsString::from_vec(vec![0xed, 0xa0, 0x80]),
        OsString::from_vec((1..=255u8).collect()),
    ];
    assert_args_arrive(&t, &args);
}

#[test]
fn non_utf8_command_name_is_looked_up_as_bytes() {
    let t = TempDir::new();
    t.mkdir("bin", 0o700);
    let name = OsStr::from_bytes(b"job-\xff\xfe");
    let script = t.write(Path::new("bin").join(name), b"#!/bin/sh\necho ran\n", 0o700);
    run(withlock().arg(t.lock()).arg(&script)).assert_code(0).assert_stdout("ran\n");
}

#[test]
fn non_utf8_lock_path_is_used_as_bytes() {
    let t = TempDir::new();
    let lock = t.join(OsStr::from_bytes(b"lock-\xff\xfe.lock"));
    run(withlock().arg(&lock).args(["echo", "ok"])).assert_code(0).assert_stdout("ok\n");
    assert!(exists(&lock), "the lock file was not created at the exact bytes given");
}

#[test]
fn command_is_found_through_path() {
    let t = TempDir::new();
    let bin = t.mkdir("bin", 0o700);
    t.write("bin/my-job", b"#!/bin/sh\necho \"my-job $*\"\n", 0o700);
    let path = format!("{}:/usr/bin:/bin", bin.display());
    run(withlock().env("PATH", path).arg(t.lock()).args(["my-job", "a", "b"]))
        .assert_code(0)
        .assert_stdout("my-job a b\n");
}

#[test]
fn environment_reaches_the_command_unchanged() {
    let t = TempDir::new();
    run(withlock().env("WITHLOCK_TEST_VALUE", "x y $z").arg(t.lock()).args([
        "sh",
        "-c",
        "printf %s \"$WITHLOCK_TEST_VALUE\"",
    ]))
    .assert_code(0)
    .assert_stdout("x y $z");
}

/// xorshift64*: tiny, deterministic, good enough to shake out quoting bugs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn byte(&mut self) -> u8 {
        // Any byte but NUL, which cannot be in an argument.
        u8::try_from(1 + self.below(255)).unwrap()
    }
}

const TRICKY: &[&str] = &[
    "",
    " ",
    "-",
    "--",
    "-q",
    "-v",
    "-w",
    "5",
    "-E",
    "--help",
    "-V",
    "--insecure",
    "$HOME",
    "`id`",
    "'",
    "\"",
    "\\",
    "\n",
    ";",
    "|",
    "&",
    "*",
    "%s",
    "%%",
    "\u{1f512}",
];

fn random_arg(rng: &mut Rng) -> OsString {
    if rng.below(4) == 0 {
        return OsString::from(TRICKY[usize::try_from(rng.below(TRICKY.len() as u64)).unwrap()]);
    }
    let len = rng.below(17);
    let mut bytes: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
    if rng.below(3) == 0 {
        bytes.insert(0, b'-');
        if rng.below(2) == 0 {
            bytes.insert(0, b'-');
        }
    }
    OsString::from_vec(bytes)
}

#[test]
fn randomized_argument_vectors_arrive_byte_for_byte() {
    let seed = std::env::var("WITHLOCK_TEST_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    eprintln!("randomized_argument_vectors: seed {seed:#x} (set WITHLOCK_TEST_SEED to replay)");
    let mut rng = Rng(seed);
    let t = TempDir::new();
    for _ in 0..300 {
        let n = rng.below(8);
        let args: Vec<OsString> = (0..n).map(|_| random_arg(&mut rng)).collect();
        assert_args_arrive(&t, &args);
    }
}

/// A URL's scheme is case-insensitive (RFC 3986), and the address parser takes `ETCD://`:
/// so does everything else. It used to be a relative file path (`ETCD:` a directory), for a
/// run (73, "create the directory first") and for --status ("free", 0).
#[test]
fn an_etcd_scheme_in_any_case_is_an_etcd_lock() {
    let t = TempDir::new();
    let endpoint = crate::etcd_support::refused_endpoint();
    let marker = t.join("ran");
    for scheme in ["ETCD", "Etcd"] {
        let lock = format!("{scheme}://{endpoint}/n");
        let out = run(withlock().current_dir(t.path()).arg(&lock).arg("touch").arg(&marker));
        out.assert_code(69).assert_stderr_mentions("etcd");
        assert!(!exists(&marker), "the command ran");
        let out = run(withlock().current_dir(t.path()).arg("--status").arg(&lock));
        assert_eq!(out.code(), Some(69), "--status {lock}\n{}", out.describe());
        assert!(!out.stdout_str().contains("free"), "{}", out.describe());
        assert!(!exists(&t.join(format!("{scheme}:"))), "a file path was used");
    }
}
