//! Locks kept in etcd (the optional part `etcd`): the lock address and the
//! wire's errors here; below, one module each for the sockets ([`net`]),
//! HTTP/1.1 ([`http`]), reading JSON ([`jsonread`]), [`base64`], the calls
//! to etcd's v3 JSON gateway ([`client`]), the [`watchdog`] that keeps the
//! lease, and the run of a job under an etcd lock ([`session`]).
//!
//! A lock on several hosts must live in a service they share and must
//! vanish when its holder dies or is cut off, as a kernel lock does. etcd
//! does that with a key under a lease; this module speaks to it over plain
//! HTTP/1.1 and JSON (its grpc-gateway), which needs nothing but sockets,
//! and writes exactly the keys `etcdctl lock NAME` writes, so the two
//! exclude each other. It is the wire layer only: what to run, when to give
//! up and what to tell the user belong to the caller.
//!
//! A lock address is `etcd://HOST[:PORT][,HOST[:PORT]...]/NAME`, parsed
//! here without copying: HOST is an IPv4 address, an IPv6 address in
//! brackets (`[::1]:2379`) or `localhost` (see [`crate::etcd::net`] for why not
//! names); PORT defaults to 2379.

mod base64;
pub mod client;
pub mod http;
pub mod jsonread;
pub mod net;
pub mod session;
pub mod watchdog;

use crate::text::{Line, LineBuf};

/// The most endpoints an address may list.
pub const MAX_ENDPOINTS: usize = 8;
/// The longest lock NAME, in bytes.
pub const NAME_MAX: usize = 256;
/// The longest key we handle (a lock key is NAME, `/` and 16 hex digits).
pub const KEY_MAX: usize = 512;
/// etcd's client port, when an endpoint names none.
pub const DEFAULT_PORT: u16 = 2379;

/// The scheme that marks an etcd lock address.
pub const SCHEME: &[u8] = b"etcd://";

/// One etcd endpoint of an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// As the user wrote it (`127.0.0.1:2379`, `[::1]:2379`, `localhost`):
    /// for messages, and the HTTP `Host` header.
    pub text: &'a [u8],
    pub host: net::Host,
    pub port: u16,
}

/// A parsed `etcd://` lock address, borrowing the argument.
#[derive(Clone, Copy, Debug)]
pub struct Address<'a> {
    endpoints: [Endpoint<'a>; MAX_ENDPOINTS],
    count: usize,
    /// The lock's name: the path without its leading `/`.
    pub name: &'a [u8],
}

impl<'a> Address<'a> {
    pub fn endpoints(&self) -> &[Endpoint<'a>] {
        &self.endpoints[..self.count]
    }

    #[cfg(test)]
    /// Whether every endpoint is this machine (plain HTTP to any other
    /// crosses a network).
    pub fn all_loopback(&self) -> bool {
        self.endpoints().iter().all(|e| net::is_loopback(&e.host))
    }
}

/// Why an address was refused: what is wrong, and the part at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressError<'a> {
    pub problem: &'static str,
    pub culprit: &'a [u8],
}

/// Whether `arg` is meant as an etcd address (it may still be invalid).
pub fn is_address(arg: &[u8]) -> bool {
    crate::cli::is_etcd(arg)
}

