//! Oblivious HTTP key configurations for Cloister (RFC 9458 §3, RFC 9540).
//!
//! The gateway decrypts requests with HPKE keys that it alone holds; clients
//! learn the public half as a *key configuration* fetched from a static
//! endpoint (`GET /.well-known/ohttp-gateway`, media type
//! `application/ohttp-keys`). Both sides need the same view of that format,
//! so it lives here, in a crate that the gateway and the client share:
//!
//! * [`KeyRing`] holds the gateway's keys: X25519 / HKDF-SHA256 with
//!   AES-128-GCM and ChaCha20-Poly1305, each key under a one-byte key id. Keys
//!   rotate on a schedule; a superseded key is still accepted for an overlap
//!   window so that clients with a cached configuration are not cut off, then
//!   it is forgotten. The ring persists to an operator-provided file so that a
//!   restart keeps the keys clients already hold.
//! * [`encode_key_list`] and [`split_key_list`] implement the RFC 9540 list
//!   framing (each configuration behind a two-byte length). Splitting keeps
//!   each configuration's exact bytes, which is what [`key_config_digest`]
//!   hashes for the key-consistency check against the transparency ledger.
//!
//! Everything cryptographic is done by the `ohttp` crate (pure-Rust HPKE);
//! this crate only manages which keys exist and how they are published.

mod list;
mod ring;

pub use list::{KeyListError, encode_key_list, split_key_list};
pub use ring::{AeadChoice, KeyRing, KeyRingError, RotationPolicy};

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
