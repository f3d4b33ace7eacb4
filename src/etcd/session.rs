//! A lock held in etcd (`etcd://HOST:PORT[,HOST:PORT...]/NAME`): take it,
//! keep it, and never let the job run on once it may have passed to another
//! host.
//!
//! The lock is etcd's own, exactly as `etcdctl lock NAME` takes it: a lease,
//! and the key `NAME/<lease id in hex>`; the oldest key (lowest create
//! revision) under `NAME/` holds the lock, the others wait in line. So an
//! `etcdctl lock` holder and a withlock holder exclude each other. The key's
//! value is withlock's holder record (see [`crate::record`]), and its create
//! revision, which grows with every new holder, is the fencing token.
//!
//! The safety argument. The server lets a lease expire no earlier than TTL
//! after it received the last keepalive, which is after we sent it (a
//! leader change only extends a lease). So from the send time of the last
//! acknowledged keepalive, on our boot clock, the lease lives at least TTL.
//! withlock keeps the lease alive every TTL/5; if it cannot confirm it,
//! it sends SIGTERM to the job's process group `--kill-after` + a margin
//! before that bound, and SIGKILL a margin before it, so the job is dead
//! before another host can be given the lock. Settings that leave no room
//! for one lost keepalive before that point are refused.
//!
//! withlock itself may be stopped, traced, hung or starved while the job
//! runs: then a watchdog process (see [`crate::etcd::watchdog`]), fed the same
//! deadline after each acknowledged keepalive, SIGKILLs the job's group by
//! that deadline. Only a host (or VM) frozen as a whole escapes both: then
//! only the fencing token protects the resource.
//!
//! The job cannot outlive withlock (the watchdog kills its group when
//! withlock dies); when it ends, or withlock is asked to stop, the lease is
//! revoked at once so the next host need not wait for it to expire.
//!
//! etcd's replies are input like any other: a lease shorter than asked,
//! revisions that are not positive, a key outside `NAME/`, and the job is
//! not run (69) rather than started and stopped moments later.

use crate::cli::Options;
use crate::clock::{boot_ns as now_ns, nanos};
use crate::duration::Wait;
use crate::error::{Failure, Loss, UsageError};
use crate::etcd::client::{self, Client};
use crate::etcd::watchdog::Watchdog;
use crate::etcd::{self, Address, Endpoint, Error, Key};
use crate::exec::Argv;
use crate::signals::{self, Ended};
use crate::supervise::{self, Guard};
use crate::syslog::{self, Severity};
use crate::text::{self, Line, LineBuf};
use crate::{json, record};
use core::ffi::c_int;
use core::time::Duration;

/// The lease's default time to live (`--lease`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// How long connecting may take, per endpoint (`--connect-timeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The job must be dead this long before the lease can expire: room for
/// the SIGKILL to land and for the clocks' rates to differ.
const MARGIN_NS: u64 = 250_000_000;
/// etcd raises shorter leases to its minimum (about 2 s with defaults).
const MIN_LEASE: Duration = Duration::from_secs(2);

/// The settings of a lock in etcd, checked.
#[derive(Clone, Copy)]
pub struct Timing {
    pub lease: Duration,
    pub kill_after: Duration,
    pub connect_timeout: Duration,
}

impl Timing {
    /// Check that the job can always be stopped in time: after one lost
    /// keepalive (two periods of TTL/5), there must still be `kill_after`
    /// and the margin before the lease can expire.
    pub fn new(options: &Options) -> Result<Timing, &'static str> {
        let lease = options.lease.unwrap_or(DEFAULT_LEASE);
        if lease < MIN_LEASE {
            return Err("--lease must be at least 2s (etcd's shortest lease)");
        }
        let kill_after = options.kill_after.unwrap_or(lease / 3);
        if nanos(kill_after) + MARGIN_NS > nanos(lease) / 5 * 3 {
            return Err("--kill-after is too long for --lease: withlock could not stop the job before \
                        the lease expires (it needs --lease at least 5/3 of --kill-after + 0.25s)");
        }
        let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        Ok(Timing { lease, kill_after, connect_timeout })
    }
}

