//! Descriptors 0, 1 and 2 closed by the caller (cron, daemons, `>&-`): withlock opens
//! /dev/null in their place before anything else, so the lock file never takes one of their
//! numbers. Otherwise the job's output overwrites the holder record, the job reads the record
//! as its input, and `-v` writes withlock's messages into the lock file (issue 10, item 4).

use std::ffi::OsStr;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{Out, TEST_PATH, TempDir, bin_argv, read_string, run, withlock};

const MAGIC: &str = "withlock-holder 1\n";

/// `withlock ARGS...` started by `sh` with `closing` (e.g. `>&-`) applied: those
/// descriptors are closed when withlock starts.
fn run_closed(closing: &str, args: &[&OsStr]) -> Out {
    let script = format!("exec \"$@\" {closing}");
    run(Command::new("sh")
        .args(["-c", &script, "sh"])
        .args(bin_argv())
        .args(args)
        .env("PATH", TEST_PATH)
        .stdin(Stdio::null()))
}

/// The lock file holds exactly one whole record, and nothing the job or withlock printed.
#[track_caller]
fn assert_only_a_record(lock: &Path) {
    let text = read_string(lock);
    assert!(
        text.starts_with(MAGIC) && text.ends_with("\nend\n") && text.matches("end\n").count() == 1,
        "the lock file holds more (or less) than a record: {text:?}"
    );
    assert!(!text.contains("JOB-42") && !text.contains("withlock:"), "{text:?}");
}

/// List what the job's shell has open on descriptors 0 to 3 (`-` for nothing) into the file
/// `$0`, one per line. (`$$` is the job's shell in the command substitution too.)
macro_rules! list_fds {
    () => {
        r#"fds=$(for fd in 0 1 2 3; do readlink "/proc/$$/fd/$fd" || echo -; done 2>/dev/null)
printf '%s\n' "$fds" > "$0""#
    };
}

/// The job: print (`JOB-42`, a text its own command line does not hold), then list what
/// it has open (see `list_fds!`).
const SHOW_FDS: &str = concat!("echo JOB-$((6 * 7)); echo JOB-$((6 * 7)) >&2\n", list_fds!());

#[track_caller]
fn job_fds(listing: &Path) -> Vec<String> {
    read_string(listing).lines().map(str::to_string).collect()
}

/// Run the `SHOW_FDS` job under `withlock OPTS LOCK` started with `closing` applied; the
/// lock file must then hold a record and nothing else. What the job had open on 0 to 3.
#[track_caller]
fn job_fds_with_closed(t: &TempDir, closing: &str, opts: &[&str]) -> Vec<String> {
    let lock = t.lock();
    let listing = t.join("fds");
    let mut args: Vec<&OsStr> = opts.iter().map(OsStr::new).collect();
    args.extend([
        lock.as_os_str(),
        OsStr::new("sh"),
        OsStr::new("-c"),
        OsStr::new(SHOW_FDS),
        listing.as_os_str(),
    ]);
    run_closed(closing, &args).assert_code(0);
    assert_only_a_record(&lock);
    let fds = job_fds(&listing);
    assert_eq!(Path::new(&fds[3]), lock, "the lock descriptor is not 3: {fds:?}");
    fds
}

#[test]
fn with_stdout_closed_the_jobs_output_goes_to_dev_null_not_into_the_record() {
    let t = TempDir::new();
    let fds = job_fds_with_closed(&t, ">&-", &[]);
    assert_eq!(fds[1], "/dev/null", "the job's stdout: {fds:?}");
}

#[test]
fn with_stdin_closed_the_job_reads_nothing_not_the_record() {
    let t = TempDir::new();
    let lock = t.lock();
    // A record to read, from an earlier run.
    run(withlock().arg(&lock).arg("true")).assert_code(0);
    let got = t.join("got");
    let job = [
        OsStr::new("sh"),
        OsStr::new("-c"),
        OsStr::new(r#"cat > "$0"; echo status=$? >> "$0""#),
        got.as_os_str(),
    ];
    let out = run_closed("<&-", &[&[lock.as_os_str()], &job[..]].concat());
    out.assert_code(0);
    assert_eq!(read_string(&got), "status=0\n", "the job read from its stdin: {}", out.describe());
    assert_only_a_record(&lock);
}

#[test]
fn with_stderr_closed_verbose_messages_do_not_land_in_the_lock_file() {
    let t = TempDir::new();
    let lock = t.lock();
    run_closed("2>&-", &[OsStr::new("-v"), lock.as_os_str(), OsStr::new("true")]).assert_code(0);
    assert_only_a_record(&lock);
}

#[test]
fn with_all_three_closed_each_is_dev_null_and_the_lock_is_descriptor_3() {
    let t = TempDir::new();
    let fds = job_fds_with_closed(&t, "<&- >&- 2>&-", &["-v"]);
    assert_eq!(&fds[..3], ["/dev/null"; 3], "{fds:?}");
}

/// Open descriptors are left as they are, even those `poll` reports trouble on (a pipe
/// whose reader is gone reports POLLERR): only a closed one is replaced.
#[test]
fn open_descriptors_are_left_alone_even_a_pipe_without_a_reader() {
    let t = TempDir::new();
    let lock = t.lock();
    let listing = t.join("fds");
    let mut ends = [0; 2];
    // SAFETY: `ends` has room for the two descriptors pipe returns.
    assert_eq!(unsafe { libc::pipe(ends.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just returned by pipe and are owned by nobody else.
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1])) };
    let writer_inode = fs::metadata(format!("/proc/self/fd/{}", writer.as_raw_fd())).unwrap();
    drop(reader);
    let writer_fd = writer.as_raw_fd();
    let mut cmd = withlock();
    cmd.arg(&lock).args(["sh", "-c", list_fds!()]).arg(&listing).env("PATH", TEST_PATH).stdin(Stdio::null());
    // SAFETY: dup2 is async-signal-safe; `writer_fd` stays open until the child has exec'd.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(writer_fd, 1) == 1 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
        });
    }
    let out = run(&mut cmd);
    drop(writer);
    out.assert_code(0);
    let fds = job_fds(&listing);
    assert_eq!(fds[1], format!("pipe:[{}]", std::os::unix::fs::MetadataExt::ino(&writer_inode)), "{fds:?}");
    assert_eq!(fds[0], "/dev/null");
    assert_eq!(Path::new(&fds[3]), lock, "{fds:?}");
}
