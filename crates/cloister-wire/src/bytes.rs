//! Fixed-size byte strings that travel as lower-case hex in JSON and TOML.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A hex string that is not exactly the expected number of bytes.
#[derive(Debug, thiserror::Error)]
#[error("expected {expected} bytes as {} hex digits: {reason}", expected * 2)]
pub struct HexError {
    expected: usize,
    reason: String,
}

fn parse<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text.trim(), &mut bytes).map_err(|error| HexError {
        expected: N,
        reason: error.to_string(),
    })?;
    Ok(bytes)
}

/// Defines a newtype over `[u8; N]` that prints, parses and (de)serializes
/// as hex, so each attested value has its own type.
macro_rules! hex_newtype {
    ($(#[$meta:meta])* $name:ident, $len:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// The raw bytes.
            #[must_use]
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl From<$name> for [u8; $len] {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl PartialEq<[u8; $len]> for $name {
            fn eq(&self, other: &[u8; $len]) -> bool {
                &self.0 == other
            }
        }

        impl FromStr for $name {
            type Err = HexError;

            fn from_str(text: &str) -> Result<Self, HexError> {
                parse(text).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_newtype!(
    /// An SEV-SNP launch measurement: the report's `MEASUREMENT`, SHA-384
    /// over the initial guest memory.
    Measurement,
    48
);

hex_newtype!(
    /// The SEV-SNP report's `HOST_DATA`, chosen at launch: in Cloister,
    /// [`HostData::of_launch`] of the host's policy set, model and settings.
    HostData,
    32
);

/// `N` bytes written as `2N` hex digits: digests, keys and signatures.
///
/// Hex keeps the JSON API and the TOML policy files readable and diffable by
/// reviewers; the fixed size means a wrong-length value is refused at parse
/// time instead of failing later inside a hash or signature check.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HexBytes<const N: usize>(pub [u8; N]);

impl<const N: usize> HexBytes<N> {
    /// The raw bytes.
    #[must_use]
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
        parse(text).map(Self)
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

    #[test]
    fn newtypes_travel_as_hex_and_keep_their_length() {
        let host_data = HostData([0xa5; 32]);
        let json = serde_json::to_string(&host_data).expect("json");
        assert_eq!(json, format!("\"{}\"", "a5".repeat(32)));
        assert_eq!(
            serde_json::from_str::<HostData>(&json).expect("parse"),
            host_data
        );
        assert!(
            serde_json::from_str::<Measurement>(&json).is_err(),
            "32 bytes are no measurement"
        );
        assert_eq!(
            format!("{:?}", Measurement([0; 48])),
            format!("Measurement({})", "00".repeat(48))
        );
        assert!(host_data == [0xa5; 32]);
    }
}
