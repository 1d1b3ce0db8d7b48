//! Integration tests of this crate, one test binary (each module was
//! its own binary; one link is much cheaper than many).

mod common;
mod files;
mod lookup;
mod proptest_tree;
mod rejections;
mod rfc6962_vectors;
