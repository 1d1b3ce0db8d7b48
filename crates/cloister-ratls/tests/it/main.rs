//! Integration tests of this crate, as modules of one test binary: one
//! link is much cheaper than one per test file.

mod common;
mod fuzz_body;
#[path = "../../../../tests/fuzz_seeds.rs"]
mod fuzz_seeds;
mod mutual;
mod sessions;
