//! The plan: what withlock will do, read from the command line (for now,
//! the process's arguments, as `main` received them).

use crate::exec;
use core::ffi::{CStr, c_char};

/// The process's arguments, as `main` received them.
pub struct Args {
    pub argv: *const *const c_char,
    pub count: usize,
}

impl Args {
    /// argv from `index` on: a null-terminated array of C strings, as
    /// `execvp` wants it.
    pub fn tail(&self, index: usize) -> exec::Argv {
        assert!(index < self.count);
        // SAFETY: `Args` is built only from main's argc/argv: argv[index..argc]
        // are valid C strings and argv[argc] is null.
        unsafe { exec::Argv::new(self.argv.add(index)) }
    }

    pub fn get(&self, index: usize) -> &'static CStr {
        assert!(index < self.count);
        // SAFETY: `Args` is built only from main's argc/argv (see `main`):
        // argv[0..argc] are valid C strings that live as long as the process.
        unsafe { CStr::from_ptr(*self.argv.add(index)) }
    }
}
