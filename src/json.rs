//! Just enough JSON output for `--status --json`: strings escaped per
//! RFC 8259, numbers, and null.

use crate::record::{self, Record};
use crate::text::{self, Line, LineBuf};

/// Append `bytes` as a JSON string. Valid UTF-8 passes through; `"`, `\`,
/// control characters (C0, DEL and C1: U+0080..U+009F, which a terminal
/// may obey) and bidirectional formatting characters (which reorder what a
/// terminal shows after them) are escaped; bytes that are not UTF-8 (paths
/// and arguments may hold any) become U+FFFD.
pub fn push_str(out: &mut Line, bytes: &[u8]) {
    out.push(b"\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push(b"\\\""),
                '\\' => out.push(b"\\\\"),
                '\n' => out.push(b"\\n"),
                '\t' => out.push(b"\\t"),
                '\r' => out.push(b"\\r"),
                // Every control character is below U+0100.
                _ if c.is_control() => out.push_hex_escape(b"\\u00", c as u8),
                _ => {
                    let mut buf = [0; 4];
                    let bytes = c.encode_utf8(&mut buf);
                    // Only the bidirectional ones are left: C1 is control.
                    if text::is_c1_or_bidi_control(bytes.as_bytes()) {
                        out.push(b"\\u").push_hex(u64::from(c), 4)
                    } else {
                        out.push(bytes.as_bytes())
                    }
                }
            };
        }
        if !chunk.invalid().is_empty() {
            out.push("\u{fffd}".as_bytes());
        }
    }
    out.push(b"\"");
}

/// `"key":` after a comma unless `first`.
pub fn push_key(out: &mut Line, key: &str, first: bool) {
    if !first {
        out.push(b",");
    }
    out.push(b"\"").push(key.as_bytes()).push(b"\":");
}

pub fn push_opt_u64(out: &mut Line, value: Option<u64>) {
    match value {
        Some(n) => out.push_u64(n),
        None => out.push(b"null"),
    };
}

pub fn push_opt_str(out: &mut Line, value: Option<&[u8]>) {
    match value {
        Some(text) => push_str(out, text),
        None => {
            out.push(b"null");
        }
    }
}

/// A holder record's fields, each after a comma (`,"pid":...`), for a lock
/// file's report and an etcd lock's alike: what the record says.
pub fn push_record_fields(out: &mut Line, r: &Record) {
    push_key(out, "pid", false);
    push_opt_u64(out, r.pid.map(u64::from));
    push_key(out, "pgid", false);
    push_opt_u64(out, r.pgid.map(u64::from));
    push_key(out, "uid", false);
    push_opt_u64(out, r.uid.map(u64::from));
    push_key(out, "user", false);
    push_user_name(out, r.uid);
    push_key(out, "host", false);
    push_opt_str(out, r.host);
    push_key(out, "since", false);
    push_opt_str(out, r.since);
    push_key(out, "since_unix", false);
    push_opt_u64(out, r.since_unix);
    push_key(out, "age_s", false);
    // null for a date ahead of our clock: it has no age.
    push_opt_u64(out, r.since_unix.and_then(|then| crate::clock::unix_now().checked_sub(then)));
    push_key(out, "version", false);
    push_opt_str(out, r.version);
    push_key(out, "command", false);
    push_opt_str(out, r.command);
    push_key(out, "argv", false);
    out.push(b"[");
    if let Some(command) = r.command {
        let mut args = record::Args::new(command);
        let mut arg = [0u8; record::CAPACITY];
        let mut first = true;
        while let Some(len) = args.next_into(&mut arg) {
            if !first {
                out.push(b",");
            }
            first = false;
            push_str(out, &arg[..len]);
        }
    }
    out.push(b"]");
    push_key(out, "command_cut", false);
    out.push(if r.command_cut { b"true".as_slice() } else { b"false" });
    push_key(out, "complete", false);
    out.push(if r.complete { b"true".as_slice() } else { b"false" });
}

/// The user name for `uid` as a JSON string, or null.
pub fn push_user_name(out: &mut Line, uid: Option<u32>) {
    let mut name = LineBuf::<256>::new();
    let name = name.line();
    let found = uid.is_some_and(|uid| {
        crate::passwd::user_name(uid, |n| {
            name.push(n);
        })
    });
    push_opt_str(out, found.then_some(name.as_bytes()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(bytes: &[u8]) -> std::string::String {
        crate::testing::shown(|line| push_str(line, bytes))
    }

    #[test]
    fn escapes() {
        assert_eq!(json(b"plain"), r#""plain""#);
        assert_eq!(json(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(json(b"\n\t\r\x01\x1b\x7f"), r#""\n\t\r\u0001\u001b\u007f""#);
        assert_eq!(json("café".as_bytes()), "\"café\"");
        assert_eq!(json(b"\xffok"), "\"\u{fffd}ok\"");
        // C1 controls: U+009B is CSI.
        assert_eq!(json("\u{80}\u{9b}[31m\u{9f}\u{a0}".as_bytes()), "\"\\u0080\\u009b[31m\\u009f\u{a0}\"");
        assert_eq!(json(b"\x9b"), "\"\u{fffd}\"");
        // Bidirectional formatting characters: U+202E would show what follows backwards.
        assert_eq!(json("a\u{202e}b\u{61c}\u{2066}".as_bytes()), r#""a\u202eb\u061c\u2066""#);
    }

    /// Whatever the bytes, the string is one line of valid UTF-8 with no
    /// control character a terminal could obey, and it decodes to the valid
    /// text it was given.
    #[test]
    fn randomized_strings_are_safe_to_print() {
        let seed = 0x15_0a_u64;
        let mut rng = crate::testing::Rng(seed);
        let pieces: &[&[u8]] = &[
            b"\xc2\x9b",
            b"\xc2\x85",
            b"\xc2\xa0",
            b"\xc4\x9b",
            b"\xe2\x82\xac",
            b"\xe2\x82",
            b"\xe2\x80\xae",
            b"\"",
            b"\\",
        ];
        for round in 0..20_000 {
            let input = rng.mixture(pieces, 8);
            let shown = json(&input);
            let bidi = |c: char| text::is_c1_or_bidi_control(c.encode_utf8(&mut [0; 4]).as_bytes());
            assert!(
                !shown.chars().any(|c| c.is_control() || bidi(c)),
                "seed {seed:#x} round {round}: {shown:?}"
            );
            let lossy = std::string::String::from_utf8_lossy(&input);
            let control = |c: char| c.is_control() || bidi(c) || c == '"' || c == '\\';
            if !lossy.contains(control) {
                assert_eq!(shown, format!("\"{lossy}\""), "seed {seed:#x} round {round}");
            }
        }
    }
}
