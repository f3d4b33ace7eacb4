//! Helpers for the unit tests (compiled only for them).

/// A small xorshift generator: seeded, so a randomized test's failure can be
/// replayed from the seed it prints.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Damage `bytes` in one to `most` places: a random byte, one of
    /// `tricky` (bytes that mean something to the parser), or a flipped bit.
    #[cfg(feature = "etcd")] // only the etcd parsers are damaged so far
    pub fn damage(&mut self, bytes: &mut [u8], most: u64, tricky: &[u8]) {
        for _ in 0..=self.below(most) {
            let at = self.below(bytes.len() as u64) as usize;
            bytes[at] = match self.below(3) {
                0 => self.next() as u8,
                1 => tricky[self.below(tricky.len() as u64) as usize],
                _ => bytes[at] ^ (1 << self.below(8)),
            };
        }
    }
}
