//! Building messages without an allocator or `core::fmt`.
//!
//! Every line withlock prints is assembled in a fixed buffer on the stack and
//! written with one `write(2)`, so lines from many concurrent withlocks never
//! interleave mid-line. `core::fmt` would cost several kilobytes of binary for
//! the few numbers we print; this is the whole of what we need.

use crate::sys;
use core::ffi::CStr;
use core::time::Duration;

/// Longest message line we build; longer text is cut and marked with "...".
const CAPACITY: usize = 3 * 4096;

/// Text being built in a buffer `B`: owned as [`LineBuf`], used as
/// [`Line`]. Every method works on the unsized `Line`, so each exists once
/// in the binary whatever the buffer sizes.
pub struct Text<B: ?Sized> {
    len: usize,
    truncated: bool,
    /// Where a full buffer is written out to make room, instead of cutting
    /// the text (see `Line::spill_to`), plus one; 0: nowhere (so that a
    /// new buffer is all zeros).
    #[cfg(feature = "status")]
    spill: i32,
    buf: B,
}

/// Text being built, whatever its buffer's size.
pub type Line = Text<[u8]>;
/// A buffer of `N` bytes to build text in.
pub type LineBuf<const N: usize> = Text<[u8; N]>;

impl<const N: usize> LineBuf<N> {
    pub const fn new() -> LineBuf<N> {
        Text {
            len: 0,
            truncated: false,
            #[cfg(feature = "status")]
            spill: 0,
            buf: [0; N],
        }
    }

    pub fn line(&mut self) -> &mut Line {
        self
    }

    /// The text so far (as [`Line::as_bytes`]).
    pub fn as_bytes(&self) -> &[u8] {
        let line: &Line = self;
        line.as_bytes()
    }
}

impl<const N: usize> Default for LineBuf<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A message line, for a diagnostic that starts with "withlock: ".
pub fn diagnostic() -> LineBuf<CAPACITY> {
    let mut buf = LineBuf::new();
    buf.line().push(b"withlock: ");
    buf
}

impl Line {
    /// Start again, keeping the buffer.
    pub fn clear(&mut self) {
        self.len = 0;
        self.truncated = false;
    }

    /// Forget everything after the first `len` bytes.
    pub fn truncate_to(&mut self, len: usize) {
        self.len = self.len.min(len);
        self.truncated = false;
    }

    /// Whether some text did not fit.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Never cut this line: when the buffer is full, write what it holds
    /// to `fd` (where the line will end up, by [`Line::write_to`]) and go
    /// on. For output that must stay whole, such as `--status --json`'s
    /// objects; the line is then written in parts, and cannot be taken back.
    #[cfg(feature = "status")]
    pub fn spill_to(&mut self, fd: i32) {
        self.spill = fd + 1;
    }

