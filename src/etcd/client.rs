//! The calls withlock makes to etcd's v3 JSON gateway, one connection each.
//!
//! Each [`Client`] owns one kept-alive connection to one endpoint and fixed
//! buffers for a request and a response; every call is bounded by an
//! absolute deadline (nanoseconds on [`crate::clock::boot_ns`]). The shapes
//! of requests and replies were checked against etcd 3.4.23 (Debian 12):
//! 64-bit integers come back as JSON strings, fields holding zero, false or
//! nothing are left out, keys and values are base64.
//!
//! Locking follows etcd's `concurrency.Mutex`, so withlock and `etcdctl
//! lock NAME` exclude each other: a holder or waiter is the key
//! `NAME/<lease id in hex>` under its lease, and the owner is the key under
//! `NAME/` with the lowest create revision. [`Client::try_acquire`] is the
//! Mutex's one-transaction attempt; [`Client::lock_send`] and
//! [`Client::lock_receive`] are the server-side blocking lock
//! (`/v3/lock/lock`), for a dedicated connection the caller polls.

use super::{Address, Endpoint, Error, KEY_MAX, Key, Message};
use crate::clock;
use crate::etcd::base64;
use crate::etcd::http::{self, Reader};
use crate::etcd::jsonread::{self, Value};
use crate::etcd::net::{self, Conn};
use crate::text::{Line, LineBuf};

/// The largest request body: a transaction names the key four times and
/// may carry a value (a holder record of up to 1 KB), all base64.
pub const REQUEST_MAX: usize = 4096;
/// The largest response, head and body.
pub const RESPONSE_MAX: usize = 16384;

/// A lease: its id and the TTL the server granted, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub ttl: i64,
}

/// The outcome of [`Client::try_acquire`].
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // Some fields only for the tests and for debugging.
pub struct Attempt {
    /// Our key, `NAME/<lease hex>`, and its create revision.
    pub my_key: Key,
    pub my_revision: i64,
    /// The key with the lowest create revision under `NAME/`: the holder.
    pub owner_key: Key,
    pub owner_revision: i64,
    /// The owner's lease (0 if it has none).
    pub owner_lease: i64,
    /// How many keys are under `NAME/`: the holder and the waiters.
    pub count: i64,
    /// The store's revision when the transaction ran.
    pub header_revision: i64,
}

impl Attempt {
    /// Whether we hold the lock: our key is the oldest.
    pub fn acquired(&self) -> bool {
        self.owner_revision == self.my_revision
    }
}

/// What etcd says about one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub create_revision: i64,
    pub mod_revision: i64,
    /// 0 if the key has no lease.
    pub lease: i64,
}

/// The reply of `/v3/lock/lock`: the key we own, and the store's revision.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // Some fields only for the tests and for debugging.
pub struct Locked {
    pub key: Key,
    pub header_revision: i64,
}

/// One connection to one etcd endpoint, and its buffers.
pub struct Client<'a> {
    endpoint: Endpoint<'a>,
    conn: Conn,
    reader: Reader,
    state: State,
    /// A `/v3/lock/lock` is outstanding: no other call may use the connection.
    locking: bool,
    /// The last reply: its HTTP status, and where its body lies in `response`.
    status: u16,
    body: (usize, usize),
    request: LineBuf<REQUEST_MAX>,
    response: [u8; RESPONSE_MAX],
}

/// What the connection is good for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// New: nothing sent yet.
    Fresh,
    /// It carried a whole exchange and was kept alive; the server may
    /// have closed it since (servers close idle connections).
    Used,
    /// Unusable (an error, a timeout, or the server closes it): the next
    /// call connects again.
    Broken,
}

/// Connect to the first endpoint of `address` that answers. Each attempt
/// waits at most `each_ns` nanoseconds, and none goes past `deadline`;
/// `failed` hears about every endpoint that could not be reached, and the
/// last failure is returned if none could.
pub fn connect<'a>(
    address: &Address<'a>,
    each_ns: u64,
    deadline: u64,
    failed: &mut dyn FnMut(&Endpoint<'a>, &Error),
) -> Result<Client<'a>, Error> {
    let mut last = Error::Http(http::Error::Timeout);
    for endpoint in address.endpoints() {
        let attempt_deadline = clock::boot_ns().saturating_add(each_ns).min(deadline);
        match net::connect(&endpoint.host, endpoint.port, attempt_deadline) {
            Ok(conn) => return Ok(Client::new(*endpoint, conn)),
            Err(e) => {
                last = e.into();
                failed(endpoint, &last);
            }
        }
        if clock::boot_ns() >= deadline {
            break;
        }
    }
    Err(last)
}

impl<'a> Client<'a> {
    /// A client on a connection already made to `endpoint`.
    pub fn new(endpoint: Endpoint<'a>, conn: Conn) -> Client<'a> {
        Client {
            endpoint,
            conn,
            reader: Reader::new(),
            state: State::Fresh,
            locking: false,
            status: 0,
            body: (0, 0),
            request: LineBuf::new(),
            response: [0; RESPONSE_MAX],
        }
    }

    #[cfg(test)]
    pub fn endpoint(&self) -> &Endpoint<'a> {
        &self.endpoint
    }

    /// The connection's descriptor, for the caller's `poll` (readable: a
    /// reply, or the server closing, has arrived).
    pub fn raw_fd(&self) -> core::ffi::c_int {
        self.conn.raw()
    }

    /// Grant a lease of `ttl` seconds (`POST /v3/lease/grant`).
    pub fn grant(&mut self, ttl: i64, deadline: u64) -> Result<Lease, Error> {
        let body = self.body();
        body.push(b"{\"TTL\":");
        push_i64(body, ttl);
        body.push(b"}");
        let reply = self.call(b"/v3/lease/grant", deadline)?;
        let id = int(&reply, b"ID")?.ok_or(Error::Reply("no lease ID in the grant"))?;
        if id <= 0 {
            return Err(Error::Reply("a lease ID that is not positive"));
        }
        let ttl = int(&reply, b"TTL")?.unwrap_or(0);
        Ok(Lease { id, ttl })
    }

