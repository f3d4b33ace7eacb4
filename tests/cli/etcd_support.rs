//! The etcd harness: throwaway etcd servers, three-member clusters and proxies (`etcd
//! grpc-proxy`, `etcd gateway`) that a test starts as its own children, `etcdctl` as the
//! reference client, a fake etcd that answers garbage, a proxy that alters one field of a
//! real etcd's replies, endpoints that are dead or drop every
//! connection attempt, and network namespaces joined to this host by a veth pair that a test
//! can cut: a real partition on one machine.
//!
//! No traffic leaves the machine: servers listen on 127.0.0.1 and on the host side of private
//! /30s between this host and namespaces the test made (10.201.0.0/16). Everything started
//! here is killed and reaped on drop, its data directory removed, its namespace deleted.
//!
//! etcd 3.4 facts the harness relies on (checked by `etcd_facts.rs`): `etcdctl lock NAME`
//! writes the key `NAME/<lease id in hex>`; the lease TTL is at least 2 s; the JSON gateway
//! is served by etcd itself and by `etcd gateway` (a TCP proxy), not by `etcd grpc-proxy`.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::json::Json;
use crate::support::{
    Out, Running, TEST_PATH, TempDir, bin, dead, exists, is_root, read_string, run_within, unique_name,
    wait_until,
};

/// PATH for the tools the harness runs (`ip` lives in /usr/sbin on Debian).
pub const TOOL_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long a server or cluster may take to become healthy: only a broken setup takes this
/// long (a single member needs ≈ 0.5 s, a cluster ≈ 1.5 s, on an idle machine).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// etcd's documented lock-key layout: `NAME/<lease id in lowercase hex>`.
pub fn lock_key(name: &str, lease: u64) -> String {
    format!("{name}/{lease:x}")
}

// ---------------------------------------------------------------------------------------------
// Tools.

fn on_path(tool: &str) -> bool {
    TOOL_PATH.split(':').any(|dir| Path::new(dir).join(tool).is_file())
}

/// Fails the test unless `tool` is installed: the suite needs it, and `ci/test.sh` installs
/// `package` (so on CI a missing tool is a broken setup, never a reason to skip).
#[track_caller]
pub fn require_tool(tool: &str, package: &str) {
    assert!(
        on_path(tool),
        "`{tool}` is not installed: the etcd tests need it (Debian: apt-get install {package}; \
         ci/test.sh installs it as root)"
    );
}

/// Whether tests that create network namespaces may run. They need root and `ip netns`;
/// without them they fail loudly (CI runs as root). A developer without root may set
/// `WITHLOCK_TESTS_NO_NETNS=1` to skip them instead, which this says.
#[track_caller]
pub fn netns_or_skip(test: &str) -> bool {
    if std::env::var_os("WITHLOCK_TESTS_NO_NETNS").is_some_and(|v| v == "1") {
        eprintln!("skipping {test}: WITHLOCK_TESTS_NO_NETNS=1");
        return false;
    }
    assert!(
        is_root(),
        "{test} needs root to create network namespaces (CI runs as root); \
         set WITHLOCK_TESTS_NO_NETNS=1 to skip it on purpose"
    );
    require_tool("ip", "iproute2");
    true
}

/// A command for a tool, with a known PATH, an environment free of the caller's etcd
/// settings (`ETCDCTL_*`, `ETCD_*` would change what etcdctl and etcd do), and stdin from
/// /dev/null.
pub fn tool(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().env("PATH", TOOL_PATH).env("LC_ALL", "C").stdin(Stdio::null());
    cmd
}

/// Runs a tool to completion (at most 30 s) and returns what it did.
#[track_caller]
pub fn run_tool(cmd: &mut Command) -> Out {
    run_within(cmd, Duration::from_secs(30))
}

/// Runs a tool that must succeed; returns its stdout.
#[track_caller]
pub fn must(cmd: &mut Command) -> String {
    let what = format!("{cmd:?}");
    let out = run_tool(cmd);
    assert_eq!(out.code(), Some(0), "{what} failed\n{}", out.describe());
    out.stdout_str()
}

/// Polls `cond` until it holds, failing the test with `what` after `timeout` (coarse: a
/// bound only a real failure reaches).
#[track_caller]
pub fn eventually(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    assert!(wait_until(timeout, cond), "timed out after {timeout:?} waiting for: {what}");
}

/// Sets the parent-death signal of a child about to exec: servers die with the test process
/// even if it is killed (and cannot run Drop). Note it fires when the spawning *thread*
/// exits, so keep a server in the test that started it.
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl(2) and getppid(2) are async-signal-safe and touch no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Ports and endpoints.

/// Ports this process has handed out: never twice, so parallel tests cannot pick the same
/// one between finding it free and binding it.
static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A port on 127.0.0.1 that was free a moment ago (the kernel's pick for port 0). Another
/// process may still take it first: servers retry with new ports when their bind fails.
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let mut seen = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !seen.contains(&port) {
            seen.push(port);
            return port;
        }
    }
}