/// Parse `etcd://HOST[:PORT][,HOST[:PORT]...]/NAME`.
///
/// NAME is one or more parts separated by single `/`, each made of
/// letters, digits and `-._~:@+=,`, none of them `.` or `..`; at most
/// [`NAME_MAX`] bytes. No user information, query, fragment or
/// percent-escapes.
pub fn parse_address(arg: &[u8]) -> Result<Address<'_>, AddressError<'_>> {
    let fail = |problem, culprit| Err(AddressError { problem, culprit });
    if !is_address(arg) {
        return fail("an etcd lock address starts with etcd://", arg);
    }
    let rest = &arg[SCHEME.len()..];
    let Some(slash) = rest.iter().position(|&b| b == b'/') else {
        return fail("no lock name: write etcd://HOST:PORT/NAME", arg);
    };
    let (authority, name) = (&rest[..slash], &rest[slash + 1..]);
    if let Some(at) = arg.iter().position(|&b| matches!(b, b'?' | b'#')) {
        return fail("a query or fragment (? or #) has no meaning in a lock address", &arg[at..]);
    }
    if authority.contains(&b'@') {
        return fail("user information (user@) is not supported in a lock address", authority);
    }
    let placeholder = Endpoint { text: b"", host: net::Host::Localhost, port: 0 };
    let mut address = Address { endpoints: [placeholder; MAX_ENDPOINTS], count: 0, name };
    for text in authority.split(|&b| b == b',') {
        if address.count == MAX_ENDPOINTS {
            return fail("too many endpoints (at most 8)", authority);
        }
        address.endpoints[address.count] = parse_endpoint(text)?;
        address.count += 1;
    }
    check_name(name)?;
    Ok(address)
}

/// `HOST[:PORT]` or `[IPV6][:PORT]`.
fn parse_endpoint(text: &[u8]) -> Result<Endpoint<'_>, AddressError<'_>> {
    let fail = |problem| Err(AddressError { problem, culprit: text });
    if text.is_empty() {
        return fail("an empty endpoint (write HOST:PORT, separated by commas)");
    }
    let (host, port) = if let Some(inner) = text.strip_prefix(b"[") {
        let Some(close) = inner.iter().position(|&b| b == b']') else {
            return fail("an IPv6 address misses its closing ]");
        };
        let after = &inner[close + 1..];
        let port = match after {
            [] => None,
            [b':', port @ ..] => Some(port),
            _ => return fail("expected :PORT after the ] of an IPv6 address"),
        };
        let Some(ip) = net::parse_ipv6(&inner[..close]) else {
            return fail("not an IPv6 address");
        };
        (net::Host::Ip(net::Ip::V6(ip)), port)
    } else {
        let (host, port) = match text.iter().position(|&b| b == b':') {
            Some(colon) => (&text[..colon], Some(&text[colon + 1..])),
            None => (text, None),
        };
        if host.is_empty() {
            return fail("an endpoint without a host");
        }
        if port.is_some_and(|p| p.contains(&b':')) {
            return fail("an IPv6 address must be in brackets: [::1]:2379");
        }
        match net::parse_host(host) {
            Some(host) => (host, port),
            None => return fail("not an IP address or localhost (host names are not resolved)"),
        }
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(digits) => match crate::text::parse_u64(digits) {
            Some(n @ 1..=65535) if digits.len() <= 5 => n as u16,
            _ => return fail("not a port number (1-65535)"),
        },
    };
    Ok(Endpoint { text, host, port })
}

fn check_name(name: &[u8]) -> Result<(), AddressError<'_>> {
    let fail = |problem| Err(AddressError { problem, culprit: name });
    if name.is_empty() {
        return fail("no lock name: write etcd://HOST:PORT/NAME");
    }
    if name.len() > NAME_MAX {
        return fail("the lock name is longer than 256 bytes");
    }
    for part in name.split(|&b| b == b'/') {
        if part.is_empty() {
            return fail("empty part in the lock name (a leading, trailing or doubled /)");
        }
        if part == b"." || part == b".." {
            return fail("the lock name may not have . or .. parts");
        }
        if !part.iter().all(|&b| b.is_ascii_alphanumeric() || b"-._~:@+=,".contains(&b)) {
            return fail("the lock name may hold only letters, digits, -._~:@+=, and / between parts");
        }
    }
    Ok(())
}

/// A key read back from etcd (decoded from base64), held by value.
#[derive(Clone, Copy)]
pub struct Key {
    len: usize,
    bytes: [u8; KEY_MAX],
}

