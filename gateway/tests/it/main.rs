//! Integration tests of this crate, one test binary (each module was
//! its own binary; one link is much cheaper than many).

mod fuzz_body;
mod http_forward_router;
mod rfc9458_appendix_a;
