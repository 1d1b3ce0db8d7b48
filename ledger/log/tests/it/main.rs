//! Integration tests of this crate, as modules of one test binary: one
//! link is much cheaper than one per test file.

mod checkpoint;
mod common;
mod files;
mod lookup;
mod proptest_tree;
mod rejections;
mod rfc6962_vectors;
