//! The Cloister transparency ledger's server side, as a library.
//!
//! The `cloister-ledger` binary is a thin shell over this: [`router`] is the
//! whole HTTP API over an opened [`cloister_ledger::Ledger`], so tests and
//! tools can run a real ledger in-process on a loopback port, and
//! [`LedgerClient`] is the small blocking client the binary's `submit` and
//! `verify` commands and the release tool (`cloister-release`) use.
//! Clients on users' devices use the async `cloister-client` instead.

mod http;
mod metrics;
mod remote;

pub use http::router;
pub use remote::{LedgerClient, RemoteError};
