//! Just enough JSON output for `--status --json`: strings escaped per
//! RFC 8259, numbers, and null.

use crate::text::Line;

/// Append `bytes` as a JSON string. Valid UTF-8 passes through; `"`, `\`
/// and control characters are escaped; bytes that are not UTF-8 (paths and
/// arguments may hold any) become U+FFFD.
pub fn push_str(out: &mut Line, bytes: &[u8]) {
    out.push(b"\"");
    for chunk in bytes.utf8_chunks() {
        for &b in chunk.valid().as_bytes() {
            match b {
                b'"' => out.push(b"\\\""),
                b'\\' => out.push(b"\\\\"),
                b'\n' => out.push(b"\\n"),
                b'\t' => out.push(b"\\t"),
                b'\r' => out.push(b"\\r"),
                0..0x20 | 0x7f => out.push_hex_escape(b"\\u00", b),
                _ => out.push(&[b]),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::LineBuf;

    fn json(bytes: &[u8]) -> std::string::String {
        let mut buf = LineBuf::<256>::new();
        push_str(buf.line(), bytes);
        std::string::String::from_utf8(buf.line().as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn escapes() {
        assert_eq!(json(b"plain"), r#""plain""#);
        assert_eq!(json(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(json(b"\n\t\r\x01\x1b\x7f"), r#""\n\t\r\u0001\u001b\u007f""#);
        assert_eq!(json("café".as_bytes()), "\"café\"");
        assert_eq!(json(b"\xffok"), "\"\u{fffd}ok\"");
    }
}
