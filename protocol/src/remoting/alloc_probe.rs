//! Test-only global allocator that records the largest single allocation made
//! by the current thread.
//!
//! "Refused before allocation" (DESIGN.md) is a claim about memory, and checking
//! return values cannot prove it. With this probe a test can run a decoder on a
//! hostile length field and assert that nothing near that length was requested.
//! Counting per thread keeps tests that run in parallel out of each other's
//! numbers.
//!
//! A binary can have only one `#[global_allocator]`. This one exists only in
//! the crate's unit-test binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // `const` initialisation and a type without Drop: reading this slot never
    // allocates or registers a destructor, so using it inside the allocator
    // cannot recurse into the allocator.
    static LARGEST_ALLOCATION_BYTES: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    // try_with: while the thread shuts down the slot may be gone. Dropping the
    // measurement then is harmless.
    let _ = LARGEST_ALLOCATION_BYTES.try_with(|largest| largest.set(largest.get().max(size)));
}

struct LargestAllocationProbe;

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged. The added bookkeeping touches only a thread-local Cell.
unsafe impl GlobalAlloc for LargestAllocationProbe {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static PROBE: LargestAllocationProbe = LargestAllocationProbe;

/// Runs `f` and returns its result with the size of the largest single
/// allocation it made on this thread.
pub fn largest_allocation_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST_ALLOCATION_BYTES.with(|largest| largest.set(0));
    let result = f();
    let largest = LARGEST_ALLOCATION_BYTES.with(Cell::get);
    (result, largest)
}

#[cfg(test)]
mod tests {
    use super::largest_allocation_during;

    #[test]
    fn the_probe_sees_allocations() {
        let (buffer, largest) = largest_allocation_during(|| vec![0u8; 12_345]);
        assert_eq!(buffer.len(), 12_345);
        assert!(largest >= 12_345);
        let ((), largest) = largest_allocation_during(|| ());
        assert_eq!(largest, 0);
    }
}
