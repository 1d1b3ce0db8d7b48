//! The issuer's keys and their rotation.
//!
//! Each key is a PKCS#8 PEM file `<not_before>.pem` in the key directory;
//! its tokens are valid from `not_before` until `not_before + lifetime`.
//! Issuance uses the newest key already valid. Once the newest key is half
//! way through its lifetime a successor takes over, so every token issued
//! has at least half a lifetime left. With a lead ([`KeyRing::with_lead`]),
//! the successor is generated that long before it takes over, valid only
//! from then: time to log it in the ledger before any client may use it.
//! Expired keys are deleted.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cloister_privacypass::directory::PublishedKey;
use cloister_privacypass::{IssuerSecretKey, KeyError};

/// Why the key ring could not be loaded or rotated.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// Reading or writing the key directory failed.
    #[error("key directory {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A key file is not a usable issuer key.
    #[error("key file {path}: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why it was refused.
        source: KeyError,
    },
    /// Key generation failed.
    #[error("key generation failed: {0}")]
    Generate(KeyError),
}

/// One issuer key and the start of its validity.
#[derive(Debug, Clone)]
pub struct RingKey {
    /// The signing key.
    pub secret: IssuerSecretKey,
    /// Unix second from which its tokens are valid.
    pub not_before: u64,
}

/// The issuer's current keys.
#[derive(Debug)]
pub struct KeyRing {
    dir: PathBuf,
    lifetime: u64,
    /// How long before it takes over a successor is generated.
    lead: u64,
    keys: Vec<RingKey>,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> KeyRingError + '_ {
    move |source| KeyRingError::Io {
        path: path.to_owned(),
        source,
    }
}

impl KeyRing {
    /// Loads the keys in `dir` (creating it if needed), then rotates so a
    /// valid key exists at `now`.
    pub fn open(dir: &Path, lifetime: u64, now: u64) -> Result<Self, KeyRingError> {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        let mut keys = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_error(dir))? {
            let path = entry.map_err(io_error(dir))?.path();
            let Some(not_before) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".pem"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let pem = fs::read_to_string(&path).map_err(io_error(&path))?;
            let secret = IssuerSecretKey::from_pem(&pem).map_err(|source| KeyRingError::Key {
                path: path.clone(),
                source,
            })?;
            keys.push(RingKey { secret, not_before });
        }
        keys.sort_by_key(|k| k.not_before);
        let mut ring = Self {
            dir: dir.to_owned(),
            lifetime: lifetime.max(2),
            lead: 0,
            keys,
        };
        ring.rotate(now)?;
        Ok(ring)
    }

    /// Generates each successor `lead` seconds (at most half a lifetime)
    /// before it takes over.
    #[must_use]
    pub fn with_lead(mut self, lead: u64) -> Self {
        self.lead = lead.min(self.lifetime / 2);
        self
    }

    /// The key lifetime in seconds.
    pub fn lifetime(&self) -> u64 {
        self.lifetime
    }

    fn expires(&self, key: &RingKey) -> u64 {
        key.not_before.saturating_add(self.lifetime)
    }

    /// Deletes expired keys and generates a successor when the newest key is
    /// missing or half way through its life. Returns whether anything changed.
    pub fn rotate(&mut self, now: u64) -> Result<bool, KeyRingError> {
        let mut changed = false;
        let lifetime = self.lifetime;
        let (expired, live): (Vec<RingKey>, Vec<RingKey>) = std::mem::take(&mut self.keys)
            .into_iter()
            .partition(|k| k.not_before.saturating_add(lifetime) <= now);
        self.keys = live;
        for key in expired {
            let path = self.key_path(key.not_before);
            fs::remove_file(&path).map_err(io_error(&path))?;
            changed = true;
        }
        // When the newest key hands over: half way through its life.
        let takes_over = match self.keys.last() {
            None => now,
            Some(newest) => newest.not_before.saturating_add(self.lifetime / 2),
        };
        let newest_starts = self.keys.last().map(|k| k.not_before);
        if now.saturating_add(self.lead) >= takes_over && newest_starts.is_none_or(|s| s < now) {
            self.add_key(takes_over.max(now))?;
            changed = true;
        }
        Ok(changed)
    }

    fn key_path(&self, not_before: u64) -> PathBuf {
        self.dir.join(format!("{not_before}.pem"))
    }

    /// Generates a key valid from `not_before` whose truncated key id
    /// differs from every live key's (the issuer picks keys by that byte).
    fn add_key(&mut self, not_before: u64) -> Result<(), KeyRingError> {
        let secret = loop {
            let candidate = IssuerSecretKey::generate().map_err(KeyRingError::Generate)?;
            let byte = candidate.public_key().truncated_key_id();
            if self
                .keys
                .iter()
                .all(|k| k.secret.public_key().truncated_key_id() != byte)
            {
                break candidate;
            }
        };
        let pem = secret.to_pem().map_err(KeyRingError::Generate)?;
        let path = self.key_path(not_before);
        write_private(&path, &pem).map_err(io_error(&path))?;
        tracing::info!(key_id = %hex::encode(secret.public_key().key_id()), not_before, "new issuer key");
        self.keys.push(RingKey { secret, not_before });
        Ok(())
    }

    /// Keys that may sign at `now`: every live key already valid.
    pub fn signing_keys(&self, now: u64) -> Vec<IssuerSecretKey> {
        self.keys
            .iter()
            .filter(|k| k.not_before <= now && now < self.expires(k))
            .map(|k| k.secret.clone())
            .collect()
    }

    /// The keys to publish in the directory, with their not-before.
    pub fn published(&self) -> Vec<PublishedKey> {
        self.keys
            .iter()
            .map(|k| PublishedKey {
                key: k.secret.public_key().clone(),
                not_before: Some(k.not_before),
            })
            .collect()
    }
}

