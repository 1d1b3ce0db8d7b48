//! The issuer directory (RFC 9578 §4), served at
//! [`DIRECTORY_PATH`] as [`DIRECTORY_MEDIA_TYPE`]:
//!
//! ```json
//! { "issuer-request-uri": "https://issuer.example/token-request",
//!   "token-keys": [ { "token-type": 2, "token-key": "<base64url SPKI>", "not-before": 1700000000 } ] }
//! ```

use serde::{Deserialize, Serialize};

use crate::base64url;
use crate::keys::IssuerPublicKey;
use crate::wire::TOKEN_TYPE_BLIND_RSA_2048;

/// The well-known path of the issuer directory.
pub const DIRECTORY_PATH: &str = "/.well-known/private-token-issuer-directory";
/// The directory's media type.
pub const DIRECTORY_MEDIA_TYPE: &str = "application/private-token-issuer-directory";
/// Media type of a `TokenRequest` body.
pub const TOKEN_REQUEST_MEDIA_TYPE: &str = "application/private-token-request";
/// Media type of a `TokenResponse` body.
pub const TOKEN_RESPONSE_MEDIA_TYPE: &str = "application/private-token-response";

/// Why a directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Not the JSON shape RFC 9578 §4 defines.
    #[error("malformed issuer directory: {0}")]
    Json(#[from] serde_json::Error),
    /// A type 0x0002 entry's token-key is not base64url or not a valid key.
    #[error("invalid token-key in issuer directory")]
    InvalidKey,
}

/// The issuer directory document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerDirectory {
    /// Where clients POST token requests.
    #[serde(rename = "issuer-request-uri")]
    pub issuer_request_uri: String,
    /// The issuer's keys, of any token type.
    #[serde(rename = "token-keys")]
    pub token_keys: Vec<DirectoryKey>,
}

/// One `token-keys` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryKey {
    /// The token type this key is for.
    #[serde(rename = "token-type")]
    pub token_type: u16,
    /// base64url of the key's encoding (for 0x0002: the SPKI).
    #[serde(rename = "token-key")]
    pub token_key: String,
    /// Unix time (seconds) from which the key may be used, if limited.
    #[serde(
        rename = "not-before",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<u64>,
}

/// A type 0x0002 key taken from a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    /// The key.
    pub key: IssuerPublicKey,
    /// When it becomes usable, if the directory says.
    pub not_before: Option<u64>,
}

impl IssuerDirectory {
    /// A directory listing `keys` (each with its optional not-before).
    pub fn new(issuer_request_uri: &str, keys: &[PublishedKey]) -> Self {
        let token_keys = keys
            .iter()
            .map(|k| DirectoryKey {
                token_type: TOKEN_TYPE_BLIND_RSA_2048,
                token_key: base64url::encode(k.key.spki()),
                not_before: k.not_before,
            })
            .collect();
        Self {
            issuer_request_uri: issuer_request_uri.to_owned(),
            token_keys,
        }
    }

    /// Parses the JSON document.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DirectoryError> {
        Ok(serde_json::from_slice(bytes)?)
    }

    /// The JSON document.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and integers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// All type 0x0002 keys. Entries of other token types are skipped; a
    /// malformed type 0x0002 entry fails the whole directory.
    pub fn blind_rsa_keys(&self) -> Result<Vec<PublishedKey>, DirectoryError> {
        self.token_keys
            .iter()
            .filter(|k| k.token_type == TOKEN_TYPE_BLIND_RSA_2048)
            .map(|k| {
                let spki = base64url::decode(&k.token_key).ok_or(DirectoryError::InvalidKey)?;
                let key =
                    IssuerPublicKey::from_spki(&spki).map_err(|_| DirectoryError::InvalidKey)?;
                Ok(PublishedKey {
                    key,
                    not_before: k.not_before,
                })
            })
            .collect()
    }

    /// The key a client should use at `now` (Unix seconds): among type
    /// 0x0002 keys already valid, the one with the latest not-before.
    pub fn current_key(&self, now: u64) -> Result<Option<IssuerPublicKey>, DirectoryError> {
        Ok(self
            .blind_rsa_keys()?
            .into_iter()
            .filter(|k| k.not_before.is_none_or(|t| t <= now))
            .max_by_key(|k| k.not_before.unwrap_or(0))
            .map(|k| k.key))
    }
}
