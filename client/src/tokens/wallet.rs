//! The persistent token store.
//!
//! One JSON file, `tokens.json`, in the state directory (mode 0600), written
//! to a temporary file, synced, then renamed over the old one, so a crash
//! leaves either the old or the new store, never half of one. Every
//! operation takes an exclusive lock on `tokens.lock` and rereads the file,
//! so two `cloister` processes sharing a state directory never hand out the
//! same token. A store that does not parse is reported and left untouched:
//! nothing is written over it.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cloister_privacypass::{Token, TokenChallenge};
use serde::{Deserialize, Serialize};

use super::{TokenSource, unix_now};

/// The store's file name inside the state directory.
const STORE_FILE: &str = "tokens.json";
/// The lock file serialising access to the store.
const LOCK_FILE: &str = "tokens.lock";
/// The format version written and accepted.
const STORE_VERSION: u32 = 1;
/// A token this close to its key's expiry is not handed out: it could
/// expire before the gateway redeems it.
const EXPIRY_MARGIN_SECS: u64 = 60;

/// Why the wallet could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// A file in the state directory could not be read or written.
    #[error("token wallet {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The store exists but is not a token store; it has been left as it is.
    #[error(
        "token wallet {path} is corrupt ({reason}); it was left untouched: move it aside to start afresh"
    )]
    Corrupt {
        /// The store file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A finished token with the time its issuer key stops being accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token.
    pub token: Token,
    /// Unix second from which the gateway refuses it (key not-before + lifetime).
    pub expires_at: u64,
}

/// How many tokens the wallet holds, as `cloister tokens status` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct WalletStatus {
    /// Tokens that can be spent now at this wallet's gateway.
    pub usable: usize,
    /// Tokens past (or within a minute of) their key's expiry.
    pub expired: usize,
    /// Tokens for another challenge (another issuer name or origin); kept
    /// in case the configuration changes back, never handed out here.
    pub other_challenge: usize,
    /// When the first usable token expires.
    pub next_expiry: Option<u64>,
}

/// The file format.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    version: u32,
    tokens: Vec<StoredToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredToken {
    /// Hex token key id (also inside the token; kept for readability and checked).
    key_id: String,
    expires_at: u64,
    /// base64url of the encoded token.
    token: String,
}

impl StoredToken {
    fn new(issued: &IssuedToken) -> Self {
        Self {
            key_id: hex::encode(issued.token.token_key_id),
            expires_at: issued.expires_at,
            token: URL_SAFE_NO_PAD.encode(issued.token.encode()),
        }
    }

    fn decode(&self) -> Result<Token, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.token)
            .map_err(|e| format!("token is not base64url: {e}"))?;
        let token = Token::decode(&bytes).map_err(|e| format!("token does not parse: {e}"))?;
        if hex::encode(token.token_key_id) != self.key_id {
            return Err("key_id does not match the token".into());
        }
        Ok(token)
    }

    fn usable(&self, now: u64) -> bool {
        now.saturating_add(EXPIRY_MARGIN_SECS) < self.expires_at
    }
}

/// A parsed store with its tokens decoded (checked once per load).
struct Store {
    entries: Vec<(StoredToken, Token)>,
}

/// Privacy Pass tokens kept on disk for one challenge (issuer name and
/// origin). See the module documentation for the guarantees.
#[derive(Debug, Clone)]
pub struct TokenWallet {
    store: PathBuf,
    lock: PathBuf,
    challenge_digest: [u8; 32],
}