/// `127.0.0.1:PORT` where nothing listens: connecting is refused at once.
pub fn refused_endpoint() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// A loopback endpoint whose connection attempts hang: a socket listening with a backlog of
/// 0 whose accept queue is already full (one connection made here and never accepted), so
/// the kernel drops every further SYN — the way an unreachable host looks to a client,
/// deterministic and without root.
pub struct SynDrop {
    _listener: TcpListener,
    _filler: TcpStream,
    port: u16,
}

impl SynDrop {
    pub fn new() -> SynDrop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        // SAFETY: listen(2) on a socket owned by `listener`, which outlives the call.
        let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
        assert_eq!(rc, 0, "listen: {}", io::Error::last_os_error());
        let addr = listener.local_addr().unwrap();
        let filler =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("fill the accept queue");
        // Check the premise: a further connection attempt must time out, not be refused.
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Err(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("SynDrop: a second connection to a full backlog did not hang: {other:?}"),
        }
        SynDrop { _listener: listener, _filler: filler, port: addr.port() }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

// ---------------------------------------------------------------------------------------------
// A small HTTP/1.1 client, for health checks and etcd's JSON gateway.

/// What an HTTP server answered.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`), everything bounded by
/// `timeout`. Understands Content-Length, chunked and until-close bodies.
pub fn http(addr: &str, method: &str, path: &str, body: &str, timeout: Duration) -> io::Result<HttpReply> {
    let sock: SocketAddr =
        addr.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&sock, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no complete reply in time"));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    parse_http_reply(&raw).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn parse_http_reply(raw: &[u8]) -> Result<HttpReply, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, rest) = text.split_once("\r\n\r\n").ok_or("no end of headers")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut out = String::new();
        let mut rest = rest;
        loop {
            let (size, after) = rest.split_once("\r\n").ok_or("truncated chunk size")?;
            let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16)
                .map_err(|e| format!("bad chunk size {size:?}: {e}"))?;
            if size == 0 {
                break;
            }
            out.push_str(after.get(..size).ok_or("truncated chunk")?);
            rest = after.get(size + 2..).ok_or("truncated chunk end")?;
        }
        out
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|e| format!("bad Content-Length {len:?}: {e}"))?;
        rest.get(..len).ok_or("body shorter than its Content-Length")?.to_string()
    } else {
        rest.to_string()
    };
    Ok(HttpReply { status, headers, body })
}

/// POSTs JSON to etcd's gateway and returns the parsed reply, which must be 200.
#[track_caller]
pub fn post_json(addr: &str, path: &str, body: &str) -> Json {
    let reply = http(addr, "POST", path, body, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("POST {addr}{path} {body}: {e}"));
    assert_eq!(reply.status, 200, "POST {addr}{path} {body}: {reply:?}");
    Json::parse(&reply.body).unwrap_or_else(|e| panic!("POST {addr}{path}: invalid JSON ({e}): {reply:?}"))
}

/// Whether `GET /health` on `addr` says `{"health":"true"}` within a second.
pub fn healthy(addr: &str) -> bool {
    http(addr, "GET", "/health", "", Duration::from_secs(1))
        .is_ok_and(|r| r.status == 200 && r.body.replace(' ', "").contains(r#""health":"true""#))
}

// ---------------------------------------------------------------------------------------------
// base64 (etcd's JSON carries keys and values in it).

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn unbase64(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = B64.iter().position(|&b| b == c).ok_or_else(|| format!("not base64: {c:?}"))?;
        acc = acc << 6 | u32::try_from(v).unwrap();
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from(acc >> bits & 0xff).unwrap());
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// etcdctl.

/// One key as etcd stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: u64,
    pub mod_revision: u64,
    /// The lease the key is attached to (0: none).
    pub lease: u64,
}

impl Kv {
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }
}

/// A JSON number, or a number in a string (the gateway's 64-bit numbers), as u64.
#[track_caller]
pub fn num(j: &Json) -> u64 {
    match j {
        Json::Num(n) | Json::Str(n) => n.parse().unwrap_or_else(|_| panic!("not a u64: {n:?}")),
        other => panic!("not a number: {other:?}"),
    }
}

fn num_or_zero(j: &Json, key: &str) -> u64 {
    j.get(key).map_or(0, num)
}

/// Keys from a range reply (`etcdctl get -w json`, or the gateway's `/v3/kv/range`).
#[track_caller]
pub fn kvs_of(reply: &Json) -> Vec<Kv> {
    let Some(Json::Arr(items)) = reply.get("kvs") else {
        return Vec::new();
    };
    items
        .iter()
        .map(|kv| Kv {
            key: String::from_utf8(unbase64(kv.str_at("key")).unwrap()).unwrap(),
            value: kv.get("value").map_or_else(Vec::new, |v| match v {
                Json::Str(s) => unbase64(s).unwrap(),
                other => panic!("value is not a string: {other:?}"),
            }),
            create_revision: num_or_zero(kv, "create_revision"),
            mod_revision: num_or_zero(kv, "mod_revision"),
            lease: num_or_zero(kv, "lease"),
        })
        .collect()
}

/// etcdctl (API v3) against a list of endpoints (`HOST:PORT,...`).
#[derive(Clone, Debug)]
pub struct Etcdctl {
    endpoints: String,
}

impl Etcdctl {
    pub fn new(endpoints: impl Into<String>) -> Etcdctl {
        require_tool("etcdctl", "etcd-client");
        Etcdctl { endpoints: endpoints.into() }
    }

