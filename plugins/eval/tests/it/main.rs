//! Integration tests of this crate, as modules of one test binary.

mod subset;
