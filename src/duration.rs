//! The `-w DURATION` syntax: "10", "0.5", ".5", "250ms", "5m", "1.5h", and
//! "forever" (or "inf") to wait without limit.
//!
//! Hand-rolled because it is small and must be exact: a bare number is
//! seconds, a fraction is kept to the nanosecond (rounded up, so that only
//! a zero is zero), and anything else (signs,
//! exponents, spaces, unknown units, absurd lengths) is rejected rather than
//! guessed at, so a typo in a crontab fails loudly instead of waiting forever
//! or not at all.

use core::time::Duration;

/// How long to wait for a busy lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Give up at once (no `-w`, or `-w 0`).
    No,
    /// Wait at most this long.
    For(Duration),
    /// Wait without limit (`-w forever`).
    Forever,
}

/// The longest finite wait accepted: 100 years. Longer is surely a mistake
/// (and `forever` says what is meant).
pub const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parse the argument of `-w`.
pub fn parse_wait(text: &[u8]) -> Option<Wait> {
    match text {
        b"forever" | b"inf" | b"infinity" => Some(Wait::Forever),
        _ => match parse(text)? {
            d if d.is_zero() => Some(Wait::No),
            d => Some(Wait::For(d)),
        },
    }
}

/// Parse a finite duration: digits with an optional fraction, then an
/// optional unit (`ms`, `s`, `m`, `h`; none means seconds).
pub fn parse(text: &[u8]) -> Option<Duration> {
    let number_len = text.iter().take_while(|b| b.is_ascii_digit() || **b == b'.').count();
    let (number, unit) = text.split_at(number_len);
    let nanos_per_unit: u64 = match unit {
        b"" | b"s" => 1_000_000_000,
        b"ms" => 1_000_000,
        b"m" => 60 * 1_000_000_000,
        b"h" => 3600 * 1_000_000_000,
        _ => return None,
    };

    let (whole, fraction) = match number.iter().position(|&b| b == b'.') {
        Some(dot) => (&number[..dot], &number[dot + 1..]),
        None => (number, &b""[..]),
    };
    // At least one digit, and at most one dot.
    if whole.is_empty() && fraction.is_empty() || fraction.contains(&b'.') {
        return None;
    }

    // Nanoseconds in a u64 (MAX is 3.2e18 of them): no u128, whose arithmetic
    // is a library call on 32-bit targets (2 KB there). Any overflow is far
    // beyond MAX, and refused.
    let mut total: u64 = 0;
    for &digit in whole {
        total = total.checked_mul(10)?.checked_add(u64::from(digit - b'0'))?;
    }
    total = total.checked_mul(nanos_per_unit)?;

    // The fraction, exactly, last digit first: each step is the value of the
    // digits from there on, in nanoseconds, rounded up. Rounding up at every
    // step gives the exact value rounded up (ceil((a + ceil(x)) / 10) is
    // ceil((a + x) / 10) for a whole a), so any part of a nanosecond rounds
    // up, and a duration that is not zero never becomes zero (`-w
    // 0.0000000001` waits, if briefly). Every step is at most one unit.
    let mut part = 0;
    for &digit in fraction.iter().rev() {
        part = (u64::from(digit - b'0') * nanos_per_unit + part).div_ceil(10);
    }
    let duration = Duration::from_nanos(total.checked_add(part)?);
    (duration <= MAX).then_some(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;
    use std::format;

    fn secs(s: f64) -> Option<Duration> {
        Some(Duration::from_secs_f64(s))
    }

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse(b"10"), secs(10.0));
        assert_eq!(parse(b"0.5"), secs(0.5));
        assert_eq!(parse(b".5"), secs(0.5));
        assert_eq!(parse(b"5."), secs(5.0));
        assert_eq!(parse(b"250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse(b"1.5ms"), Some(Duration::from_micros(1500)));
        assert_eq!(parse(b"5m"), secs(300.0));
        assert_eq!(parse(b"1.5h"), secs(5400.0));
        assert_eq!(parse(b"2s"), secs(2.0));
        assert_eq!(parse(b"0.000000001"), Some(Duration::from_nanos(1)));
        assert_eq!(parse(b"0.0000000019"), Some(Duration::from_nanos(2)));
        assert_eq!(parse(b"0.0000000001"), Some(Duration::from_nanos(1)));
        assert_eq!(parse(b"0.0000000000000000000000001ms"), Some(Duration::from_nanos(1)));
        assert_eq!(parse(b"0.000000000000000000"), Some(Duration::ZERO));
        // Beyond 18 digits, in the largest unit: still exact, rounded up.
        assert_eq!(parse(b"0.00000000000000000001h"), Some(Duration::from_nanos(1)));
        assert_eq!(parse(b"0.333333333333333333333333h"), Some(Duration::from_secs(1200)));
        assert_eq!(parse(b"0.0000000000000000000000000001m"), Some(Duration::from_nanos(1)));
        assert_eq!(parse(b"0.5m"), secs(30.0));
        assert_eq!(parse(b"007"), secs(7.0));
    }

    #[test]
    fn wait_forms() {
        assert_eq!(parse_wait(b"0"), Some(Wait::No));
        assert_eq!(parse_wait(b"0.0ms"), Some(Wait::No));
        assert_eq!(parse_wait(b"0.0000000001"), Some(Wait::For(Duration::from_nanos(1))));
        assert_eq!(parse_wait(b"forever"), Some(Wait::Forever));
        assert_eq!(parse_wait(b"inf"), Some(Wait::Forever));
        assert_eq!(parse_wait(b"3"), Some(Wait::For(Duration::from_secs(3))));
        assert_eq!(parse_wait(b"Forever"), None);
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            &b""[..],
            b".",
            b"-1",
            b"+1",
            b"1e3",
            b"5x",
            b"abc",
            b"1..2",
            b"1.2.3",
            b" 1",
            b"1 ",
            b"1s5",
            b"ms",
            b"s",
            b"1S",
            b"1sec",
            b"1d",
            b"0x10",
            b"1_000",
            b"\xff",
            b"1\0",
        ] {
            assert_eq!(
                parse(bad),
                None,
                "{:?} should be rejected",
                std::string::String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn rejects_absurd_lengths_without_overflow() {
        assert_eq!(parse(b"3153600000"), Some(MAX));
        assert_eq!(parse(b"3153600001"), None);
        assert_eq!(parse(b"876000h"), Some(MAX));
        assert_eq!(parse(b"876001h"), None);
        assert_eq!(parse(b"99999999999999999999999999999999999999999999"), None);
        assert_eq!(parse(b"1.99999999999999999999999999999999999999999999999999"), Some(Duration::new(2, 0)));
        assert_eq!(parse(b"3153600000.000000001"), None);
    }

    /// Random well-formed durations agree with an independent computation.
    #[test]
    fn randomized_well_formed_durations() {
        let seed = 0x5eed_d00d_u64;
        let mut rng = Rng(seed);
        for _ in 0..20_000 {
            let whole = rng.below(1_000_000);
            let frac_digits = rng.below(10) as usize;
            let frac: u64 = rng.below(10u64.pow(frac_digits as u32).max(1));
            let (unit, unit_nanos): (&str, u128) = [
                ("", 1_000_000_000),
                ("s", 1_000_000_000),
                ("ms", 1_000_000),
                ("m", 60_000_000_000),
                ("h", 3_600_000_000_000),
            ][rng.below(5) as usize];
            let text = if frac_digits == 0 {
                format!("{whole}{unit}")
            } else {
                format!("{whole}.{frac:0width$}{unit}", width = frac_digits)
            };
            // Exactly, rounded up to a whole nanosecond.
            let expected_nanos = u128::from(whole) * unit_nanos
                + (u128::from(frac) * unit_nanos).div_ceil(10u128.pow(frac_digits as u32));
            if expected_nanos > MAX.as_nanos() {
                assert_eq!(parse(text.as_bytes()), None, "seed {seed:#x}: {text:?} is beyond MAX");
                continue;
            }
            let got = parse(text.as_bytes()).unwrap_or_else(|| panic!("seed {seed:#x}: {text:?} rejected"));
            assert_eq!(got.as_nanos(), expected_nanos, "seed {seed:#x}: {text:?}");
        }
    }

    /// Random byte strings never panic, and anything accepted is well formed.
    #[test]
    fn randomized_malformed_input_never_panics() {
        let seed = 0xbad_5eed_u64;
        let mut rng = Rng(seed);
        let alphabet = b"0123456789.smh -+exyz\xff\0";
        for _ in 0..50_000 {
            let text = rng.text(alphabet, 12);
            if let Some(d) = parse(&text) {
                assert!(d <= MAX);
                let digits_end =
                    text.iter().position(|b| !b.is_ascii_digit() && *b != b'.').unwrap_or(text.len());
                let unit = &text[digits_end..];
                assert!(
                    matches!(unit, b"" | b"s" | b"ms" | b"m" | b"h"),
                    "seed {seed:#x}: accepted {text:?}"
                );
                assert!(text[..digits_end].iter().filter(|b| **b == b'.').count() <= 1);
            }
        }
    }
}