    /// Renew lease `id` once (`POST /v3/lease/keepalive`): its new TTL in
    /// seconds. 0 means the lease is gone (etcd 3.4 answers an expired or
    /// revoked lease with 200 and a result without a TTL, not an error).
    pub fn keepalive(&mut self, id: i64, deadline: u64) -> Result<i64, Error> {
        self.with_lease_id(id);
        let reply = self.call(b"/v3/lease/keepalive", deadline)?;
        if int(&reply, b"result.ID")? != Some(id) {
            return Err(Error::Reply("the keepalive answer is for another lease"));
        }
        Ok(int(&reply, b"result.TTL")?.unwrap_or(0).max(0))
    }

    /// Revoke lease `id`, deleting its keys (`POST /v3/lease/revoke`). A
    /// lease already gone is [`Error::is_lease_not_found`].
    pub fn revoke(&mut self, id: i64, deadline: u64) -> Result<(), Error> {
        self.with_lease_id(id);
        self.call(b"/v3/lease/revoke", deadline).map(drop)
    }

    /// One attempt to take lock `name` for `lease`, exactly as etcd's
    /// `concurrency.Mutex` does it (`POST /v3/kv/txn`): if our key
    /// `NAME/<lease hex>` does not exist, put it (holding `value`, under the
    /// lease) and read the owner, the oldest key under `NAME/`; else read
    /// our key and the owner. We hold the lock iff the owner is our key
    /// ([`Attempt::acquired`]). If not, our key stays queued: delete it (or
    /// revoke the lease) to give up, as etcd's `TryLock` does.
    pub fn try_acquire(
        &mut self,
        name: &[u8],
        lease: i64,
        value: &[u8],
        deadline: u64,
    ) -> Result<Attempt, Error> {
        let my_key = Key::lock_key(name, lease)?;
        let mut prefix = [0u8; KEY_MAX + 1];
        let prefix = prefix.get_mut(..name.len() + 1).ok_or(Error::TooLong)?;
        prefix[..name.len()].copy_from_slice(name);
        prefix[name.len()] = b'/';
        let key = my_key.as_bytes();
        let body = self.body();
        push_put_if_created(body, key, 0, value, lease);
        body.push(b",");
        push_owner_range(body, prefix);
        body.push(b"],\"failure\":[{\"request_range\":{");
        push_b64(body, b"key", key);
        body.push(b"}},");
        push_owner_range(body, prefix);
        body.push(b"]}");
        let reply = self.call(b"/v3/kv/txn", deadline)?;
        let header_revision = header_revision(&reply)?;
        let my_revision = if succeeded(&reply)? {
            header_revision
        } else {
            revision(&reply, b"responses[0].response_range.kvs[0].create_revision")?
                .ok_or(Error::Reply("our key is missing from the transaction's answer"))?
        };
        let owner = reply.at(b"responses[1].response_range").map_err(bad)?;
        let owner = owner.ok_or(Error::Reply("no owner range in the transaction's answer"))?;
        let count = count(&owner)?;
        let attempt = match owner.at(b"kvs[0]").map_err(bad)? {
            Some(kv) => Attempt {
                my_key,
                my_revision,
                owner_key: Key::from_b64(&field(&kv, b"key")?.ok_or(Error::Reply("owner without a key"))?)?,
                owner_revision: revision(&kv, b"create_revision")?.unwrap_or(0),
                owner_lease: lease_id(&kv)?,
                count,
                header_revision,
            },
            // No key at all under the prefix: ours is the only one (as etcd
            // reasons; within one transaction it cannot really happen).
            None => Attempt {
                my_key,
                my_revision,
                owner_key: my_key,
                owner_revision: my_revision,
                owner_lease: lease,
                count,
                header_revision,
            },
        };
        check_attempt(&attempt, prefix, lease)?;
        Ok(attempt)
    }

    /// Put `value` into `key` under `lease` if the key still has create
    /// revision `revision` (`POST /v3/kv/txn`): whether it had (a key
    /// deleted, or deleted and made again, is not ours any more).
    pub fn replace_value(
        &mut self,
        key: &[u8],
        revision: i64,
        lease: i64,
        value: &[u8],
        deadline: u64,
    ) -> Result<bool, Error> {
        let body = self.body();
        push_put_if_created(body, key, revision, value, lease);
        body.push(b"]}");
        let reply = self.call(b"/v3/kv/txn", deadline)?;
        header_revision(&reply)?;
        succeeded(&reply)
    }

    /// Ask for lock `name` for `lease` with `POST /v3/lock/lock`, which
    /// answers only once the lock is ours (or the request fails). Follow
    /// with [`Client::lock_receive`]; until then the connection carries
    /// nothing else. The request always goes out on a new connection, so
    /// that a kept-alive one the server closed cannot pass for a failure.
    /// To give up waiting, drop the client: etcd (3.4, verified) then
    /// cancels the request and deletes our key `NAME/<lease hex>`.
    pub fn lock_send(&mut self, name: &[u8], lease: i64, deadline: u64) -> Result<(), Error> {
        if self.locking {
            return Err(Error::Reply("a lock request is already outstanding on this connection"));
        }
        let body = self.body();
        body.push(b"{");
        push_b64(body, b"name", name);
        body.push(b",\"lease\":");
        push_i64(body, lease);
        body.push(b"}");
        if self.state == State::Used {
            self.state = State::Broken;
        }
        self.ready(deadline)?;
        self.send(b"/v3/lock/lock", deadline)?;
        self.locking = true;
        Ok(())
    }

    /// Wait for the answer to [`Client::lock_send`] until `deadline`:
    /// the key etcd says we own. On [`Error::is_timeout`] the request is
    /// still outstanding; call again. etcd 3.4 may answer even when our
    /// lease expired while we waited (its key is gone then): check the key
    /// with [`Client::get`] (on another connection) before trusting it;
    /// its create revision is the lock's fencing token.
    pub fn lock_receive(&mut self, deadline: u64) -> Result<Locked, Error> {
        if !self.locking {
            return Err(Error::Reply("no lock request is outstanding on this connection"));
        }
        let received = self.exchange(deadline);
        if !matches!(received, Err(Error::Http(http::Error::Timeout))) {
            self.locking = false;
        }
        received?;
        let reply = self.reply()?;
        let key = field(&reply, b"key")?.ok_or(Error::Reply("no key in the lock's answer"))?;
        Ok(Locked { key: Key::from_b64(&key)?, header_revision: header_revision(&reply)? })
    }

