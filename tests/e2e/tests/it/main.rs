//! The end-to-end tests, one test binary (see the crate documentation for
//! what each module covers).

mod chain;
mod cli;
mod common;
/// What `cargo xtask demo` configures its demo ledger's parties and client
/// with, shared so that `chain.rs` starts the same chain.
#[path = "../../../../xtask/src/demo_ledger.rs"]
mod demo_ledger;
mod development;
mod faults;
mod fleet;
mod host;
/// The in-process host of `cloister-host`'s own tests, shared rather than
/// copied so that both suites boot the same host.
#[path = "../../../../host/tests/it/common/mod.rs"]
mod host_common;
mod ledger;
mod load;
mod monitoring;
mod ohttp;
mod ratls;
/// The simulated host of `cloister-ratls`'s own tests, shared rather than
/// copied so that both suites test the same host.
#[path = "../../../../crates/cloister-ratls/tests/it/common/mod.rs"]
mod ratls_common;
mod remote_inference;
mod six_phases;
mod state;
mod support;
mod surface;
mod templates;
mod timeouts;
mod tls;
mod tokens;
