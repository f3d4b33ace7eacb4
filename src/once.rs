//! Static buffers that can be borrowed once, mutably, without `static mut`
//! references scattered around.
//!
//! withlock keeps its few larger buffers in static memory (see
//! `locate::Buffers`); each is handed out exactly once in the life of the
//! process, which is what makes the `&'static mut` sound.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

pub struct TakeOnce<T> {
    taken: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reachable only through `take`, which hands out one
// reference in the whole life of the process, whatever thread asks.
unsafe impl<T: Send> Sync for TakeOnce<T> {}

impl<T> TakeOnce<T> {
    pub const fn new(value: T) -> TakeOnce<T> {
        TakeOnce { taken: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// The value, the first time; `None` ever after.
    // Handing out `&mut` from `&self` is the point; the flag makes it unique.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut T> {
        if self.taken.swap(true, Ordering::SeqCst) {
            return None;
        }
        // SAFETY: the flag above lets this line run once per static, so this
        // is the only reference ever made to the value.
        Some(unsafe { &mut *self.value.get() })
    }
}