impl Key {
    pub const fn empty() -> Key {
        Key { len: 0, bytes: [0; KEY_MAX] }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// `prefix` then `lease` in lower-case hex, as etcd's concurrency
    /// package (and so `etcdctl lock`) names a lock key: `NAME/<lease>`.
    pub fn lock_key(name: &[u8], lease: i64) -> Result<Key, Error> {
        let mut key = Key::empty();
        let digits = 16 - (lease as u64 | 1).leading_zeros() as usize / 4;
        let total = name.len() + 1 + digits;
        if total > KEY_MAX {
            return Err(Error::TooLong);
        }
        key.bytes[..name.len()].copy_from_slice(name);
        key.bytes[name.len()] = b'/';
        for (i, slot) in key.bytes[name.len() + 1..total].iter_mut().enumerate() {
            *slot = crate::text::hex_digit(lease as u64 >> (4 * (digits - 1 - i)));
        }
        key.len = total;
        Ok(key)
    }

    /// A key decoded from a base64 JSON string.
    fn from_b64(value: &crate::etcd::jsonread::Value) -> Result<Key, Error> {
        let mut key = Key::empty();
        key.len = decode_b64(value, &mut key.bytes)?.len();
        Ok(key)
    }
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Key").field(&self.as_bytes().escape_ascii()).finish()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

/// A base64 JSON string (a key or a value), decoded into `out`.
fn decode_b64<'o>(value: &crate::etcd::jsonread::Value, out: &'o mut [u8]) -> Result<&'o [u8], Error> {
    let text = value.str_raw().map_err(|e| Error::Reply(e.0))?;
    match crate::etcd::base64::decode(text, out) {
        Ok(n) => Ok(&out[..n]),
        Err(crate::etcd::base64::DecodeError::NoRoom) => Err(Error::Reply("key or value too long")),
        Err(crate::etcd::base64::DecodeError::Invalid) => Err(Error::Reply("bad base64 in a key or value")),
    }
}

/// The longest server message kept: etcd's own are at most 68 bytes
/// ("etcdserver: request timed out, possibly due to previous leader
/// failure"); a longer one is cut and ends with "...". Small, so that every
/// `Result` stays small.
const MESSAGE_MAX: usize = 80;

/// A message from etcd (an error's text), held by value.
#[derive(Clone, Copy)]
pub struct Message {
    len: u8,
    bytes: [u8; MESSAGE_MAX],
}

impl Message {
    fn new(text: &[u8]) -> Message {
        let mut message = Message { len: 0, bytes: [0; MESSAGE_MAX] };
        let len = if text.len() > MESSAGE_MAX {
            message.bytes[MESSAGE_MAX - 3..].copy_from_slice(b"...");
            MESSAGE_MAX - 3
        } else {
            text.len()
        };
        message.bytes[..len].copy_from_slice(&text[..len]);
        message.len = if text.len() > MESSAGE_MAX { MESSAGE_MAX as u8 } else { len as u8 };
        message
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl core::fmt::Debug for Message {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Message").field(&self.as_bytes().escape_ascii()).finish()
    }
}

/// Room for an [`Error`] in words: the longest is a server's message, each
/// byte of it perhaps escaped (`\xNN`).
pub const WORDS_MAX: usize = 4 * MESSAGE_MAX + 64;

/// Why a call to etcd failed.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // `status` and `code` only for the tests and for debugging.
pub enum Error {
    /// The connection or the HTTP exchange failed (includes timeouts).
    Http(http::Error),
    /// etcd answered with an error: its HTTP status, gRPC code, message.
    Server { status: u16, code: i64, message: Message },
    /// etcd answered, but not as expected.
    Reply(&'static str),
    /// The request does not fit our buffer (a NAME or value too long).
    TooLong,
}

impl From<http::Error> for Error {
    fn from(e: http::Error) -> Error {
        Error::Http(e)
    }
}

impl From<net::Error> for Error {
    fn from(e: net::Error) -> Error {
        Error::Http(e.into())
    }
}

impl Error {
    #[cfg(test)]
    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Http(http::Error::Timeout))
    }

