//! The record is a claim, the kernel is the witness (issue 10, items 1 to 3): a holder
//! record anyone who can write the lock file can forge never decides whom `--replace`
//! signals; `--status` never calls a lock free that it cannot see (another pid namespace,
//! overlayfs) and tells the kernel's facts apart from the record's claims; a lock file
//! others can write is refused. The pid-namespace scenarios run inside
//! `unshare --pid --fork --mount-proc`, so that a failing withlock can only reach
//! processes the test started there.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::json::Json;
use crate::support::{
    Out, Running, TEST_PATH, TempDir, as_user, chown, exists, read_string, require_root,
    require_root_and_nobody, run, run_within, runnable_copy, set_mode, start, start_holding, wait_until,
    withlock,
};

/// A uid with no /etc/passwd entry: an unprivileged attacker.
const ATTACKER: u32 = 54321;

/// Alive: it exists and is not a zombie.
fn alive(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X'))
}

/// A `sleep 300` leading a process group of its own: what a forged record points at.
fn victim() -> Running {
    let mut cmd = Command::new("sleep");
    cmd.arg("300").stdin(Stdio::null()).process_group(0);
    start(&mut cmd)
}

/// The job's shell snippet that rewrites the record through its inherited lock
/// descriptor (fd 3) to name `$2` as the job (pid and group), itself as the locker, a
/// start time far in the future (so that any process passes for having started before),
/// then announces itself in `$1` and idles.
const FORGE: &str = r#"printf 'withlock-holder 1\npid=%s\nlocker=%s\npgid=%s\nuid=0\nboot_ns=99999999999999999\ncommand=forged\nend\n' "$2" $$ "$2" >&3 && : > "$1"; exec sleep 300"#;

/// `withlock t/x.lock setpriv (as uid:gid) sh -c SCRIPT sh READY ARGS...` started by root:
/// a job that drops its privileges, returned once it announced itself in READY (`$1`).
/// Returns the lock's path and the job.
#[track_caller]
fn job_as(
    t: &TempDir,
    (uid, gid): (u32, u32),
    script: &str,
    args: &[String],
) -> (std::path::PathBuf, Running) {
    set_mode(t.path(), 0o711);
    let marks = t.mkdir("marks", 0o755);
    chown(&marks, uid, gid);
    let ready = marks.join("ready");
    let mut job = withlock();
    job.arg(t.lock())
        .args(["setpriv", &format!("--reuid={uid}"), &format!("--regid={gid}"), "--clear-groups"])
        .args(["sh", "-c", script, "sh"])
        .arg(&ready)
        .args(args);
    (t.lock(), start_holding(&mut job, &ready))
}

/// Which descriptor of `pid` is open on `path` (the job's inherited lock descriptor).
fn fd_on(pid: i32, path: &Path) -> Option<String> {
    fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten().find_map(|e| {
        (fs::read_link(e.path()).ok()? == path).then(|| e.file_name().to_string_lossy().into_owned())
    })
}

/// `--status --json LOCK`: the exit code and the object.
#[track_caller]
fn status_json(cmd: &mut Command) -> (Option<i32>, Json) {
    let out = run(cmd);
    let line = out.stdout_str();
    let o = Json::parse(line.trim_end()).unwrap_or_else(|e| panic!("not JSON ({e})\n{}", out.describe()));
    (out.code(), o)
}

// ---------------------------------------------------------------------------------------------
// Item 1: nothing is signalled on the record's word.