/// Take the lock at `address`, run the job under it, and return the exit
/// code (the job's, or one of withlock's own).
pub fn run(address: &[u8], options: &Options, argv: Argv) -> c_int {
    let fail = |failure: &Failure| fail(failure, address, options, argv);
    let usage = |problem, culprit| fail(&Failure::Usage(UsageError { problem, culprit }));
    let address = match etcd::parse_address(address) {
        Ok(address) => address,
        Err(error) => return usage(error.problem, Some(error.culprit)),
    };
    let timing = match Timing::new(options) {
        Ok(timing) => timing,
        Err(problem) => return usage(problem, None),
    };
    if !options.insecure
        && let Some(remote) = address.endpoints().iter().find(|e| !crate::etcd::net::is_loopback(&e.host))
    {
        return fail(&Failure::PlainHttp { endpoint: remote.text });
    }
    let session = Session { address: &address, timing, options, name: address.name, argv };
    session.run()
}

/// Tell why the job did not run, or was stopped (see [`crate::report`]),
/// and return the exit code. `lock` is the etcd lock's NAME.
fn fail(failure: &Failure, lock: &[u8], options: &Options, argv: Argv) -> c_int {
    crate::report::run_failed(failure, lock, argv.iter().next().unwrap_or(b""), c"", options)
}

/// Connect to the first endpoint of `address` that answers, each within
/// `--connect-timeout`; failures are told to `failed`.
fn connect<'a>(
    address: &Address<'a>,
    timing: &Timing,
    failed: &mut dyn FnMut(&Endpoint<'a>, &Error),
) -> Result<Client<'a>, Error> {
    let each = nanos(timing.connect_timeout);
    let all = each.saturating_mul(address.endpoints().len() as u64);
    client::connect(address, each, now_ns().saturating_add(all), failed)
}

/// Say that `endpoint` could not be reached (with `-v`, or always before
/// the job runs: then it is why the job does not run).
fn say_unreachable(endpoint: &Endpoint, error: &Error) {
    let mut buf = text::diagnostic();
    let line = buf.line();
    line.push(b"cannot reach etcd at ").push_printable(endpoint.text).push(b": ");
    error.push_to(line);
    syslog::emit(line, Severity::Warning, true);
}

struct Session<'a> {
    address: &'a Address<'a>,
    timing: Timing,
    options: &'a Options,
    name: &'a [u8],
    argv: Argv,
}

