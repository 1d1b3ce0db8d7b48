//! The bump arena behind the guest heap (`heap.rs`): address arithmetic
//! only, so it is tested natively; the heap does the memory accesses.

use core::alloc::Layout;
use core::cell::Cell;
use core::ops::Range;

/// A bump allocator over an address range read on first use. `Cell`s
/// suffice: the heap is compiled only for single-threaded wasm32.
pub(crate) struct Arena {
    /// Where the range comes from (the initial memory's tail).
    bounds: fn() -> Range<usize>,
    /// Whether `start` and `end` have been read.
    ready: Cell<bool>,
    start: Cell<usize>,
    end: Cell<usize>,
    /// First free byte.
    next: Cell<usize>,
    /// The newest block, the only one that can grow, shrink or be given back.
    newest: Cell<Option<usize>>,
    /// Bytes from here to `end` have never been handed out, so they are still
    /// as the runtime made them: zero.
    untouched: Cell<usize>,
}

impl Arena {
    pub(crate) const fn new(bounds: fn() -> Range<usize>) -> Self {
        Self {
            bounds,
            ready: Cell::new(false),
            start: Cell::new(0),
            end: Cell::new(0),
            next: Cell::new(0),
            newest: Cell::new(None),
            untouched: Cell::new(0),
        }
    }

    pub(crate) fn contains(&self, address: usize) -> bool {
        (self.start.get()..self.end.get()).contains(&address)
    }

    /// Where the never-used part of the arena begins.
    pub(crate) fn untouched(&self) -> usize {
        self.untouched.get()
    }

    /// Moves the free pointer to `next`, remembering how far it ever went.
    fn set_next(&self, next: usize) {
        self.next.set(next);
        self.untouched.set(self.untouched.get().max(next));
    }

    /// The address of a block of `layout`, if one still fits.
    pub(crate) fn bump(&self, layout: Layout) -> Option<usize> {
        if !self.ready.replace(true) {
            let Range { start, end } = (self.bounds)();
            self.start.set(start);
            self.end.set(end);
            self.next.set(start);
            self.untouched.set(start);
        }
        // `Layout` guarantees a power-of-two alignment.
        let block = self.next.get().checked_next_multiple_of(layout.align())?;
        let block_end = block
            .checked_add(layout.size())
            .filter(|&end| end <= self.end.get())?;
        self.newest.set(Some(block));
        self.set_next(block_end);
        Some(block)
    }

    /// Gives `block` back if it is the newest; other blocks stay used.
    pub(crate) fn free(&self, block: usize) {
        if self.newest.get() == Some(block) {
            self.newest.set(None);
            self.next.set(block);
        }
    }

    /// Resizes `block` in place if it is the newest and the arena has room.
    pub(crate) fn resize_in_place(&self, block: usize, new_size: usize) -> bool {
        let fits = self.newest.get() == Some(block)
            && block
                .checked_add(new_size)
                .is_some_and(|end| end <= self.end.get());
        if fits {
            self.set_next(block + new_size);
        }
        fits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena() -> Arena {
        Arena::new(|| 1000..1100)
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("layout")
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_inside_the_range() {
        let arena = arena();
        let a = arena.bump(layout(3, 1)).expect("fits");
        let b = arena.bump(layout(8, 16)).expect("fits");
        assert_eq!((a, b), (1000, 1008));
        assert!(
            arena.contains(a) && arena.contains(b) && !arena.contains(1100) && !arena.contains(999)
        );
        assert_eq!(arena.bump(layout(85, 1)), None, "one byte too many");
        assert_eq!(arena.bump(layout(84, 1)), Some(1016));
        assert_eq!(arena.bump(layout(1, 1)), None, "full");
    }

    #[test]
    fn only_the_newest_block_is_given_back_or_resized() {
        let arena = arena();
        let a = arena.bump(layout(10, 1)).expect("fits");
        let b = arena.bump(layout(10, 1)).expect("fits");
        arena.free(a);
        assert!(!arena.resize_in_place(a, 20), "a is not the newest");
        assert!(arena.resize_in_place(b, 30), "b grows in place");
        assert_eq!(arena.bump(layout(1, 1)), Some(b + 30));
        assert!(!arena.resize_in_place(b, 5), "b is no longer the newest");
        let c = arena.bump(layout(4, 1)).expect("fits");
        arena.free(c);
        assert_eq!(
            arena.bump(layout(4, 1)),
            Some(c),
            "the newest block's space is reused"
        );
        assert!(!arena.resize_in_place(c, 1000), "no room");
    }

    #[test]
    fn untouched_marks_the_highest_byte_ever_handed_out() {
        let arena = arena();
        let a = arena.bump(layout(40, 1)).expect("fits");
        assert_eq!(arena.untouched(), 1040);
        arena.free(a);
        assert_eq!(arena.untouched(), 1040, "given back, but written to");
        assert_eq!(arena.bump(layout(10, 1)), Some(1000));
        assert_eq!(arena.untouched(), 1040);
    }
}