/// A job root starts drops to `nobody` and rewrites the record through its inherited
/// descriptor to name a bystander of root's (its pid and group, a start time that any
/// process passes). `--replace` must not signal the bystander; the job is not provably
/// what the record says, so nothing is signalled. The display shows the kernel's facts
/// (pid and user of the real holder) apart from the record's claims.
#[test]
fn a_record_forged_by_a_job_that_dropped_privileges_signals_nobody() {
    let Some(nobody) = require_root_and_nobody("a_record_forged_by_a_job_that_dropped_privileges") else {
        return;
    };
    let t = TempDir::new();
    let bystander = victim();
    let (lock, mut holder) = job_as(&t, nobody, FORGE, &[bystander.pid().to_string()]);
    assert_eq!(fd_on(holder.pid(), &lock).as_deref(), Some("3"), "the job's lock descriptor is not fd 3");
    assert!(
        read_string(&lock).contains(&format!("\npid={}\n", bystander.pid())),
        "the record was not forged"
    );

    let out = run_within(
        withlock().args(["--replace", "--kill-after", "0.3"]).arg(&lock).args(["echo", "RAN"]),
        Duration::from_secs(20),
    );
    let survived = alive(bystander.pid());
    assert!(survived, "--replace signalled the process a forged record named\n{}", out.describe());
    out.assert_code(75).assert_one_message_naming("not provably");
    assert!(out.stdout.is_empty(), "{}", out.describe());
    let (code, o) = status_json(withlock().args(["--status", "--json"]).arg(&lock));
    assert_eq!(code, Some(75), "{o:?}");
    assert_eq!(o.u64_at("locker_pid"), u64::try_from(holder.pid()).unwrap(), "{o:?}");
    assert_eq!((o.str_at("locker_user"), o.at("locker_holds")), ("nobody", &Json::Bool(true)), "{o:?}");
    assert_eq!(
        (o.u64_at("pid"), o.str_at("user")),
        (u64::try_from(bystander.pid()).unwrap(), "root"),
        "{o:?}"
    );
    assert_ne!(o.str_at("record"), "current", "a forged record passed for the holder's: {o:?}");
    let text = run(withlock().arg("--status").arg(&lock)).stdout_str();
    assert!(
        text.contains(&format!(
            "held by pid {}, user nobody, which left no current record (the record is stale: it names pid {} (forged), user root",
            holder.pid(),
            bystander.pid()
        )),
        "{text}"
    );

    assert!(holder.is_running(), "the holder was signalled although its record is not its own");
}

/// The same without privileges: in a shared directory (so with `--insecure`), an attacker
/// holds the lock and writes a record naming a process of the victim's. The victim's
/// `--replace` must not signal its own process on the attacker's word: the process the
/// kernel shows holding the lock is the attacker's, which the victim may not stop (77).
#[test]
fn a_record_forged_in_a_shared_directory_signals_nobody() {
    let Some((uid, gid)) = require_root_and_nobody("a_record_forged_in_a_shared_directory") else {
        return;
    };
    let t = TempDir::new();
    let bin_copy = runnable_copy(&t);
    let shared = t.mkdir("shared", 0o1777);
    // The attacker's lock file, which the victim can open (to lock it, and to be lured).
    let lock = shared.join("x.lock");
    fs::write(&lock, b"").unwrap();
    set_mode(&lock, 0o644);
    chown(&lock, ATTACKER, ATTACKER);
    let ready = shared.join("ready");
    // The victim's process, in a group of its own.
    let mut own = as_user(uid, gid);
    own.args(["sleep", "300"]).process_group(0);
    let victims = start(&mut own);
    assert!(wait_until(Duration::from_secs(10), || fs::read_to_string(format!(
        "/proc/{}/comm",
        victims.pid()
    ))
    .is_ok_and(|c| c.trim() == "sleep")));
    let mut attack = as_user(ATTACKER, ATTACKER);
    attack
        .args(crate::support::argv_for(&bin_copy))
        .arg("--insecure")
        .arg(&lock)
        .args(["sh", "-c", FORGE, "sh"])
        .arg(&ready)
        .arg(victims.pid().to_string());
    let mut attacker = start_holding(&mut attack, &ready);

    let out = run_within(
        as_user(uid, gid)
            .args(crate::support::argv_for(&bin_copy))
            .args(["--insecure", "--replace", "--kill-after", "0.3"])
            .arg(&lock)
            .args(["echo", "RAN"]),
        Duration::from_secs(20),
    );
    assert!(
        alive(victims.pid()),
        "--replace signalled the victim's own process on a forged record\n{}",
        out.describe()
    );
    out.assert_code(77)
        .assert_one_message_naming(format!("pid {} belongs to uid {ATTACKER}", attacker.pid()));
    assert!(out.stdout.is_empty(), "{}", out.describe());
    assert!(attacker.is_running());
}