    /// `etcdctl --endpoints=... ` with bounded dial and command timeouts; add the command.
    pub fn cmd(&self) -> Command {
        let mut cmd = tool("etcdctl");
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoints))
            .args(["--dial-timeout=2s", "--command-timeout=5s"]);
        cmd
    }

    /// `etcdctl ... ARGS` that must succeed: its stdout.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        must(self.cmd().args(args))
    }

    /// Every key under `NAME/` (the keys `etcdctl lock NAME` and withlock use), in key order.
    #[track_caller]
    pub fn get_prefix(&self, name: &str) -> Vec<Kv> {
        self.try_get_prefix(name).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_get_prefix(&self, name: &str) -> Result<Vec<Kv>, String> {
        let prefix = format!("{name}/");
        let out = run_tool(self.cmd().args(["get", "--prefix", &prefix, "-w", "json"]));
        if out.code() != Some(0) {
            return Err(format!("etcdctl get --prefix {prefix} failed\n{}", out.describe()));
        }
        let reply = Json::parse(out.stdout_str().trim())
            .map_err(|e| format!("etcdctl get: invalid JSON ({e})\n{}", out.describe()))?;
        Ok(kvs_of(&reply))
    }

    /// The lock's owner: the key under `NAME/` with the lowest create revision.
    #[track_caller]
    pub fn owner(&self, name: &str) -> Option<Kv> {
        self.get_prefix(name).into_iter().min_by_key(|kv| kv.create_revision)
    }

    #[track_caller]
    pub fn put(&self, key: &str, value: &str) {
        self.ok(&["put", key, value]);
    }

    /// The ids of the leases the cluster has (granted, not yet revoked or expired).
    #[track_caller]
    pub fn leases(&self) -> Vec<u64> {
        let text = self.ok(&["lease", "list"]);
        text.lines()
            .skip(1)
            .map(|l| u64::from_str_radix(l.trim(), 16).unwrap_or_else(|e| panic!("lease list: {l:?}: {e}")))
            .collect()
    }

    /// `etcdctl lock NAME -- ` (TTL `ttl` seconds if given); add the job's argv.
    pub fn lock(&self, name: &str, ttl: Option<u32>) -> Command {
        let mut cmd = self.cmd();
        cmd.arg("lock");
        if let Some(ttl) = ttl {
            cmd.arg(format!("--ttl={ttl}"));
        }
        cmd.arg(name).arg("--");
        cmd
    }
}

// ---------------------------------------------------------------------------------------------
// etcd servers.

/// One etcd member, the test's child.
pub struct EtcdServer {
    name: String,
    client_port: u16,
    peer_port: u16,
    also: Vec<Ipv4Addr>,
    child: Option<Child>,
    dir: TempDir,
}

enum StartFailure {
    /// The ports were taken in the meantime: try others.
    PortInUse,
    Other(String),
}

impl EtcdServer {
    /// A single-member etcd on 127.0.0.1, healthy.
    #[track_caller]
    pub fn start() -> EtcdServer {
        EtcdServer::start_on(&[])
    }

    /// A single-member etcd listening for clients on 127.0.0.1 and on each of `also` (the
    /// host side of namespaces, which must exist already), healthy.
    #[track_caller]
    pub fn start_on(also: &[Ipv4Addr]) -> EtcdServer {
        require_tool("etcd", "etcd-server");
        let mut last = String::new();
        for _ in 0..5 {
            let (client_port, peer_port) = (free_port(), free_port());
            let name = format!("t{client_port}");
            let cluster = format!("{name}=http://127.0.0.1:{peer_port}");
            let mut server =
                EtcdServer::spawn(&name, client_port, peer_port, also, &cluster, &unique_name("etcd"));
            match server.wait_healthy(Instant::now() + START_TIMEOUT) {
                Ok(()) => return server,
                Err(StartFailure::PortInUse) => last = server.log_tail(),
                Err(StartFailure::Other(why)) => panic!("etcd did not start: {why}"),
            }
        }
        panic!("etcd could not bind free ports in 5 tries; last log:\n{last}");
    }