impl Session<'_> {
    fn deadline(&self, after: Duration) -> u64 {
        now_ns().saturating_add(nanos(after))
    }

    fn fail(&self, failure: &Failure) -> c_int {
        fail(failure, self.name, self.options, self.argv)
    }

    fn run(&self) -> c_int {
        let argv = self.argv;
        // From here a SIGTERM (or SIGINT, SIGHUP) must not leave a lease
        // behind holding the lock with nothing running: it is noted, and
        // acted on before the job would start.
        if let Err(failure) = signals::catch_stop_signals() {
            return self.fail(&failure);
        }
        let ttl = self.timing.lease.as_secs().max(1) as i64;
        // The first endpoint that grants a lease: one that accepts a
        // connection may still not answer (a stopped server, a partition).
        let granted = self.address.endpoints().iter().enumerate().find_map(|(index, endpoint)| {
            let deadline = self.deadline(self.timing.connect_timeout);
            let attempt = crate::etcd::net::connect(&endpoint.host, endpoint.port, deadline)
                .map_err(Error::from)
                .and_then(|conn| {
                    let mut client = Client::new(*endpoint, conn);
                    let sent = now_ns();
                    client.grant(ttl, deadline).map(|lease| (client, lease, sent))
                });
            attempt.map_err(|error| say_unreachable(endpoint, &error)).ok().map(|granted| (index, granted))
        });
        let Some((index, (client, lease, grant_sent))) = granted else {
            return self.unavailable("no etcd endpoint granted a lease", None);
        };
        let mut guard = Lease::new(self.address, client, lease.id, ttl, grant_sent, &self.timing, argv);
        guard.endpoint = index;
        if lease.ttl < ttl {
            // Our margins were checked for the TTL asked: with less, the job
            // would be stopped as soon as it started.
            guard.revoke(self.timing.connect_timeout);
            return self.fail(&Failure::LeaseTooShort { granted: lease.ttl, asked: ttl });
        }

        // The record, written as the key's value with the key itself (and
        // again once the job runs, to name the job's pid).
        let mut value = LineBuf::<{ record::CAPACITY }>::new();
        compose_record(value.line(), None, argv);

        let mut attempt = match guard.client.try_acquire(
            self.name,
            lease.id,
            value.line().as_bytes(),
            self.deadline(self.timing.connect_timeout),
        ) {
            Ok(attempt) => attempt,
            Err(error) => {
                guard.revoke(self.timing.connect_timeout);
                return self.unavailable("cannot take the lock in etcd", Some(&error));
            }
        };
        if !attempt.acquired() {
            match self.options.wait {
                Wait::No => {
                    self.busy(&mut guard, &attempt);
                    guard.revoke(self.timing.connect_timeout);
                    return self.conflict();
                }
                wait => match self.wait_in_line(&mut guard, wait) {
                    Ok((revision, handed_over)) => {
                        attempt.my_revision = revision;
                        attempt.header_revision = handed_over;
                    }
                    Err(code) => {
                        guard.revoke(self.timing.connect_timeout);
                        return code;
                    }
                },
            }
        }

        if let Some(signal) = signals::asked_to_stop() {
            guard.revoke(self.timing.connect_timeout);
            signals::die_like(signal);
        }

        guard.key = attempt.my_key;
        guard.revision = attempt.my_revision;
        let token = attempt.my_revision as u64;
        let mut fencing = LineBuf::<48>::new();
        fencing.line().push(b"WITHLOCK_FENCING_TOKEN=").push_u64(token).push(b"\0");
        // etcdctl's ETCD_LOCK_REV: the store's revision when the lock was
        // taken (for a waiter, the hand-over), not the key's own.
        let mut revision = LineBuf::<40>::new();
        revision.line().push(b"ETCD_LOCK_REV=").push_u64(attempt.header_revision as u64).push(b"\0");
        let mut key = LineBuf::<{ etcd::KEY_MAX + 16 }>::new();
        key.line().push(b"ETCD_LOCK_KEY=").push(attempt.my_key.as_bytes()).push(b"\0");
        let vars = [fencing.line().as_bytes(), revision.line().as_bytes(), key.line().as_bytes()];
        if !crate::exec::set_environment(&vars) {
            guard.revoke(self.timing.connect_timeout);
            return self.fail(&Failure::NoMemory("add the lock's variables to the environment"));
        }
        if self.options.verbose {
            let mut buf = text::diagnostic();
            let line = buf.line();
            line.push(b"took the etcd lock ").push_quoted(attempt.my_key.as_bytes());
            line.push(b" (fencing token ").push_u64(token).push(b")");
            line.emit();
        }

        // The lease must be freshly confirmed when the job starts (withlock
        // may have been stopped since it was), and the watchdog armed.
        if !guard.fresh() {
            guard.revoke(self.timing.connect_timeout);
            return self.unavailable("could not renew the lease before starting the job", None);
        }
        if let Err(failure) = guard.arm() {
            guard.revoke(self.timing.connect_timeout);
            return self.fail(&failure);
        }
        let watch = supervise::Watch {
            max_runtime: self.options.max_runtime,
            kill_after: self.timing.kill_after,
            die_with_parent: true,
            withhold: None,
            wait_for_group: false,
            verbose: self.options.verbose,
        };
        let started = now_ns();
        let ended = supervise::run(argv, &watch, &mut guard, &mut |_| {});
        let fired = guard.disarm();
        let ended = match ended {
            Ok(ended) => ended,
            Err(failure) => {
                guard.revoke(self.timing.connect_timeout);
                return self.fail(&failure);
            }
        };
        // The watchdog killed the job: withlock was stopped (or hung) past
        // the deadline. A job that ended by itself before that ended well.
        let by_itself = matches!(ended, Ended::Exited(status)
            if !(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL));
        let ended = if fired && !by_itself {
            guard.say_watchdog_fired();
            Ended::Lost
        } else {
            ended
        };
        if let (Ended::Exited(_), Some(min_hold)) = (ended, self.options.min_hold) {
            guard.hold_until(started.saturating_add(nanos(min_hold)));
        }
        // A lost lease is revoked too, in case etcd is back (briefly: it
        // may well not be).
        let within = if ended == Ended::Lost { Duration::from_secs(1) } else { self.timing.connect_timeout };
        guard.revoke(within.min(self.timing.connect_timeout));
        c_int::from(ended.status())
    }

    /// `-w`: wait for our key to become the oldest, keeping the lease alive
    /// meanwhile. The wait is etcd's own (`/v3/lock/lock` answers when our
    /// key is first in line), not polling. Once it holds the lock: our key's
    /// create revision and the store's revision then; or the exit code.
    fn wait_in_line(&self, guard: &mut Lease, wait: Wait) -> Result<(i64, i64), c_int> {
        let until = match wait {
            Wait::For(limit) => self.deadline(limit),
            _ => u64::MAX,
        };
        let mut waiter = match connect(self.address, &self.timing, &mut say_unreachable) {
            Ok(client) => client,
            Err(_) => return Err(self.unavailable("no etcd endpoint could be reached", None)),
        };
        if let Err(error) = waiter.lock_send(self.name, guard.id, self.deadline(self.timing.connect_timeout))
        {
            return Err(self.unavailable("cannot wait for the lock in etcd", Some(&error)));
        }
        if self.options.verbose {
            text::say(b"the etcd lock is held; waiting in line", None, b"");
        }
        loop {
            if let Some(signal) = signals::asked_to_stop() {
                drop(waiter);
                guard.revoke(self.timing.connect_timeout);
                signals::die_like(signal);
            }
            if now_ns() >= until {
                if !self.options.quiet || syslog::enabled() {
                    let mut buf = text::diagnostic();
                    let line = buf.line();
                    line.push(b"etcd lock ").push_quoted(self.name).push(b" is still busy after waiting ");
                    if let Wait::For(limit) = wait {
                        line.push_duration(limit);
                    }
                    syslog::emit(line, Severity::Warning, !self.options.quiet);
                }
                return Err(self.conflict());
            }
            let next = guard.wake_at().unwrap_or(u64::MAX).min(until);
            if signals::pause_until(next, waiter.raw_fd()) {
                match waiter.lock_receive(self.deadline(self.timing.connect_timeout)) {
                    Ok(locked) => return self.confirm(guard, &locked),
                    Err(error) => {
                        return Err(self.unavailable("lost the connection while waiting", Some(&error)));
                    }
                }
            }
            if guard.wake_at().is_some_and(|at| now_ns() >= at) && guard.tick(now_ns()).is_err() {
                return Err(self.unavailable("could not keep the lease alive while waiting", None));
            }
        }
    }

    /// etcd 3.4 may answer a lock request even after the waiter's lease
    /// expired: trust the answer only if the key is there, under our lease.
    fn confirm(&self, guard: &mut Lease, locked: &client::Locked) -> Result<(i64, i64), c_int> {
        if Key::lock_key(self.name, guard.id).is_ok_and(|ours| ours != locked.key) {
            return Err(self.unavailable("etcd answered the wait with a key that is not ours", None));
        }
        match guard.client.get(locked.key.as_bytes(), self.deadline(self.timing.connect_timeout)) {
            Ok(Some(info)) if info.lease == guard.id => Ok((info.create_revision, locked.header_revision)),
            Ok(_) => Err(self.unavailable("the lease expired while waiting", None)),
            Err(error) => Err(self.unavailable("cannot check the lock in etcd", Some(&error))),
        }
    }

    fn conflict(&self) -> c_int {
        c_int::from(self.options.conflict_code())
    }

    /// Say who holds the lock (unless `-q`).
    fn busy(&self, guard: &mut Lease, attempt: &client::Attempt) {
        if self.options.quiet && !syslog::enabled() {
            return;
        }
        let mut buf = text::diagnostic();
        let line = buf.line();
        line.push(b"busy: etcd lock ").push_quoted(self.name).push(b" is held");
        let mut value = [0u8; record::CAPACITY];
        match owner_record(&mut guard.client, attempt.owner_key.as_bytes(), &mut value, self.timing) {
            Some(record) => describe(line, &record),
            None => {
                line.push(b" by ").push_quoted(attempt.owner_key.as_bytes());
            }
        }
        line.push(b" (fencing token ").push_u64(attempt.owner_revision as u64).push(b")");
        if attempt.count > 2 {
            line.push(b"; ").push_u64(attempt.count as u64 - 2).push(b" more waiting");
        }
        line.push(b" (use -w DURATION to wait for it, or -q to skip quietly)");
        syslog::emit(line, Severity::Notice, !self.options.quiet);
    }

    /// "Cannot reach or trust the lock service" is never silenced by `-q`,
    /// and never runs the job.
    fn unavailable(&self, what: &'static str, error: Option<&Error>) -> c_int {
        self.fail(&Failure::Unavailable { what, why: Error::words(error).as_bytes() })
    }
}