    pub fn push(&mut self, bytes: &[u8]) -> &mut Self {
        // Keep room for "...\n" so a cut line still ends properly.
        let room = self.buf.len() - 4 - self.len;
        #[cfg(feature = "status")]
        if bytes.len() > room && self.spill > 0 {
            return self.push_spilling(bytes);
        }
        let take = bytes.len().min(room);
        self.buf[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
        self.truncated |= take < bytes.len();
        self
    }

    /// [`Line::push`] when `bytes` do not fit and the line spills.
    #[cfg(feature = "status")]
    #[cold]
    #[inline(never)]
    fn push_spilling(&mut self, mut bytes: &[u8]) -> &mut Self {
        while !bytes.is_empty() {
            let room = self.buf.len() - 4 - self.len;
            if room == 0 {
                sys::write_all(self.spill - 1, &self.buf[..self.len]);
                self.len = 0;
                continue;
            }
            let take = bytes.len().min(room);
            self.buf[self.len..self.len + take].copy_from_slice(&bytes[..take]);
            self.len += take;
            bytes = &bytes[take..];
        }
        self
    }

    /// A path, argument or record field from anyone, shown so that it
    /// cannot forge extra lines or terminal escapes, nor read as something
    /// else: C0 controls, DEL, C1 controls (U+0080 to U+009F, 0x9b is CSI)
    /// and the bidirectional formatting characters ([`is_c1_or_bidi_control`])
    /// are written as `\xNN` per byte, and so is every byte that is not
    /// part of valid UTF-8 (a stray 0x9b is CSI to an 8-bit terminal); a
    /// backslash is `\\`. Other UTF-8 text is shown as it is: the result is
    /// valid UTF-8 with no control character in it, whatever text comes
    /// before or after it.
    pub fn push_quoted(&mut self, bytes: &[u8]) -> &mut Self {
        let mut rest = bytes;
        while let [first, ..] = *rest {
            let len = utf8_len(rest);
            let control = first < 0x20 || first == 0x7f || is_c1_or_bidi_control(&rest[..len]);
            if len == 0 || control {
                // Not UTF-8 (one byte at a time), or a control character.
                for &b in &rest[..len.max(1)] {
                    self.push_hex_escape(b"\\x", b);
                }
            } else if first == b'\\' {
                self.push(b"\\\\");
            } else {
                self.push(&rest[..len]);
            }
            rest = &rest[len.max(1)..];
        }
        self
    }

    /// Text that should already be printable ASCII (a holder record's
    /// command line, with its own escapes): shown as is, except that any
    /// byte outside printable ASCII is written as `\xNN`.
    pub fn push_printable(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            if (0x20..0x7f).contains(&b) {
                self.push(&[b]);
            } else {
                self.push_hex_escape(b"\\x", b);
            }
        }
        self
    }

    /// `prefix` then `b` as two lower-case hex digits: `\x1b`, `\u001b`.
    pub fn push_hex_escape(&mut self, prefix: &[u8], b: u8) -> &mut Self {
        self.push(prefix).push_hex(u64::from(b), 2)
    }

    /// `n` in lower-case hex, at least `min` digits (at most 16), as
    /// printf's `%0*x`.
    pub fn push_hex(&mut self, mut n: u64, min: usize) -> &mut Self {
        let mut digits = [0u8; 16];
        let mut at = digits.len();
        while n != 0 || at > digits.len() - min.min(16) {
            at -= 1;
            digits[at] = hex_digit(n);
            n >>= 4;
        }
        self.push(&digits[at..])
    }

