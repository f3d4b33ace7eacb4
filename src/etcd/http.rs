//! A small, strict HTTP/1.1 client: `POST` a JSON body, read one response.
//!
//! etcd's JSON gateway is plain HTTP/1.1 (Go's net/http with grpc-gateway),
//! and withlock needs exactly one kind of exchange with it: a POST with a
//! JSON body, and a response whose body fits a fixed buffer. Sending and
//! receiving are separate calls because the caller keeps a blocking
//! `/v3/lock/lock` outstanding on one connection while it sends keepalives
//! on another and polls both; and a [`Reader`] that runs out of time keeps
//! what it has, so the next call resumes where it stopped.
//!
//! Responses are framed by `Content-Length`, by `Transfer-Encoding: chunked`
//! (etcd 3.4 sends the streaming `/v3/lease/keepalive` and every error reply
//! chunked, errors with a trailer), or by the connection's end. Chunks are
//! decoded in place, so the body is one slice of the caller's buffer. The
//! whole raw response must fit the buffer: more is [`Error::TooBig`].
//! Connections are kept alive unless the server says otherwise.

use crate::etcd::net::{self, Conn};
use crate::sys::Errno;
use crate::text::LineBuf;

/// Why an exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The deadline passed. A [`Reader`] keeps what it received: calling it
    /// again (with the same buffer) resumes the response.
    Timeout,
    /// The server closed the connection before any of the response came
    /// (as it may do to a kept-alive connection it finds idle).
    Closed,
    /// A system call failed (`ECONNRESET`, `EPIPE`, ...).
    Io(Errno),
    /// The response (or the request we were asked to send) is not valid
    /// HTTP/1.1 as we speak it.
    Malformed(&'static str),
    /// The response does not fit the buffer.
    TooBig,
    /// The server answered with this unexpected status (for callers; the
    /// reader itself returns any complete response).
    Status(u16),
}

impl From<net::Error> for Error {
    fn from(e: net::Error) -> Error {
        match e {
            net::Error::Timeout => Error::Timeout,
            net::Error::Io(errno) => Error::Io(errno),
        }
    }
}

/// Longest request head (`POST`, path, Host and the fixed headers).
const HEAD_MAX: usize = 512;

/// Send `POST path HTTP/1.1` with `body` (JSON) to `host` (the `Host`
/// header: the endpoint as the user wrote it), waiting no later than
/// `deadline`. Head and body go out in one system call.
pub fn send_post(conn: &Conn, host: &[u8], path: &[u8], body: &[u8], deadline: u64) -> Result<(), Error> {
    let token = |s: &[u8]| !s.is_empty() && s.iter().all(|&b| b.is_ascii_graphic());
    if !token(host) || !path.starts_with(b"/") || !token(path) {
        return Err(Error::Malformed("bad host or path for a request"));
    }
    let mut head = LineBuf::<HEAD_MAX>::new();
    let line = head.line();
    line.push(b"POST ").push(path).push(b" HTTP/1.1\r\nHost: ").push(host);
    line.push(b"\r\nContent-Type: application/json\r\nContent-Length: ").push_u64(body.len() as u64);
    line.push(b"\r\n\r\n");
    if line.truncated() {
        return Err(Error::Malformed("request head too long"));
    }
    conn.send_all(&[line.as_bytes(), body], deadline)?;
    Ok(())
}

/// A complete response. The body is decoded (chunks joined).
#[derive(Debug)]
pub struct Response<'b> {
    pub status: u16,
    pub body: &'b [u8],
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
}

/// How the body's end is known.
#[derive(Clone, Copy, Debug)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Where the parse stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Head,
    /// The body has `body_len` bytes (Content-Length).
    Fixed,
    /// The body ends when the connection does.
    UntilClose,
    ChunkSize,
    /// A chunk of this many bytes (then CRLF) starts at `scan`.
    ChunkData(usize),
    Trailers,
    Done,
}