    /// Starts a member of the cluster `cluster` (`name=peer URL,...`) whose members share
    /// `token`; does not wait for it.
    fn spawn(
        name: &str,
        client_port: u16,
        peer_port: u16,
        also: &[Ipv4Addr],
        cluster: &str,
        token: &str,
    ) -> EtcdServer {
        let dir = TempDir::new();
        let mut listen = format!("http://127.0.0.1:{client_port}");
        for ip in also {
            listen.push_str(&format!(",http://{ip}:{client_port}"));
        }
        let log = fs::File::create(dir.join("etcd.log")).unwrap();
        let mut cmd = tool("etcd");
        cmd.arg("--name")
            .arg(name)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--listen-client-urls", &listen])
            .args(["--advertise-client-urls", &format!("http://127.0.0.1:{client_port}")])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer_port}")])
            .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer_port}")])
            .args(["--initial-cluster", cluster])
            .args(["--initial-cluster-state", "new"])
            // The cluster's own token: a member of another test's cluster that got a reused
            // port can never join this one.
            .args(["--initial-cluster-token", token])
            .args(["--logger", "zap", "--log-outputs", "stderr"])
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        die_with_parent(&mut cmd);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start etcd: {e}"));
        EtcdServer {
            name: name.to_string(),
            client_port,
            peer_port,
            also: also.to_vec(),
            child: Some(child),
            dir,
        }
    }

    fn wait_healthy(&mut self, deadline: Instant) -> Result<(), StartFailure> {
        let endpoint = self.endpoint();
        loop {
            if healthy(&endpoint) {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                let log = self.log_tail();
                return Err(if log.contains("address already in use") {
                    StartFailure::PortInUse
                } else {
                    StartFailure::Other(format!(
                        "etcd {} exited ({status}) before it was healthy:\n{log}",
                        self.name
                    ))
                });
            }
            if Instant::now() > deadline {
                return Err(StartFailure::Other(format!(
                    "etcd {} not healthy after {START_TIMEOUT:?}:\n{}",
                    self.name,
                    self.log_tail()
                )));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    pub fn client_port(&self) -> u16 {
        self.client_port
    }

    pub fn peer_port(&self) -> u16 {
        self.peer_port
    }

    /// `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// `IP:PORT` for one of the extra addresses it listens on.
    #[track_caller]
    pub fn endpoint_on(&self, ip: Ipv4Addr) -> String {
        assert!(self.also.contains(&ip), "etcd {} does not listen on {ip}", self.name);
        format!("{ip}:{}", self.client_port)
    }

    /// `etcd://127.0.0.1:PORT/NAME`: withlock's address of the lock NAME on this server.
    pub fn url(&self, name: &str) -> String {
        format!("etcd://{}/{name}", self.endpoint())
    }

    /// `etcd://IP:PORT/NAME`, through one of the extra addresses.
    #[track_caller]
    pub fn url_on(&self, ip: Ipv4Addr, name: &str) -> String {
        format!("etcd://{}/{name}", self.endpoint_on(ip))
    }

    pub fn ctl(&self) -> Etcdctl {
        Etcdctl::new(self.endpoint())
    }

    #[track_caller]
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().expect("the server was stopped").id()).unwrap()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_healthy(&self) -> bool {
        healthy(&self.endpoint())
    }

    /// SIGSTOP: the server keeps its sockets (the kernel still completes TCP handshakes) but
    /// answers nothing and its clocks run on — what a hung or swapped-out server looks like.
    /// Back once every thread has stopped: kill(2) only wakes one thread, which stops the
    /// others when it next runs; until then they serve requests (seen under load).
    pub fn freeze(&self) {
        let pid = self.pid();
        crate::support::send_signal(pid, libc::SIGSTOP);
        let all_stopped = || {
            fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|tasks| {
                tasks.flatten().all(|task| {
                    let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                    stat.rsplit_once(')').is_none_or(|(_, rest)| rest.trim_start().starts_with('T'))
                })
            })
        };
        eventually("every thread of the frozen server stops", Duration::from_secs(10), all_stopped);
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        crate::support::send_signal(self.pid(), libc::SIGCONT);
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Where the member keeps its data (removed on drop).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three- (or n-) member cluster on loopback.
pub struct EtcdCluster {
    members: Vec<EtcdServer>,
}

impl EtcdCluster {
    /// `n` members, all healthy (a leader is elected).
    #[track_caller]
    pub fn start(n: usize) -> EtcdCluster {
        require_tool("etcd", "etcd-server");
        'attempt: for _ in 0..5 {
            let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
            let names: Vec<String> = ports.iter().map(|(c, _)| format!("m{c}")).collect();
            let cluster = names
                .iter()
                .zip(&ports)
                .map(|(name, (_, peer))| format!("{name}=http://127.0.0.1:{peer}"))
                .collect::<Vec<_>>()
                .join(",");
            let token = unique_name("etcd");
            let mut members: Vec<EtcdServer> = names
                .iter()
                .zip(&ports)
                .map(|(name, &(c, p))| EtcdServer::spawn(name, c, p, &[], &cluster, &token))
                .collect();
            let deadline = Instant::now() + START_TIMEOUT;
            for m in &mut members {
                match m.wait_healthy(deadline) {
                    Ok(()) => {}
                    Err(StartFailure::PortInUse) => continue 'attempt,
                    Err(StartFailure::Other(why)) => panic!("the {n}-member cluster did not start: {why}"),
                }
            }
            let cluster = EtcdCluster { members };
            cluster.leader();
            return cluster;
        }
        panic!("the {n}-member cluster could not bind free ports in 5 tries");
    }

    pub fn member(&self, i: usize) -> &EtcdServer {
        &self.members[i]
    }

    pub fn member_mut(&mut self, i: usize) -> &mut EtcdServer {
        &mut self.members[i]
    }

    /// All members' endpoints, member `first` first, comma-separated.
    pub fn endpoints_from(&self, first: usize) -> String {
        let mut order: Vec<usize> = vec![first];
        order.extend((0..self.members.len()).filter(|&i| i != first));
        order.iter().map(|&i| self.members[i].endpoint()).collect::<Vec<_>>().join(",")
    }

    /// `etcd://A,B,C/NAME`, member `first` first.
    pub fn url_from(&self, first: usize, name: &str) -> String {
        format!("etcd://{}/{name}", self.endpoints_from(first))
    }

    /// etcdctl against the members still running.
    pub fn ctl(&self) -> Etcdctl {
        let live: Vec<String> =
            self.members.iter().filter(|m| m.is_running()).map(EtcdServer::endpoint).collect();
        Etcdctl::new(live.join(","))
    }

    /// The index of the leader, once every running member names the same one (waits up to
    /// 20 s for an election).
    #[track_caller]
    pub fn leader(&self) -> usize {
        let mut last = Vec::new();
        let mut found = None;
        let ok = wait_until(Duration::from_secs(20), || {
            let out = run_tool(self.ctl().cmd().args(["endpoint", "status", "-w", "json"]));
            if out.code() != Some(0) {
                return false;
            }
            let Ok(Json::Arr(items)) = Json::parse(out.stdout_str().trim()) else {
                return false;
            };
            last = items
                .iter()
                .map(|i| {
                    (
                        i.str_at("Endpoint").to_string(),
                        num(i.at("Status").at("header").at("member_id")),
                        i.at("Status").get("leader").map_or(0, num),
                    )
                })
                .collect();
            let live = self.members.iter().filter(|m| m.is_running()).count();
            let leader = last.first().map(|l: &(String, u64, u64)| l.2);
            if last.len() != live || leader == Some(0) || !last.iter().all(|l| Some(l.2) == leader) {
                return false;
            }
            let Some(endpoint) = last.iter().find(|l| Some(l.1) == leader).map(|l| l.0.clone()) else {
                return false;
            };
            found = self.members.iter().position(|m| m.endpoint() == endpoint);
            found.is_some()
        });
        assert!(ok, "the cluster's members never agreed on a leader: {last:?}");
        found.unwrap()
    }
}

// ---------------------------------------------------------------------------------------------
// Proxies.

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ProxyKind {
    /// `etcd grpc-proxy start`: a gRPC proxy (it also serves /health and /metrics, but not
    /// the JSON gateway).
    Grpc,
    /// `etcd gateway start`: a plain TCP proxy, so whatever etcd serves passes through.
    Gateway,
}

/// A proxy in front of etcd on 127.0.0.1, the test's child.
pub struct EtcdProxy {
    port: u16,
    child: Child,
    dir: TempDir,
}

impl EtcdProxy {
    /// Starts a proxy for `endpoints` (`HOST:PORT,...`) and waits until /health through it
    /// says true.
    #[track_caller]
    pub fn start(kind: ProxyKind, endpoints: &str) -> EtcdProxy {
        require_tool("etcd", "etcd-server");
        for _ in 0..5 {
            let port = free_port();
            let dir = TempDir::new();
            let log = fs::File::create(dir.join("proxy.log")).unwrap();
            let listen = format!("127.0.0.1:{port}");
            let mut cmd = tool("etcd");
            match kind {
                ProxyKind::Grpc => cmd
                    .args(["grpc-proxy", "start", "--endpoints", endpoints, "--listen-addr", &listen])
                    .args(["--advertise-client-url", &listen])
                    // Its default data dir is ./default.proxy.
                    .arg("--data-dir")
                    .arg(dir.join("data")),
                ProxyKind::Gateway => {
                    cmd.args(["gateway", "start", "--endpoints", endpoints, "--listen-addr", &listen])
                }
            };
            cmd.current_dir(dir.path()).stdout(log.try_clone().unwrap()).stderr(log);
            die_with_parent(&mut cmd);
            let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start etcd {kind:?} proxy: {e}"));
            let mut proxy = EtcdProxy { port, child, dir };
            let mut exited = false;
            let ok = wait_until(START_TIMEOUT, || {
                exited = proxy.child.try_wait().unwrap().is_some();
                exited || healthy(&listen)
            });
            if ok && !exited {
                return proxy;
            }
            let log = proxy.log();
            if !log.contains("address already in use") {
                panic!("the {kind:?} proxy on {listen} did not become healthy:\n{log}");
            }
        }
        panic!("the {kind:?} proxy could not bind a free port in 5 tries");
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, name: &str) -> String {
        format!("etcd://{}/{name}", self.endpoint())
    }

    pub fn ctl(&self) -> Etcdctl {
        Etcdctl::new(self.endpoint())
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for EtcdProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// A fake etcd: answers every request with one canned, broken reply.

/// What the fake server does with each connection once it has read a request.
#[derive(Clone, Debug)]
pub enum FakeReply {
    /// Writes these bytes and closes the connection.
    Close(Vec<u8>),
    /// Writes these bytes and keeps the connection open, saying nothing more.
    Stall(Vec<u8>),
    /// Accepts and never answers.
    Silent,
    /// Closes the connection without a word, before reading the request.
    Hangup,
    /// Streams this chunk again and again, forever.
    Endless(Vec<u8>),
}

impl FakeReply {
    /// A complete HTTP/1.1 response with a correct Content-Length, then close.
    pub fn http(status: &str, body: &str) -> FakeReply {
        FakeReply::Close(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }
}

/// A TCP server on 127.0.0.1 (a thread of the test) that reads each request and answers with
/// its `FakeReply`; it counts the requests it saw, so a test can tell that the client really
/// asked.
pub struct FakeEtcd {
    acceptor: Acceptor,
    requests: Arc<AtomicUsize>,
}

impl FakeEtcd {
    pub fn start(reply: FakeReply) -> FakeEtcd {
        let requests = Arc::new(AtomicUsize::new(0));
        let r = requests.clone();
        let acceptor = Acceptor::start(move |conn, stop| serve_fake(conn, &reply, stop, &r));
        FakeEtcd { acceptor, requests }
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.acceptor.port)
    }

    pub fn url(&self, name: &str) -> String {
        format!("etcd://{}/{name}", self.endpoint())
    }

    /// How many requests (or, for `Hangup`, connections) it has seen.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

/// A listener on 127.0.0.1 whose thread hands each connection to `serve`, in a thread of
/// its own, until dropped (then `serve` sees its stop flag set).
struct Acceptor {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Acceptor {
    fn start(serve: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static) -> Acceptor {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let serve = Arc::new(serve);
        let s = stop.clone();
        let thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (s, serve) = (s.clone(), serve.clone());
                        thread::spawn(move || serve(conn, &s));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Acceptor { port, stop, thread: Some(thread) }
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request: headers, then as many body bytes as Content-Length says (bounded).
/// The raw request, or `None` if the connection ended (or `stop` was set) first.
fn read_request(conn: &mut TcpStream, stop: &AtomicBool) -> Option<Vec<u8>> {
    conn.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if got.len() >= end + 4 + len.min(1 << 20) {
                return Some(got);
            }
        }
        if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
            return None;
        }
        match conn.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return None,
        }
    }
}

fn serve_fake(mut conn: TcpStream, reply: &FakeReply, stop: &AtomicBool, requests: &AtomicUsize) {
    let idle = |stop: &AtomicBool| {
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(20));
        }
    };
    if let FakeReply::Hangup = reply {
        requests.fetch_add(1, Ordering::Relaxed);
        let _ = conn.shutdown(Shutdown::Both);
        return;
    }
    if read_request(&mut conn, stop).is_none() {
        return;
    }
    requests.fetch_add(1, Ordering::Relaxed);
    let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
    match reply {
        FakeReply::Close(bytes) => {
            let _ = conn.write_all(bytes);
        }
        FakeReply::Stall(bytes) => {
            let _ = conn.write_all(bytes);
            idle(stop);
        }
        FakeReply::Silent => idle(stop),
        FakeReply::Hangup => unreachable!(),
        FakeReply::Endless(chunk) => {
            while !stop.load(Ordering::Relaxed) {
                match conn.write(chunk) {
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                    Err(_) => return,
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A tampering proxy: a real etcd behind it, one kind of reply altered.

/// An HTTP proxy on 127.0.0.1 in front of a real etcd's JSON gateway that passes every
/// request on and every reply back, except that `tamper` may rewrite a reply's body: etcd
/// itself, with exactly one field made into what a broken or hostile server might say.
pub struct TamperingProxy {
    acceptor: Acceptor,
    tampered: Arc<AtomicUsize>,
}

impl TamperingProxy {
    pub fn start(
        upstream: &str,
        tamper: impl Fn(&str, &str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        let tampered = Arc::new(AtomicUsize::new(0));
        let (n, upstream) = (tampered.clone(), upstream.to_string());
        let acceptor = Acceptor::start(move |conn, stop| relay(conn, &upstream, &tamper, stop, &n));
        TamperingProxy { acceptor, tampered }
    }

    pub fn url(&self, name: &str) -> String {
        format!("etcd://127.0.0.1:{}/{name}", self.acceptor.port)
    }

    /// How many replies it has altered.
    pub fn tampered(&self) -> usize {
        self.tampered.load(Ordering::Relaxed)
    }
}

/// One client connection of a `TamperingProxy`: each request to etcd on a connection of its
/// own, each reply back with a correct Content-Length, the connection kept alive.
fn relay(
    mut conn: TcpStream,
    upstream: &str,
    tamper: &dyn Fn(&str, &str) -> Option<String>,
    stop: &AtomicBool,
    tampered: &AtomicUsize,
) {
    while let Some(raw) = read_request(&mut conn, stop) {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
        let Ok(reply) = http(upstream, "POST", &path, body, Duration::from_secs(60)) else { return };
        let body = match tamper(&path, &reply.body) {
            Some(altered) => {
                tampered.fetch_add(1, Ordering::Relaxed);
                altered
            }
            None => reply.body,
        };
        let answer = format!(
            "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            reply.status,
            body.len()
        );
        if conn.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Network namespaces: other "hosts" on this machine.

static NETNS_NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs `ip ARGS`, which must succeed.
#[track_caller]
fn ip(args: &[&str]) {
    must(tool("ip").args(args));
}

/// A network namespace joined to this host by a veth pair on a private /30 out of
/// 10.201.0.0/16 (one per namespace: `host_ip()` on this side, `ns_ip()` inside), loopback up
/// inside. Names (`wltK`, `wltKh`, `wltKn`) and subnets are picked so that parallel tests and
/// parallel test processes never share one. Deleted on drop, after killing what runs inside.
pub struct Netns {
    name: String,
    index: u32,
}

impl Netns {
    /// Creates one; fails the test if that is impossible (call `netns_or_skip` first).
    #[track_caller]
    pub fn create() -> Netns {
        let start = std::process::id()
            .wrapping_mul(7919)
            .wrapping_add(NETNS_NEXT.fetch_add(1, Ordering::Relaxed) * 131);
        for attempt in 0..256 {
            let index = (start.wrapping_add(attempt)) % 16384;
            let name = format!("wlt{index}");
            // `ip netns add` fails if the name exists: that makes the pick atomic across processes.
            if run_tool(tool("ip").args(["netns", "add", &name])).code() != Some(0) {
                continue;
            }
            let ns = Netns { name, index };
            // A leftover link of that name (from a crashed run): take another index.
            if run_tool(tool("ip").args([
                "link",
                "add",
                &ns.host_if(),
                "type",
                "veth",
                "peer",
                "name",
                &ns.ns_if(),
                "netns",
                &ns.name,
            ]))
            .code()
                != Some(0)
            {
                continue;
            }
            ip(&["addr", "add", &format!("{}/30", ns.host_ip()), "dev", &ns.host_if()]);
            ip(&["link", "set", &ns.host_if(), "up"]);
            ip(&["-n", &ns.name, "addr", "add", &format!("{}/30", ns.ns_ip()), "dev", &ns.ns_if()]);
            ip(&["-n", &ns.name, "link", "set", &ns.ns_if(), "up"]);
            ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
            return ns;
        }
        panic!("could not create a network namespace (256 names tried): is `ip netns` usable here?");
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The veth end on this host.
    pub fn host_if(&self) -> String {
        format!("wlt{}h", self.index)
    }

    /// The veth end inside the namespace.
    pub fn ns_if(&self) -> String {
        format!("wlt{}n", self.index)
    }

    fn base(&self) -> u32 {
        u32::from(Ipv4Addr::new(10, 201, 0, 0)) + self.index * 4
    }

    /// This host's address on the pair: what the namespace connects to.
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 1)
    }

    /// The namespace's address.
    pub fn ns_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base() + 2)
    }

    /// `ip netns exec NAME PROGRAM` (ip execs PROGRAM: its pid is the child's), stdin from
    /// /dev/null, PATH `TOOL_PATH`; add the arguments.
    pub fn exec(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program).env("PATH", TOOL_PATH).stdin(Stdio::null());
        cmd
    }

    /// withlock inside the namespace (PATH `TEST_PATH`, like `support::withlock()`).
    pub fn withlock(&self) -> Command {
        let mut cmd = self.exec(bin());
        cmd.env("PATH", TEST_PATH);
        cmd
    }

    /// etcdctl inside the namespace, against `endpoints`.
    pub fn etcdctl_lock(&self, endpoints: &str, name: &str, ttl: Option<u32>) -> Command {
        let mut cmd = Command::new("ip");
        let inner = Etcdctl::new(endpoints).lock(name, ttl);
        cmd.args(["netns", "exec", &self.name]).arg(inner.get_program()).args(inner.get_args());
        cmd.env_clear().env("PATH", TOOL_PATH).env("ETCDCTL_API", "3").stdin(Stdio::null());
        cmd
    }

    /// The partition: the link goes down inside the namespace. Its routes to this host
    /// vanish, so whatever runs inside gets "network unreachable" at once, and packets from
    /// this host to it are dropped.
    #[track_caller]
    pub fn cut(&self) {
        ip(&["-n", &self.name, "link", "set", &self.ns_if(), "down"]);
    }

    /// A silent partition: the link goes down on this host's side. Inside, nothing
    /// changes but that every packet sent is lost: no error, only silence.
    #[track_caller]
    pub fn cut_silently(&self) {
        ip(&["link", "set", &self.host_if(), "down"]);
    }

    /// Both ends up again, and both ends' ARP entries for the other forgotten: one left
    /// resolving from during the cut (its probes lost) would fail the next connection at
    /// once with "no route to host" when its last probe times out.
    #[track_caller]
    pub fn heal(&self) {
        ip(&["link", "set", &self.host_if(), "up"]);
        ip(&["-n", &self.name, "link", "set", &self.ns_if(), "up"]);
        ip(&["neigh", "flush", "dev", &self.host_if()]);
        ip(&["-n", &self.name, "neigh", "flush", "dev", &self.ns_if()]);
    }
}

/// Runs a cleanup command, never panicking (a panic in a destructor aborts the whole test
/// run): its stdout if it succeeded within 30 s.
fn quietly(cmd: &mut Command) -> Option<String> {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().ok()?;
    let done = wait_until(Duration::from_secs(30), || !matches!(child.try_wait(), Ok(None)));
    if !done {
        let _ = child.kill();
    }
    let out = child.wait_with_output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Drop for Netns {
    fn drop(&mut self) {
        let pids = quietly(tool("ip").args(["netns", "pids", &self.name])).unwrap_or_default();
        for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            // SAFETY: kill(2) takes plain integers.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        quietly(tool("ip").args(["netns", "del", &self.name]));
        // Deleting the namespace destroys the pair; make sure of it.
        quietly(tool("ip").args(["link", "del", &self.host_if()]));
    }
}

// ---------------------------------------------------------------------------------------------
// Jobs that log when they run.

/// A log file the jobs of several "hosts" append to (namespaces share the file system):
/// lines `start WHO NANOS` and `end WHO NANOS`, NANOS from `date +%s%N` (one machine, one
/// clock).
pub struct JobLog {
    path: PathBuf,
}

/// One line of a `JobLog`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub what: String,
    pub who: String,
    pub ns: i128,
}

impl JobLog {
    pub fn new(dir: &TempDir) -> JobLog {
        JobLog { path: dir.join(format!("jobs-{}.log", unique_name("log"))) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn events(&self) -> Vec<Event> {
        let text = fs::read_to_string(&self.path).unwrap_or_default();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                assert_eq!(f.len(), 3, "bad job log line {l:?}");
                Event {
                    what: f[0].into(),
                    who: f[1].into(),
                    ns: f[2].parse().unwrap_or_else(|e| panic!("{l:?}: {e}")),
                }
            })
            .collect()
    }

    /// When `who` logged `what` (the first time).
    pub fn time(&self, what: &str, who: &str) -> Option<i128> {
        self.events().into_iter().find(|e| e.what == what && e.who == who).map(|e| e.ns)
    }

    /// The whole log, for failure messages.
    pub fn dump(&self) -> String {
        fs::read_to_string(&self.path).unwrap_or_default()
    }
}

/// The logged job: `start`, write its pid to READY, then idle until RELEASE exists; `end`
/// when released or on SIGTERM (exit 143). Its stderr goes to /dev/null: withlock's stderr
/// is then withlock's own. With ARG5 = `ignore-term` it ignores SIGTERM (and
/// so does its background child), so only SIGKILL stops it. It also ends, silently, when READY is
/// gone (the test's TempDir was removed): a job that outlived its locker (etcdctl leaves them
/// behind) must not outlive a test that panicked.
const LOGGED_JOB: &str = r#"exec 2>/dev/null; log=$1 who=$2 ready=$3 release=$4
echo "start $who $(date +%s%N)" >> "$log"
if [ "$5" = ignore-term ]; then trap '' TERM; else trap 'echo "end $who $(date +%s%N)" >> "$log"; exit 143' TERM; fi
( while [ -e "$log" ]; do sleep 0.2; done ) & echo $! > "$ready.child"
echo $$ > "$ready.tmp" && mv "$ready.tmp" "$ready"
while [ ! -e "$release" ]; do [ -e "$ready" ] || { kill $!; exit 0; }; sleep 0.02; done
kill $!
echo "end $who $(date +%s%N)" >> "$log""#;

/// A job for a lock holder that says when it starts and ends (in a `JobLog`), and has a
/// background child in its process group, as real jobs do (it ends by itself once the log is
/// removed with the test's TempDir, whatever happened to the job).
pub struct Job {
    who: String,
    ready: PathBuf,
    release: PathBuf,
    log: PathBuf,
    ignore_term: bool,
}

impl Job {
    pub fn new(dir: &TempDir, log: &JobLog, who: &str) -> Job {
        let n = unique_name("job");
        Job {
            who: who.to_string(),
            ready: dir.join(format!("{n}.ready")),
            release: dir.join(format!("{n}.release")),
            log: log.path().to_path_buf(),
            ignore_term: false,
        }
    }

    /// The same job, deaf to SIGTERM.
    pub fn ignoring_term(mut self) -> Job {
        self.ignore_term = true;
        self
    }

    /// The job's argv, to append to a locker's command line.
    pub fn argv(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = ["sh", "-c", LOGGED_JOB, "sh"].iter().map(OsString::from).collect();
        v.push(self.log.clone().into());
        v.push(OsString::from(&self.who));
        v.push(self.ready.clone().into());
        v.push(self.release.clone().into());
        v.push(OsString::from(if self.ignore_term { "ignore-term" } else { "" }));
        v
    }

    pub fn started(&self) -> bool {
        exists(&self.ready)
    }

    /// Waits until the job runs (so its locker holds the lock); fails the test if `locker`
    /// ends first or `timeout` passes.
    #[track_caller]
    pub fn wait_started(&self, locker: &mut Running, timeout: Duration) {
        let ok = wait_until(timeout, || self.started() || !locker.is_running());
        assert!(
            self.started(),
            "the job of {} never started (locker {}) \nstderr: {:?}",
            self.who,
            if ok { "ended" } else { "still running" },
            locker.stderr_so_far()
        );
    }

    /// The job's pid (once started).
    #[track_caller]
    pub fn pid(&self) -> i32 {
        read_string(&self.ready).trim().parse().unwrap()
    }

    /// The pid of its background child.
    #[track_caller]
    pub fn child_pid(&self) -> i32 {
        read_string(&self.ready.with_extension("ready.child")).trim().parse().unwrap()
    }

    /// Whether the job and its background child are both gone (or zombies).
    pub fn dead(&self) -> bool {
        dead(self.pid()) && dead(self.child_pid())
    }

    /// Lets the job finish.
    pub fn release(&self) {
        fs::write(&self.release, b"").unwrap();
    }
}
