//! Integration tests of this crate, as modules of one test binary: one
//! link is much cheaper than one per test file.

mod key_configs;