/// One response being received into a caller's buffer; see the module docs.
#[derive(Debug)]
pub struct Reader {
    /// Bytes received into the buffer.
    filled: usize,
    stage: Stage,
    /// Head: how far the search for its end has gone; chunked: the first
    /// raw byte not yet parsed.
    scan: usize,
    status: u16,
    framing: Framing,
    keep_alive: bool,
    /// The body so far is `buf[body_start..body_start + body_len]`.
    body_start: usize,
    body_len: usize,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl Reader {
    pub const fn new() -> Reader {
        Reader {
            filled: 0,
            stage: Stage::Head,
            scan: 0,
            status: 0,
            framing: Framing::UntilClose,
            keep_alive: false,
            body_start: 0,
            body_len: 0,
        }
    }

    /// Whether any byte of a response has arrived (a connection that closes
    /// before that was closed while idle, and the request may be retried on
    /// a new one).
    #[cfg(test)]
    pub fn started(&self) -> bool {
        self.filled > 0
    }

    /// Receive one whole response from `conn` into `buf`, waiting no later
    /// than `deadline`. After [`Error::Timeout`], call again with the same
    /// buffer to go on; after any other error, or a response, the reader
    /// starts afresh.
    pub fn read_response<'b>(
        &mut self,
        conn: &Conn,
        deadline: u64,
        buf: &'b mut [u8],
    ) -> Result<Response<'b>, Error> {
        let outcome = self.receive(conn, deadline, buf);
        if outcome != Err(Error::Timeout) {
            let status = self.status;
            let keep_alive = self.keep_alive;
            let body = self.body_start..self.body_start + self.body_len;
            *self = Reader::new();
            outcome?;
            return Ok(Response { status, body: &buf[body], keep_alive });
        }
        Err(Error::Timeout)
    }

    fn receive(&mut self, conn: &Conn, deadline: u64, buf: &mut [u8]) -> Result<(), Error> {
        while !self.advance(buf)? {
            if self.filled == buf.len() {
                return Err(Error::TooBig);
            }
            let n = conn.recv(&mut buf[self.filled..], deadline)?;
            if n == 0 {
                return self.end_of_stream();
            }
            self.filled += n;
        }
        Ok(())
    }

    /// The peer closed: before the response ([`Error::Closed`]), at the end
    /// of a body framed by the connection's end, or in the middle.
    fn end_of_stream(&mut self) -> Result<(), Error> {
        match self.stage {
            _ if self.filled == 0 => Err(Error::Closed),
            Stage::UntilClose => {
                self.body_len = self.filled - self.body_start;
                self.keep_alive = false;
                self.stage = Stage::Done;
                Ok(())
            }
            _ => Err(Error::Malformed("the connection closed in the middle of a response")),
        }
    }

    /// Parse as far as `buf[..filled]` allows: true once the response is
    /// complete.
    fn advance(&mut self, buf: &mut [u8]) -> Result<bool, Error> {
        loop {
            match self.stage {
                Stage::Head => {
                    if !self.head(buf)? {
                        return Ok(false);
                    }
                }
                Stage::Fixed if self.filled < self.body_start + self.body_len => return Ok(false),
                Stage::Fixed => self.stage = Stage::Done,
                Stage::UntilClose => return self.need_more(buf.len()),
                Stage::ChunkSize => {
                    let Some((line, next)) = line_at(buf, self.scan, self.filled) else {
                        return self.need_more(buf.len());
                    };
                    let size = chunk_size(line)?;
                    if size > buf.len() {
                        return Err(Error::TooBig);
                    }
                    self.scan = next;
                    self.stage = if size == 0 { Stage::Trailers } else { Stage::ChunkData(size) };
                }
                Stage::ChunkData(size) => {
                    if self.filled - self.scan < size + 2 {
                        return self.need_more(buf.len());
                    }
                    if &buf[self.scan + size..self.scan + size + 2] != b"\r\n" {
                        return Err(Error::Malformed("chunk not followed by CRLF"));
                    }
                    // Move the data down to the end of the body so far; the
                    // raw bytes still to parse lie beyond, untouched.
                    let to = self.body_start + self.body_len;
                    buf.copy_within(self.scan..self.scan + size, to);
                    self.body_len += size;
                    self.scan += size + 2;
                    self.stage = Stage::ChunkSize;
                }
                Stage::Trailers => {
                    let Some((line, next)) = line_at(buf, self.scan, self.filled) else {
                        return self.need_more(buf.len());
                    };
                    self.scan = next;
                    if line.is_empty() {
                        self.stage = Stage::Done;
                    } else {
                        header(line)?;
                    }
                }
                Stage::Done => {
                    let end = match self.framing {
                        Framing::Chunked => self.scan,
                        _ => self.body_start + self.body_len,
                    };
                    if self.filled != end {
                        return Err(Error::Malformed("bytes after the response"));
                    }
                    return Ok(true);
                }
            }
        }
    }

    /// Not complete yet: fine unless the buffer is full.
    fn need_more(&self, capacity: usize) -> Result<bool, Error> {
        if self.filled == capacity { Err(Error::TooBig) } else { Ok(false) }
    }

    /// Look for the end of the head and parse it: false if it has not all
    /// arrived yet. Then the body's stage is next.
    fn head(&mut self, buf: &[u8]) -> Result<bool, Error> {
        let seen = &buf[..self.filled];
        let prefix = seen.len().min(5);
        if seen[..prefix] != b"HTTP/"[..prefix] {
            return Err(Error::Malformed("not an HTTP response"));
        }
        // Find the blank line that ends the head. Lines end with CRLF,
        // strictly: a bare LF would leave us waiting for a blank line that
        // never comes.
        let mut head_end = None;
        for i in self.scan..seen.len() {
            if seen[i] == b'\n' {
                if i == 0 || seen[i - 1] != b'\r' {
                    return Err(BAD_LINE);
                }
                if i >= 3 && seen[i - 3..i - 1] == *b"\r\n" {
                    head_end = Some(i + 1);
                    break;
                }
            }
        }
        let Some(head_end) = head_end else {
            // Each LF looks back at what came before it: go on from here.
            self.scan = seen.len();
            return self.need_more(buf.len());
        };
        let (status_line, mut at) = line_at(seen, 0, head_end).ok_or(BAD_LINE)?;
        let (status, http10) = status_line_of(status_line)?;
        let mut length = None;
        let mut chunked = false;
        let mut close = http10;
        while let Some((line, next)) = line_at(seen, at, head_end)
            && !line.is_empty()
        {
            at = next;
            let (name, value) = header(line)?;
            if name.eq_ignore_ascii_case(b"content-length") {
                let n = crate::text::parse_u64(value).ok_or(Error::Malformed("bad Content-Length"))?;
                let n = usize::try_from(n).map_err(|_| Error::TooBig)?;
                if length.is_some_and(|m| m != n) {
                    return Err(Error::Malformed("conflicting Content-Length headers"));
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                if !value.eq_ignore_ascii_case(b"chunked") || chunked {
                    return Err(Error::Malformed("unsupported Transfer-Encoding"));
                }
                chunked = true;
            } else if name.eq_ignore_ascii_case(b"connection") {
                for option in value.split(|&b| b == b',') {
                    let option = option.trim_ascii();
                    if option.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if option.eq_ignore_ascii_case(b"keep-alive") {
                        close = false;
                    }
                }
            }
        }
        if status < 200 {
            return Err(Error::Malformed("unexpected informational (1xx) response"));
        }
        self.status = status;
        self.keep_alive = !close;
        self.body_start = head_end;
        self.scan = head_end;
        // Chunked wins over a Content-Length (RFC 9112, 6.3).
        self.framing = match length {
            _ if status == 204 || status == 304 => Framing::Length(0),
            _ if chunked => Framing::Chunked,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        };
        self.stage = match self.framing {
            Framing::Length(n) => {
                if n > buf.len() - head_end {
                    return Err(Error::TooBig);
                }
                self.body_len = n;
                Stage::Fixed
            }
            Framing::Chunked => Stage::ChunkSize,
            Framing::UntilClose => {
                self.keep_alive = false;
                Stage::UntilClose
            }
        };
        Ok(true)
    }
}

