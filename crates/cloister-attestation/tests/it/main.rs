//! Integration tests of this crate, as modules of one test binary: one
//! link is much cheaper than one per test file.

mod common;
mod fuzz_body;
mod genuine_milan;
mod product_lines;
mod tampering;