    #[cfg(test)]
    /// Put `key` = `value`, under `lease` unless it is 0 (`POST
    /// /v3/kv/put`): the store's new revision.
    pub fn put(&mut self, key: &[u8], value: &[u8], lease: i64, deadline: u64) -> Result<i64, Error> {
        let body = self.body();
        body.push(b"{");
        push_b64(body, b"key", key);
        body.push(b",");
        push_b64(body, b"value", value);
        if lease != 0 {
            body.push(b",\"lease\":");
            push_i64(body, lease);
        }
        body.push(b"}");
        let reply = self.call(b"/v3/kv/put", deadline)?;
        header_revision(&reply)
    }

    /// What etcd knows of `key` (`POST /v3/kv/range`, keys only); `None`
    /// if it does not exist.
    pub fn get(&mut self, key: &[u8], deadline: u64) -> Result<Option<KeyInfo>, Error> {
        let body = self.body();
        body.push(b"{");
        push_b64(body, b"key", key);
        body.push(b",\"keys_only\":true}");
        let reply = self.call(b"/v3/kv/range", deadline)?;
        let Some(kv) = reply.at(b"kvs[0]").map_err(bad)? else { return Ok(None) };
        Ok(Some(KeyInfo {
            create_revision: revision(&kv, b"create_revision")?
                .ok_or(Error::Reply("a key without a create revision"))?,
            mod_revision: revision(&kv, b"mod_revision")?.unwrap_or(0),
            lease: lease_id(&kv)?,
        }))
    }

    /// The keys under `prefix` (with their values), oldest first, at most
    /// `limit` of them (0: no limit, but the reply must fit
    /// [`RESPONSE_MAX`]) — for `--status`: `NAME/` lists the holder and the
    /// waiters. The answer borrows the client until the next call.
    pub fn range_prefix(&mut self, prefix: &[u8], limit: u32, deadline: u64) -> Result<Range<'_>, Error> {
        let body = self.body();
        body.push(b"{");
        push_prefix(body, prefix);
        body.push(b",\"sort_order\":\"ASCEND\",\"sort_target\":\"CREATE\"");
        if limit != 0 {
            body.push(b",\"limit\":").push_u64(u64::from(limit));
        }
        body.push(b"}");
        let reply = self.call(b"/v3/kv/range", deadline)?;
        let kvs = reply.get(b"kvs").map_err(bad)?.map(|kvs| kvs.elements()).transpose().map_err(bad)?;
        let more = reply.get(b"more").map_err(bad)?.map(|v| v.as_bool()).transpose().map_err(bad)?;
        Ok(Range {
            header_revision: header_revision(&reply)?,
            count: count(&reply)?,
            more: more == Some(true),
            kvs,
        })
    }

    #[cfg(test)]
    /// Delete `key` (`POST /v3/kv/deleterange`): how many keys went (0 or 1).
    pub fn delete(&mut self, key: &[u8], deadline: u64) -> Result<i64, Error> {
        let body = self.body();
        body.push(b"{");
        push_b64(body, b"key", key);
        body.push(b"}");
        let reply = self.call(b"/v3/kv/deleterange", deadline)?;
        Ok(int(&reply, b"deleted")?.unwrap_or(0))
    }

    /// The request body, emptied, to build the next request in.
    fn body(&mut self) -> &mut Line {
        let line = self.request.line();
        line.clear();
        line
    }

    fn with_lease_id(&mut self, id: i64) {
        let body = self.body();
        body.push(b"{\"ID\":");
        push_i64(body, id);
        body.push(b"}");
    }

    /// Send the request body built in `self.request` to `path`.
    fn send(&mut self, path: &[u8], deadline: u64) -> Result<(), Error> {
        let body = self.request.line();
        if body.truncated() {
            return Err(Error::TooLong);
        }
        let sent = http::send_post(&self.conn, self.endpoint.text, path, body.as_bytes(), deadline);
        if sent.is_err() {
            self.state = State::Broken;
        }
        Ok(sent?)
    }

    /// Make the connection again if it is broken.
    fn ready(&mut self, deadline: u64) -> Result<(), Error> {
        if self.state == State::Broken {
            self.conn = net::connect(&self.endpoint.host, self.endpoint.port, deadline)?;
            self.reader = Reader::new();
            self.state = State::Fresh;
        }
        Ok(())
    }

    /// Send the request and read its reply: the reply's JSON, once an
    /// error reply has become [`Error::Server`]. A kept-alive connection
    /// that the server closed while idle (nothing of the reply came) is
    /// made again and the request sent once more: every request here may
    /// be repeated (a repeated grant leaves a spare lease to expire).
    fn call(&mut self, path: &[u8], deadline: u64) -> Result<Value<'_>, Error> {
        if self.locking {
            return Err(Error::Reply("a lock request is outstanding on this connection"));
        }
        self.ready(deadline)?;
        let reused = self.state == State::Used;
        let mut outcome = self.send(path, deadline).and_then(|()| self.exchange(deadline));
        let idle_closed = |e: &Error| match e {
            Error::Http(http::Error::Closed) => true,
            Error::Http(http::Error::Io(errno)) => matches!(errno.0, libc::EPIPE | libc::ECONNRESET),
            _ => false,
        };
        if reused && outcome.as_ref().is_err_and(idle_closed) {
            self.ready(deadline)?;
            outcome = self.send(path, deadline).and_then(|()| self.exchange(deadline));
        }
        outcome?;
        self.reply()
    }

    /// Read a whole reply into the response buffer, and note where it is.
    fn exchange(&mut self, deadline: u64) -> Result<(), Error> {
        let base = self.response.as_ptr().addr();
        match self.reader.read_response(&self.conn, deadline, &mut self.response) {
            Ok(response) => {
                self.status = response.status;
                self.body = (response.body.as_ptr().addr() - base, response.body.len());
                self.state = if response.keep_alive { State::Used } else { State::Broken };
                Ok(())
            }
            Err(e) => {
                // A late reply would be taken for the next one's; but a
                // lock request may go on waiting.
                if !(self.locking && e == http::Error::Timeout) {
                    self.state = State::Broken;
                }
                Err(e.into())
            }
        }
    }

    /// The last reply's JSON, or the error it reports.
    fn reply(&self) -> Result<Value<'_>, Error> {
        let (start, len) = self.body;
        check_reply(self.status, &self.response[start..start + len])
    }
}

