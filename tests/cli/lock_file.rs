//! The lock file is what the docs promise (issue 10, item 5): created 0600 whatever the
//! umask; a device or FIFO is refused before it is opened (an open has effects on a device);
//! the record goes only into a file that, once withlock holds the lock, is empty or holds a
//! record; and a record cut short by a file size limit is not left half-written.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{
    TEST_PATH, TempDir, argv_for, bin_argv, exists, is_root, mkfifo, mknod_null, nobody, read_string, run,
    start, wait_until, with_rlimit, withlock,
};

const MAGIC: &str = "withlock-holder 1\n";

/// `withlock ARGS...` under `umask MASK`.
fn under_umask(mask: &str, args: &[&std::ffi::OsStr]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("umask {mask}; exec \"$@\""), "sh"])
        .args(bin_argv())
        .args(args)
        .env("PATH", TEST_PATH)
        .stdin(Stdio::null());
    cmd
}

#[track_caller]
fn assert_holds_a_whole_record(lock: &Path) {
    let text = read_string(lock);
    assert!(
        text.starts_with(MAGIC) && text.ends_with("\nend\n"),
        "{}: not a whole record: {text:?}",
        lock.display()
    );
}

/// 0400 under umask 0277 (records then stop for a non-root user), 0000 under 0777: a lock
/// file withlock creates is 0600 whatever the umask, and gets its record.
#[test]
fn lock_files_are_created_0600_whatever_the_umask() {
    let t = TempDir::new();
    for mask in ["0277", "0777", "0377", "0022", "0"] {
        let lock = t.join(format!("umask-{mask}.lock"));
        run(&mut under_umask(mask, &[lock.as_os_str(), "true".as_ref()])).assert_code(0);
        assert_eq!(fs::metadata(&lock).unwrap().mode() & 0o7777, 0o600, "umask {mask}");
        assert_holds_a_whole_record(&lock);
        // The slots' files too.
        let slots = t.join(format!("slots-{mask}.lock"));
        run(&mut under_umask(mask, &["--slots".as_ref(), "2".as_ref(), slots.as_os_str(), "true".as_ref()]))
            .assert_code(0);
        let slot = t.join(format!("slots-{mask}.lock.0"));
        assert_eq!(fs::metadata(&slot).unwrap().mode() & 0o7777, 0o600, "umask {mask}: {}", slot.display());
        assert_holds_a_whole_record(&slot);
    }
}

/// An ordinary user under umask 0777: the second run must not fail with "cannot open" (73)
/// on the 0000 file the first one made.
#[test]
fn a_user_under_umask_0777_can_run_twice() {
    let Some((uid, gid)) = nobody().filter(|_| is_root()) else {
        eprintln!("skipping a_user_under_umask_0777_can_run_twice: needs root and a nobody user");
        return;
    };
    let t = TempDir::new();
    let bin = crate::support::runnable_copy(&t);
    let dir = t.mkdir("theirs", 0o700);
    crate::support::chown(&dir, uid, gid);
    let lock = dir.join("x.lock");
    for round in 0..2 {
        let out = run(Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .args(["sh", "-c", "umask 0777; exec \"$@\"", "sh"])
            .args(argv_for(&bin))
            .arg(&lock)
            .args(["echo", "RAN"])
            .env("PATH", TEST_PATH)
            .stdin(Stdio::null()));
        out.assert_code(0).assert_stdout("RAN\n");
        assert_eq!(fs::metadata(&lock).unwrap().mode() & 0o7777, 0o600, "round {round}");
        assert_holds_a_whole_record(&lock);
    }
}

/// An inotify watch for opens of `path` (a FIFO or device: watching does not open it).
struct OpenWatch(std::os::fd::OwnedFd);

impl OpenWatch {
    fn new(path: &Path) -> OpenWatch {
        use std::os::fd::FromRawFd;
        // SAFETY: plain flags.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1: {}", std::io::Error::last_os_error());
        // SAFETY: a descriptor inotify_init1 just returned, owned by nobody else.
        let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: `c` is a valid C string for the call.
        let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_OPEN) };
        assert!(wd >= 0, "inotify_add_watch: {}", std::io::Error::last_os_error());
        OpenWatch(owned)
    }

    /// Whether `path` was opened since the watch began (or since the last call).
    fn opened(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 4096];
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        n > 0
    }
}

