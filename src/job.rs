//! After the lock is taken: write the holder record, then become the job,
//! or stay its parent when an option needs someone to watch it. One tail
//! for a plain LOCK and a `--slots` slot alike.

use crate::cli::{self, Options};
use crate::error::Failure;
use crate::{exec, lock, record, supervise, sys, text};
use core::ffi::CStr;

/// The slot a `--slots N` job took: `index` of `of` (N).
#[derive(Clone, Copy)]
pub struct Slot {
    pub index: u8,
    pub of: u8,
}

/// Run the job under the lock we hold on the file `path` (LOCK, or a slot's
/// file): become it, or stay its `parent` (as the plan says: see
/// [`crate::plan::Mode`]). `Ok` is the exit status when withlock stayed the
/// parent; `Err` why the job could not be run.
pub fn run(
    locked: lock::Locked,
    path: &CStr,
    slot: Option<Slot>,
    argv: exec::Argv,
    options: &Options,
    parent: bool,
) -> Result<u8, Failure<'static>> {
    let store_record = |job: Option<u32>| {
        // Shared holders are many: none of them is "the" holder.
        if !options.shared {
            let uts = sys::uname();
            let mut facts = record::Facts::now(job, record::host_name(&uts));
            if let Some(slot) = slot {
                (facts.slots, facts.slot) = (slot.of, slot.index);
            }
            record::store(path, locked.record_target(), &facts, argv.iter());
        }
    };
    if parent {
        return stay_parent(&locked, path, argv, options, store_record);
    }
    store_record(None);
    Err(exec::become_command(locked.fd, argv, options.verbose))
}

/// `--unlink`, `--no-inherit`, `--max-runtime`, `--syslog`: run the job as a child (see
/// [`supervise`]) and return its exit status, or 124 if it was stopped for
/// running too long. A job killed by a signal kills us the same way.
fn stay_parent(
    locked: &lock::Locked,
    path: &CStr,
    argv: exec::Argv,
    options: &Options,
    mut store_record: impl FnMut(Option<u32>),
) -> Result<u8, Failure<'static>> {
    let watch = supervise::Watch {
        max_runtime: options.max_runtime,
        kill_after: options.kill_after.unwrap_or(cli::DEFAULT_KILL_AFTER),
        die_with_parent: options.no_inherit,
        withhold: if options.no_inherit { Some(locked.fd.raw()) } else { None },
        // What the job leaves running in its group holds the lock: it is
        // still the job. (With --no-inherit it does not: such leftovers are
        // the daemons that option is for.)
        wait_for_group: !options.no_inherit,
        verbose: options.verbose,
    };
    let ended = supervise::run(argv, &watch, &mut supervise::NoGuard, &mut |job| store_record(Some(job)))?;
    // Remove the file while we still hold its lock, only if it is still the
    // file we locked, and only if nothing the job started (which inherited
    // the lock) runs on outside its group, which is gone: the next job would
    // take a new file beside it.
    if options.unlink && sys::lstat(path).is_ok_and(|now| sys::same_file(&now, &locked.stat)) {
        if !options.no_inherit && supervise::descendants_remain() {
            if options.verbose {
                text::say(
                    b"processes the job started run on, holding the lock: the lock file stays",
                    None,
                    b"",
                );
            }
        } else {
            let _ = sys::unlink(path);
            if options.verbose {
                text::say(b"the job ended; removed the lock file", None, b"");
            }
        }
    }
    Ok(ended.status())
}
