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

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Fewer than `most` bytes, each one of `alphabet`.
    pub fn text(&mut self, alphabet: &[u8], most: u64) -> std::vec::Vec<u8> {
        (0..self.below(most)).map(|_| *self.pick(alphabet)).collect()
    }

    /// Fewer than `most` parts, each one of `pieces` or a random byte.
    pub fn mixture(&mut self, pieces: &[&[u8]], most: u64) -> std::vec::Vec<u8> {
        let mut out = std::vec::Vec::new();
        for _ in 0..self.below(most) {
            if self.below(2) == 0 {
                out.extend_from_slice(self.pick::<&[u8]>(pieces));
            } else {
                out.push(self.next() as u8);
            }
        }
        out
    }

    /// Damage `bytes` in one to `most` places: a random byte, one of
    /// `tricky` (bytes that mean something to the parser), or a flipped bit.
    #[cfg(feature = "etcd")] // only the etcd parsers are damaged so far
    pub fn damage(&mut self, bytes: &mut [u8], most: u64, tricky: &[u8]) {
        for _ in 0..=self.below(most) {
            let at = self.below(bytes.len() as u64) as usize;
            bytes[at] = match self.below(3) {
                0 => self.next() as u8,
                1 => *self.pick(tricky),
                _ => bytes[at] ^ (1 << self.below(8)),
            };
        }
    }
}

/// What `f` writes on a fresh line (room for 1024 bytes), as a string.
pub fn shown(f: impl FnOnce(&mut crate::text::Line)) -> std::string::String {
    let mut buf = crate::text::LineBuf::<1024>::new();
    f(buf.line());
    std::string::String::from_utf8(buf.as_bytes().to_vec()).unwrap()
}

/// 5 s from now on the boot clock: a deadline for a call that must not
/// hang a test (etcd's sockets).
#[cfg(feature = "etcd")]
pub fn far() -> u64 {
    crate::clock::boot_ns() + 5_000_000_000
}

/// A listener on a free loopback port, and the port (for etcd's sockets).
#[cfg(feature = "etcd")]
pub fn listener() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}
