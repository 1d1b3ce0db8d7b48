//! Registered accounts: the genuine clients allowed to obtain tokens,
//! each with an Ed25519 public key, read from a TOML file:
//!
//! ```toml
//! [[account]]
//! id = "alice"
//! public_key = "<64 hex digits>"
//! ```

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;
use serde::Deserialize;

/// Why an accounts file was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// Not valid TOML of the expected shape.
    #[error("accounts file: {0}")]
    Toml(#[from] toml::de::Error),
    /// An account's key is not a valid Ed25519 public key in hex.
    #[error("account {0:?}: public_key is not a 32-byte Ed25519 key in hex")]
    BadKey(String),
    /// Two entries share an id.
    #[error("account {0:?} listed twice")]
    Duplicate(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    #[serde(default)]
    account: Vec<AccountEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    id: String,
    public_key: String,
}

/// Account id to Ed25519 verifying key.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    keys: HashMap<String, VerifyingKey>,
}

impl Accounts {
    /// Parses an accounts file's text.
    pub fn from_toml(text: &str) -> Result<Self, AccountsError> {
        let file: AccountsFile = toml::from_str(text)?;
        let mut keys = HashMap::new();
        for entry in file.account {
            let key = hex::decode(&entry.public_key)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .and_then(|b| VerifyingKey::from_bytes(&b).ok())
                .ok_or_else(|| AccountsError::BadKey(entry.id.clone()))?;
            if keys.insert(entry.id.clone(), key).is_some() {
                return Err(AccountsError::Duplicate(entry.id));
            }
        }
        Ok(Self { keys })
    }

    /// The key registered for `account`, if any.
    pub fn key(&self, account: &str) -> Option<&VerifyingKey> {
        self.keys.get(account)
    }

    /// Number of registered accounts.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no account is registered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