    pub fn push_u64(&mut self, mut n: u64) -> &mut Self {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[at..])
    }

    /// An octal permission mode such as "0777".
    pub fn push_mode(&mut self, mode: u32) -> &mut Self {
        let mut digits = [b'0'; 4];
        for (i, d) in digits.iter_mut().enumerate() {
            *d = b'0' + ((mode >> (3 * (3 - i))) & 7) as u8;
        }
        self.push(&digits)
    }

    /// A duration as a user would write it for `-w`: "5s", "2.5s", "0.25s".
    /// A duration as a user would write it: in the largest unit that
    /// says it exactly (`720h`, `5m`, `90s`, `0.25s`, `0.000000001s`).
    pub fn push_duration(&mut self, d: Duration) -> &mut Self {
        let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
        if nanos == 0 && secs != 0 && secs % 60 == 0 {
            return if secs % 3600 == 0 {
                self.push_u64(secs / 3600).push(b"h")
            } else {
                self.push_u64(secs / 60).push(b"m")
            };
        }
        self.push_u64(secs);
        if nanos != 0 {
            let mut frac = [b'.'; 10];
            let mut rest = nanos;
            for digit in frac[1..].iter_mut().rev() {
                *digit = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            let mut end = frac.len();
            while frac[end - 1] == b'0' {
                end -= 1;
            }
            self.push(&frac[..end]);
        }
        self.push(b"s")
    }

    /// The line as a C string: it must end with its NUL (and hold no
    /// other); otherwise the empty string, which names no file.
    pub fn as_cstr(&self) -> &CStr {
        c_str(self.as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// End the line and write it to `fd` in one call.
    pub fn write_to(&mut self, fd: i32) {
        if self.truncated {
            self.buf[self.len..self.len + 3].copy_from_slice(b"...");
            self.len += 3;
        }
        self.buf[self.len] = b'\n';
        sys::write_all(fd, &self.buf[..=self.len]);
    }

    /// End the line and write it to standard error.
    pub fn emit(&mut self) {
        self.write_to(2);
    }
}

/// Whether `ch` (one UTF-8 character) is a C1 control (U+0080 to U+009F)
/// or a bidirectional formatting character: U+061C, U+200E, U+200F,
/// U+202A to U+202E, U+2066 to U+2069. A terminal that honours the latter
/// shows the text after one reordered, so a path or command line could be
/// made to read as another ("Trojan Source").
pub fn is_c1_or_bidi_control(ch: &[u8]) -> bool {
    match *ch {
        [0xc2, second] => second < 0xa0,
        [0xd8, 0x9c] => true,
        // U+2000..U+207F: a bit per last byte, for a second byte of 0x80 or 0x81.
        [0xe2, second @ (0x80 | 0x81), last] => {
            const MASKS: [u64; 2] = [0x7c00 << 32 | 0xc000, 0x3c0 << 32];
            MASKS[usize::from(second & 1)] >> (last & 0x3f) & 1 != 0
        }
        _ => false,
    }
}

/// The length of the UTF-8 character `bytes` starts with, or 0 if they do
/// not start with one (RFC 3629: no overlong forms, surrogates or values
/// past U+10FFFF). Written out: core's UTF-8 validation costs 700 bytes.
fn utf8_len(bytes: &[u8]) -> usize {
    let Some(&first) = bytes.first() else { return 0 };
    // The length, and the range of the second byte, by the first.
    let (len, low, high) = match first {
        0..0x80 => return 1,
        0xc2..0xe0 => (2, 0x80, 0xbf),
        0xe0 => (3, 0xa0, 0xbf),
        0xed => (3, 0x80, 0x9f),
        0xe1..0xf0 => (3, 0x80, 0xbf),
        0xf0 => (4, 0x90, 0xbf),
        0xf1..0xf4 => (4, 0x80, 0xbf),
        0xf4 => (4, 0x80, 0x8f),
        _ => return 0,
    };
    let valid = bytes.len() >= len
        && (low..=high).contains(&bytes[1])
        && bytes[2..len].iter().all(|&b| (0x80..0xc0).contains(&b));
    if valid { len } else { 0 }
}

/// A decimal number without sign or spaces, as the kernel and withlock's
/// own records write them; `None` for anything else or on overflow.
pub fn parse_u64(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter().try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// `bytes` (ending with its NUL, and holding no other) as a C string;
/// otherwise the empty string, which names no file.
pub fn c_str(bytes: &[u8]) -> &CStr {
    CStr::from_bytes_with_nul(bytes).unwrap_or(c"")
}

/// The lower-case hex digit for `n` (0 to 15).
pub fn hex_digit(n: u64) -> u8 {
    b"0123456789abcdef"[(n & 15) as usize]
}

/// One line to stderr: `before`, the number `pid` if any, `after`.
#[cold]
#[inline(never)]
pub fn say(before: &[u8], pid: Option<u32>, after: &[u8]) {
    let mut buf = diagnostic();
    let line = buf.line();
    line.push(before);
    if let Some(pid) = pid {
        line.push_u64(u64::from(pid));
    }
    line.push(after);
    line.emit();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn text(f: impl FnOnce(&mut Line) -> &mut Line) -> Vec<u8> {
        let mut buf = LineBuf::<CAPACITY>::new();
        f(buf.line()).as_bytes().to_vec()
    }

    #[test]
    fn numbers_and_modes() {
        assert_eq!(text(|l| l.push_u64(0)), b"0");
        assert_eq!(text(|l| l.push_u64(u64::MAX)), b"18446744073709551615");
        assert_eq!(text(|l| l.push_mode(0o1777)), b"1777");
        assert_eq!(text(|l| l.push_mode(0o644)), b"0644");
    }

    #[test]
    fn durations_read_like_user_input() {
        let d = |ms| text(|l| l.push_duration(Duration::from_millis(ms)));
        assert_eq!(d(5000), b"5s");
        assert_eq!(d(2500), b"2.5s");
        assert_eq!(d(250), b"0.25s");
        assert_eq!(d(1), b"0.001s");
        assert_eq!(d(0), b"0s");
        assert_eq!(d(90_000), b"90s");
        assert_eq!(d(60_000), b"1m");
        assert_eq!(d(5_400_000), b"90m");
        assert_eq!(d(2_592_000_000), b"720h");
        assert_eq!(text(|l| l.push_duration(Duration::from_nanos(1))), b"0.000000001s");
        assert_eq!(text(|l| l.push_duration(Duration::new(60, 1))), b"60.000000001s");
    }

    #[test]
    fn decimal_numbers() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        for bad in [&b""[..], b"-1", b"+1", b" 1", b"1 ", b"0x1", b"1e3"] {
            assert_eq!(parse_u64(bad), None);
        }
    }

    #[test]
    fn control_bytes_are_escaped() {
        assert_eq!(text(|l| l.push_quoted(b"a\nb\\c\x1b")), b"a\\x0ab\\\\c\\x1b");
        // C1, raw and encoded: 0x9b is CSI.
        assert_eq!(
            text(|l| l.push_quoted(b"\x9b31m \xc2\x9b31m \xc2\x80")),
            b"\\x9b31m \\xc2\\x9b31m \\xc2\\x80"
        );
        // Other UTF-8 is shown as it is, even with 0x80..0x9f inside it.
        assert_eq!(
            text(|l| l.push_quoted("caf\u{e9} \u{a0}\u{20ac} \u{11b}".as_bytes())),
            "caf\u{e9} \u{a0}\u{20ac} \u{11b}".as_bytes()
        );
        // Bytes outside valid UTF-8 are shown by value.
        assert_eq!(text(|l| l.push_quoted(b"\xff\xe2\x82 \xc3")), b"\\xff\\xe2\\x82 \\xc3");
        // Bidirectional formatting characters, which reorder what follows them.
        assert_eq!(
            text(|l| l.push_quoted("a\u{202e}b\u{2066}c\u{61c}d\u{200f}e\u{2069}".as_bytes())),
            b"a\\xe2\\x80\\xaeb\\xe2\\x81\\xa6c\\xd8\\x9cd\\xe2\\x80\\x8fe\\xe2\\x81\\xa9"
        );
        // Their neighbours are text.
        assert_eq!(
            text(|l| l.push_quoted("\u{2029}\u{202f}\u{2065}\u{206a}\u{61b}".as_bytes())),
            "\u{2029}\u{202f}\u{2065}\u{206a}\u{61b}".as_bytes()
        );
    }

    /// `is_c1_or_bidi_control` is exactly the characters it names, over all of Unicode.
    #[test]
    fn c1_and_bidi_controls_are_exactly_those_named() {
        let named =
            |c: u32| matches!(c, 0x80..=0x9f | 0x61c | 0x200e | 0x200f | 0x202a..=0x202e | 0x2066..=0x2069);
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            assert_eq!(
                is_c1_or_bidi_control(c.encode_utf8(&mut [0; 4]).as_bytes()),
                named(c as u32),
                "{c:?}"
            );
        }
    }

    /// `utf8_len` agrees with core's UTF-8 validation, on every lead byte.
    #[test]
    fn randomized_utf8_lengths_agree_with_core() {
        let seed = 0x7574_6638_u64;
        let mut rng = crate::testing::Rng(seed);
        for round in 0..200_000 {
            let len = rng.below(5) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            // Mostly continuation bytes after the first, or nothing would be valid.
            for b in bytes.iter_mut().skip(1) {
                if rng.below(4) != 0 {
                    *b = 0x80 | (*b & 0x3f);
                }
            }
            let core =
                bytes.utf8_chunks().next().and_then(|c| c.valid().chars().next()).map_or(0, char::len_utf8);
            assert_eq!(utf8_len(&bytes), core, "seed {seed:#x} round {round}: {bytes:x?}");
        }
    }

    /// Undo `push_quoted`: `\\` and `\xHH` escapes, everything else as it is.
    fn unquoted(shown: &[u8]) -> Vec<u8> {
        let hex = |d: u8| (d as char).to_digit(16).unwrap() as u8;
        let mut out = Vec::new();
        let mut i = 0;
        while i < shown.len() {
            match shown[i..] {
                [b'\\', b'\\', ..] => (out.push(b'\\'), i += 2),
                [b'\\', b'x', h, l, ..] => (out.push(hex(h) << 4 | hex(l)), i += 4),
                [b'\\', ..] => panic!("a lone backslash in {shown:?}"),
                [b, ..] => (out.push(b), i += 1),
                [] => unreachable!(),
            };
        }
        out
    }

    /// What a terminal could take for a control: C0, DEL, C1, a
    /// bidirectional formatting character, or any byte that is not valid UTF-8.
    fn unsafe_for_a_terminal(shown: &[u8]) -> bool {
        match std::str::from_utf8(shown) {
            Ok(s) => s
                .chars()
                .any(|c| c.is_control() || is_c1_or_bidi_control(c.encode_utf8(&mut [0; 4]).as_bytes())),
            Err(_) => true,
        }
    }

    #[test]
    fn randomized_text_is_shown_safely_and_exactly() {
        let seed = 0x5afe_7e47_u64;
        let mut rng = crate::testing::Rng(seed);
        let pieces: &[&[u8]] = &[
            b"\xc2\x9b",
            b"\xc2\x80",
            b"\xc2\x9f",
            b"\xc2\xa0",
            b"\xc3\xa9",
            b"\xc4\x9b",
            b"\xe2\x82\xac",
            b"\xe2\x82",
            b"\xe2\x80\xae",
            b"\xe2\x81\xa9",
            b"\xd8\x9c",
            b"\xf0\x9f\x98\x80",
            b"\xf0\x9f",
            b"\xed\xa0\x80",
            b"\\",
            b"\\x9b",
            b"\x1b[31m",
            b"\n",
            b"\x7f",
            b"ok",
        ];
        for round in 0..20_000 {
            let input = rng.mixture(pieces, 8);
            let shown = text(|l| l.push_quoted(&input));
            assert!(!unsafe_for_a_terminal(&shown), "seed {seed:#x} round {round}: {input:?} -> {shown:?}");
            assert_eq!(unquoted(&shown), input, "seed {seed:#x} round {round}");
            if let Ok(plain) = std::str::from_utf8(&input)
                && !plain.contains(|c: char| {
                    c.is_control()
                        || c == '\\'
                        || is_c1_or_bidi_control(c.encode_utf8(&mut [0; 4]).as_bytes())
                })
            {
                assert_eq!(shown, input, "seed {seed:#x} round {round}: readable text was changed");
            }
            // Joined to what comes next, it still forms no control.
            let tail = pieces[rng.below(pieces.len() as u64) as usize];
            let joined = text(|l| l.push_quoted(&input).push_quoted(tail));
            assert!(!unsafe_for_a_terminal(&joined), "seed {seed:#x} round {round}");
        }
    }

    #[test]
    fn overlong_text_is_cut_not_overflowed() {
        let mut buf = LineBuf::<CAPACITY>::new();
        let line = buf.line();
        for _ in 0..10 {
            line.push(&[b'x'; 4096]);
        }
        assert_eq!(line.as_bytes().len(), CAPACITY - 4);
        assert!(line.truncated);
    }
}
