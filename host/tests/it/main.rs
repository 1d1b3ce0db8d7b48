//! Integration tests of this crate, as modules of one test binary: one
//! link is much cheaper than one per test file.

mod common;
mod containment;
mod contract;
mod fuzz_body;
#[path = "../../../tests/fuzz_seeds.rs"]
mod fuzz_seeds;
mod inspect;
mod panic_hook;
mod serve;
mod wasi;
