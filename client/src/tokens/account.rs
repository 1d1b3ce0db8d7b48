//! The account key: who this client is to the issuer, and only to it.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use cloister_privacypass::account::{AccountAuth, AccountError};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Why an account key could not be created, read or written.
#[derive(Debug, thiserror::Error)]
pub enum AccountKeyError {
    /// The account id is empty, too long or has characters the issuer refuses.
    #[error("account id {0:?} is not valid (letters, digits and -_.@, at most 128)")]
    BadId(String),
    /// No randomness for a new key.
    #[error("system randomness unavailable: {0}")]
    Random(String),
    /// The file could not be read or written.
    #[error("account key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file exists but is not an account key file.
    #[error("account key file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The file format: the id and the 32-byte Ed25519 seed in hex.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountFile {
    id: String,
    secret_seed: String,
}

/// An account id with its Ed25519 signing key. `Debug` shows only the id
/// and the public key.
#[derive(Clone)]
pub struct AccountKey {
    id: String,
    key: SigningKey,
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKey")
            .field("id", &self.id)
            .field(
                "public_key",
                &hex::encode(self.key.verifying_key().as_bytes()),
            )
            .finish_non_exhaustive()
    }
}

impl AccountKey {
    /// A fresh key for account `id`, from the operating system's randomness.
    ///
    /// # Errors
    /// [`AccountKeyError::BadId`] if the issuer would refuse `id`.
    pub fn generate(id: &str) -> Result<Self, AccountKeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut seed[..]).map_err(|e| AccountKeyError::Random(e.to_string()))?;
        Self::from_seed(id, &seed)
    }

    /// The key for `id` with the given secret seed.
    ///
    /// # Errors
    /// [`AccountKeyError::BadId`] if the issuer would refuse `id`.
    pub fn from_seed(id: &str, seed: &[u8; 32]) -> Result<Self, AccountKeyError> {
        let account = Self {
            id: id.to_owned(),
            key: SigningKey::from_bytes(seed),
        };
        // The signing rules are the issuer's: let them judge the id.
        match account.sign(b"", 0) {
            Err(AccountError::Malformed) => Err(AccountKeyError::BadId(id.to_owned())),
            _ => Ok(account),
        }
    }

    /// Reads an account key file written by [`AccountKey::save_new`].
    ///
    /// # Errors
    /// [`AccountKeyError::Io`] or [`AccountKeyError::Malformed`].
    pub fn load(path: &Path) -> Result<Self, AccountKeyError> {
        let io = |source| AccountKeyError::Io {
            path: path.to_owned(),
            source,
        };
        let malformed = |reason: String| AccountKeyError::Malformed {
            path: path.to_owned(),
            reason,
        };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        let file: AccountFile =
            toml::from_str(&text).map_err(|e| malformed(e.message().to_owned()))?;
        let seed = Zeroizing::new(
            hex::decode(&file.secret_seed)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| malformed("secret_seed is not 32 bytes of hex".into()))?,
        );
        Self::from_seed(&file.id, &seed)
    }

    /// Writes the key to a new file readable by its owner only; refuses to
    /// replace an existing file (that would lose the account).
    ///
    /// # Errors
    /// [`AccountKeyError::Io`], also when the file already exists.
    pub fn save_new(&self, path: &Path) -> Result<(), AccountKeyError> {
        let io = |source| AccountKeyError::Io {
            path: path.to_owned(),
            source,
        };
        let file = AccountFile {
            id: self.id.clone(),
            secret_seed: hex::encode(self.key.to_bytes()),
        };
        let text = Zeroizing::new(
            toml::to_string(&file).map_err(|e| io(std::io::Error::other(e.to_string())))?,
        );
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut out = options.open(path).map_err(io)?;
        out.write_all(text.as_bytes())
            .and_then(|()| out.sync_all())
            .map_err(io)
    }

    /// The account id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The entry to add to the issuer's accounts file.
    pub fn issuer_entry(&self) -> String {
        format!(
            "[[account]]\nid = {:?}\npublic_key = \"{}\"\n",
            self.id,
            hex::encode(self.key.verifying_key().as_bytes())
        )
    }

    /// Signs a token request body at `timestamp` (Unix seconds).
    pub(crate) fn sign(&self, body: &[u8], timestamp: u64) -> Result<AccountAuth, AccountError> {
        AccountAuth::sign(&self.id, &self.key, timestamp, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_key_loads_back_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("account.toml");
        let key = AccountKey::generate("alice").unwrap_or_else(|e| panic!("{e}"));
        key.save_new(&path).unwrap_or_else(|e| panic!("{e}"));
        let loaded = AccountKey::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.issuer_entry(), key.issuer_entry());
        let other = AccountKey::generate("alice").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            other.save_new(&path),
            Err(AccountKeyError::Io { .. })
        ));
        assert_eq!(
            AccountKey::load(&path).map(|k| k.issuer_entry()).ok(),
            Some(key.issuer_entry())
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path)
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_ids_and_files_are_refused() {
        assert!(matches!(
            AccountKey::generate("a b"),
            Err(AccountKeyError::BadId(_))
        ));
        assert!(matches!(
            AccountKey::generate(""),
            Err(AccountKeyError::BadId(_))
        ));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("account.toml");
        std::fs::write(&path, "id = \"alice\"\nsecret_seed = \"abcd\"\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            AccountKey::load(&path),
            Err(AccountKeyError::Malformed { .. })
        ));
        assert!(
            format!(
                "{:?}",
                AccountKey::generate("bob").unwrap_or_else(|e| panic!("{e}"))
            )
            .contains("bob")
        );
    }
}
