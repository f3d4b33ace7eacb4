//! Standard base64 (RFC 4648, with `=` padding), into caller buffers.
//!
//! etcd's JSON gateway carries every key and value as base64 (they are bytes
//! in protobuf), so the etcd client encodes lock names and records on the way
//! out and decodes keys and values on the way back. Decoding is strict:
//! etcd (Go's `encoding/base64`) always writes the canonical form, so any
//! other character, a missing or misplaced `=`, or stray bits in the last
//! character mean the reply is not what we think it is.

use crate::text::Line;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// How many bytes encoding `n` bytes takes.
#[cfg(test)]
pub const fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// The four characters for up to three bytes (`chunk.len()` in 1..=3).
fn quad(chunk: &[u8]) -> [u8; 4] {
    let b = |i: usize| chunk.get(i).copied().map_or(0, u32::from);
    let n = (b(0) << 16) | (b(1) << 8) | b(2);
    let c = |shift: u32| ALPHABET[(n >> shift) as usize & 63];
    let mut out = [c(18), c(12), c(6), c(0)];
    if chunk.len() < 3 {
        out[3] = b'=';
    }
    if chunk.len() < 2 {
        out[2] = b'=';
    }
    out
}

/// Encode `input` into `out`; the length written, or `None` if `out` is
/// shorter than [`encoded_len`]`(input.len())`.
#[cfg(test)]
pub fn encode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let len = encoded_len(input.len());
    let out = out.get_mut(..len)?;
    for (chunk, dst) in input.chunks(3).zip(out.chunks_exact_mut(4)) {
        dst.copy_from_slice(&quad(chunk));
    }
    Some(len)
}

/// Append `input`, encoded, to `line` (which marks itself truncated if it
/// runs out of room).
pub fn push(line: &mut Line, input: &[u8]) {
    for chunk in input.chunks(3) {
        line.push(&quad(chunk));
    }
}

/// The six bits a character stands for, if it is in the alphabet.
fn value(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Why a decode failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not canonical base64: a bad character, length or padding.
    Invalid,
    /// The output buffer is too small.
    NoRoom,
}

/// Decode `input` into `out`; the length written. Strict: the length must
/// be a multiple of four, padding only at the end (one or two `=`), and the
/// bits a padded group does not use must be zero.
pub fn decode(input: &[u8], out: &mut [u8]) -> Result<usize, DecodeError> {
    if !input.len().is_multiple_of(4) {
        return Err(DecodeError::Invalid);
    }
    let groups = input.len() / 4;
    let mut written = 0;
    for (g, group) in input.chunks_exact(4).enumerate() {
        let last = g + 1 == groups;
        let pad = match group {
            [_, _, b'=', b'='] if last => 2,
            [_, _, _, b'='] if last => 1,
            _ => 0,
        };
        let mut n = 0u32;
        for &c in &group[..4 - pad] {
            n = (n << 6) | value(c).ok_or(DecodeError::Invalid)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let take = 3 - pad;
        // The bits past the last whole byte must be zero (canonical form).
        if bytes[take..].iter().any(|&b| b != 0) {
            return Err(DecodeError::Invalid);
        }
        let dst = out.get_mut(written..written + take).ok_or(DecodeError::NoRoom)?;
        dst.copy_from_slice(&bytes[..take]);
        written += take;
    }
    Ok(written)
}

/// How many bytes decoding `input` gives at most (exactly, if it is valid).
#[cfg(test)]
pub fn decoded_len(input: &[u8]) -> usize {
    let pad = input.iter().rev().take(2).filter(|&&c| c == b'=').count();
    (input.len() / 4 * 3).saturating_sub(pad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;
    use crate::text::LineBuf;

    fn enc(input: &[u8]) -> std::vec::Vec<u8> {
        let mut out = std::vec![0u8; encoded_len(input.len())];
        assert_eq!(encode(input, &mut out), Some(out.len()));
        out
    }

    fn dec(input: &[u8]) -> Result<std::vec::Vec<u8>, DecodeError> {
        let mut out = std::vec![0u8; decoded_len(input)];
        let n = decode(input, &mut out)?;
        out.truncate(n);
        Ok(out)
    }

    #[test]
    fn rfc4648_vectors() {
        let vectors: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"f", b"Zg=="),
            (b"fo", b"Zm8="),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg=="),
            (b"fooba", b"Zm9vYmE="),
            (b"foobar", b"Zm9vYmFy"),
        ];
        for (plain, coded) in vectors {
            assert_eq!(enc(plain), coded);
            assert_eq!(dec(coded).unwrap(), plain);
        }
        // What etcd wrote for `etcdctl lock wl-test` (lease 457ea2188ed33c17).
        assert_eq!(dec(b"d2wtdGVzdC80NTdlYTIxODhlZDMzYzE3").unwrap(), b"wl-test/457ea2188ed33c17");
    }

    #[test]
    fn push_matches_encode() {
        let mut buf = LineBuf::<64>::new();
        push(buf.line(), b"\x00\xff\xfe+/");
        assert_eq!(buf.line().as_bytes(), enc(b"\x00\xff\xfe+/").as_slice());
        assert_eq!(buf.line().as_bytes(), b"AP/+Ky8=");
    }

    #[test]
    fn random_round_trips() {
        let mut rng = Rng(0x5eed_ba5e_0064);
        for _ in 0..2000 {
            let len = rng.below(40) as usize;
            let input: std::vec::Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let coded = enc(&input);
            assert_eq!(dec(&coded).unwrap(), input, "seed state {:x}", rng.0);
        }
    }

    #[test]
    fn strict_rejects() {
        for bad in [
            &b"Zg="[..], // length not a multiple of 4
            b"Zg",       // unpadded
            b"Z===",     // too much padding
            b"Zg==Zg==", // padding in the middle
            b"Zh==",     // stray bits (h = 33: low bits set)
            b"Zm9=",     // stray bits in a one-pad group
            b"Zm9v\n",   // whitespace
            b"Zm 9",     // space
            b"Zm-_",     // URL alphabet
            b"=Zm9",     // padding first
            b"Zm=v",     // padding then data
            b"\xffm9v",  // non-ASCII
        ] {
            assert_eq!(
                dec(bad),
                Err(DecodeError::Invalid),
                "{:?}",
                std::string::String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = Rng(0xdead_beef_1234);
        let mut out = [0u8; 8];
        for _ in 0..20_000 {
            let len = rng.below(16) as usize;
            let input: std::vec::Vec<u8> =
                (0..len).map(|_| b"AZaz09+/=\x00x"[rng.below(11) as usize]).collect();
            // Any result is fine; it must not panic, and a success must re-encode to the input.
            if let Ok(n) = decode(&input, &mut out) {
                assert_eq!(enc(&out[..n]), input);
            }
        }
    }

    #[test]
    fn small_buffers() {
        let mut out = [0u8; 3];
        assert_eq!(encode(b"ab", &mut out), None);
        assert_eq!(decode(b"Zm9vYg==", &mut out), Err(DecodeError::NoRoom));
        assert_eq!(decode(b"Zm9v", &mut out), Ok(3));
    }
}