    /// Whether etcd said the lease does not exist (expired or revoked).
    pub fn is_lease_not_found(&self) -> bool {
        matches!(self, Error::Server { message, .. } if message.as_bytes().ends_with(b"requested lease not found"))
    }

    /// What went wrong, in a few words (see [`Error::push_to`]), for a
    /// [`crate::error::Failure`] to carry; none for `None`.
    pub fn words(error: Option<&Error>) -> LineBuf<WORDS_MAX> {
        let mut words = LineBuf::new();
        if let Some(error) = error {
            error.push_to(words.line());
        }
        words
    }

    /// Append what went wrong, in a few words: "Connection refused",
    /// "etcdserver: requested lease not found".
    pub fn push_to(&self, line: &mut Line) {
        match self {
            Error::Http(http::Error::Timeout) => line.push(b"timed out"),
            Error::Http(http::Error::Closed) => line.push(b"the connection was closed"),
            Error::Http(http::Error::Io(errno)) => line.push(errno.text()),
            Error::Http(http::Error::Malformed(why)) => line.push(b"bad HTTP reply: ").push(why.as_bytes()),
            Error::Http(http::Error::TooBig) => line.push(b"the reply is too big"),
            Error::Http(http::Error::Status(status)) => {
                line.push(b"HTTP status ").push_u64(u64::from(*status))
            }
            Error::Server { message, .. } => line.push_printable(message.as_bytes()),
            Error::Reply(why) => line.push(b"unexpected reply: ").push(why.as_bytes()),
            Error::TooLong => line.push(b"the request is too long (lock name or value)"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(arg: &str) -> Address<'_> {
        parse_address(arg.as_bytes()).unwrap_or_else(|e| panic!("{arg}: {e:?}"))
    }

    #[test]
    fn good_addresses() {
        let a = ok("etcd://127.0.0.1:2379/backup");
        assert_eq!(a.name, b"backup");
        assert_eq!(a.endpoints().len(), 1);
        let e = a.endpoints()[0];
        assert_eq!(
            (e.text, e.port, e.host),
            (&b"127.0.0.1:2379"[..], 2379, net::Host::Ip(net::Ip::V4([127, 0, 0, 1])))
        );
        assert!(a.all_loopback());

        let a = ok("etcd://10.0.0.1:2379,[::1]:12379,localhost/jobs/nightly-backup");
        assert_eq!(a.name, b"jobs/nightly-backup");
        let ports: Vec<_> = a.endpoints().iter().map(|e| e.port).collect();
        assert_eq!(ports, [2379, 12379, DEFAULT_PORT]);
        assert_eq!(a.endpoints()[1].text, b"[::1]:12379");
        assert_eq!(a.endpoints()[2].host, net::Host::Localhost);
        assert!(!a.all_loopback());

        assert_eq!(ok("ETCD://[::1]/x").endpoints()[0].port, 2379);
        assert_eq!(ok("etcd://127.0.0.1:65535/a.b_c~d:e@f+g=h,i").name, b"a.b_c~d:e@f+g=h,i");
        let eight = "etcd://".to_string() + &["127.0.0.1"; 8].join(",") + "/n";
        assert_eq!(ok(&eight).endpoints().len(), 8);
        let longest = "etcd://localhost/".to_string() + &"n".repeat(NAME_MAX);
        assert_eq!(ok(&longest).name.len(), NAME_MAX);
    }

    #[test]
    fn bad_addresses() {
        let nine = "etcd://".to_string() + &["127.0.0.1"; 9].join(",") + "/n";
        let too_long = "etcd://localhost/".to_string() + &"n".repeat(NAME_MAX + 1);
        for bad in [
            "http://127.0.0.1:2379/x",
            "etcd:/127.0.0.1/x",
            "etcd://127.0.0.1:2379",
            "etcd://127.0.0.1:2379/",
            "etcd:///x",
            "etcd://:2379/x",
            "etcd://127.0.0.1:/x",
            "etcd://127.0.0.1:0/x",
            "etcd://127.0.0.1:65536/x",
            "etcd://127.0.0.1:002379/x",
            "etcd://127.0.0.1:23x9/x",
            "etcd://127.0.0.1:-1/x",
            "etcd://127.0.0.1,/x",
            "etcd://,127.0.0.1/x",
            "etcd://user@127.0.0.1/x",
            "etcd://user:pw@127.0.0.1/x",
            "etcd://127.0.0.1/x?y=1",
            "etcd://127.0.0.1/x#y",
            "etcd://etcd.example.com:2379/x",
            "etcd://::1:2379/x",
            "etcd://[::1/x",
            "etcd://[::1]2379/x",
            "etcd://[127.0.0.1]:2379/x",
            "etcd://[::1]:/x",
            "etcd://127.0.0.1/a//b",
            "etcd://127.0.0.1/a/",
            "etcd://127.0.0.1//a",
            "etcd://127.0.0.1/../a",
            "etcd://127.0.0.1/a/./b",
            "etcd://127.0.0.1/a%2fb",
            "etcd://127.0.0.1/a b",
            "etcd://127.0.0.1/a\\b",
            "etcd://127.0.0.1/caf\u{e9}",
            "etcd://127.0.0.1/a\nb",
            &nine,
            &too_long,
        ] {
            assert!(parse_address(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
        let e = parse_address(b"etcd://127.0.0.1:99999/x").unwrap_err();
        assert_eq!(e.culprit, b"127.0.0.1:99999");
        assert!(!is_address(b"/tmp/etcd://x"));
        // The scheme in any case, as URLs have it (and as withlock tells an etcd LOCK from a file).
        assert!(is_address(b"ETCD://127.0.0.1/x") && is_address(b"Etcd://127.0.0.1/x"));
        assert_eq!(parse_address(b"ETCD://127.0.0.1/x").unwrap().name, b"x");
    }

    #[test]
    fn lock_keys_are_etcdctls() {
        // `etcdctl lock wl-test` with lease 5007618062041693207 wrote this key.
        let key = Key::lock_key(b"wl-test", 5007618062041693207).unwrap();
        assert_eq!(key.as_bytes(), b"wl-test/457ea2188ed33c17");
        assert_eq!(Key::lock_key(b"n", 1).unwrap().as_bytes(), b"n/1");
        assert_eq!(Key::lock_key(b"n", 0x10).unwrap().as_bytes(), b"n/10");
        assert_eq!(Key::lock_key(b"n", i64::MAX).unwrap().as_bytes(), b"n/7fffffffffffffff");
        assert_eq!(Key::lock_key(b"n", 0).unwrap().as_bytes(), b"n/0");
        assert!(Key::lock_key(&[b'n'; KEY_MAX], 1).is_err());
    }

    #[test]
    fn messages() {
        let say = |e: Error| crate::testing::shown(|line| e.push_to(line));
        assert_eq!(
            say(Error::Http(http::Error::Io(crate::sys::Errno(libc::ECONNREFUSED)))),
            "Connection refused"
        );
        assert_eq!(say(Error::Http(http::Error::Timeout)), "timed out");
        let server = Error::Server {
            status: 404,
            code: 5,
            message: Message::new(b"etcdserver: requested lease not found"),
        };
        assert!(server.is_lease_not_found());
        assert_eq!(say(server), "etcdserver: requested lease not found");
        let long = Message::new(&[b'x'; 500]);
        assert_eq!(long.as_bytes().len(), MESSAGE_MAX);
        assert!(long.as_bytes().ends_with(b"x..."));
        assert_eq!(Message::new(&[b'x'; MESSAGE_MAX]).as_bytes(), [b'x'; MESSAGE_MAX]);
        assert!(core::mem::size_of::<Error>() <= 128);
    }
}
