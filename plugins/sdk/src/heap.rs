//! The guest heap: the standard allocator (dlmalloc), but fed first with the
//! unused tail of the component's *initial* linear memory.
//!
//! Rust's own wasm32 allocator gets every byte of heap through `memory.grow`,
//! so even the smallest request grows memory, and with the host's pooling
//! allocator each growth costs two `mprotect` calls with a TLB shoot-down
//! (one to grow, one to shrink the slot back for the next instance): about
//! half the cost of a short request. `cargo xtask build-plugins` links every
//! plugin with a larger initial memory (`--initial-memory`); this allocator
//! hands the part above `__heap_base` to dlmalloc before growing, so a
//! typical request never grows memory at all.
//!
//! Only the source of heap pages changes: the host's memory limits, the
//! pooling reset between requests and the traps on exhaustion are exactly
//! as before. This is the SDK's one piece of hand-written `unsafe` code; it
//! runs inside the sandbox, where a bug could only corrupt the plugin's own
//! memory, never the host's.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use core::ptr;

/// WebAssembly page size.
const PAGE: usize = 64 * 1024;

unsafe extern "C" {
    /// First byte after the stack and static data, set by the linker.
    static __heap_base: u8;
}

/// dlmalloc's source of memory: the initial memory above `__heap_base`
/// (extended by `memory.grow` when the first request does not fit), then
/// fresh pages from `memory.grow`.
struct InitialMemoryFirst {
    /// Whether the initial memory's tail has been handed out. A `Cell`
    /// suffices: this module is compiled only for single-threaded wasm32.
    tail_taken: core::cell::Cell<bool>,
}

// SAFETY: single-threaded target (see the `cfg` on this module in lib.rs);
// the value is never shared between threads.
unsafe impl Send for InitialMemoryFirst {}

/// Grows memory by enough pages for `bytes`; returns the old end in bytes.
fn grow(bytes: usize) -> Option<usize> {
    let old_pages = wasm32::memory_grow(0, bytes.div_ceil(PAGE));
    (old_pages != usize::MAX).then(|| old_pages * PAGE)
}

// SAFETY: every region returned is memory of this instance that nothing else
// uses: the tail of the initial memory lies above the stack and all static
// data (`__heap_base`) and is handed out once; grown pages are new. Both are
// zero, as `allocates_zeros` promises: fresh linear memory is zeroed by the
// runtime and nothing writes above `__heap_base` before the allocator.
unsafe impl dlmalloc::Allocator for InitialMemoryFirst {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        let end = wasm32::memory_size(0) * PAGE;
        if !self.tail_taken.replace(true) {
            let base = (ptr::addr_of!(__heap_base) as usize).next_multiple_of(16);
            if base < end {
                let tail = end - base;
                // Extend the tail with contiguous new pages if it is too small.
                let extra = size.saturating_sub(tail);
                if extra == 0 || grow(extra) == Some(end) {
                    let grown = extra.div_ceil(PAGE) * PAGE;
                    return (ptr::with_exposed_provenance_mut(base), tail + grown, 0);
                }
            }
        }
        match grow(size) {
            Some(start) => (ptr::with_exposed_provenance_mut(start), size.div_ceil(PAGE) * PAGE, 0),
            None => (ptr::null_mut(), 0, 0),
        }
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        ptr::null_mut()
    }

    fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
        false
    }

    fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
        false
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        PAGE
    }
}

/// dlmalloc behind the global-allocator interface.
struct Heap(UnsafeCell<dlmalloc::Dlmalloc<InitialMemoryFirst>>);

// SAFETY: single-threaded target: no two calls into the heap can overlap,
// and dlmalloc never calls back into the global allocator.
unsafe impl Sync for Heap {}

impl Heap {
    /// SAFETY (for callers): no other reference to the heap may be live,
    /// which holds because calls cannot overlap (see `Sync` above).
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self) -> &mut dlmalloc::Dlmalloc<InitialMemoryFirst> {
        unsafe { &mut *self.0.get() }
    }
}

// SAFETY: forwards to dlmalloc with the layout's size and alignment, the
// contract `Dlmalloc`'s methods require.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { self.get().malloc(layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { self.get().calloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.get().free(ptr, layout.size(), layout.align()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { self.get().realloc(ptr, layout.size(), layout.align(), new_size) }
    }
}

#[global_allocator]
static HEAP: Heap = Heap(UnsafeCell::new(dlmalloc::Dlmalloc::new_with_allocator(InitialMemoryFirst {
    tail_taken: core::cell::Cell::new(false),
})));