const BAD_LINE: Error = Error::Malformed("header line not ended by CRLF");

/// The line (without CRLF) starting at `from` in `buf[..filled]`, and where
/// the next one starts; `None` if its end has not arrived.
fn line_at(buf: &[u8], from: usize, filled: usize) -> Option<(&[u8], usize)> {
    let rest = &buf[from..filled];
    let at = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..at], from + at + 2))
}

/// `HTTP/1.1 200 OK`: the status, and whether it is HTTP/1.0.
fn status_line_of(line: &[u8]) -> Result<(u16, bool), Error> {
    const BAD: Error = Error::Malformed("bad status line");
    let http10 = match line.get(..9) {
        Some(b"HTTP/1.1 ") => false,
        Some(b"HTTP/1.0 ") => true,
        _ => return Err(BAD),
    };
    let code = line.get(9..12).ok_or(BAD)?;
    if !code.iter().all(u8::is_ascii_digit) || code[0] == b'0' || !matches!(line.get(12), None | Some(b' ')) {
        return Err(BAD);
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    Ok((status, http10))
}

/// `Name: value` (a header or a trailer): the name, and the value without
/// the whitespace around it.
fn header(line: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    const BAD: Error = Error::Malformed("bad header line");
    let colon = line.iter().position(|&b| b == b':').ok_or(BAD)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    if name.is_empty() || !name.iter().all(token) {
        return Err(BAD); // also a folded line (one that starts with a space)
    }
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(BAD);
    }
    Ok((name, value.trim_ascii()))
}

