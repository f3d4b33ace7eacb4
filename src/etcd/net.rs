//! TCP connections on `sys`'s sockets, every step bounded by a deadline.
//!
//! The etcd client needs a few plain TCP connections and must never hang on
//! one: an endpoint that does not answer has to become a clear error in
//! bounded time (`etcdctl lock` waits forever). So every socket is
//! non-blocking and close-on-exec, and connect, send and receive wait with
//! `poll(2)` until an absolute deadline, in nanoseconds on
//! [`crate::clock::boot_ns`] (`u64::MAX`: no deadline).
//!
//! Hosts are IP literals (`127.0.0.1`, `::1`) and `localhost` only:
//! resolving names would pull musl's DNS resolver into the static binary
//! (measured: `getaddrinfo` adds 24.5 KB, 62.5 KB to 87 KB, far past the
//! 64 KB goal), and a lock service is better named by address anyway, so
//! that a DNS outage cannot hide it.

use crate::clock;
use crate::sys::{self, Errno, Fd};
use core::ffi::c_int;
use core::mem::size_of;

/// An IP address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ip {
    V4([u8; 4]),
    V6([u8; 16]),
}

/// Where to connect: an address, or `localhost` (IPv4's loopback, then
/// IPv6's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    Ip(Ip),
    Localhost,
}

/// Why a connection, a send or a receive failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The deadline passed first.
    Timeout,
    /// A system call failed (`ECONNREFUSED`, `ECONNRESET`, ...).
    Io(Errno),
}

/// `host` as written in an address, without brackets: an IPv4 or IPv6
/// literal, or `localhost` (any case). Anything else is `None`.
pub fn parse_host(host: &[u8]) -> Option<Host> {
    if host.eq_ignore_ascii_case(b"localhost") {
        return Some(Host::Localhost);
    }
    if let Some(v4) = parse_ipv4(host) {
        return Some(Host::Ip(Ip::V4(v4)));
    }
    parse_ipv6(host).map(|v6| Host::Ip(Ip::V6(v6)))
}

/// Whether `host` is this machine: 127.0.0.0/8, `::1`, an IPv4-mapped
/// 127.x address, or `localhost`. Plain HTTP to anything else crosses a
/// network.
pub fn is_loopback(host: &Host) -> bool {
    match host {
        Host::Localhost => true,
        Host::Ip(Ip::V4(a)) => a[0] == 127,
        Host::Ip(Ip::V6(a)) => {
            let mapped = a[..10] == [0; 10] && a[10..12] == [0xff, 0xff];
            *a == core::array::from_fn(|i| u8::from(i == 15)) || (mapped && a[12] == 127)
        }
    }
}

/// A decimal byte with no leading zero (`010` could mean octal elsewhere).
fn octet(part: &[u8]) -> Option<u8> {
    if part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
        return None;
    }
    u8::try_from(crate::text::parse_u64(part)?).ok()
}

/// A dotted quad, strictly: four decimal parts, 0-255, no leading zeros.
pub fn parse_ipv4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut parts = s.split(|&b| b == b'.');
    for slot in &mut out {
        *slot = octet(parts.next()?)?;
    }
    parts.next().is_none().then_some(out)
}

