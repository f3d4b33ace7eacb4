//! The `withlock` executable: a `no_std`, `no_main` shim around
//! [`withlock::main`], so that nothing runs before the lock that does not
//! have to (no std runtime set-up, no allocator, no argument copies).

#![no_std]
#![no_main]

use core::ffi::{c_char, c_int};

/// A panic is a bug in withlock: say so and exit with EX_SOFTWARE, never
/// run the command half-checked. (Release builds abort on panic.)
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    withlock::sys::write_all(2, b"withlock: internal error (a bug; please report it)\n");
    withlock::sys::exit_now(c_int::from(withlock::exit::INTERNAL))
}

/// `core` is shipped built with unwinding tables that name this symbol;
/// with `panic = "abort"` nothing ever calls it, but the linker wants it.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

/// Called by the C runtime (musl's or glibc's crt1).
///
/// # Safety
/// The C runtime passes a valid argc/argv pair.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: argc and argv come straight from the C runtime.
    unsafe { withlock::main(argc, argv) }
}