/// Runs `script` (sh) under `unshare NAMESPACES...`, with `$1` the binary, `$2` the test's
/// directory and `$3` `extra`; `None` (after saying why) where that cannot be done: the
/// namespaces cannot be made, or the script's own setup exits 99.
fn unshared(test: &str, namespaces: &[&str], script: &str, extra: &str, t: &TempDir) -> Option<Out> {
    if !require_root(test) {
        return None;
    }
    let out = run_within(
        Command::new("unshare")
            .args(namespaces)
            .args(["sh", "-c", script, "sh"])
            .arg(crate::support::bin_as_one_word(t))
            .arg(t.path())
            .arg(extra)
            .env("PATH", TEST_PATH)
            .stdin(Stdio::null()),
        Duration::from_secs(30),
    );
    if out.stderr_str().contains("unshare failed") || out.code() == Some(99) {
        eprintln!("skipping {test}: cannot do that here: {}", out.describe());
        return None;
    }
    Some(out)
}

/// `script` as pid 1 of a new pid namespace with its own /proc (see `unshared`).
fn in_pid_namespace(test: &str, script: &str, extra: &str, t: &TempDir) -> Option<Out> {
    unshared(test, &["--pid", "--fork", "--mount-proc"], script, extra, t)
}

/// withlock as pid 1 of a pid namespace (a container's entrypoint, here made a session
/// leader as container runtimes do: the record says pid=1 pgid=1). `--replace` run in
/// the container must not become kill(-1), which would reach every process there.
#[test]
fn replace_never_signals_pid_1_or_every_process() {
    let t = TempDir::new();
    // Pid 1 (the holder's job) starts two bystanders and the replacer, and reports.
    let job = r#"d=$2
sleep 300 & echo $! > "$d/v1"
sh -c 'exec sleep 300' & echo $! > "$d/v2"
"$1" --replace --kill-after 0.2 "$d/x.lock" echo RAN > "$d/out" 2> "$d/err"; echo $? > "$d/code"
for v in v1 v2; do kill -0 "$(cat "$d/$v")" 2> /dev/null && echo "$v" >> "$d/alive"; done
exit 0"#;
    let script = r#"exec setsid "$1" "$2/x.lock" sh -c "$3" sh "$1" "$2""#;
    let Some(out) = in_pid_namespace("replace_never_signals_pid_1_or_every_process", script, job, &t) else {
        return;
    };
    let record = read_string(&t.lock());
    assert!(
        record.contains("\npid=1\n") && record.contains("\npgid=1\n"),
        "the holder is not pid 1 of its group: {record}"
    );
    let alive = fs::read_to_string(t.join("alive")).unwrap_or_default();
    let err = read_string(&t.join("err"));
    assert_eq!(alive, "v1\nv2\n", "--replace killed processes in the namespace: {err}\n{}", out.describe());
    assert!(refused_replace(&t).contains("its holder is pid 1"), "{err}");
}

/// What the replacer run in a namespace left in `t`: exit 75 and the command not run.
/// Returns its message.
#[track_caller]
fn refused_replace(t: &TempDir) -> String {
    let err = read_string(&t.join("err"));
    assert_eq!(read_string(&t.join("code")).trim(), "75", "{err}");
    assert_eq!(read_string(&t.join("out")), "", "the command ran");
    err
}

