//! `cloister-issuer`: the Privacy Pass issuer of Cloister (phase 1 of
//! DESIGN.md). Genuine clients, identified by Ed25519 account keys listed in
//! a TOML file, sign their token requests; the issuer checks the signature,
//! applies a per-account rate limit and returns a blind RSA signature
//! (RFC 9578 token type 0x0002). It publishes its rotating keys in the
//! RFC 9578 §4 directory. It never sees the tokens that are later spent,
//! and never logs token material.
//!
//! The protocol itself lives in the `cloister-privacypass` crate; this crate
//! is configuration, key storage and rotation, accounts, limits and HTTP.

pub mod accounts;
pub mod config;
pub mod keyring;
pub mod rate_limit;
pub mod server;
