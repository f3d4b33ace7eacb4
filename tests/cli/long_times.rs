//! Times that do not fit in 32 bits. withlock's clocks, records and deadlines are 64-bit on
//! every target, the 32-bit ones (i686, armv7) too, where the C library's and the kernel's
//! old interfaces keep 32-bit seconds: they end in 2038, and wrap after 68 years. `make test`
//! runs these against each architecture's binary.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::json::Json;
use crate::support::{
    Out, TEST_PATH, TempDir, bin_argv, hold, require_root, run, start, wait_until_has_open, withlock,
};

/// 100 years, the longest finite `-w`, and far more than 2^31 seconds (68 years).
const CENTURY: &str = "876000h";

/// `withlock --status --json ARGS`: the one object it prints.
#[track_caller]
fn status_object(out: &Out) -> Json {
    let text = out.stdout_str();
    let mut lines = text.lines();
    let object = lines.next().unwrap_or_else(|| panic!("no output\n{}", out.describe()));
    assert!(lines.next().is_none(), "more than one object\n{}", out.describe());
    Json::parse(object).unwrap_or_else(|e| panic!("invalid JSON ({e})\n{}", out.describe()))
}

/// With a boot clock past 2^31 seconds (a time namespace that booted 70 years ago), the
/// record still proves that the holder is the job that wrote it. Read with 32-bit seconds,
/// the clock wrapped, and a live job looked like one that had exited.
#[test]
fn a_boot_clock_past_31_bits_still_proves_the_holder() {
    if !require_root("a_boot_clock_past_31_bits_still_proves_the_holder") {
        return;
    }
    let t = TempDir::new();
    let lock = t.lock();
    // The job is a shell whose child runs withlock --status on the lock, in the same
    // namespace. (Not the job itself: qemu-user makes up a process's own /proc/self/stat.)
    let out = run(Command::new("unshare")
        .args(["--time", "--boottime", "2200000000"])
        .args(bin_argv())
        .arg(&lock)
        .args(["sh", "-c", r#""$@"; exit $?"#, "sh"])
        .args(bin_argv())
        .args(["--status", "--json"])
        .arg(&lock)
        .env("PATH", TEST_PATH)
        .stdin(Stdio::null()));
    let err = out.stderr_str();
    if err.starts_with("unshare: unshare failed") || err.starts_with("unshare: unrecognized option") {
        eprintln!("skipping: no time namespace here: {}", out.describe());
        return;
    }
    let o = status_object(&out);
    assert_eq!((o.str_at("state"), o.str_at("record")), ("held", "current"), "{}", out.describe());
    let record = std::fs::read_to_string(&lock).unwrap();
    let boot_ns: u64 = record.lines().find_map(|l| l.strip_prefix("boot_ns=")).unwrap().parse().unwrap();
    assert!(boot_ns > 2_200_000_000 * 1_000_000_000, "boot_ns={boot_ns}: the clock wrapped\n{record}");
}

/// A record from another host (a 64-bit one, or one after 2038) shows the same dates on
/// every build: seconds past 2^32 and a boot clock near 2^64 are numbers like any other.
#[test]
fn a_record_dated_past_2038_shows_its_date() {
    let t = TempDir::new();
    let record = "withlock-holder 1\npid=4000000000\nlocker=4000000000\npgid=4000000000\nuid=0\nhost=far\n\
                  since=2106-02-07T06:28:16Z\nsince_unix=4294967296\nboot_ns=18446744073709551615\n\
                  version=0.1.0\ncommand=true\nend\n";
    let lock = t.write("x.lock", record.as_bytes(), 0o600);
    let out = run(withlock().args(["--status", "--json"]).arg(&lock));
    out.assert_code(0);
    let o = status_object(&out);
    assert_eq!(o.str_at("since"), "2106-02-07T06:28:16Z", "{}", out.describe());
    assert_eq!(o.u64_at("since_unix"), 4_294_967_296, "{}", out.describe());
    let out = run(withlock().arg("--status").arg(&lock));
    out.assert_code(0);
    assert!(out.stdout_str().contains(" at 2106-02-07T06:28:16Z "), "{}", out.describe());
}

/// `-w` for a century (the longest accepted) waits and hands over like a short one. The
/// timer behind it holds 31 bits of seconds on 32-bit targets, where a longer one is
/// refused: withlock caps it at 68 years instead of failing.
#[test]
fn a_wait_of_a_century_hands_over() {
    let t = TempDir::new();
    let lock = t.lock();
    let holder = hold(&t, &lock);
    let waiter = start(withlock().args(["-w", CENTURY]).arg(&lock).args(["echo", "ran"]));
    wait_until_has_open(waiter.pid(), &lock);
    holder.release().assert_code(0);
    waiter.wait(Duration::from_secs(20)).assert_code(0).assert_stdout("ran\n");
}

/// `--max-runtime` and `--kill-after` of a century leave a job alone: deadlines in 64-bit
/// nanoseconds of the boot clock do not wrap into the past.
#[test]
fn a_max_runtime_of_a_century_is_no_limit_at_all() {
    let t = TempDir::new();
    let out = run(withlock().args(["--max-runtime", CENTURY, "--kill-after", CENTURY]).arg(t.lock()).args([
        "sh",
        "-c",
        "sleep 0.3; exit 3",
    ]));
    out.assert_code(3).assert_silent();
}

/// On a kernel older than 5.1 (common on embedded boards) a 32-bit withlock finds no
/// `clock_gettime64` and reads the clocks the old way: the record still has today's date
/// and a boot clock that proves the holder. The old kernel is played by a seccomp filter
/// that answers ENOSYS to i386's clock_gettime64; so this runs for the i686 binary only
/// (natively: under qemu the filter would see the emulator's own system calls).
#[test]
fn without_clock_gettime64_the_clocks_are_read_the_old_way() {
    if !crate::support::bin_is_i386() {
        eprintln!("skipping: not an i386 binary (the filter is written for i386 system calls)");
        return;
    }
    let t = TempDir::new();
    let lock = t.lock();
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut cmd = withlock();
    cmd.arg(&lock)
        .args(["sh", "-c", r#""$@"; exit $?"#, "sh"])
        .args(bin_argv())
        .args(["--status", "--json"])
        .arg(&lock);
    // SAFETY: between fork and exec, only prctl with a filter that lives in this frame.
    unsafe { std::os::unix::process::CommandExt::pre_exec(&mut cmd, clock_gettime64_is_enosys) };
    let out = run(&mut cmd);
    let o = status_object(&out);
    assert_eq!((o.str_at("state"), o.str_at("record")), ("held", "current"), "{}", out.describe());
    let since = o.u64_at("since_unix");
    assert!(since >= before && since < before + 60, "since_unix {since}, test started at {before}");
}

/// Installs a seccomp filter: i386's clock_gettime64 (403) fails with ENOSYS.
fn clock_gettime64_is_enosys() -> std::io::Result<()> {
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    let op = |code: u32| u16::try_from(code).unwrap();
    let stmt = |code: u32, k: u32| libc::sock_filter { code: op(code), jt: 0, jf: 0, k };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K),
        jt,
        jf,
        k,
    };
    let load = |offset: u32| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    let enosys = u32::try_from(libc::ENOSYS).unwrap();
    let mut filter = [
        load(4), // seccomp_data.arch
        jeq(AUDIT_ARCH_I386, 0, 3),
        load(0), // seccomp_data.nr
        jeq(403, 0, 1),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ERRNO | enosys),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog { len: 6, filter: filter.as_mut_ptr() };
    // SAFETY: prctl with integers, then with a pointer to a valid program that outlives it.
    let ok = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &raw const program) == 0
    };
    if ok { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}