/// The holder record in the value of `key` (read as the oldest key under
/// that exact name), if there is one.
fn owner_record<'b>(
    client: &mut Client,
    key: &[u8],
    out: &'b mut [u8; record::CAPACITY],
    timing: Timing,
) -> Option<record::Record<'b>> {
    let deadline = now_ns().saturating_add(nanos(timing.connect_timeout));
    let mut range = client.range_prefix(key, 1, deadline).ok()?;
    let kv = range.next()?.ok()?;
    let value = kv.value(out).ok()?;
    match record::parse(value) {
        record::Contents::Record(record) => Some(record),
        _ => None,
    }
}

/// " by pid P (COMMAND), user U, on host H, since T (AGE ago)" from a
/// holder record, as a local lock's holder is told.
pub fn describe(line: &mut Line, record: &record::Record) {
    line.push(b" by ");
    crate::holder::push_claims(line, record, true, true);
}

/// The holder record for the job (`job`: its pid once it runs; until then
/// withlock's own), into `out`.
fn compose_record(out: &mut Line, job: Option<u32>, argv: Argv) {
    let uts = crate::sys::uname();
    let facts = record::Facts::now(job, record::host_name(&uts));
    record::compose(out, &facts, argv.iter(), 0);
}

/// The lease, kept alive while the job runs: the [`Guard`] the parent loop
/// asks at each keepalive and before each safety deadline.
struct Lease<'a> {
    address: &'a Address<'a>,
    /// The lock's name, for the message when it is lost.
    name: &'a [u8],
    /// Why the last keepalive failed, if it did.
    last_error: Option<Error>,
    client: Client<'a>,
    /// Which of the address's endpoints `client` is connected to.
    endpoint: usize,
    id: i64,
    ttl_ns: u64,
    period_ns: u64,
    /// SIGTERM this long before the lease can expire.
    stop_before_ns: u64,
    /// When the last acknowledged keepalive (or the grant) was sent: the
    /// lease lives at least `ttl_ns` from then.
    confirmed: u64,
    next: u64,
    /// Our key and its create revision, once the lock is ours.
    key: Key,
    revision: i64,
    /// The job's command, for its holder record.
    argv: Argv,
    /// The job's pid, while its record (the key's value) still names
    /// withlock; and whether writing it was tried already.
    record_due: Option<u32>,
    record_tried: bool,
    /// Kills the job's group by the deadline if withlock cannot.
    watchdog: Option<Watchdog>,
    /// The loss was told already.
    said_lost: bool,
}