/// A reply's JSON if it reports success. etcd's gateway reports errors as
/// `{"error":"...","message":"...","code":N}` with an HTTP error status; a
/// streaming call (keepalive) as `{"error":{"grpc_code":N,"http_code":N,
/// "message":"..."}}` with status 200.
fn check_reply(status: u16, body: &[u8]) -> Result<Value<'_>, Error> {
    let parsed = jsonread::parse(body);
    let json = match parsed {
        Ok(json) if json.kind() == jsonread::Kind::Object => json,
        // Not etcd's JSON (a proxy's page, Go's "404 page not found").
        _ if status != 200 => return Err(Error::Http(http::Error::Status(status))),
        Ok(_) => return Err(Error::Reply("the answer is not a JSON object")),
        Err(e) => return Err(bad(e)),
    };
    let error = json.get(b"error").map_err(bad)?;
    if status == 200 && error.is_none_or(|e| e.str_raw() == Ok(b"")) {
        return Ok(json);
    }
    // The message: "message", else "error" as a string, else error.message.
    let mut text = [0u8; 256];
    let mut message = Message::new(b"");
    for path in [&b"message"[..], b"error", b"error.message"] {
        if let Ok(Some(value)) = json.at(path)
            && value.kind() == jsonread::Kind::String
        {
            message = match value.unescape_into(&mut text) {
                Ok(plain) => Message::new(plain),
                Err(_) => Message::new(value.str_raw().unwrap_or_default()),
            };
            break;
        }
    }
    let code = [&b"code"[..], b"error.grpc_code"].iter().find_map(|path| int(&json, path).ok().flatten());
    let http_code = int(&json, b"error.http_code").ok().flatten().and_then(|c| u16::try_from(c).ok());
    let status = if status == 200 { http_code.unwrap_or(status) } else { status };
    if message.as_bytes().is_empty() {
        return Err(Error::Http(http::Error::Status(status)));
    }
    Err(Error::Server { status, code: code.unwrap_or(0), message })
}

/// The answer of [`Client::range_prefix`]: the keys, oldest first.
#[allow(dead_code)] // Some fields only for the tests and for debugging.
pub struct Range<'r> {
    pub header_revision: i64,
    /// How many keys there are under the prefix (not only those returned).
    pub count: i64,
    /// Whether the limit left some out.
    pub more: bool,
    kvs: Option<jsonread::Elements<'r>>,
}

impl<'r> Iterator for Range<'r> {
    type Item = Result<Kv<'r>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let kv = match self.kvs.as_mut()?.next()? {
            Ok(kv) => kv,
            Err(e) => return Some(Err(bad(e))),
        };
        let read = || -> Result<Kv<'r>, Error> {
            Ok(Kv {
                key: field(&kv, b"key")?.ok_or(Error::Reply("a key-value without a key"))?,
                value: field(&kv, b"value")?,
                create_revision: revision(&kv, b"create_revision")?
                    .ok_or(Error::Reply("a key without a create revision"))?,
                mod_revision: revision(&kv, b"mod_revision")?.unwrap_or(0),
                lease: lease_id(&kv)?,
            })
        };
        Some(read())
    }
}

/// One key of a [`Range`]; its key and value stay base64 until asked for.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // Some fields only for the tests and for debugging.
pub struct Kv<'r> {
    key: Value<'r>,
    value: Option<Value<'r>>,
    pub create_revision: i64,
    pub mod_revision: i64,
    /// 0 if the key has no lease.
    pub lease: i64,
}

impl Kv<'_> {
    /// The key, decoded into `out`.
    pub fn key<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8], Error> {
        super::decode_b64(&self.key, out)
    }

    /// The value (empty if none), decoded into `out`.
    pub fn value<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8], Error> {
        match &self.value {
            Some(value) => super::decode_b64(value, out),
            None => Ok(&out[..0]),
        }
    }
}

/// The members shared by the calls' replies.
fn header_revision(reply: &Value) -> Result<i64, Error> {
    revision(reply, b"header.revision")?.ok_or(Error::Reply("no header.revision in the answer"))
}

/// A revision at `path`: etcd's revisions start at 1, so a zero or negative
/// one is a server we cannot trust (left out: `None`).
fn revision(value: &Value, path: &[u8]) -> Result<Option<i64>, Error> {
    match int(value, path)? {
        Some(n) if n <= 0 => Err(Error::Reply("a revision that is not positive")),
        n => Ok(n),
    }
}

/// A `count` (of keys): never negative.
fn count(value: &Value) -> Result<i64, Error> {
    match int(value, b"count")?.unwrap_or(0) {
        n if n < 0 => Err(Error::Reply("a negative count of keys")),
        n => Ok(n),
    }
}

/// A key's lease id (0: none); lease ids are positive.
fn lease_id(kv: &Value) -> Result<i64, Error> {
    match int(kv, b"lease")?.unwrap_or(0) {
        n if n < 0 => Err(Error::Reply("a negative lease id")),
        n => Ok(n),
    }
}

/// What a lock attempt's answer must say to be believed: the owner is a
/// key under `NAME/` no younger than ours, and is ours (under `lease`) if
/// it has our revision; our key is counted.
fn check_attempt(attempt: &Attempt, prefix: &[u8], lease: i64) -> Result<(), Error> {
    if !attempt.owner_key.as_bytes().starts_with(prefix) {
        return Err(Error::Reply("the lock's owner is a key outside the lock's name"));
    }
    if attempt.owner_revision > attempt.my_revision || attempt.my_revision > attempt.header_revision {
        return Err(Error::Reply("revisions out of order"));
    }
    if attempt.acquired() && (attempt.owner_key != attempt.my_key || attempt.owner_lease != lease) {
        return Err(Error::Reply("another key with our key's revision"));
    }
    if attempt.count < 1 {
        return Err(Error::Reply("our key is not counted"));
    }
    Ok(())
}

