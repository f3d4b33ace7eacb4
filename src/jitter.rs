//! `--jitter DURATION`: sleep a random time between 0 and DURATION before
//! trying the lock, so that a fleet whose cron starts the same job at the
//! same second does not hit one NFS server or etcd cluster all at once.
//! It replaces the cron recipe `sleep $((RANDOM % 60)); ...`, which only
//! bash can run and which a shell's seeding makes alike across hosts.
//!
//! The sleep comes first, before LOCK is even looked at: nothing is held
//! while it lasts. Signals keep their default effect: a SIGTERM ends a
//! sleeping withlock, which has done nothing yet.
//!
//! The random number comes from the kernel, so it differs per run and per
//! host: `getrandom(2)` without blocking, else (a kernel older than 3.17, or
//! a pool not yet initialized early at boot) the 16 bytes the kernel gives
//! each new program (`AT_RANDOM`), else the clocks. No crate, no file.

use crate::{clock, sys, text};
use core::time::Duration;

/// Sleep for a random time in `[0, most]`; with `verbose`, say how long.
#[cold]
#[inline(never)]
pub fn sleep(most: Duration, verbose: bool) {
    // To the millisecond: finer says nothing in a log or to a cron fleet.
    let chosen = Duration::from_millis(pick(random(), clock::nanos(most)) / 1_000_000);
    if verbose {
        let mut buf = text::diagnostic();
        let line = buf.line();
        line.push(b"--jitter: sleeping ").push_duration(chosen).push(b" (at most ");
        line.push_duration(most).push(b") before trying the lock");
        line.emit();
    }
    sys::sleep(chosen);
}

/// A number in `[0, most]` from 64 random bits, without modulo bias worth
/// the name (the high half of a 128-bit product, as in Lemire's method).
fn pick(random: u64, most: u64) -> u64 {
    ((u128::from(random) * (u128::from(most) + 1)) >> 64) as u64
}

/// 64 random bits from the kernel (see the module docs).
fn random() -> u64 {
    let mut bytes = [0u8; 8];
    if sys::getrandom(&mut bytes) {
        return u64::from_ne_bytes(bytes);
    }
    if let Some(auxiliary) = at_random() {
        return auxiliary;
    }
    // No kernel randomness at all: the clocks, as a last resort (they still
    // differ between hosts and runs, if less surely).
    let pid = sys::getpid() as u64;
    mix(clock::boot_ns() ^ (clock::unix_now() << 32) ^ pid.rotate_left(17))
}

/// The second half of the 16 random bytes the kernel put in this program's
/// auxiliary vector (the first half seeds the C library's stack canary, so
/// it is left alone).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn at_random() -> Option<u64> {
    // The kernel's address of 16 bytes that live as long as the process.
    let at = sys::getauxval(libc::AT_RANDOM).filter(|&at| at != 0)? as *const u8;
    let mut half = [0u8; 8];
    // SAFETY: `at` points to 16 readable bytes (see above); any alignment.
    unsafe { core::ptr::copy_nonoverlapping(at.add(8), half.as_mut_ptr(), 8) };
    Some(mix(u64::from_ne_bytes(half)))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn at_random() -> Option<u64> {
    None
}

/// splitmix64's finalizer: every input bit reaches every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_stay_in_range_and_reach_both_ends() {
        assert_eq!(pick(0, 1000), 0);
        assert_eq!(pick(u64::MAX, 1000), 1000);
        assert_eq!(pick(u64::MAX, 0), 0);
        assert_eq!(pick(u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(pick(1 << 63, 10), 5);
        let mut x = 0x1234_5678_u64;
        for _ in 0..10_000 {
            x = mix(x.wrapping_add(0x9e37_79b9_7f4a_7c15));
            assert!(pick(x, 59_999_999_999) <= 59_999_999_999);
        }
    }

    /// Over many picks, each tenth of the range gets about a tenth.
    #[test]
    fn picks_spread_evenly() {
        let mut counts = [0u32; 10];
        for _ in 0..20_000 {
            counts[(pick(random(), 999) / 100) as usize] += 1;
        }
        for (tenth, &n) in counts.iter().enumerate() {
            assert!((1600..2400).contains(&n), "tenth {tenth}: {n} of 20000 ({counts:?})");
        }
    }

    #[test]
    fn every_source_gives_different_numbers() {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        assert!(sys::getrandom(&mut a) && sys::getrandom(&mut b));
        assert_ne!(a, b, "getrandom gave the same 8 bytes twice");
        // AT_RANDOM is fixed for the process; it must be there and not zero.
        assert!(at_random().is_some_and(|n| n != mix(0)));
    }
}