/// What one keepalive showed.
enum Renewal {
    Confirmed,
    /// etcd says the lease is gone.
    Gone,
    /// No answer we can use (told in `last_error`).
    Failed,
}

impl<'a> Lease<'a> {
    fn new(
        address: &'a Address<'a>,
        client: Client<'a>,
        id: i64,
        ttl: i64,
        sent: u64,
        timing: &Timing,
        argv: Argv,
    ) -> Lease<'a> {
        let ttl_ns = (ttl.max(1) as u64).saturating_mul(1_000_000_000);
        let period_ns = ttl_ns / 5;
        Lease {
            address,
            name: address.name,
            last_error: None,
            client,
            endpoint: 0,
            id,
            ttl_ns,
            period_ns,
            stop_before_ns: nanos(timing.kill_after) + MARGIN_NS,
            confirmed: sent,
            next: sent + period_ns,
            key: Key::empty(),
            revision: 0,
            argv,
            record_due: None,
            record_tried: false,
            watchdog: None,
            said_lost: false,
        }
    }

    /// The last instant the lease is surely alive.
    fn expiry(&self) -> u64 {
        self.confirmed.saturating_add(self.ttl_ns)
    }

    /// When the job must be told to stop, unless a keepalive succeeds first.
    fn stop_at(&self) -> u64 {
        self.expiry().saturating_sub(self.stop_before_ns)
    }

    /// When the job's group must be dead (SIGKILL), unless a keepalive
    /// succeeds first: by withlock, or else by the watchdog.
    fn kill_at(&self) -> u64 {
        self.expiry().saturating_sub(MARGIN_NS)
    }

    /// Whether the lease was confirmed within the last keepalive period
    /// (renewing it now if a keepalive is due): the job may start.
    fn fresh(&mut self) -> bool {
        let now = now_ns();
        if now >= self.confirmed.saturating_add(self.period_ns) && now < self.stop_at() {
            let deadline = self.stop_at().min(now.saturating_add(self.period_ns));
            self.renew(deadline);
        }
        now_ns() < self.confirmed.saturating_add(self.period_ns)
    }

    /// Start the watchdog, with the deadline as it stands.
    fn arm(&mut self) -> Result<(), Failure<'static>> {
        self.watchdog = Some(Watchdog::start(self.kill_at(), self.name)?);
        Ok(())
    }

    /// Stand the watchdog down (the job has ended); whether it had killed
    /// the job's group. It is reaped once the lease is revoked.
    fn disarm(&mut self) -> bool {
        self.watchdog.as_mut().is_some_and(Watchdog::stand_down)
    }

    /// Say, even with `-q`, that the lock is lost and the job is being
    /// stopped, with SIGKILL in `grace_ns`.
    fn say_lost(&mut self, why: Loss, grace_ns: u64) {
        self.said_lost = true;
        if let Some(watchdog) = &self.watchdog {
            watchdog.stopping();
        }
        let last_try = Error::words(self.last_error.as_ref());
        let kill_in_ms = u32::try_from(grace_ns / 1_000_000).unwrap_or(u32::MAX);
        let lost = Failure::LeaseLost { why, last_try: last_try.as_bytes(), kill_in_ms };
        crate::report::failure(&lost, self.name, b"", c"", false);
    }

    /// Say, even with `-q`, that the watchdog stopped the job (unless the
    /// loss was told already).
    fn say_watchdog_fired(&mut self) {
        if core::mem::replace(&mut self.said_lost, true) {
            return;
        }
        let lost = Failure::LeaseLost { why: Loss::Watchdog, last_try: b"", kill_in_ms: 0 };
        crate::report::failure(&lost, self.name, b"", c"", false);
    }

    /// Keep the lease (the job has ended) until `until`, for `--min-hold`;
    /// a signal to withlock ends the hold early.
    fn hold_until(&mut self, until: u64) {
        loop {
            let now = now_ns();
            if now >= until || signals::asked_to_stop().is_some() {
                return;
            }
            if now >= self.next && self.tick(now).is_err() {
                return; // Lost: nothing runs under it any more.
            }
            signals::pause_until(self.next.min(until), -1);
        }
    }

    /// Give the lease back at once (bounded); if that fails it expires.
    /// Then the watchdog, if any, is reaped: nothing is left to guard.
    fn revoke(&mut self, within: Duration) {
        let deadline = now_ns().saturating_add(nanos(within));
        if self.client.revoke(self.id, deadline).is_err_and(|e| !e.is_lease_not_found())
            && self.switch_endpoint(deadline)
        {
            let _ = self.client.revoke(self.id, deadline);
        }
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.reap();
        }
    }

    /// After a failed call: connect to the next endpoint in turn (the same
    /// one again if it is the only one), by `deadline`. One that accepts
    /// connections may still not answer: then the next failure moves on.
    fn switch_endpoint(&mut self, deadline: u64) -> bool {
        let endpoints = self.address.endpoints();
        self.endpoint = (self.endpoint + 1) % endpoints.len();
        let endpoint = endpoints[self.endpoint];
        match crate::etcd::net::connect(&endpoint.host, endpoint.port, deadline) {
            Ok(conn) => {
                self.client = Client::new(endpoint, conn);
                true
            }
            Err(_) => false,
        }
    }

    /// One keepalive, by `deadline`, on the next endpoint if this one
    /// fails. Only an answer for the whole TTL confirms the lease (and
    /// feeds the watchdog): a shorter one would shorten the deadline under
    /// a job already running.
    fn renew(&mut self, deadline: u64) -> Renewal {
        let sent = now_ns();
        let mut result = self.client.keepalive(self.id, deadline);
        if result.is_err() && self.switch_endpoint(deadline) {
            result = self.client.keepalive(self.id, deadline);
        }
        match result {
            Ok(0) => Renewal::Gone,
            Ok(ttl) if (ttl as u64).saturating_mul(1_000_000_000) >= self.ttl_ns => {
                self.confirmed = sent;
                self.next = sent + self.period_ns;
                self.last_error = None;
                if let Some(watchdog) = &self.watchdog {
                    watchdog.feed(self.kill_at());
                }
                Renewal::Confirmed
            }
            Ok(_) => {
                self.last_error = Some(Error::Reply("etcd renewed the lease for less than it granted"));
                Renewal::Failed
            }
            Err(error) => {
                self.last_error = Some(error);
                Renewal::Failed
            }
        }
    }

    /// Make the key's value name the job (its pid, group, command), if the
    /// key is still ours (its create revision); `Ok(false)` if it is gone.
    fn write_record(&mut self, job: u32, deadline: u64) -> Result<bool, Error> {
        let mut value = LineBuf::<{ record::CAPACITY }>::new();
        compose_record(value.line(), Some(job), self.argv);
        self.client.replace_value(
            self.key.as_bytes(),
            self.revision,
            self.id,
            value.line().as_bytes(),
            deadline,
        )
    }
}