/// An IPv6 address as RFC 4291 writes it: eight groups of 1-4 hex digits,
/// one `::` for a run of zero groups, optionally an IPv4 tail. No zone
/// (`%eth0`): a lock service is not reached by a link-local address.
pub fn parse_ipv6(s: &[u8]) -> Option<[u8; 16]> {
    let mut groups = [0u16; 8];
    let mut count = 0; // groups written
    let mut gap = None; // where `::` stands, in groups
    let mut rest = s;
    if let Some(after) = rest.strip_prefix(b"::") {
        gap = Some(0);
        rest = after;
    }
    while !rest.is_empty() {
        // An IPv4 tail takes the last two groups.
        if count <= 6 && rest.contains(&b'.') && !rest.contains(&b':') {
            let v4 = parse_ipv4(rest)?;
            groups[count] = u16::from_be_bytes([v4[0], v4[1]]);
            groups[count + 1] = u16::from_be_bytes([v4[2], v4[3]]);
            count += 2;
            break;
        }
        let end = rest.iter().position(|&b| b == b':').unwrap_or(rest.len());
        let digits = &rest[..end];
        if digits.is_empty() || digits.len() > 4 || count == 8 {
            return None;
        }
        let mut group = 0u16;
        for &d in digits {
            group = group * 16 + char::from(d).to_digit(16)? as u16;
        }
        groups[count] = group;
        count += 1;
        rest = &rest[end..];
        if let Some(after) = rest.strip_prefix(b"::") {
            if gap.is_some() {
                return None;
            }
            gap = Some(count);
            rest = after;
        } else if let Some(after) = rest.strip_prefix(b":") {
            if after.is_empty() {
                return None; // a trailing single colon
            }
            rest = after;
        }
    }
    match gap {
        // `::` stands for at least one zero group.
        Some(at) if count < 8 => {
            let tail = count - at;
            groups.copy_within(at..count, 8 - tail);
            groups[at..8 - tail].fill(0);
        }
        None if count == 8 => {}
        _ => return None,
    }
    let mut out = [0u8; 16];
    for (dst, group) in out.chunks_exact_mut(2).zip(groups) {
        dst.copy_from_slice(&group.to_be_bytes());
    }
    Some(out)
}

/// Wait until `fd` is ready for `events` or the deadline passes.
pub fn wait(fd: c_int, events: libc::c_short, deadline: u64) -> Result<(), Error> {
    loop {
        let now = clock::boot_ns();
        if now >= deadline {
            return Err(Error::Timeout);
        }
        let timeout = if deadline == u64::MAX {
            -1
        } else {
            // Round up, so that the deadline has passed when poll times out.
            c_int::try_from((deadline - now).div_ceil(1_000_000)).unwrap_or(c_int::MAX)
        };
        match sys::poll(&mut [libc::pollfd { fd, events, revents: 0 }], timeout) {
            // Ready, or an error or hang-up that the next call will report.
            Ok(1..) => return Ok(()),
            Ok(0) | Err(Errno(libc::EINTR)) => {}
            Err(errno) => return Err(Error::Io(errno)),
        }
    }
}

/// A connected TCP socket (non-blocking, close-on-exec), closed on drop.
#[derive(Debug)]
pub struct Conn {
    fd: Fd,
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const SEND_FLAGS: c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const SEND_FLAGS: c_int = 0;

/// Connect to `ip:port`, waiting no later than `deadline`.
fn connect_ip(ip: &Ip, port: u16, deadline: u64) -> Result<Conn, Error> {
    // SAFETY: all-zero is a valid sockaddr_storage, sockaddr_in and sockaddr_in6.
    let mut storage: libc::sockaddr_storage = unsafe { core::mem::zeroed() };
    let (family, len) = match ip {
        Ip::V4(octets) => {
            // SAFETY: as above.
            let mut sa: libc::sockaddr_in = unsafe { core::mem::zeroed() };
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_port = port.to_be();
            sa.sin_addr.s_addr = u32::from_ne_bytes(*octets);
            #[cfg(any(target_os = "macos", target_os = "freebsd"))]
            {
                sa.sin_len = size_of::<libc::sockaddr_in>() as u8;
            }
            // SAFETY: sockaddr_storage is larger than, and aligned for, any sockaddr.
            unsafe { core::ptr::write((&raw mut storage).cast(), sa) };
            (libc::AF_INET, size_of::<libc::sockaddr_in>())
        }
        Ip::V6(octets) => {
            // SAFETY: as above.
            let mut sa: libc::sockaddr_in6 = unsafe { core::mem::zeroed() };
            sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sa.sin6_port = port.to_be();
            sa.sin6_addr.s6_addr = *octets;
            #[cfg(any(target_os = "macos", target_os = "freebsd"))]
            {
                sa.sin6_len = size_of::<libc::sockaddr_in6>() as u8;
            }
            // SAFETY: sockaddr_storage is larger than, and aligned for, any sockaddr.
            unsafe { core::ptr::write((&raw mut storage).cast(), sa) };
            (libc::AF_INET6, size_of::<libc::sockaddr_in6>())
        }
    };
    // Non-blocking: connecting is waited for below, by the deadline.
    let fd = sys::socket(family, libc::SOCK_STREAM, true).map_err(Error::Io)?;
    // Requests are written whole; do not let Nagle hold back a large one's tail.
    let _ = sys::set_socket_option(&fd, libc::IPPROTO_TCP, libc::TCP_NODELAY);
    match sys::connect(&fd, &storage, len) {
        Ok(()) => {}
        // In progress (or interrupted, when it goes on in the background).
        Err(Errno(libc::EINPROGRESS | libc::EINTR)) => {
            wait(fd.raw(), libc::POLLOUT, deadline)?;
            if let Some(error) = sys::socket_error(&fd).map_err(Error::Io)? {
                return Err(Error::Io(error));
            }
        }
        Err(errno) => return Err(Error::Io(errno)),
    }
    Ok(Conn { fd })
}

/// Connect to `host:port`, waiting no later than `deadline`. `localhost`
/// tries 127.0.0.1, then ::1 if that fails before the deadline.
pub fn connect(host: &Host, port: u16, deadline: u64) -> Result<Conn, Error> {
    match host {
        Host::Ip(ip) => connect_ip(ip, port, deadline),
        Host::Localhost => connect_ip(&Ip::V4([127, 0, 0, 1]), port, deadline).or_else(|e| match e {
            Error::Timeout => Err(e),
            Error::Io(_) => {
                let ipv6_loopback = core::array::from_fn(|i| u8::from(i == 15));
                connect_ip(&Ip::V6(ipv6_loopback), port, deadline).map_err(|_| e)
            }
        }),
    }
}

impl Conn {
    /// The descriptor, for the caller's own `poll`.
    pub fn raw(&self) -> c_int {
        self.fd.raw()
    }

