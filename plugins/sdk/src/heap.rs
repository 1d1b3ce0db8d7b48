//! The guest heap: a bump arena in the unused tail of the component's
//! *initial* linear memory, then the standard allocator (dlmalloc).
//!
//! Every request runs in a fresh instance that the host drops afterwards,
//! so a short request never needs freed memory back. In the arena an
//! allocation is a pointer bump and a free is a no-op, except for the newest
//! block, which is also grown and shrunk in place (a `String` being pushed
//! to); dlmalloc's set-up and bookkeeping, a tenth of a short request's guest
//! time, go away. Once the arena is full, dlmalloc serves the rest from
//! `memory.grow` pages; the arena's freed blocks are never reused, so at most
//! its size is wasted. Short requests never grow memory, which with the
//! host's pooling allocator costs two `mprotect` calls and a TLB shoot-down.
//!
//! `cargo xtask build-plugins` links every plugin with a larger initial
//! memory (`--initial-memory`), which sets the arena's size. The host's
//! memory limits, the pooling reset between requests and the traps on
//! exhaustion apply to the arena as to any other memory. This is the SDK's one piece of
//! hand-written `unsafe` code; it runs inside the sandbox, where a bug could
//! only corrupt the plugin's own memory, never the host's.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::UnsafeCell;
use core::ops::Range;
use core::ptr;

use crate::arena::Arena;

/// WebAssembly page size.
const PAGE: usize = 64 * 1024;

unsafe extern "C" {
    /// First byte after the stack and static data, set by the linker.
    static __heap_base: u8;
}

/// The initial memory above the stack and all static data.
fn initial_tail() -> Range<usize> {
    let start = (ptr::addr_of!(__heap_base) as usize).next_multiple_of(16);
    start..(wasm32::memory_size(0) * PAGE).max(start)
}

/// dlmalloc's source of memory: fresh pages from `memory.grow`, nothing
/// else. (dlmalloc's own wasm source would first take the initial memory
/// above `__heap_base`: the arena's.)
struct FreshPages;

// SAFETY: grown pages are new memory of this instance that nothing else
// uses, and zero, as `allocates_zeros` promises.
unsafe impl dlmalloc::Allocator for FreshPages {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        let pages = size.div_ceil(PAGE);
        match wasm32::memory_grow(0, pages) {
            usize::MAX => (ptr::null_mut(), 0, 0),
            old_pages => (
                ptr::with_exposed_provenance_mut(old_pages * PAGE),
                pages * PAGE,
                0,
            ),
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

/// The arena first, dlmalloc when it is full.
struct Heap {
    arena: Arena,
    fallback: UnsafeCell<dlmalloc::Dlmalloc<FreshPages>>,
}

// SAFETY: single-threaded target (see the `cfg` on this module in lib.rs):
// no two calls into the heap can overlap, and neither the arena nor dlmalloc
// calls back into the global allocator.
unsafe impl Sync for Heap {}

impl Heap {
    /// SAFETY (for callers): no other reference to dlmalloc may be live,
    /// which holds because calls cannot overlap (see `Sync` above).
    #[allow(clippy::mut_from_ref)]
    unsafe fn fallback(&self) -> &mut dlmalloc::Dlmalloc<FreshPages> {
        unsafe { &mut *self.fallback.get() }
    }
}

// SAFETY: arena blocks lie in this instance's memory above the stack and all
// static data (`__heap_base`), below the initial memory's end, and are
// handed out once (a block is reused only after it was freed or resized as
// the newest); they are aligned as the layout asks. Every other call is
// forwarded to dlmalloc with the layout's size and alignment, as its
// methods require, and only with pointers dlmalloc returned (the arena's
// range tells them apart).
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.arena.bump(layout) {
            Some(block) => ptr::with_exposed_provenance_mut(block),
            None => unsafe { self.fallback().malloc(layout.size(), layout.align()) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Only bytes below this mark were handed out (and given back) before,
        // so only they can be non-zero.
        let untouched = self.arena.untouched();
        let Some(block) = self.arena.bump(layout) else {
            return unsafe { self.fallback().calloc(layout.size(), layout.align()) };
        };
        let pointer = ptr::with_exposed_provenance_mut::<u8>(block);
        let reused = layout.size().min(untouched.saturating_sub(block));
        unsafe { pointer.write_bytes(0, reused) };
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        let address = pointer.expose_provenance();
        if self.arena.contains(address) {
            self.arena.free(address);
        } else {
            unsafe { self.fallback().free(pointer, layout.size(), layout.align()) }
        }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let address = pointer.expose_provenance();
        if !self.arena.contains(address) {
            return unsafe {
                self.fallback()
                    .realloc(pointer, layout.size(), layout.align(), new_size)
            };
        }
        if self.arena.resize_in_place(address, new_size) {
            return pointer;
        }
        // SAFETY: the caller guarantees `new_size`, rounded up to the
        // alignment, does not overflow `isize`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            unsafe { ptr::copy_nonoverlapping(pointer, moved, layout.size().min(new_size)) };
            self.arena.free(address);
        }
        moved
    }
}

#[global_allocator]
static HEAP: Heap = Heap {
    arena: Arena::new(initial_tail),
    fallback: UnsafeCell::new(dlmalloc::Dlmalloc::new_with_allocator(FreshPages)),
};