/// Writes a secret file readable by its owner only.
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    use std::io::Write as _;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_adds_at_half_life_keeps_old_until_expiry_and_persists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ring = KeyRing::open(dir.path(), 100, 1_000).expect("open");
        assert_eq!(ring.published().len(), 1);
        assert!(!ring.rotate(1_049).expect("rotate"), "not yet half way");
        assert!(
            ring.rotate(1_050).expect("rotate"),
            "successor at half life"
        );
        assert_eq!(ring.published().len(), 2);
        assert_eq!(ring.signing_keys(1_050).len(), 2);

        let reopened = KeyRing::open(dir.path(), 100, 1_060).expect("reopen");
        assert_eq!(reopened.published().len(), 2, "keys persisted");

        // At 1100 the first key expires and the second reaches half life.
        assert!(ring.rotate(1_100).expect("rotate"));
        let not_befores: Vec<_> = ring.published().iter().map(|k| k.not_before).collect();
        assert_eq!(not_befores, [Some(1_050), Some(1_100)]);
        assert!(
            !dir.path().join("1000.pem").exists(),
            "expired key file deleted"
        );
        assert_eq!(ring.signing_keys(1_100).len(), 2);
    }

    #[test]
    fn with_a_lead_the_successor_is_made_ahead_and_signs_only_from_its_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ring = KeyRing::open(dir.path(), 100, 1_000)
            .expect("open")
            .with_lead(20);
        assert!(!ring.rotate(1_029).expect("rotate"), "not within the lead");
        assert!(ring.rotate(1_030).expect("rotate"), "made ahead");
        let not_befores: Vec<_> = ring.published().iter().map(|k| k.not_before).collect();
        assert_eq!(not_befores, [Some(1_000), Some(1_050)]);
        assert_eq!(ring.signing_keys(1_049).len(), 1, "not before its start");
        assert_eq!(ring.signing_keys(1_050).len(), 2);
        assert!(!ring.rotate(1_040).expect("rotate"), "made once");
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("5.pem"), "not a key").expect("write");
        assert!(matches!(
            KeyRing::open(dir.path(), 100, 10),
            Err(KeyRingError::Key { .. })
        ));
    }
}