/// After SIGTERM, the job exits but a child it left keeps the lock; its pid is then given
/// to a new process (ns_last_pid, in a pid namespace of the test's own). The SIGKILL must
/// not go to that new process: withlock checks again, sees it holds nothing, and stops.
#[test]
fn sigkill_never_reaches_a_process_that_reused_the_pid() {
    let t = TempDir::new();
    // pid 1: start the holder (its job traps TERM and exits, its child keeps the lock),
    // the replacer, then reuse the job's pid once it has ended.
    let script = r#"b=$1 d=$2
"$b" "$d/x.lock" sh -c 'trap "exit 0" TERM; sleep 300 & echo $$ > "$1/job"; : > "$1/ready"; wait' sh "$d" &
j=$!
while [ ! -e "$d/ready" ]; do sleep 0.01; done
"$b" --replace --kill-after 3 "$d/x.lock" echo RAN > "$d/out" 2> "$d/err" &
r=$!
wait $j
echo $((j - 1)) > /proc/sys/kernel/ns_last_pid || exit 99
sleep 300 &
v=$!
echo "$j $v" > "$d/pids"
wait $r
echo $? > "$d/code"
kill -0 $v 2> /dev/null && echo alive > "$d/victim"
exit 0"#;
    let Some(out) = in_pid_namespace("sigkill_never_reaches_a_process_that_reused_the_pid", script, "", &t)
    else {
        return;
    };
    let pids = read_string(&t.join("pids"));
    let (job, reused) = pids.trim().split_once(' ').unwrap_or_else(|| panic!("{pids:?}\n{}", out.describe()));
    assert_eq!(job, reused, "the job's pid was not reused; the test proves nothing\n{}", out.describe());
    let err = read_string(&t.join("err"));
    assert!(exists(&t.join("victim")), "the SIGKILL reached the process that reused the job's pid: {err}");
    assert!(refused_replace(&t).contains("no SIGKILL sent"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Item 2: --status never calls a held lock free.

/// From another pid namespace (a container looking at a host lock), /proc/locks does not
/// show the holder: --status says "unknown" (69), never "free"; a busy run says the
/// holder is not visible; `--slots N` refuses a `LOCK.N` it cannot see (69) rather than run
/// beside a job with more slots. Seen from the holder's namespace, the lock is held.
#[test]
fn status_from_another_pid_namespace_is_unknown_not_free() {
    let t = TempDir::new();
    let lock = t.lock();
    let past_slot = t.join("s.lock.2");
    let ready = t.join("ready");
    let mut hold = withlock();
    hold.arg(&lock).args(["sh", "-c", r#": > "$1"; exec sleep 300"#, "sh"]).arg(&ready);
    let _holder = start_holding(&mut hold, &ready);
    let ready2 = t.join("ready2");
    let mut hold2 = withlock();
    hold2.arg(&past_slot).args(["sh", "-c", r#": > "$1"; exec sleep 300"#, "sh"]).arg(&ready2);
    let _slot_holder = start_holding(&mut hold2, &ready2);
    let script = r#"b=$1 d=$2
"$b" --status "$d/x.lock" > "$d/status" 2>&1; echo $? > "$d/status.code"
"$b" --status --json "$d/x.lock" > "$d/json"
"$b" "$d/x.lock" true 2> "$d/busy"; echo $? > "$d/busy.code"
"$b" --slots 2 "$d/s.lock" sh -c 'echo RAN' > "$d/slots" 2>&1; echo $? > "$d/slots.code"
exit 0"#;
    let Some(out) = in_pid_namespace("status_from_another_pid_namespace_is_unknown_not_free", script, "", &t)
    else {
        return;
    };
    let status = read_string(&t.join("status"));
    assert_eq!(read_string(&t.join("status.code")).trim(), "69", "{status}\n{}", out.describe());
    assert!(
        status.starts_with(&format!(
            "{}: unknown: no holder is visible, but /proc/locks hides other pid namespaces' holders",
            lock.display()
        )),
        "{status}"
    );
    let o = Json::parse(read_string(&t.join("json")).trim_end()).unwrap();
    assert_eq!((o.str_at("state"), o.str_at("blind_spot")), ("unknown", "pid-namespace"), "{o:?}");
    assert_eq!(read_string(&t.join("busy.code")).trim(), "75");
    let busy = read_string(&t.join("busy"));
    assert!(
        busy.contains(
            "is held by a process not visible from here (/proc/locks hides other pid namespaces' holders)"
        ),
        "{busy}"
    );
    let slots = read_string(&t.join("slots"));
    assert_eq!(
        read_string(&t.join("slots.code")).trim(),
        "69",
        "--slots 2 ran beside a held s.lock.2: {slots}"
    );
    assert!(slots.contains("s.lock.2: a job with more slots may hold it"), "{slots}");
    // From the holder's namespace, the same lock is held.
    let out = run(withlock().arg("--status").arg(&lock));
    out.assert_code(75);
}

/// Runs `script` (sh) in a mount namespace of its own, with an overlay mounted at
/// `$2/merged` whose layers are on different file systems (the lower one a tmpfs), so that
/// the device number fstat gives differs from the one /proc/locks names files by. `$1` is
/// the binary, `$3` `extra`. `None` (after saying why) where the kernel refuses.
fn on_overlay(test: &str, script: &str, extra: &str, t: &TempDir) -> Option<Out> {
    if !require_root(test) {
        return None;
    }
    for dir in ["lower", "upper", "work", "merged"] {
        t.mkdir(dir, 0o700);
    }
    let setup = r#"d=$2
mount -t tmpfs -o mode=0700 tmpfs "$d/lower" || exit 99
mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" "$d/merged" || exit 99
chmod 0700 "$d/merged"
"#;
    unshared(test, &["--mount", "--propagation", "private"], &format!("{setup}{script}"), extra, t)
}

/// On overlayfs, /proc/locks names the file by the overlay's device number, not the one
/// fstat gives: a lock held there must still be seen held (not "free"), its holder named,
/// `--slots` must see a held `LOCK.N`, and `--replace` must find the holder to replace. A
/// user who may not look at the holder's open files (root's) cannot tell whether the lock
/// under the other device number is this file's: "unknown", not "free".
#[test]
fn status_on_overlayfs_sees_the_holder() {
    let Some((uid, gid)) = crate::support::nobody() else {
        eprintln!("skipping status_on_overlayfs_sees_the_holder: no nobody user");
        return;
    };
    let t = TempDir::new();
    let script = r#"b=$1 m=$2/merged
"$b" "$m/x.lock" sh -c ': > "$1"; echo $$ > "$2"; exec sleep 300' sh "$2/ready" "$2/holder" &
p1=$!
"$b" "$m/s.lock.2" sh -c ': > "$1"; exec sleep 300' sh "$2/ready2" &
p2=$!
while [ ! -e "$2/ready" ] || [ ! -e "$2/ready2" ]; do sleep 0.01; done
"$b" --status "$m/x.lock" > "$2/status"; echo $? > "$2/status.code"
"$b" --slots 2 "$m/s.lock" echo RAN > "$2/slots" 2>&1; echo $? > "$2/slots.code"
cp "$b" "$2/wl" && chmod 0755 "$2" "$m" "$2/wl" && chmod 0644 "$m/x.lock"
setpriv --reuid="${3%:*}" --regid="${3#*:}" --clear-groups "$2/wl" --status --json "$m/x.lock" > "$2/nobody" 2>&1
echo $? > "$2/nobody.code"
"$b" --replace --kill-after 5 "$m/x.lock" echo REPLACED > "$2/replace" 2>&1; echo $? > "$2/replace.code"
kill $p1 $p2 2> /dev/null
exit 0"#;
    let Some(out) = on_overlay("status_on_overlayfs_sees_the_holder", script, &format!("{uid}:{gid}"), &t)
    else {
        return;
    };
    let holder = read_string(&t.join("holder")).trim().to_string();
    let status = read_string(&t.join("status"));
    assert_eq!(
        read_string(&t.join("status.code")).trim(),
        "75",
        "a held lock on overlayfs: {status}\n{}",
        out.describe()
    );
    assert!(status.contains(&format!(": held by pid {holder}, user root; the record says: ")), "{status}");
    let slots = read_string(&t.join("slots"));
    assert_eq!(
        read_string(&t.join("slots.code")).trim(),
        "64",
        "--slots 2 ran beside a held s.lock.2: {slots}"
    );
    let nobody = read_string(&t.join("nobody"));
    assert_eq!(read_string(&t.join("nobody.code")).trim(), "69", "{nobody}");
    let o = Json::parse(nobody.trim_end()).unwrap_or_else(|e| panic!("{e}: {nobody}"));
    assert_eq!((o.str_at("state"), o.str_at("blind_spot")), ("unknown", "device"), "{o:?}");
    let replace = read_string(&t.join("replace"));
    assert_eq!(read_string(&t.join("replace.code")).trim(), "0", "{replace}");
    assert_eq!(replace, "REPLACED\n");
}

// ---------------------------------------------------------------------------------------------
// Item 3: what is a claim, and who could have written it.

/// A lock file others can write (flock(1) under umask 0 makes them, root-owned, mode 0666)
/// is refused like a shared directory (77), unless --insecure; --status says who else could
/// have written the record, as it does for a lock file owned by another user than the
/// record's.
#[test]
fn a_lock_file_others_can_write_is_refused_and_its_record_doubted() {
    let Some((uid, gid)) = require_root_and_nobody("a_lock_file_others_can_write_is_refused") else {
        return;
    };
    let t = TempDir::new();
    let lock = t.lock();
    let out = run(Command::new("sh").args(["-c", r#"umask 0; exec flock "$1" true"#, "sh"]).arg(&lock));
    out.assert_code(0);
    assert_eq!(
        fs::metadata(&lock)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap(),
        0o666
    );
    let marker = t.join("ran");
    let out = run(withlock().arg(&lock).arg("touch").arg(&marker));
    out.assert_code(77)
        .assert_one_message_naming(&lock)
        .assert_stderr_mentions("(mode 0666) is writable by group or others");
    assert!(!exists(&marker), "the command ran");
    run(withlock().arg("--insecure").arg(&lock).arg("touch").arg(&marker)).assert_code(0);
    assert!(exists(&marker));

    // The record in it: the display says anyone could have written it.
    let status = run(withlock().arg("--status").arg(&lock)).stdout_str();
    assert!(
        status.contains("; the lock file (mode 0666) is writable by others, who could have written that"),
        "{status}"
    );
    let (_, o) = status_json(withlock().args(["--status", "--json"]).arg(&lock));
    assert_eq!((o.str_at("file_mode"), o.u64_at("file_uid")), ("0666", 0), "{o:?}");

    // A lock file owned by nobody, with a record that says root: nobody could have written it.
    let other = t.join("other.lock");
    fs::copy(&lock, &other).unwrap();
    set_mode(&other, 0o600);
    chown(&other, uid, gid);
    let status = run(withlock().arg("--status").arg(&other)).stdout_str();
    assert!(status.contains("; the lock file belongs to nobody, who could have written that"), "{status}");
}

/// The job's user as the kernel shows it is told apart from the record's: a job that
/// dropped to nobody is "user nobody" for the kernel, while its record says root.
#[test]
fn status_tells_the_kernels_user_from_the_records() {
    let Some(nobody) = require_root_and_nobody("status_tells_the_kernels_user_from_the_records") else {
        return;
    };
    let t = TempDir::new();
    let (lock, holder) = job_as(&t, nobody, r#": > "$1"; exec sleep 300"#, &[]);
    let text = run(withlock().arg("--status").arg(&lock)).stdout_str();
    assert!(
        text.starts_with(&format!(
            "{}: held by pid {}, user nobody; the record says: pid {} (setpriv ",
            lock.display(),
            holder.pid(),
            holder.pid()
        )),
        "{text}"
    );
    assert!(text.contains(", user root, "), "the record's user is not shown apart: {text}");
    let (code, o) = status_json(withlock().args(["--status", "--json"]).arg(&lock));
    assert_eq!(code, Some(75));
    assert_eq!(
        (o.str_at("record"), o.str_at("locker_user"), o.str_at("user")),
        ("current", "nobody", "root"),
        "{o:?}"
    );
}