impl TokenWallet {
    /// Opens (creating if needed, mode 0700) the wallet in `state_dir` for
    /// tokens answering `challenge`, and checks that the store parses.
    ///
    /// # Errors
    /// [`WalletError::Corrupt`] if the store does not parse, [`WalletError::Io`]
    /// if the directory or files are not accessible.
    pub fn open(state_dir: &Path, challenge: &TokenChallenge) -> Result<Self, WalletError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder
            .create(state_dir)
            .map_err(|source| WalletError::Io {
                path: state_dir.to_owned(),
                source,
            })?;
        let wallet = Self {
            store: state_dir.join(STORE_FILE),
            lock: state_dir.join(LOCK_FILE),
            challenge_digest: challenge.digest(),
        };
        wallet.locked(|_| Ok(None))?;
        Ok(wallet)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.store
    }

    /// Adds freshly issued tokens.
    ///
    /// # Errors
    /// See [`WalletError`]; on error nothing was added.
    pub fn deposit(&self, tokens: &[IssuedToken]) -> Result<(), WalletError> {
        if tokens.is_empty() {
            return Ok(());
        }
        self.locked(|store| {
            store.entries.extend(
                tokens
                    .iter()
                    .map(|issued| (StoredToken::new(issued), issued.token.clone())),
            );
            Ok(Some(()))
        })
    }

    /// Removes and returns one usable token, dropping expired ones on the
    /// way. The store on disk no longer holds the token when this returns.
    ///
    /// # Errors
    /// See [`WalletError`]; on error no token was handed out.
    pub fn take(&self) -> Result<Option<Token>, WalletError> {
        self.take_at(unix_now())
    }

    /// [`TokenWallet::take`] at `now` (Unix seconds).
    ///
    /// # Errors
    /// See [`WalletError`].
    pub fn take_at(&self, now: u64) -> Result<Option<Token>, WalletError> {
        let mut taken = None;
        self.locked(|store| {
            let before = store.entries.len();
            store.entries.retain(|(stored, _)| stored.usable(now));
            let position = store
                .entries
                .iter()
                .position(|(_, token)| token.challenge_digest == self.challenge_digest);
            taken = position.map(|i| store.entries.remove(i).1);
            Ok((taken.is_some() || store.entries.len() != before).then_some(()))
        })?;
        Ok(taken)
    }

    /// Drops tokens whose issuer key is not among `live_key_ids` (the keys
    /// the issuer still publishes; the gateway stops accepting the others)
    /// and expired ones. Returns how many were dropped.
    ///
    /// # Errors
    /// See [`WalletError`].
    pub fn retain_keys(&self, live_key_ids: &[[u8; 32]], now: u64) -> Result<usize, WalletError> {
        let mut dropped = 0;
        self.locked(|store| {
            let before = store.entries.len();
            store.entries.retain(|(stored, token)| {
                stored.usable(now) && live_key_ids.contains(&token.token_key_id)
            });
            dropped = before - store.entries.len();
            Ok((dropped > 0).then_some(()))
        })?;
        Ok(dropped)
    }

    /// Counts the tokens, without changing anything.
    ///
    /// # Errors
    /// See [`WalletError`].
    pub fn status(&self, now: u64) -> Result<WalletStatus, WalletError> {
        let mut status = WalletStatus::default();
        self.locked(|store| {
            for (stored, token) in &store.entries {
                if !stored.usable(now) {
                    status.expired += 1;
                } else if token.challenge_digest != self.challenge_digest {
                    status.other_challenge += 1;
                } else {
                    status.usable += 1;
                    status.next_expiry = Some(
                        status
                            .next_expiry
                            .map_or(stored.expires_at, |t| t.min(stored.expires_at)),
                    );
                }
            }
            Ok(None)
        })?;
        Ok(status)
    }

    /// Runs `change` on the store under the lock; writes the store back
    /// when `change` returns `Some`.
    fn locked(
        &self,
        change: impl FnOnce(&mut Store) -> Result<Option<()>, WalletError>,
    ) -> Result<(), WalletError> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|source| self.io(&self.lock, source))?;
        lock.lock().map_err(|source| self.io(&self.lock, source))?;
        let mut store = self.load()?;
        if change(&mut store)?.is_some() {
            self.save(&store)?;
        }
        // Dropping `lock` releases it.
        Ok(())
    }

    fn load(&self) -> Result<Store, WalletError> {
        let bytes = match std::fs::read(&self.store) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Store {
                    entries: Vec::new(),
                });
            }
            Err(source) => return Err(self.io(&self.store, source)),
        };
        let corrupt = |reason: String| WalletError::Corrupt {
            path: self.store.clone(),
            reason,
        };
        let file: StoreFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if file.version != STORE_VERSION {
            return Err(corrupt(format!("unknown version {}", file.version)));
        }
        let entries = file
            .tokens
            .into_iter()
            .enumerate()
            .map(|(i, stored)| {
                let token = stored
                    .decode()
                    .map_err(|reason| corrupt(format!("token {i}: {reason}")))?;
                Ok((stored, token))
            })
            .collect::<Result<_, WalletError>>()?;
        Ok(Store { entries })
    }

    /// Replaces the store file whole (see [`cloister_ledger_verify::private_file::replace`]).
    fn save(&self, store: &Store) -> Result<(), WalletError> {
        let file = StoreFile {
            version: STORE_VERSION,
            tokens: store
                .entries
                .iter()
                .map(|(stored, _)| stored.clone())
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&file)
            .map_err(|e| self.io(&self.store, std::io::Error::other(e)))?;
        cloister_ledger_verify::private_file::replace(&self.store, &json)
            .map_err(|(path, e)| self.io(&path, e))
    }

    fn io(&self, path: &Path, source: std::io::Error) -> WalletError {
        WalletError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

impl TokenSource for TokenWallet {
    /// Takes a token out of the store (persisted first) and returns it
    /// base64url-encoded; `None` when the wallet is empty or unreadable
    /// (logged), so the gateway refuses the request rather than a token
    /// being reused.
    fn next_token(&self) -> Option<String> {
        match self.take() {
            Ok(Some(token)) => Some(URL_SAFE_NO_PAD.encode(token.encode())),
            Ok(None) => {
                tracing::warn!("token wallet is empty: the request goes without a token");
                None
            }
            Err(error) => {
                tracing::error!(%error, "token wallet unusable: the request goes without a token");
                None
            }
        }
    }
}
