//! The `cloister` command's implementation, behind its thin `main`: the
//! configuration file ([`config`]) and one feature request end to end
//! ([`session`]). It is a library so that the end-to-end tests
//! (`tests/e2e`) run the command's own code path against the real parties;
//! it reports errors the way the command prints them (`anyhow`, with
//! context saying what to do), and is not meant for other programs.

pub mod config;
pub mod session;
mod trust;

pub use trust::AttestationSummary;