impl Guard for Lease<'_> {
    fn wake_at(&self) -> Option<u64> {
        if self.record_due.is_some() && !self.record_tried {
            return Some(0);
        }
        Some(self.next.min(self.stop_at()))
    }

    fn tick(&mut self, now: u64) -> Result<(), u64> {
        let stop_at = self.stop_at();
        if now >= stop_at {
            let deadline = self.kill_at();
            self.say_lost(Loss::NotRenewed, deadline.saturating_sub(now));
            return Err(deadline);
        }
        // Bounded so that a hung server cannot make us miss the moment to
        // stop the job.
        let deadline = stop_at.min(now.saturating_add(self.period_ns));
        if let Some(job) = self.record_due {
            self.record_tried = true;
            match self.write_record(job, deadline) {
                Ok(true) => self.record_due = None,
                Ok(false) => {
                    // Deleted behind our back: another waiter may own the
                    // lock now.
                    self.say_lost(Loss::KeyGone, 0);
                    return Err(now_ns());
                }
                Err(_) => {} // Again with the next keepalive.
            }
            if now < self.next {
                return Ok(());
            }
        }
        match self.renew(deadline) {
            Renewal::Confirmed => Ok(()),
            // The server says the lease is gone: someone else may hold the
            // lock already. Stop the job now.
            Renewal::Gone => {
                self.say_lost(Loss::LeaseGone, 0);
                Err(now_ns())
            }
            Renewal::Failed => {
                // Try again soon; the deadline to stop stays where it is.
                self.next = now_ns().saturating_add(self.period_ns / 4).min(stop_at);
                Ok(())
            }
        }
    }

    fn job_started(&mut self, job: libc::pid_t) -> bool {
        self.record_due = u32::try_from(job).ok();
        self.record_tried = false;
        match &self.watchdog {
            Some(watchdog) => {
                watchdog.watch(job);
                true
            }
            None => false,
        }
    }
}

