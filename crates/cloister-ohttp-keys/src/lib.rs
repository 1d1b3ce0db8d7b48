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
//! * [`client_request`] is how a client reads a configuration it was served:
//!   one whose suites this build cannot use is an error, never a panic.
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

use ohttp::hpke::{Aead, Kdf};
use ohttp::{ClientRequest, KeyConfig, SymmetricSuite};
use sha2::{Digest, Sha256};
use thiserror::Error;

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

/// Why a served key configuration cannot carry a request.
#[derive(Debug, Error)]
pub enum KeyConfigError {
    /// The bytes are not a key configuration this build can read (unknown
    /// KEM, malformed, trailing bytes).
    #[error("key configuration does not decode: {0}")]
    Decode(#[source] ohttp::Error),
    /// Every symmetric suite it offers is one this build does not support.
    #[error("key configuration offers no symmetric suite this client supports")]
    NoSupportedSuite,
}

/// Every KDF and AEAD pair HPKE defines, for checking which ones a
/// decoded configuration still offers.
const ALL_SUITES: [(Kdf, Aead); 9] = [
    (Kdf::HkdfSha256, Aead::Aes128Gcm),
    (Kdf::HkdfSha256, Aead::Aes256Gcm),
    (Kdf::HkdfSha256, Aead::ChaCha20Poly1305),
    (Kdf::HkdfSha384, Aead::Aes128Gcm),
    (Kdf::HkdfSha384, Aead::Aes256Gcm),
    (Kdf::HkdfSha384, Aead::ChaCha20Poly1305),
    (Kdf::HkdfSha512, Aead::Aes128Gcm),
    (Kdf::HkdfSha512, Aead::Aes256Gcm),
    (Kdf::HkdfSha512, Aead::ChaCha20Poly1305),
];

/// A sender of one request to the gateway key `encoded_config` describes.
///
/// `ohttp` drops the suites this build does not support while decoding,
/// and its `ClientRequest::from_encoded_config` panics on a configuration
/// left with none; a configuration comes from the network, so this checks
/// first that one supported suite remains.
///
/// # Errors
/// [`KeyConfigError::Decode`] or [`KeyConfigError::NoSupportedSuite`].
pub fn client_request(encoded_config: &[u8]) -> Result<ClientRequest, KeyConfigError> {
    let mut config = KeyConfig::decode(encoded_config).map_err(KeyConfigError::Decode)?;
    let supported = ALL_SUITES
        .iter()
        .any(|&(kdf, aead)| config.select(SymmetricSuite::new(kdf, aead)).is_ok());
    if !supported {
        return Err(KeyConfigError::NoSupportedSuite);
    }
    ClientRequest::from_config(&mut config).map_err(KeyConfigError::Decode)
}