fn bad(e: jsonread::Malformed) -> Error {
    Error::Reply(e.0)
}

fn field<'r>(value: &Value<'r>, path: &[u8]) -> Result<Option<Value<'r>>, Error> {
    value.at(path).map_err(bad)
}

/// An integer at `path` (etcd's int64 fields are JSON strings); `None` if
/// left out (etcd leaves out zeros).
fn int(value: &Value, path: &[u8]) -> Result<Option<i64>, Error> {
    field(value, path)?.map(|v| v.as_i64()).transpose().map_err(bad)
}

fn push_i64(line: &mut Line, n: i64) {
    // As a JSON string, the way etcd writes its int64 fields.
    line.push(b"\"");
    if n < 0 {
        line.push(b"-");
    }
    line.push_u64(n.unsigned_abs()).push(b"\"");
}

/// `"name":"<base64 of bytes>"`.
fn push_b64(line: &mut Line, name: &[u8], bytes: &[u8]) {
    line.push(b"\"").push(name).push(b"\":\"");
    base64::push(line, bytes);
    line.push(b"\"");
}

/// `"key":...,"range_end":...` for every key that starts with `prefix`:
/// the end is the prefix with its last byte below 0xff incremented (and
/// what follows dropped); a prefix of only 0xff bytes, or none, has no end
/// (`"\0"`: to the end of the keys), as in etcd's `GetPrefixRangeEnd`.
fn push_prefix(line: &mut Line, prefix: &[u8]) {
    let key = if prefix.is_empty() { &b"\0"[..] } else { prefix };
    push_b64(line, b"key", key);
    line.push(b",");
    let mut end = [0u8; KEY_MAX + 1];
    let end = match prefix.iter().rposition(|&b| b != 0xff) {
        Some(at) if at < end.len() => {
            end[..at].copy_from_slice(&prefix[..at]);
            end[at] = prefix[at] + 1;
            &end[..=at]
        }
        _ => &b"\0"[..],
    };
    push_b64(line, b"range_end", end);
}