/// `--status etcd://.../NAME` (`lock`, parsed as `address`): who holds the
/// lock (the oldest key under `NAME/`, and its record), and how many wait;
/// whether it is held, said on stdout, or why etcd could not tell.
pub fn status(address: &Address, lock: &[u8], json: bool) -> Result<bool, Error> {
    let timing =
        Timing { lease: DEFAULT_LEASE, kill_after: Duration::ZERO, connect_timeout: DEFAULT_CONNECT_TIMEOUT };
    let mut out = LineBuf::<{ 2 * record::CAPACITY + 512 }>::new();
    let line = out.line();
    line.spill_to(1);
    let mut prefix = LineBuf::<{ etcd::KEY_MAX + 1 }>::new();
    prefix.line().push(address.name).push(b"/");
    let held = connect(address, &timing, &mut |_, _| {}).and_then(|mut client| {
        let deadline = now_ns().saturating_add(nanos(timing.connect_timeout));
        let mut range = client.range_prefix(prefix.line().as_bytes(), 1, deadline)?;
        let count = range.count;
        let Some(owner) = range.next().transpose()? else {
            return Ok(false);
        };
        let mut key = [0u8; etcd::KEY_MAX];
        let key = owner.key(&mut key)?;
        if !key.starts_with(prefix.line().as_bytes()) {
            return Err(Error::Reply("the lock's owner is a key outside the lock's name"));
        }
        let mut value = [0u8; record::CAPACITY];
        let value = owner.value(&mut value)?;
        let record = match record::parse(value) {
            record::Contents::Record(record) => Some(record),
            _ => None,
        };
        if json {
            json::push_key(line.push(b"{"), "lock", true);
            json::push_str(line, lock);
            line.push(br#","state":"held""#);
            json::push_key(line, "key", false);
            json::push_str(line, key);
            json::push_key(line, "fencing_token", false);
            line.push_u64(owner.create_revision as u64);
            json::push_key(line, "waiting", false);
            line.push_u64(count.saturating_sub(1) as u64);
            match &record {
                Some(record) => json::push_record_fields(line, record),
                None => {
                    line.push(br#","pid":null,"host":null,"since":null"#);
                }
            }
            line.push(b"}");
        } else {
            line.push_quoted(lock).push(b": held");
            match &record {
                Some(record) => describe(line, record),
                None => {
                    line.push(b" by ").push_quoted(key).push(b" (not withlock: no holder record)");
                }
            }
            line.push(b" (key ").push_printable(key);
            line.push(b", fencing token ").push_u64(owner.create_revision as u64).push(b")");
            if count > 1 {
                line.push(b"; ").push_u64(count as u64 - 1).push(b" waiting");
            }
        }
        Ok(true)
    })?;
    if !held {
        if json {
            json::push_key(line.push(b"{"), "lock", true);
            json::push_str(line, lock);
            line.push(b",\"state\":\"free\"}");
        } else {
            line.push_quoted(lock).push(b": free");
        }
    }
    line.write_to(1);
    Ok(held)
}