/// A chunk-size line: hex digits, then optional `;extensions` (ignored).
fn chunk_size(line: &[u8]) -> Result<usize, Error> {
    const BAD: Error = Error::Malformed("bad chunk size");
    let end = line.iter().position(|&b| b == b';').unwrap_or(line.len());
    let digits = line[..end].trim_ascii_end();
    if digits.is_empty() || digits.len() > 8 {
        return Err(if digits.len() > 8 && digits.iter().all(u8::is_ascii_hexdigit) {
            Error::TooBig
        } else {
            BAD
        });
    }
    let mut size = 0usize;
    for &d in digits {
        size = size * 16 + char::from(d).to_digit(16).ok_or(BAD)? as usize;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock;
    use crate::testing::Rng;
    use std::io::{Read, Write};

    /// Real responses from etcd 3.4.23 (Date headers shortened).
    const GRANT: &[u8] = b"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Headers: accept, content-type, authorization\r\nAccess-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\nAccess-Control-Allow-Origin: *\r\nContent-Type: application/json\r\nGrpc-Metadata-Content-Type: application/grpc\r\nDate: Thu, 26 Nov 2026 15:52:27 GMT\r\nContent-Length: 151\r\n\r\n{\"header\":{\"cluster_id\":\"7801232528081817440\",\"member_id\":\"13458989633860879742\",\"revision\":\"1\",\"raft_term\":\"2\"},\"ID\":\"5007618062041693190\",\"TTL\":\"10\"}";
    const KEEPALIVE: &[u8] = b"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Headers: accept, content-type, authorization\r\nAccess-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\nAccess-Control-Allow-Origin: *\r\nContent-Type: application/json\r\nGrpc-Metadata-Content-Type: application/grpc\r\nDate: Thu, 26 Nov 2026 15:52:33 GMT\r\nTransfer-Encoding: chunked\r\n\r\n98\r\n{\"result\":{\"header\":{\"cluster_id\":\"7801232528081817440\",\"member_id\":\"13458989633860879742\",\"revision\":\"1\",\"raft_term\":\"2\"},\"ID\":\"5007618062041693198\"}}\n\r\n0\r\n\r\n";
    const ERROR: &[u8] = b"HTTP/1.1 404 Not Found\r\nAccess-Control-Allow-Headers: accept, content-type, authorization\r\nAccess-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\nAccess-Control-Allow-Origin: *\r\nContent-Type: application/json\r\nTrailer: Grpc-Trailer-Content-Type\r\nDate: Thu, 26 Nov 2026 15:52:33 GMT\r\nTransfer-Encoding: chunked\r\n\r\n6c\r\n{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: requested lease not found\",\"code\":5}\r\n0\r\nGrpc-Trailer-Content-Type: application/grpc\r\n\r\n";

    /// Feed `raw` to a reader in random fragments (as a socket would hand
    /// them over), then the end of the stream if `eof`.
    fn parse_in_pieces(
        raw: &[u8],
        capacity: usize,
        rng: &mut Rng,
        eof: bool,
    ) -> Result<(u16, Vec<u8>, bool), Error> {
        parse_fed(raw, capacity, rng, eof, 40)
    }

    fn parse_fed(
        raw: &[u8],
        capacity: usize,
        rng: &mut Rng,
        eof: bool,
        max_piece: u64,
    ) -> Result<(u16, Vec<u8>, bool), Error> {
        let mut buf = std::vec![0u8; capacity];
        let mut reader = Reader::new();
        let mut at = 0;
        loop {
            if reader.advance(&mut buf)? {
                let body = &buf[reader.body_start..reader.body_start + reader.body_len];
                return Ok((reader.status, body.to_vec(), reader.keep_alive));
            }
            if at == raw.len() {
                if !eof {
                    return Err(Error::Timeout);
                }
                reader.end_of_stream()?;
                continue;
            }
            if reader.filled == buf.len() {
                return Err(Error::TooBig);
            }
            let room = buf.len() - reader.filled;
            let n = (1 + rng.below(max_piece) as usize).min(raw.len() - at).min(room);
            buf[reader.filled..reader.filled + n].copy_from_slice(&raw[at..at + n]);
            reader.filled += n;
            at += n;
        }
    }

    fn body_of(raw: &[u8]) -> Vec<u8> {
        let start = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        raw[start..].to_vec()
    }

    #[test]
    fn real_responses_in_any_fragments() {
        let mut rng = Rng(0x4177_9001_0000_0001);
        for _ in 0..300 {
            let (status, body, keep) = parse_in_pieces(GRANT, 16384, &mut rng, false).unwrap();
            assert_eq!((status, keep), (200, true));
            assert_eq!(body, body_of(GRANT));
            let (status, body, _) = parse_in_pieces(KEEPALIVE, 16384, &mut rng, false).unwrap();
            assert_eq!(status, 200);
            assert!(body.starts_with(b"{\"result\":") && body.ends_with(b"}}\n") && body.len() == 0x98);
            let (status, body, keep) = parse_in_pieces(ERROR, 16384, &mut rng, false).unwrap();
            assert_eq!((status, keep), (404, true));
            assert_eq!(body.len(), 0x6c);
            assert!(crate::etcd::jsonread::parse(&body).is_ok());
        }
    }

    #[test]
    fn framings() {
        let mut rng = Rng(77);
        let mut p = |raw: &[u8], eof| parse_in_pieces(raw, 1024, &mut rng, eof);
        // Several chunks, extensions, trailers.
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n3;x=y\r\nabc\r\n1\r\nd\r\n00\r\nA: b\r\n\r\n";
        assert_eq!(p(raw, false).unwrap(), (200, b"abcd".to_vec(), true));
        // Until the connection closes.
        let raw = b"HTTP/1.1 200 OK\r\n\r\nall of it";
        assert_eq!(p(raw, true).unwrap(), (200, b"all of it".to_vec(), false));
        assert_eq!(p(raw, false), Err(Error::Timeout));
        // Connection: close, HTTP/1.0, 204.
        let raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(p(raw, false).unwrap(), (200, b"ok".to_vec(), false));
        let raw = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(p(raw, false).unwrap(), (200, b"".to_vec(), false));
        let raw = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(p(raw, false).unwrap(), (204, b"".to_vec(), true));
        // Go's text 404 for an unknown path.
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nDate: Thu, 26 Nov 2026 15:52:33 GMT\r\nContent-Length: 19\r\n\r\n404 page not found\n";
        assert_eq!(p(raw, false).unwrap(), (404, b"404 page not found\n".to_vec(), true));
        // A status line without a reason phrase.
        assert_eq!(p(b"HTTP/1.1 500\r\nContent-Length: 0\r\n\r\n", false).unwrap().0, 500);
    }

    #[test]
    fn malformed_responses() {
        let mut rng = Rng(99);
        for bad in [
            &b"HTTP/2 200 OK\r\n\r\n"[..],
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 099 x\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"http/1.1 200 OK\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 200 OK\n\n",
            b"HTTP/1.1 200 OK\r\nA b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n\r\n",
        ] {
            let got = parse_in_pieces(bad, 1024, &mut rng, true);
            assert!(
                matches!(got, Err(Error::Malformed(_))),
                "{:?}: {got:?}",
                std::string::String::from_utf8_lossy(bad)
            );
        }
        // Bytes after the response, when they arrive with it.
        for extra in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nextra",
        ] {
            assert_eq!(
                parse_fed(extra, 1024, &mut rng, false, 1024),
                Err(Error::Malformed("bytes after the response"))
            );
        }
        // Cut short: the connection closed mid-response.
        for raw in [GRANT, KEEPALIVE, ERROR] {
            for cut in 0..raw.len() {
                let got = parse_in_pieces(&raw[..cut], 16384, &mut rng, true);
                assert!(matches!(got, Err(Error::Closed | Error::Malformed(_))), "cut at {cut}: {got:?}");
            }
        }
    }

    #[test]
    fn oversized_responses() {
        let mut rng = Rng(5);
        assert_eq!(parse_in_pieces(GRANT, 200, &mut rng, false), Err(Error::TooBig));
        assert_eq!(parse_in_pieces(GRANT, GRANT.len() - 1, &mut rng, false), Err(Error::TooBig));
        assert!(parse_in_pieces(GRANT, GRANT.len(), &mut rng, false).is_ok());
        assert_eq!(parse_in_pieces(KEEPALIVE, KEEPALIVE.len() - 1, &mut rng, false), Err(Error::TooBig));
        assert!(parse_in_pieces(KEEPALIVE, KEEPALIVE.len(), &mut rng, false).is_ok());
        let huge = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert!(parse_in_pieces(huge, 1024, &mut rng, false).is_err());
        let huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n";
        assert_eq!(parse_in_pieces(huge, 1024, &mut rng, false), Err(Error::TooBig));
        let endless = [b'x'; 3000];
        let mut head = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        head.extend_from_slice(&endless);
        assert_eq!(parse_in_pieces(&head, 1024, &mut rng, false), Err(Error::TooBig));
    }

    #[test]
    fn random_damage_never_panics() {
        let mut rng = Rng(0xbad_c0de_0000_0042);
        for _ in 0..5000 {
            let sample = [GRANT, KEEPALIVE, ERROR][rng.below(3) as usize];
            let mut raw = sample.to_vec();
            rng.damage(&mut raw, 4, b"\r\n0123456789abcdef:; ");
            let cut = rng.below(raw.len() as u64 + 1) as usize;
            let capacity = [64, 300, 16384][rng.below(3) as usize];
            let eof = rng.below(2) == 0;
            let _ = parse_in_pieces(&raw[..cut], capacity, &mut rng, eof);
        }
    }

    use crate::testing::far;

    /// Over a real socket: a request goes out whole, a response trickles
    /// in, a timeout in the middle is resumed, and the connection is reused.
    #[test]
    fn exchange_over_loopback() {
        let (listener, port) = crate::testing::listener();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut requests = Vec::new();
            for _ in 0..2 {
                let mut got = Vec::new();
                let mut byte = [0u8; 1];
                while !got.ends_with(b"\r\n\r\n") {
                    s.read_exact(&mut byte).unwrap();
                    got.push(byte[0]);
                }
                let mut body = [0u8; 10];
                s.read_exact(&mut body).unwrap();
                got.extend_from_slice(&body);
                requests.push(got);
                let (first, rest) = KEEPALIVE.split_at(100);
                s.write_all(first).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(150));
                s.write_all(rest).unwrap();
            }
            requests
        });
        let conn = net::connect(&net::Host::Localhost, port, far()).unwrap();
        let mut buf = [0u8; 4096];
        let mut reader = Reader::new();
        let host = std::format!("127.0.0.1:{port}");
        for round in 0..2 {
            send_post(&conn, host.as_bytes(), b"/v3/lease/keepalive", b"{\"ID\":\"1\"}", far()).unwrap();
            if round == 0 {
                let soon = clock::boot_ns() + 50_000_000;
                assert_eq!(reader.read_response(&conn, soon, &mut buf).unwrap_err(), Error::Timeout);
                assert!(reader.started());
            }
            let response = reader.read_response(&conn, far(), &mut buf).unwrap();
            assert_eq!(response.status, 200);
            assert_eq!(response.body.len(), 0x98);
            assert!(!reader.started());
        }
        let requests = server.join().unwrap();
        let expected = std::format!(
            "POST /v3/lease/keepalive HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{{\"ID\":\"1\"}}"
        );
        assert_eq!(requests, [expected.as_bytes(), expected.as_bytes()]);
        assert!(send_post(&conn, b"a b", b"/x", b"", far()).is_err());
        assert!(send_post(&conn, b"h", b"x", b"", far()).is_err());
        assert!(send_post(&conn, b"h", b"/x\r\n", b"", far()).is_err());
    }
}