/// The start of a transaction that puts `value` into `key` under `lease`
/// if the key's create revision is `revision` (0: the key does not exist),
/// up to the end of its first success operation.
fn push_put_if_created(body: &mut Line, key: &[u8], revision: i64, value: &[u8], lease: i64) {
    body.push(b"{\"compare\":[{");
    push_b64(body, b"key", key);
    body.push(b",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":");
    push_i64(body, revision);
    body.push(b"}],\"success\":[{\"request_put\":{");
    push_b64(body, b"key", key);
    body.push(b",");
    push_b64(body, b"value", value);
    body.push(b",\"lease\":");
    push_i64(body, lease);
    body.push(b"}}");
}

/// Whether a transaction's comparisons held.
fn succeeded(reply: &Value) -> Result<bool, Error> {
    let succeeded = reply.get(b"succeeded").map_err(bad)?.map(|v| v.as_bool()).transpose().map_err(bad)?;
    Ok(succeeded == Some(true))
}

/// `{"request_range":{...}}` for the owner of a lock: the oldest key under
/// `prefix` (`clientv3.WithFirstCreate`).
fn push_owner_range(line: &mut Line, prefix: &[u8]) {
    line.push(b"{\"request_range\":{");
    push_prefix(line, prefix);
    line.push(b",\"sort_order\":\"ASCEND\",\"sort_target\":\"CREATE\",\"limit\":\"1\"}}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::parse_address;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Child, Command, Stdio};
    use std::string::String;
    use std::vec::Vec;

    use crate::testing::far;

    fn soon() -> u64 {
        clock::boot_ns() + 100_000_000
    }

    #[test]
    fn error_replies() {
        let message = |e: Error| match e {
            Error::Server { status, code, message } => {
                (status, code, String::from_utf8(message.as_bytes().to_vec()).unwrap())
            }
            other => panic!("{other:?}"),
        };
        // Real etcd 3.4.23 error bodies.
        let lease = br#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#;
        assert_eq!(
            message(check_reply(404, lease).unwrap_err()),
            (404, 5, "etcdserver: requested lease not found".into())
        );
        let eof = br#"{"error":"unexpected EOF","message":"unexpected EOF","code":3}"#;
        assert_eq!(message(check_reply(400, eof).unwrap_err()), (400, 3, "unexpected EOF".into()));
        // grpc-gateway's form for streams (keepalive), inside a 200.
        let stream = br#"{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}"#;
        assert_eq!(message(check_reply(200, stream).unwrap_err()), (503, 14, "etcdserver: no leader".into()));
        let escaped = br#"{"message":"a \"quoted\"\nline","code":2}"#;
        assert_eq!(message(check_reply(500, escaped).unwrap_err()).2, "a \"quoted\"\nline");
        assert!(matches!(
            check_reply(404, b"404 page not found\n"),
            Err(Error::Http(http::Error::Status(404)))
        ));
        assert!(matches!(check_reply(502, b"{}"), Err(Error::Http(http::Error::Status(502)))));
        assert!(matches!(check_reply(200, b"[1]"), Err(Error::Reply(_))));
        assert!(matches!(check_reply(200, b"{\"a\":"), Err(Error::Reply(_))));
        // LeaseGrantResponse has an "error" string of its own, empty when fine.
        assert!(check_reply(200, br#"{"ID":"1","TTL":"5","error":""}"#).is_ok());
        assert!(check_reply(200, br#"{"ID":"1","error":"lease exists"}"#).is_err());
    }

    /// Numbers a server must not send: they are refused, not used.
    #[test]
    fn untrusted_numbers_are_refused() {
        let json = |text: &'static str| jsonread::parse(text.as_bytes()).unwrap();
        assert_eq!(revision(&json(r#"{"r":"7"}"#), b"r").unwrap(), Some(7));
        assert_eq!(revision(&json(r#"{}"#), b"r").unwrap(), None);
        for bad in [r#"{"r":"0"}"#, r#"{"r":"-7"}"#] {
            assert!(matches!(revision(&json(bad), b"r"), Err(Error::Reply(_))), "{bad}");
        }
        assert_eq!(count(&json(r#"{"count":"2"}"#)).unwrap(), 2);
        assert!(count(&json(r#"{"count":"-1"}"#)).is_err());
        assert!(lease_id(&json(r#"{"lease":"-3"}"#)).is_err());
        assert!(header_revision(&json(r#"{"header":{"revision":"-1"}}"#)).is_err());

        let ours = Key::lock_key(b"n", 0x1f).unwrap();
        let good = Attempt {
            my_key: ours,
            my_revision: 5,
            owner_key: ours,
            owner_revision: 5,
            owner_lease: 0x1f,
            count: 1,
            header_revision: 5,
        };
        assert!(check_attempt(&good, b"n/", 0x1f).is_ok());
        let other = Key::lock_key(b"n", 0x2f).unwrap();
        let queued = Attempt { owner_key: other, owner_revision: 3, owner_lease: 0x2f, count: 2, ..good };
        assert!(check_attempt(&queued, b"n/", 0x1f).is_ok());
        let outside = Key::lock_key(b"elsewhere", 0x2f).unwrap();
        for bad in [
            Attempt { owner_key: outside, owner_revision: 3, ..good },
            Attempt { owner_key: other, ..good },
            Attempt { owner_lease: 0x2f, ..good },
            Attempt { owner_revision: 6, ..queued },
            Attempt { my_revision: 9, ..queued },
            Attempt { count: 0, ..good },
        ] {
            assert!(check_attempt(&bad, b"n/", 0x1f).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn request_bodies() {
        let text = |f: &dyn Fn(&mut Line)| crate::testing::shown(f);
        // wl-test/ .. wl-test0, as etcdctl's WithPrefix sends it.
        assert_eq!(
            text(&|l| push_prefix(l, b"wl-test/")),
            r#""key":"d2wtdGVzdC8=","range_end":"d2wtdGVzdDA=""#
        );
        assert_eq!(text(&|l| push_prefix(l, b"a\xff")), r#""key":"Yf8=","range_end":"Yg==""#);
        assert_eq!(text(&|l| push_prefix(l, b"\xff")), r#""key":"/w==","range_end":"AA==""#);
        assert_eq!(text(&|l| push_prefix(l, b"")), r#""key":"AA==","range_end":"AA==""#);
        assert_eq!(text(&|l| push_i64(l, -12)), r#""-12""#);
    }

    /// A fake server that answers each request on a connection with the
    /// next canned response, closing the connection after those marked.
    fn fake_server(script: Vec<(&'static [u8], bool)>) -> (u16, std::thread::JoinHandle<Vec<Vec<u8>>>) {
        let (listener, port) = crate::testing::listener();
        let handle = std::thread::spawn(move || {
            let mut requests = Vec::new();
            let mut script = script.into_iter();
            'connections: while let Ok((mut s, _)) = listener.accept() {
                loop {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if s.read(&mut byte).unwrap_or(0) == 0 {
                            continue 'connections;
                        }
                        head.push(byte[0]);
                    }
                    let text = String::from_utf8_lossy(&head).to_string();
                    let length = text.lines().find_map(|l| l.strip_prefix("Content-Length: ")).unwrap();
                    let mut body = std::vec![0u8; length.trim().parse().unwrap()];
                    s.read_exact(&mut body).unwrap();
                    head.extend_from_slice(&body);
                    requests.push(head);
                    let Some((response, close)) = script.next() else { break 'connections };
                    s.write_all(response).unwrap();
                    if script.len() == 0 {
                        break 'connections;
                    }
                    if close {
                        continue 'connections;
                    }
                }
            }
            requests
        });
        (port, handle)
    }

    const KEEPALIVE_7: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3b\r\n{\"result\":{\"header\":{\"revision\":\"1\"},\"ID\":\"7\",\"TTL\":\"10\"}}\n\r\n0\r\n\r\n";

    #[test]
    fn an_idle_closed_connection_is_made_again() {
        // The server closes the connection after the first answer, as Go's
        // server does to idle ones: the second keepalive goes out again on
        // a new connection; an answer cut short is not repeated.
        let cut: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"res";
        let (port, server) = fake_server(std::vec![(KEEPALIVE_7, true), (KEEPALIVE_7, false), (cut, true)]);
        let arg = std::format!("etcd://127.0.0.1:{port}/n");
        let address = parse_address(arg.as_bytes()).unwrap();
        let mut client = connect(&address, 1_000_000_000, far(), &mut |_, e| panic!("{e:?}")).unwrap();
        assert_eq!(client.keepalive(7, far()).unwrap(), 10);
        assert_eq!(client.keepalive(7, far()).unwrap(), 10);
        let cut = client.keepalive(7, far()).unwrap_err();
        assert!(matches!(cut, Error::Http(http::Error::Malformed(_))), "{cut:?}");
        drop(client);
        let requests = server.join().unwrap();
        assert_eq!(requests.len(), 3);
        assert!(requests[0].ends_with(b"\r\n\r\n{\"ID\":\"7\"}"));
        let host = std::format!("Host: 127.0.0.1:{port}\r\n");
        assert!(String::from_utf8_lossy(&requests[2]).contains(&host));
    }

    #[test]
    fn unreachable_endpoints_are_reported() {
        let closed = crate::testing::listener().1;
        let (port, server) = fake_server(std::vec![(KEEPALIVE_7, false)]);
        let arg = std::format!("etcd://127.0.0.1:{closed},[::1]:{closed},localhost:{port}/n");
        let address = parse_address(arg.as_bytes()).unwrap();
        let mut failures = Vec::new();
        let mut client = connect(&address, 1_000_000_000, far(), &mut |endpoint, e| {
            let mut line = LineBuf::<200>::new();
            line.line().push(b"cannot reach etcd at ").push(endpoint.text).push(b": ");
            e.push_to(line.line());
            failures.push(String::from_utf8(line.line().as_bytes().to_vec()).unwrap());
        })
        .unwrap();
        assert_eq!(failures[0], std::format!("cannot reach etcd at 127.0.0.1:{closed}: Connection refused"));
        assert_eq!(failures.len(), 2, "{failures:?}"); // ::1 refuses too, or has no address
        assert_eq!(client.endpoint().port, port);
        assert_eq!(client.keepalive(7, far()).unwrap(), 10);
        drop(client);
        server.join().unwrap();
        // None answers: the last failure.
        let arg = std::format!("etcd://127.0.0.1:{closed}/n");
        let address = parse_address(arg.as_bytes()).unwrap();
        let refused = connect(&address, 1_000_000_000, far(), &mut |_, _| {});
        assert!(matches!(refused, Err(Error::Http(http::Error::Io(e))) if e.0 == libc::ECONNREFUSED));
    }

    /// An etcd server of our own on loopback, in a temporary directory;
    /// killed and removed on drop.
    struct Server {
        child: Child,
        dir: std::path::PathBuf,
        port: u16,
    }

    fn free_port() -> u16 {
        crate::testing::listener().1
    }

    fn installed(program: &str) -> bool {
        Command::new(program).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
    }

    impl Server {
        /// Start one, or say why not and return `None`.
        fn start() -> Option<Server> {
            if !installed("etcd") {
                std::eprintln!(
                    "SKIPPED: etcd is not installed (Debian: apt-get install etcd-server etcd-client)"
                );
                return None;
            }
            let (port, peer) = (free_port(), free_port());
            let dir =
                std::env::temp_dir().join(std::format!("withlock-etcd-wire-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let log = std::fs::File::create(dir.join("etcd.log")).unwrap();
            let client_url = std::format!("http://127.0.0.1:{port}");
            let peer_url = std::format!("http://127.0.0.1:{peer}");
            let child = Command::new("etcd")
                .args(["--name", "t", "--data-dir"])
                .arg(dir.join("data"))
                .args(["--listen-client-urls", &client_url, "--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url, "--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &std::format!("t={peer_url}"), "--initial-cluster-state", "new"])
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let server = Server { child, dir, port };
            // Ready when it answers a range.
            let arg = server.address("health");
            let address = parse_address(arg.as_bytes()).unwrap();
            let give_up = clock::boot_ns() + 20_000_000_000;
            while clock::boot_ns() < give_up {
                if let Ok(mut c) = connect(&address, 1_000_000_000, far(), &mut |_, _| {})
                    && c.get(b"health", far()).is_ok()
                {
                    return Some(server);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            panic!("etcd did not start; see {}", server.dir.join("etcd.log").display());
        }

        fn address(&self, name: &str) -> String {
            std::format!("etcd://127.0.0.1:{}/{name}", self.port)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn client<'a>(address: &Address<'a>) -> Client<'a> {
        connect(address, 1_000_000_000, far(), &mut |e, err| panic!("{:?}: {err:?}", e.text)).unwrap()
    }

    fn etcdctl(server: &Server) -> Command {
        let mut command = Command::new("etcdctl");
        command.env("ETCDCTL_API", "3").arg(std::format!("--endpoints=127.0.0.1:{}", server.port));
        command
    }

    /// Every call against a real etcd, the lock both ways, and exclusion
    /// with `etcdctl lock`.
    #[test]
    fn against_a_real_etcd() {
        let Some(server) = Server::start() else { return };
        let arg = server.address("wire/job");
        let address = parse_address(arg.as_bytes()).unwrap();
        let name = address.name;
        let mut a = client(&address);

        let one = a.grant(30, far()).unwrap();
        assert!(one.id > 0 && one.ttl == 30, "{one:?}");
        assert_eq!(a.keepalive(one.id, far()).unwrap(), 30);

        // The first attempt takes the lock; a second one by the same lease
        // finds its own key (the transaction's else branch).
        let first = a.try_acquire(name, one.id, b"holder one", far()).unwrap();
        assert!(first.acquired(), "{first:?}");
        assert_eq!(first.my_key, Key::lock_key(name, one.id).unwrap());
        assert_eq!((first.my_revision, first.count, first.owner_lease), (first.header_revision, 1, one.id));
        let again = a.try_acquire(name, one.id, b"holder one", far()).unwrap();
        assert!(again.acquired());
        assert_eq!(again.my_revision, first.my_revision);

        // Another lease queues behind it.
        let two = a.grant(30, far()).unwrap();
        let second = a.try_acquire(name, two.id, b"", far()).unwrap();
        assert!(!second.acquired());
        assert_eq!((second.owner_key, second.owner_revision), (first.my_key, first.my_revision));
        assert_eq!((second.count, second.owner_lease), (2, one.id));
        assert!(second.my_revision > first.my_revision);

        // --status: the holder and the waiter, oldest first.
        let mut prefix = name.to_vec();
        prefix.push(b'/');
        let range = a.range_prefix(&prefix, 0, far()).unwrap();
        assert_eq!((range.count, range.more), (2, false));
        let mut seen = Vec::new();
        for kv in range {
            let kv = kv.unwrap();
            let (mut key, mut value) = ([0u8; 64], [0u8; 64]);
            let key = kv.key(&mut key).unwrap().to_vec();
            let value = kv.value(&mut value).unwrap().to_vec();
            seen.push((key, value, kv.create_revision, kv.lease));
        }
        assert_eq!(
            seen[0],
            (first.my_key.as_bytes().to_vec(), b"holder one".to_vec(), first.my_revision, one.id)
        );
        assert_eq!(seen[1], (second.my_key.as_bytes().to_vec(), Vec::new(), second.my_revision, two.id));
        let limited = a.range_prefix(&prefix, 1, far()).unwrap();
        assert_eq!((limited.count, limited.more, limited.count()), (2, true, 1));
        assert_eq!(a.range_prefix(b"wire/none/", 0, far()).unwrap().count(), 0);

        let info = a.get(first.my_key.as_bytes(), far()).unwrap().unwrap();
        assert_eq!((info.create_revision, info.lease), (first.my_revision, one.id));
        assert_eq!(a.get(b"wire/missing", far()).unwrap(), None);

        // The blocking lock, on a connection of its own: it waits while
        // lease one holds, and answers once that lease is revoked.
        let mut waiter = client(&address);
        waiter.lock_send(name, two.id, far()).unwrap();
        assert!(waiter.lock_receive(soon()).unwrap_err().is_timeout());
        assert!(matches!(waiter.keepalive(two.id, far()), Err(Error::Reply(_))));
        a.revoke(one.id, far()).unwrap();
        let locked = waiter.lock_receive(far()).unwrap();
        assert_eq!(locked.key, second.my_key);
        let info = a.get(locked.key.as_bytes(), far()).unwrap().unwrap();
        assert_eq!(info.create_revision, second.my_revision);
        // The lock connection is free again.
        assert_eq!(waiter.keepalive(two.id, far()).unwrap(), 30);

        // A lease that is gone: keepalive says TTL 0 (etcd 3.4: 200, no
        // TTL), revoke and the lock calls say "requested lease not found".
        assert_eq!(a.keepalive(one.id, far()).unwrap(), 0);
        let gone = a.revoke(one.id, far()).unwrap_err();
        assert!(gone.is_lease_not_found(), "{gone:?}");
        assert!(matches!(gone, Error::Server { status: 404, code: 5, .. }), "{gone:?}");
        let gone = a.try_acquire(b"wire/other", one.id, b"", far()).unwrap_err();
        assert!(gone.is_lease_not_found(), "{gone:?}");
        waiter.lock_send(b"wire/other", one.id, far()).unwrap();
        let gone = waiter.lock_receive(far()).unwrap_err();
        assert!(gone.is_lease_not_found(), "{gone:?}");
        assert!(matches!(gone, Error::Server { status: 500, code: 2, .. }), "{gone:?}");

        // Giving up a wait: dropping the lock's client makes etcd delete
        // the waiting key.
        let three = a.grant(30, far()).unwrap();
        let four = a.grant(30, far()).unwrap();
        assert!(a.try_acquire(b"wire/giveup", three.id, b"", far()).unwrap().acquired());
        let mut quitter = client(&address);
        quitter.lock_send(b"wire/giveup", four.id, far()).unwrap();
        let queued = Key::lock_key(b"wire/giveup", four.id).unwrap();
        let mut until = |present: bool| {
            let give_up = clock::boot_ns() + 5_000_000_000;
            while a.get(queued.as_bytes(), far()).unwrap().is_some() != present {
                assert!(
                    clock::boot_ns() < give_up,
                    "the waiting key did not {}",
                    if present { "appear" } else { "go" }
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        };
        until(true);
        drop(quitter);
        until(false);

        // Plain keys.
        let rev = a.put(b"wire/plain", b"v", 0, far()).unwrap();
        assert_eq!(a.get(b"wire/plain", far()).unwrap().unwrap().create_revision, rev);
        assert_eq!(a.delete(b"wire/plain", far()).unwrap(), 1);
        assert_eq!(a.delete(b"wire/plain", far()).unwrap(), 0);
        let rev = a.put(b"wire/leased", b"", two.id, far()).unwrap();
        assert_eq!(
            a.get(b"wire/leased", far()).unwrap().unwrap(),
            KeyInfo { create_revision: rev, mod_revision: rev, lease: two.id }
        );

        // Too long for the request buffer.
        assert!(matches!(a.put(b"k", &[b'x'; REQUEST_MAX], 0, far()), Err(Error::TooLong)));
        assert_eq!(a.keepalive(two.id, far()).unwrap(), 30);

        expired_waiter_gets_an_answer(&server);
        if installed("etcdctl") {
            interoperates_with_etcdctl(&server);
        } else {
            std::eprintln!("SKIPPED the etcdctl checks: etcdctl is not installed");
        }
    }

    /// etcd 3.4's `/v3/lock/lock` answers a waiter whose lease expired
    /// while it waited, once the holder goes, with a key that no longer
    /// exists: a caller must check the key before trusting the answer.
    /// Also: keepalive on a lease that expired (not revoked) says 0.
    fn expired_waiter_gets_an_answer(server: &Server) {
        let arg = server.address("wire/expiry");
        let address = parse_address(arg.as_bytes()).unwrap();
        let mut a = client(&address);
        let holder = a.grant(4, far()).unwrap();
        let waiter_lease = a.grant(2, far()).unwrap();
        assert!(a.try_acquire(address.name, holder.id, b"", far()).unwrap().acquired());
        let mut waiter = client(&address);
        waiter.lock_send(address.name, waiter_lease.id, far()).unwrap();
        let locked = waiter.lock_receive(clock::boot_ns() + 20_000_000_000).unwrap();
        assert_eq!(locked.key, Key::lock_key(address.name, waiter_lease.id).unwrap());
        assert_eq!(a.get(locked.key.as_bytes(), far()).unwrap(), None, "the key of an expired lease exists");
        assert_eq!(a.keepalive(waiter_lease.id, far()).unwrap(), 0);
    }

    /// withlock's keys and etcdctl's are the same: each sees the other hold.
    fn interoperates_with_etcdctl(server: &Server) {
        let arg = server.address("wire/shared");
        let address = parse_address(arg.as_bytes()).unwrap();
        let name = address.name;
        let mut a = client(&address);

        // etcdctl holds: we see its key as the owner and queue behind it.
        let mut holder = etcdctl(server)
            .args([
                "lock",
                "wire/shared",
                "--",
                "sh",
                "-c",
                "echo \"$ETCD_LOCK_KEY $ETCD_LOCK_REV\"; sleep 2",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let (key, rev) = line.trim().split_once(' ').unwrap();
        let lease = a.grant(30, far()).unwrap();
        let attempt = a.try_acquire(name, lease.id, b"", far()).unwrap();
        assert!(!attempt.acquired());
        assert_eq!(attempt.owner_key.as_bytes(), key.as_bytes());
        assert_eq!(attempt.owner_revision.to_string(), rev);
        let expected = Key::lock_key(name, attempt.owner_lease).unwrap();
        assert_eq!(expected.as_bytes(), key.as_bytes(), "etcdctl's key is NAME/<lease hex>");
        assert!(holder.wait().unwrap().success());
        // etcdctl let go (it revokes its lease): our queued key is the owner now.
        let attempt = a.try_acquire(name, lease.id, b"", far()).unwrap();
        assert!(attempt.acquired(), "{attempt:?}");

        // We hold: etcdctl waits until we let go.
        let mut waiter = etcdctl(server)
            .args(["lock", "wire/shared", "--", "echo", "etcdctl got it"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(700));
        assert!(waiter.try_wait().unwrap().is_none(), "etcdctl took a lock we hold");
        a.revoke(lease.id, far()).unwrap();
        let output = waiter.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "etcdctl got it");
    }
}
