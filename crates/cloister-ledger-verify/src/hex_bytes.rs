//! Fixed-size byte strings that travel as lower-case hex in JSON and TOML.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `N` bytes written as `2N` hex digits: digests, keys and signatures.
///
/// Hex keeps the JSON API and the TOML policy files readable and diffable by
/// reviewers; the fixed size means a wrong-length value is refused at parse
/// time instead of failing later inside a hash or signature check.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HexBytes<const N: usize>(pub [u8; N]);

/// A hex string that is not exactly the expected number of bytes.
#[derive(Debug, thiserror::Error)]
#[error("expected {expected} bytes as {} hex digits: {reason}", expected * 2)]
pub struct HexError {
    expected: usize,
    reason: String,
}

impl<const N: usize> HexBytes<N> {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> From<[u8; N]> for HexBytes<N> {
    fn from(bytes: [u8; N]) -> Self {
        Self(bytes)
    }
}

impl<const N: usize> FromStr for HexBytes<N> {
    type Err = HexError;

    fn from_str(text: &str) -> Result<Self, HexError> {
        let mut bytes = [0u8; N];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|error| HexError {
            expected: N,
            reason: error.to_string(),
        })?;
        Ok(Self(bytes))
    }
}

impl<const N: usize> fmt::Display for HexBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl<const N: usize> fmt::Debug for HexBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<const N: usize> Serialize for HexBytes<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de, const N: usize> Deserialize<'de> for HexBytes<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_wrong_length() {
        let value: HexBytes<2> = "0aff".parse().expect("valid hex");
        assert_eq!(value.0, [0x0a, 0xff]);
        assert_eq!(value.to_string(), "0aff");
        assert!("0a".parse::<HexBytes<2>>().is_err());
        assert!("0aff00".parse::<HexBytes<2>>().is_err());
        assert!("zzzz".parse::<HexBytes<2>>().is_err());
    }
}
