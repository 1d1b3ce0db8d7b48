//! Integration tests of this crate, one test binary (each module was
//! its own binary; one link is much cheaper than many).

mod containment;
mod serve;
mod wasi;
