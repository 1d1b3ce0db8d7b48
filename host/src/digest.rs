//! SHA-256 digests as manifests spell them: `sha256:<hex>`.
//!
//! The bytes are the ledger's [`Sha256Digest`], the digest a plugin entry of
//! the transparency ledger records: a manifest's digest is the one reviewers
//! admitted, with the algorithm named so that a reader of the TOML knows it.

use std::fmt;
use std::str::FromStr;

use cloister_ledger_verify::entry::Sha256Digest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The SHA-256 digest of a component's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Digest(Sha256Digest);

impl Digest {
    /// Digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256Digest::from(<[u8; 32]>::from(Sha256::digest(bytes))))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// The same digest as the ledger's plugin entries record it.
    pub fn ledger_digest(&self) -> Sha256Digest {
        self.0
    }
}

/// A digest string that is not `sha256:` followed by 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed digest `{0}`: expected `sha256:` followed by 64 hex digits")]
pub struct MalformedDigest(String);

impl FromStr for Digest {
    type Err = MalformedDigest;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || MalformedDigest(s.to_owned());
        // Exactly 64 digits: the ledger's hex parser would also accept padding.
        let hex_part = s
            .strip_prefix("sha256:")
            .filter(|hex| hex.len() == 64)
            .ok_or_else(malformed)?;
        hex_part.parse().map(Self).map_err(|_| malformed())
    }
}

impl TryFrom<String> for Digest {
    type Error = MalformedDigest;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Digest> for String {
    fn from(digest: Digest) -> Self {
        digest.to_string()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_matches_known_sha256() {
        let digest = Digest::of(b"abc");
        let text = digest.to_string();
        assert_eq!(
            text,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(text.parse::<Digest>(), Ok(digest));
        assert_eq!(digest.ledger_digest().to_string(), text["sha256:".len()..]);
    }

    #[test]
    fn serialises_as_its_text() {
        let digest = Digest::of(b"abc");
        let json = serde_json::to_string(&digest).expect("serialise");
        assert_eq!(json, format!("\"{digest}\""));
        assert_eq!(
            serde_json::from_str::<Digest>(&json).expect("deserialise"),
            digest
        );
        let unprefixed = format!("\"{}\"", digest.ledger_digest());
        assert!(serde_json::from_str::<Digest>(&unprefixed).is_err());
    }

    #[test]
    fn rejects_malformed() {
        let padded = format!("sha256:{} ", "ab".repeat(32));
        for bad in [
            "",
            "sha256:",
            "sha512:00",
            "ba7816bf",
            &format!("sha256:{}", "zz".repeat(32)),
            &padded,
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }
}