    /// Send all of `parts`, in order, as one stream of bytes (one system
    /// call in the usual case), waiting no later than `deadline`.
    pub fn send_all(&self, parts: &[&[u8]], deadline: u64) -> Result<(), Error> {
        const MAX_PARTS: usize = 4;
        assert!(parts.len() <= MAX_PARTS);
        let mut sent = 0; // bytes of `parts` already sent
        loop {
            // The iovecs for what is still to send.
            let mut iov = [libc::iovec { iov_base: core::ptr::null_mut(), iov_len: 0 }; MAX_PARTS];
            let mut count = 0;
            let mut skip = sent;
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                let rest = &part[skip..];
                skip = 0;
                iov[count] = libc::iovec { iov_base: rest.as_ptr().cast_mut().cast(), iov_len: rest.len() };
                count += 1;
            }
            if count == 0 {
                return Ok(());
            }
            // The iovecs are over live slices of `parts`.
            match sys::sendmsg(&self.fd, &mut iov[..count], SEND_FLAGS) {
                Ok(n) => sent += n,
                Err(Errno(libc::EAGAIN)) => wait(self.fd.raw(), libc::POLLOUT, deadline)?,
                Err(errno) => return Err(Error::Io(errno)),
            }
        }
    }

    /// Receive what has arrived into `buf` (at least one byte), waiting no
    /// later than `deadline`; `Ok(0)` when the peer has closed (or `buf` is
    /// empty).
    pub fn recv(&self, buf: &mut [u8], deadline: u64) -> Result<usize, Error> {
        loop {
            match sys::recv(&self.fd, buf) {
                Ok(n) => return Ok(n),
                Err(Errno(libc::EAGAIN)) => wait(self.fd.raw(), libc::POLLIN, deadline)?,
                Err(errno) => return Err(Error::Io(errno)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn v6(s: &str) -> Option<[u8; 16]> {
        parse_ipv6(s.as_bytes())
    }

    fn v6_of(s: &str) -> [u8; 16] {
        s.parse::<std::net::Ipv6Addr>().unwrap().octets()
    }

    #[test]
    fn ipv4_literals() {
        assert_eq!(parse_ipv4(b"127.0.0.1"), Some([127, 0, 0, 1]));
        assert_eq!(parse_ipv4(b"255.255.255.255"), Some([255; 4]));
        assert_eq!(parse_ipv4(b"0.0.0.0"), Some([0; 4]));
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "01.2.3.4",
            "1..2.3",
            "1.2.3.4.",
            " 1.2.3.4",
            "1.2.3.-4",
            "0x1.2.3.4",
            "1.2.3.0004",
        ] {
            assert_eq!(parse_ipv4(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn ipv6_literals() {
        for good in [
            "::1",
            "::",
            "1::",
            "fe80::1:2",
            "2001:db8::8a2e:370:7334",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "::ffff:127.0.0.1",
            "64:ff9b::192.0.2.33",
            "1:2:3:4:5:6:1.2.3.4",
            "ABCD:ef01::",
        ] {
            assert_eq!(v6(good), Some(v6_of(good)), "{good}");
        }
        for bad in [
            "",
            ":",
            ":::",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7",
            "1::2::3",
            "12345::",
            ":1::",
            "1::2:",
            "1:",
            "::1%lo",
            "[::1]",
            "g::",
            "1:2:3:4:5:6:7:8::",
            "::1.2.3",
            "1.2.3.4::",
            "::ffff:1.2.3.4:1",
            "1:2:3:4:5:6:7:1.2.3.4",
        ] {
            assert_eq!(v6(bad), None, "{bad}");
        }
    }

    #[test]
    fn loopback() {
        let lo = |s: &str| is_loopback(&parse_host(s.as_bytes()).unwrap());
        assert!(lo("127.0.0.1") && lo("127.1.2.3") && lo("::1") && lo("localhost") && lo("LocalHost"));
        assert!(lo("::ffff:127.0.0.1"));
        assert!(!lo("10.0.0.1") && !lo("::") && !lo("::2") && !lo("0.0.0.0") && !lo("::ffff:10.0.0.1"));
        assert_eq!(parse_host(b"etcd.example"), None);
    }

    use crate::testing::far;

    #[test]
    fn talks_to_a_loopback_listener() {
        let (listener, port) = crate::testing::listener();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = [0u8; 11];
            s.read_exact(&mut got).unwrap();
            s.write_all(b"reply").unwrap();
            got
        });
        let conn = connect(&Host::Localhost, port, far()).unwrap();
        // SAFETY: fcntl F_GETFD takes plain integers.
        let flags = unsafe { libc::fcntl(conn.raw(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        conn.send_all(&[b"hello", b"", b" world"], far()).unwrap();
        let mut buf = [0u8; 16];
        let mut got = 0;
        while got < 5 {
            got += conn.recv(&mut buf[got..], far()).unwrap();
        }
        assert_eq!(&buf[..5], b"reply");
        assert_eq!(&server.join().unwrap(), b"hello world");
        assert_eq!(conn.recv(&mut buf, far()), Ok(0)); // closed
    }

    #[test]
    fn deadlines_and_refusals() {
        let (listener, port) = crate::testing::listener();
        let conn = connect(&Host::Ip(Ip::V4([127, 0, 0, 1])), port, far()).unwrap();
        let start = clock::boot_ns();
        let mut buf = [0u8; 4];
        assert_eq!(conn.recv(&mut buf, start + 50_000_000), Err(Error::Timeout));
        let waited = clock::boot_ns() - start;
        assert!((50_000_000..2_000_000_000).contains(&waited), "{waited}");
        // A deadline already passed: no wait at all.
        assert_eq!(conn.recv(&mut buf, 0), Err(Error::Timeout));
        drop(listener);
        let refused = connect(&Host::Ip(Ip::V4([127, 0, 0, 1])), port, far());
        assert_eq!(refused.unwrap_err(), Error::Io(Errno(libc::ECONNREFUSED)));
    }

    #[test]
    fn a_big_send_waits_for_room() {
        let (listener, port) = crate::testing::listener();
        let conn = connect(&Host::Localhost, port, far()).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let big = std::vec![7u8; 8 << 20];
        let reader = std::thread::spawn(move || {
            let mut all = std::vec::Vec::new();
            peer.read_to_end(&mut all).unwrap();
            all.len()
        });
        conn.send_all(&[&big[..3], &big[3..]], far()).unwrap();
        drop(conn);
        assert_eq!(reader.join().unwrap(), 8 << 20);
        // Nobody reads: a send into a full socket times out.
        let conn = connect(&Host::Localhost, port, far()).unwrap();
        let _peer = listener.accept().unwrap();
        let timed = conn.send_all(&[&big, &big], clock::boot_ns() + 100_000_000);
        assert_eq!(timed, Err(Error::Timeout));
    }
}
