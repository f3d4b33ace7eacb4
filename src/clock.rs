//! The two clocks a holder record needs, and how their readings are shown.
//!
//! `CLOCK_REALTIME` says when a holder started, for people ("since
//! 2026-11-26T02:00:01Z, 3h 2m ago"). `CLOCK_BOOTTIME` proves which process
//! that was: a process that had the recorded pid at the recorded boot time,
//! and that started no later, is the writer (two live processes never share
//! a pid), whereas one that reused the pid afterwards started later. Both are
//! read with the raw system call ([`sys::clock_now`]), not through the
//! vDSO (mapping the vDSO's data costs a process two page faults, more
//! than the one system call), with 64-bit seconds on every target.

use crate::sys;
use crate::text::Line;
use core::time::Duration;

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    u64::try_from(sys::clock_now(libc::CLOCK_REALTIME).secs).unwrap_or(0)
}

/// Nanoseconds since boot, counting suspended time, the clock of
/// `/proc/PID/stat`'s start times.
pub fn boot_ns() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let ts = sys::clock_now(libc::CLOCK_BOOTTIME);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let ts = sys::clock_now(libc::CLOCK_MONOTONIC);
    let secs = u64::try_from(ts.secs).unwrap_or(0);
    secs * 1_000_000_000 + u64::try_from(ts.nanos).unwrap_or(0)
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian),
/// after Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `d` in nanoseconds, the longest durations capped at `u64::MAX`.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Append `secs` since the epoch as RFC 3339 UTC: `2026-11-26T02:00:01Z`.
pub fn push_rfc3339(line: &mut Line, secs: u64) {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (year, month, day) = civil_from_days(days);
    let of_day = secs % 86_400;
    let two = |line: &mut Line, n: u64| {
        line.push(&[b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]);
    };
    line.push_u64(u64::try_from(year).unwrap_or(0));
    line.push(b"-");
    two(line, u64::from(month));
    line.push(b"-");
    two(line, u64::from(day));
    line.push(b"T");
    two(line, of_day / 3600);
    line.push(b":");
    two(line, of_day / 60 % 60);
    line.push(b":");
    two(line, of_day % 60);
    line.push(b"Z");
}

/// Append a time withlock measured (not one the user gave, which
/// `Line::push_duration` echoes exactly), `ns` nanoseconds: to the
/// millisecond under a minute ("0.012s", "59.5s"), above as an age ("2m 3s").
pub fn push_measured(line: &mut Line, ns: u64) {
    if ns < 60_000_000_000 {
        line.push_duration(Duration::from_millis(ns / 1_000_000));
    } else {
        push_age(line, ns / 1_000_000_000);
    }
}

/// Append an age the way people say it: "45s", "3m 12s", "3h 2m", "2d 4h".
pub fn push_age(line: &mut Line, secs: u64) {
    let (big, big_unit, small, small_unit): (u64, &[u8], u64, &[u8]) = match secs {
        0..60 => (secs, b"s", 0, b""),
        60..3600 => (secs / 60, b"m", secs % 60, b"s"),
        3600..86_400 => (secs / 3600, b"h", secs / 60 % 60, b"m"),
        _ => (secs / 86_400, b"d", secs / 3600 % 24, b"h"),
    };
    line.push_u64(big).push(big_unit);
    if !small_unit.is_empty() && small != 0 {
        line.push(b" ").push_u64(small).push(small_unit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::shown;

    fn rfc3339(secs: u64) -> std::string::String {
        shown(|line| push_rfc3339(line, secs))
    }

    fn age(secs: u64) -> std::string::String {
        shown(|line| push_age(line, secs))
    }

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_658_401), "2026-11-26T02:00:01Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
    }

    /// Every day for 400 years (a whole Gregorian cycle) follows the one before.
    #[test]
    fn days_follow_each_other_for_a_whole_cycle() {
        let mut previous = civil_from_days(-1);
        for days in 0..146_097 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let next_day = y == py && m == pm && d == pd + 1;
            let next_month = y == py && m == pm + 1 && d == 1 && pd >= 28;
            let next_year = y == py + 1 && m == 1 && d == 1 && pm == 12 && pd == 31;
            assert!(next_day || next_month || next_year, "{previous:?} -> {:?}", (y, m, d));
            previous = (y, m, d);
        }
    }

    #[test]
    fn ages() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(59), "59s");
        assert_eq!(age(60), "1m");
        assert_eq!(age(192), "3m 12s");
        assert_eq!(age(3 * 3600 + 2 * 60 + 5), "3h 2m");
        assert_eq!(age(2 * 86_400 + 4 * 3600), "2d 4h");
    }
}
