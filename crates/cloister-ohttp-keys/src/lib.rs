//! Oblivious HTTP key configurations for Cloister (RFC 9458 §3, RFC 9540).
//!
//! The gateway decrypts requests with HPKE keys that it alone holds; clients
//! learn the public half as a *key configuration* fetched from
//! `GET /.well-known/ohttp-gateway` (media type `application/ohttp-keys`).
//! Both sides need the same view of that format, and the release tool logs
//! each configuration's digest in the transparency ledger, so it lives here,
//! in a crate that gateway, client and release tool share.
//!
//! # Main types
//!
//! * [`KeyRing`] holds the gateway's keys: X25519 / HKDF-SHA256 with
//!   AES-128-GCM and ChaCha20-Poly1305 ([`AeadChoice`]), each key under a
//!   one-byte key id. Keys rotate on a schedule ([`RotationPolicy`]); a
//!   superseded key is still accepted for an overlap window so that clients
//!   with a cached configuration are not cut off, then it is forgotten. The
//!   ring persists to an operator-provided file so that a restart keeps the
//!   keys clients already hold.
//! * [`encode_key_list`] and [`split_key_list`] implement the RFC 9540 list
//!   framing (each configuration behind a two-byte length). Splitting keeps
//!   each configuration's exact bytes, which is what [`key_config_digest`]
//!   hashes for the key-consistency check against the transparency ledger.
//!
//! Everything cryptographic is done by the `ohttp` crate (pure-Rust HPKE);
//! this crate only manages which keys exist and how they are published.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! A gateway rotates its key; the client splits the published list and
//! computes the digest it looks up in the ledger; the superseded key keeps
//! working until its overlap window ends.
//!
//! ```rust
//! use std::time::Duration;
//!
//! use cloister_ohttp_keys::{
//!     AeadChoice, KeyRing, RotationPolicy, key_config_digest, leading_key_id, split_key_list,
//! };
//!
//! let policy = RotationPolicy {
//!     rotate_every: Duration::from_secs(86_400),
//!     overlap: Duration::from_secs(3_600),
//! };
//! let start = 1_700_000_000;
//! let mut ring = KeyRing::generate(policy, &[AeadChoice::Aes128Gcm], start)?;
//! let first = ring.current_key_id();
//!
//! // What the client fetches, and the digest it checks against the ledger.
//! let published = ring.published_list();
//! let configs = split_key_list(&published)?;
//! assert_eq!(configs, [ring.current_config()]);
//! assert_eq!(leading_key_id(configs[0]), Some(first));
//! let digest = key_config_digest(configs[0]);
//!
//! // A day later the key rotates; the old one is still held for the overlap.
//! assert!(ring.maintain(start + 86_400)?);
//! assert_ne!(ring.current_key_id(), first);
//! assert_ne!(key_config_digest(ring.current_config()), digest);
//! assert!(ring.server(first).is_some());
//! ring.maintain(start + 86_400 + 3_600)?;
//! assert!(ring.server(first).is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod fuzz_support;
mod list;
mod ring;

pub use list::{KeyListError, encode_key_list, split_key_list};
pub use ring::{AeadChoice, KeyRing, KeyRingError, NextKey, RotationPolicy};

use sha2::{Digest, Sha256};

/// SHA-256 of one encoded key configuration (without its list length prefix).
///
/// This is the value published in the transparency ledger: a client that
/// finds the digest of the configuration it was served in the ledger knows
/// it was given the same key as everyone else, so the gateway cannot single
/// it out with a per-user key.
#[must_use]
pub fn key_config_digest(encoded_config: &[u8]) -> [u8; 32] {
    Sha256::digest(encoded_config).into()
}

/// The key id of an encoded key configuration or encapsulated request: both
/// start with it (RFC 9458 §3 and §4.3). `None` for empty input.
#[must_use]
pub fn leading_key_id(encoded: &[u8]) -> Option<u8> {
    encoded.first().copied()
}