/// `withlock /dev/null` used to open the device before refusing it; a tape rewinds and a
/// watchdog arms on open. It is now refused from a look at the name alone (77), and the
/// node is never opened, with or without --insecure.
#[test]
fn a_device_or_fifo_is_refused_without_being_opened() {
    let t = TempDir::new();
    let fifo = t.join("fifo.lock");
    mkfifo(&fifo, 0o600);
    let mut nodes = vec![fifo];
    let device = t.join("device.lock");
    match mknod_null(&device) {
        Ok(()) => nodes.push(device),
        Err(e) => eprintln!("skipping the device case: {e}"),
    }
    for node in &nodes {
        let watch = OpenWatch::new(node);
        for opts in [&[][..], &["--insecure"], &["--slots", "1", "-w", "1"], &["--fcntl"], &["--status"]] {
            let marker = t.join("ran");
            let out = run(withlock().args(opts).arg(node).arg("touch").arg(&marker));
            // (--status only reads, and says what it is: 77 too.)
            out.assert_code(77).assert_one_message_naming(node);
            assert!(!exists(&marker), "the command ran");
            assert!(!watch.opened(), "withlock {opts:?} opened {}", node.display());
        }
        // The watch does see an open (so the test can fail).
        let c = CString::new(node.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C string; the descriptor is closed at once.
        unsafe { libc::close(libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK)) };
        assert!(watch.opened(), "the inotify watch missed an open of {}", node.display());
    }
}

/// The waiters that /proc/locks shows blocked on a lock (lines `N: -> FLOCK ... PID ...`).
fn blocked_in_proc_locks(pid: i32) -> bool {
    fs::read_to_string("/proc/locks").is_ok_and(|locks| {
        locks.lines().any(|l| l.contains("->") && l.split_whitespace().nth(5) == Some(&pid.to_string()))
    })
}

/// A flock(1) user fills the file while withlock waits with -w: withlock must judge the file
/// by what it holds once the lock is its own, and leave the data alone.
#[test]
fn a_file_filled_while_we_waited_is_not_overwritten_by_the_record() {
    let t = TempDir::new();
    let lock = t.lock();
    fs::write(&lock, b"").unwrap();
    let go = t.join("go");
    // flock(1) holds the (empty) file; once told, its job writes data into it and ends.
    let mut flock = Command::new("flock");
    flock.arg(&lock).args([
        "sh",
        "-c",
        r#": > "$0.ready"; while [ ! -e "$1" ]; do sleep 0.01; done; printf 'precious data\n' > "$0""#,
    ]);
    flock.arg(&lock).arg(&go);
    let holder = crate::support::start_holding(&mut flock, &t.join("x.lock.ready"));
    let mut waiter = start(withlock().args(["-w", "20"]).arg(&lock).arg("true"));
    // Until withlock blocks in the kernel (it looked at the file before that).
    assert!(
        wait_until(Duration::from_secs(10), || blocked_in_proc_locks(waiter.pid())),
        "withlock never waited"
    );
    fs::write(&go, b"").unwrap();
    holder.wait(Duration::from_secs(10)).assert_code(0);
    let _ = waiter.try_status();
    waiter.wait(Duration::from_secs(20)).assert_code(0);
    assert_eq!(read_string(&lock), "precious data\n", "withlock wrote its record over the data");
}

/// `ulimit -f` (RLIMIT_FSIZE) below the record's length: the write is cut short. What is left
/// must be no record, the old one untouched, or a whole new one: never the head of the new
/// record over the tail of the old (whose `end` line would make it look whole, and lie).
#[test]
fn a_record_cut_short_by_a_file_size_limit_is_not_left_half_written() {
    let t = TempDir::new();
    let lock = t.lock();
    let marker = t.join("ran");
    // Long enough to pass the limit, short enough not to be cut (a record holds 1 KiB).
    let long: Vec<String> = (0..60).map(|i| format!("argument-{i}")).collect();
    // First a long record of another command, without a limit; then runs under a 256-byte one.
    run(withlock().arg(&lock).arg("true").args(&long)).assert_code(0);
    assert_holds_a_whole_record(&lock);
    let mut before = read_string(&lock);
    assert!(before.len() > 512, "{before:?}");
    let new_command =
        format!("command=sh -c \"touch \\\"$0\\\"\" {} {}\n", marker.to_str().unwrap(), long.join(" "));
    for round in 0..2 {
        let _ = fs::remove_file(&marker);
        let mut cmd = withlock();
        cmd.arg(&lock).args(["sh", "-c", "touch \"$0\""]).arg(&marker).args(&long);
        with_rlimit(&mut cmd, libc::RLIMIT_FSIZE, 256);
        run(&mut cmd).assert_code(0);
        assert!(exists(&marker), "round {round}: the job did not run");
        let text = read_string(&lock);
        let whole_new = text.starts_with(MAGIC) && text.ends_with("\nend\n") && text.contains(&new_command);
        assert!(
            text.is_empty() || text == before || whole_new,
            "round {round}: a half-written record is left: {text:?}"
        );
        before = text;
    }
    // Without the limit, records come back.
    run(withlock().arg(&lock).arg("true")).assert_code(0);
    assert_holds_a_whole_record(&lock);
}
