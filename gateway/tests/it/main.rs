//! Integration tests of this crate, as modules of one test binary: one
//! link is much cheaper than one per test file.

mod fuzz_body;
#[path = "../../../tests/fuzz_seeds.rs"]
mod fuzz_seeds;
mod host_fleet;
mod http_forward_router;
mod replay_store;
mod rfc9458_appendix_a;
