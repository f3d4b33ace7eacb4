//! End-to-end tests of the `withlock` binary: every test spawns the real executable
//! (`$WITHLOCK_BIN`, else the one Cargo built) and checks what a user would see: exit
//! status, output, files, and who holds the lock when.
//!
//! One test binary, grouped by topic; `support` is the small harness they share, `json` a
//! strict JSON reader, and `etcd_support` the etcd harness: throwaway servers, clusters and
//! proxies, etcdctl, a fake server, and network namespaces to cut (`etcd_facts` proves it
//! against the real tools; `etcd` tests withlock's etcd mode). `syslog` runs a real syslog
//! daemon (busybox syslogd) on a `/dev/log` of its own, in a private mount namespace.

#[path = "cli/etcd_support.rs"]
mod etcd_support;
#[path = "cli/json.rs"]
mod json;
#[path = "cli/support.rs"]
mod support;

#[path = "cli/args.rs"]
mod args;
#[path = "cli/descriptors.rs"]
mod descriptors;
#[path = "cli/etcd.rs"]
mod etcd;
#[path = "cli/etcd_facts.rs"]
mod etcd_facts;
#[path = "cli/exit_codes.rs"]
mod exit_codes;
#[path = "cli/fcntl.rs"]
mod fcntl;
#[path = "cli/holder.rs"]
mod holder;
#[path = "cli/interop.rs"]
mod interop;
#[path = "cli/jitter.rs"]
mod jitter;
#[path = "cli/job_env.rs"]
mod job_env;
#[path = "cli/lock_file.rs"]
mod lock_file;
#[path = "cli/long_times.rs"]
mod long_times;
#[path = "cli/max_runtime.rs"]
mod max_runtime;
#[path = "cli/messages.rs"]
mod messages;
#[path = "cli/minimal_env.rs"]
mod minimal_env;
#[path = "cli/name.rs"]
mod name;
#[path = "cli/no_inherit.rs"]
mod no_inherit;
#[path = "cli/options.rs"]
mod options;
#[path = "cli/resources.rs"]
mod resources;
#[path = "cli/safety.rs"]
mod safety;
#[path = "cli/shared.rs"]
mod shared;
#[path = "cli/shell.rs"]
mod shell;
#[path = "cli/signals.rs"]
mod signals;
#[path = "cli/slots.rs"]
mod slots;
#[path = "cli/supervise.rs"]
mod supervise;
#[path = "cli/syslog.rs"]
mod syslog;
#[path = "cli/torture.rs"]
mod torture;
#[path = "cli/trust.rs"]
mod trust;
#[path = "cli/waiting.rs"]
mod waiting;
