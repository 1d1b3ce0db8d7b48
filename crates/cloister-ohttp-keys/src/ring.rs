//! The gateway's set of HPKE keys: generation, rotation with an overlap
//! window, and persistence to an operator-provided file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ohttp::hpke::{Aead, Kdf, Kem};
use ohttp::{KeyConfig, Server, SymmetricSuite};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::list::encode_key_list;

/// Version of the key file layout written by [`KeyRing::save`].
const KEY_FILE_VERSION: u32 = 1;

/// Length of the input keying material each key pair is derived from
/// (RFC 9180 `DeriveKeyPair` wants at least `Nsk` = 32 bytes for X25519).
const IKM_LEN: usize = 32;

/// The AEADs a key may offer. The KEM is always DHKEM(X25519, HKDF-SHA256) and
/// the KDF HKDF-SHA256, the suite of RFC 9458 Appendix A.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AeadChoice {
    /// AES-128-GCM, the RFC 9458 example suite; fastest with AES hardware.
    #[serde(rename = "aes-128-gcm")]
    Aes128Gcm,
    /// ChaCha20-Poly1305, for clients without AES hardware.
    Chacha20Poly1305,
}

impl AeadChoice {
    fn suite(self) -> SymmetricSuite {
        let aead = match self {
            Self::Aes128Gcm => Aead::Aes128Gcm,
            Self::Chacha20Poly1305 => Aead::ChaCha20Poly1305,
        };
        SymmetricSuite::new(Kdf::HkdfSha256, aead)
    }
}

/// How often keys change and how long a replaced key keeps working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Age at which the current key is replaced by a new one.
    pub rotate_every: Duration,
    /// How long a replaced key is still accepted, so that clients holding a
    /// cached configuration finish their requests instead of failing.
    pub overlap: Duration,
}

/// Why a key ring could not be built, loaded or saved.
#[derive(Debug, Error)]
pub enum KeyRingError {
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The key file exists but is not a key file this crate wrote.
    #[error("key file {path} is not valid: {reason}")]
    Corrupt {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The operating system's random source failed.
    #[error("no randomness for a new key: {0}")]
    Random(getrandom::Error),
    /// HPKE key derivation or configuration encoding failed.
    #[error("HPKE key setup failed: {0}")]
    Hpke(#[from] ohttp::Error),
    /// No AEAD was configured, so no key configuration can be built.
    #[error("at least one AEAD must be configured")]
    NoAead,
    /// All 256 key ids are held at once (an overlap window far too long for the rotation period).
    #[error("every key id is in use")]
    NoFreeKeyId,
}

/// One key as written in the key file. The private key is not stored: it is
/// derived from `ikm`, which is as secret and is why the file is owner-only.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    key_id: u8,
    ikm: String,
    created_unix: u64,
    superseded_unix: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    version: u32,
    keys: Vec<StoredKey>,
    /// The prepared next key; its `created_unix` is when it may become current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    next: Option<StoredKey>,
}

/// The key prepared to become current, as [`KeyRing::next_key`] shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextKey<'a> {
    /// Its key id.
    pub key_id: u8,
    /// Its encoded configuration (what the ledger logs, by digest).
    pub config: &'a [u8],
    /// When it may become current: the current key's rotation time.
    pub activates_at: u64,
}

/// A key the gateway holds, ready to decapsulate.
struct HeldKey {
    key_id: u8,
    ikm: Zeroizing<[u8; IKM_LEN]>,
    created_unix: u64,
    superseded_unix: Option<u64>,
    server: Arc<Server>,
    encoded_config: Vec<u8>,
}

/// The gateway's HPKE keys. The newest key is *current*: it is the one
/// published. Older keys are kept, unpublished, until their overlap window
/// ends. Times are Unix seconds passed in by the caller, so tests and the
/// gateway's rotation task agree on one clock.
pub struct KeyRing {
    policy: RotationPolicy,
    aeads: Vec<AeadChoice>,
    /// Oldest first; never empty.
    keys: Vec<HeldKey>,
    /// Generated ahead of its activation, so that it can be logged before
    /// any client is asked to use it; neither published nor used until then.
    next: Option<HeldKey>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("policy", &self.policy)
            .field("aeads", &self.aeads)
            .field("key_ids", &self.key_ids())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// A ring with one freshly generated key, offering `aeads` in that order
    /// of preference (clients pick the first they support).
    ///
    /// # Errors
    /// [`KeyRingError::NoAead`], or a failure of the random source.
    pub fn generate(
        policy: RotationPolicy,
        aeads: &[AeadChoice],
        now_unix: u64,
    ) -> Result<Self, KeyRingError> {
        if aeads.is_empty() {
            return Err(KeyRingError::NoAead);
        }
        let mut ring = Self {
            policy,
            aeads: aeads.to_vec(),
            keys: Vec::new(),
            next: None,
        };
        ring.add_key(fresh_key_id()?, fresh_ikm()?, now_unix, None)?;
        Ok(ring)
    }

    /// Load the ring saved at `path`; if there is no file, generate a ring
    /// and save it there. Returns whether a new ring was created.
    ///
    /// # Errors
    /// Unreadable or corrupt file, or a failure to write the new one.
    pub fn load_or_generate(
        path: &Path,
        policy: RotationPolicy,
        aeads: &[AeadChoice],
        now_unix: u64,
    ) -> Result<(Self, bool), KeyRingError> {
        match fs::read(path) {
            Ok(bytes) => Ok((Self::from_file_bytes(path, &bytes, policy, aeads)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ring = Self::generate(policy, aeads, now_unix)?;
                ring.save(path)?;
                Ok((ring, true))
            }
            Err(source) => Err(KeyRingError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn from_file_bytes(
        path: &Path,
        bytes: &[u8],
        policy: RotationPolicy,
        aeads: &[AeadChoice],
    ) -> Result<Self, KeyRingError> {
        let corrupt = |reason: String| KeyRingError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        if aeads.is_empty() {
            return Err(KeyRingError::NoAead);
        }
        let file: KeyFile = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        if file.version != KEY_FILE_VERSION {
            return Err(corrupt(format!("unsupported version {}", file.version)));
        }
        if file.keys.is_empty() {
            return Err(corrupt("no keys".into()));
        }
        let mut ring = Self {
            policy,
            aeads: aeads.to_vec(),
            keys: Vec::new(),
            next: None,
        };
        let decode_ikm = |stored: &StoredKey| {
            let mut ikm = Zeroizing::new([0u8; IKM_LEN]);
            hex::decode_to_slice(&stored.ikm, ikm.as_mut_slice())
                .map_err(|e| corrupt(format!("key id {}: ikm: {e}", stored.key_id)))?;
            Ok::<_, KeyRingError>(ikm)
        };
        for stored in &file.keys {
            if ring.keys.iter().any(|k| k.key_id == stored.key_id) {
                return Err(corrupt(format!("key id {} appears twice", stored.key_id)));
            }
            ring.add_key(
                stored.key_id,
                decode_ikm(stored)?,
                stored.created_unix,
                stored.superseded_unix,
            )?;
        }
        if let Some(stored) = &file.next {
            if ring.keys.iter().any(|k| k.key_id == stored.key_id) {
                return Err(corrupt(format!(
                    "next key id {} is already held",
                    stored.key_id
                )));
            }
            ring.next = Some(ring.held_key(
                stored.key_id,
                decode_ikm(stored)?,
                stored.created_unix,
                None,
            )?);
        }
        ring.keys.sort_by_key(|k| k.created_unix);
        // Exactly one key, the newest, may be current; every older one must be superseded so it can retire.
        let current = ring
            .keys
            .iter()
            .filter(|k| k.superseded_unix.is_none())
            .count();
        if current != 1 || ring.current().superseded_unix.is_some() {
            return Err(corrupt(
                "exactly the newest key must be current (superseded_unix = null)".into(),
            ));
        }
        Ok(ring)
    }

    /// Write the ring to `path` atomically (a temporary file renamed over
    /// it), readable by the owner only.
    ///
    /// # Errors
    /// Any failure to write or rename the file.
    pub fn save(&self, path: &Path) -> Result<(), KeyRingError> {
        let io = |source| KeyRingError::Io {
            path: path.to_owned(),
            source,
        };
        let stored = |k: &HeldKey| StoredKey {
            key_id: k.key_id,
            ikm: hex::encode(k.ikm.as_slice()),
            created_unix: k.created_unix,
            superseded_unix: k.superseded_unix,
        };
        let file = KeyFile {
            version: KEY_FILE_VERSION,
            keys: self.keys.iter().map(stored).collect(),
            next: self.next.as_ref().map(stored),
        };
        let json = Zeroizing::new(serde_json::to_vec_pretty(&file).map_err(|e| io(e.into()))?);
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(&tmp).map_err(io)?;
        out.write_all(&json).map_err(io)?;
        out.sync_all().map_err(io)?;
        fs::rename(&tmp, path).map_err(io)
    }

    fn add_key(
        &mut self,
        key_id: u8,
        ikm: Zeroizing<[u8; IKM_LEN]>,
        created_unix: u64,
        superseded_unix: Option<u64>,
    ) -> Result<(), KeyRingError> {
        let key = self.held_key(key_id, ikm, created_unix, superseded_unix)?;
        self.keys.push(key);
        Ok(())
    }

    fn held_key(
        &self,
        key_id: u8,
        ikm: Zeroizing<[u8; IKM_LEN]>,
        created_unix: u64,
        superseded_unix: Option<u64>,
    ) -> Result<HeldKey, KeyRingError> {
        let suites = self.aeads.iter().map(|a| a.suite()).collect();
        let config = KeyConfig::derive(key_id, Kem::X25519Sha256, suites, ikm.as_slice())?;
        let encoded_config = config.encode()?;
        let server = Arc::new(Server::new(config)?);
        Ok(HeldKey {
            key_id,
            ikm,
            created_unix,
            superseded_unix,
            server,
            encoded_config,
        })
    }

    /// A key id neither held nor prepared, counting up from the current one.
    fn free_key_id(&self) -> Result<u8, KeyRingError> {
        let start = self.current().key_id;
        (1..=255u8)
            .map(|step| start.wrapping_add(step))
            .find(|id| self.keys.iter().chain(&self.next).all(|k| k.key_id != *id))
            .ok_or(KeyRingError::NoFreeKeyId)
    }

    /// When the current key is due for rotation.
    #[must_use]
    pub fn rotation_due(&self) -> u64 {
        self.current()
            .created_unix
            .saturating_add(self.policy.rotate_every.as_secs())
    }

    fn current(&self) -> &HeldKey {
        // Invariant: constructors add a key and nothing removes the last one.
        &self.keys[self.keys.len() - 1]
    }

    /// Replace the current key with a new one now; the old one enters its
    /// overlap window. Returns the new key id.
    ///
    /// # Errors
    /// A failure of the random source, or no free key id.
    pub fn rotate(&mut self, now_unix: u64) -> Result<u8, KeyRingError> {
        let key = self.held_key(self.free_key_id()?, fresh_ikm()?, now_unix, None)?;
        Ok(self.make_current(key, now_unix))
    }

    fn make_current(&mut self, key: HeldKey, now_unix: u64) -> u8 {
        let superseded = self.current().key_id;
        let key_id = key.key_id;
        let index = self.keys.len() - 1;
        self.keys[index].superseded_unix = Some(now_unix);
        self.keys.push(key);
        tracing::info!(key_id, superseded, "rotated OHTTP key");
        key_id
    }

    /// Generates the key that is to replace the current one at its rotation
    /// time, unless one is prepared already. Returns whether the ring changed.
    ///
    /// # Errors
    /// A failure of the random source, or no free key id.
    pub fn prepare_next(&mut self) -> Result<bool, KeyRingError> {
        if self.next.is_some() {
            return Ok(false);
        }
        let key = self.held_key(self.free_key_id()?, fresh_ikm()?, self.rotation_due(), None)?;
        tracing::info!(
            key_id = key.key_id,
            activates_at = key.created_unix,
            "prepared the next OHTTP key"
        );
        self.next = Some(key);
        Ok(true)
    }

    /// The prepared next key, if any.
    #[must_use]
    pub fn next_key(&self) -> Option<NextKey<'_>> {
        self.next.as_ref().map(|key| NextKey {
            key_id: key.key_id,
            config: &key.encoded_config,
            activates_at: key.created_unix,
        })
    }

    /// Rotates onto the prepared next key once it is due and `next_is_logged`
    /// (a key clients would refuse is never made current: the current one
    /// stays, with a warning), and forgets keys whose overlap has ended.
    /// Returns whether the ring changed.
    pub fn maintain_logged(&mut self, now_unix: u64, next_is_logged: bool) -> bool {
        let mut changed = false;
        if now_unix >= self.rotation_due() {
            match self.next.take() {
                Some(next) if next_is_logged && now_unix >= next.created_unix => {
                    self.make_current(next, now_unix);
                    changed = true;
                }
                next => {
                    tracing::warn!(
                        prepared = next.is_some(),
                        "OHTTP key rotation due, but the next key is not logged yet: keeping the current key"
                    );
                    self.next = next;
                }
            }
        }
        self.retire(now_unix) || changed
    }

    /// Rotate if the current key is due and forget keys whose overlap window
    /// has ended. Returns whether the ring changed (and should be saved).
    ///
    /// # Errors
    /// As [`KeyRing::rotate`].
    pub fn maintain(&mut self, now_unix: u64) -> Result<bool, KeyRingError> {
        let mut changed = false;
        if now_unix >= self.rotation_due() {
            self.rotate(now_unix)?;
            changed = true;
        }
        Ok(self.retire(now_unix) || changed)
    }

    /// Forgets keys whose overlap window has ended; returns whether any were.
    fn retire(&mut self, now_unix: u64) -> bool {
        let overlap = self.policy.overlap.as_secs();
        let before = self.keys.len();
        self.keys.retain(|k| {
            k.superseded_unix
                .is_none_or(|at| now_unix < at.saturating_add(overlap))
        });
        let retired = self.keys.len() != before;
        if retired {
            tracing::info!(remaining = ?self.key_ids(), "retired OHTTP keys past their overlap window");
        }
        retired
    }

    /// The decapsulation server for `key_id`, if that key is still held.
    #[must_use]
    pub fn server(&self, key_id: u8) -> Option<Arc<Server>> {
        self.keys
            .iter()
            .find(|k| k.key_id == key_id)
            .map(|k| Arc::clone(&k.server))
    }

    /// The ids of all held keys, oldest first.
    #[must_use]
    pub fn key_ids(&self) -> Vec<u8> {
        self.keys.iter().map(|k| k.key_id).collect()
    }

    /// The id of the current (published) key.
    #[must_use]
    pub fn current_key_id(&self) -> u8 {
        self.current().key_id
    }

    /// The encoded configuration of the current key (what the ledger records).
    #[must_use]
    pub fn current_config(&self) -> &[u8] {
        &self.current().encoded_config
    }

    /// The `application/ohttp-keys` body to publish: the current key only.
    /// Keys in their overlap window are not advertised; they only keep
    /// serving clients that fetched them earlier.
    #[must_use]
    pub fn published_list(&self) -> Vec<u8> {
        // A single X25519 configuration is about 45 bytes, far below 64 KiB.
        encode_key_list(&[self.current_config()]).unwrap_or_default()
    }

    /// How long a client may cache the published list: until the current key
    /// is due for rotation. Because old keys stay valid for the overlap
    /// window after that, a client honouring this never uses a dropped key.
    #[must_use]
    pub fn cache_lifetime(&self, now_unix: u64) -> Duration {
        Duration::from_secs(self.rotation_due().saturating_sub(now_unix))
    }

    /// The rotation policy.
    #[must_use]
    pub fn policy(&self) -> RotationPolicy {
        self.policy
    }

    /// When the current key became current.
    #[must_use]
    pub fn current_since(&self) -> u64 {
        self.current().created_unix
    }
}

/// A random first key id: a gateway that lost its saved ring starts again
/// under an id that its clients' cached configurations almost surely do not
/// name (a reused id would make their requests undecryptable instead of
/// drawing the `ohttp-key` problem that makes them refetch).
fn fresh_key_id() -> Result<u8, KeyRingError> {
    let mut id = [0u8; 1];
    getrandom::fill(&mut id).map_err(KeyRingError::Random)?;
    Ok(id[0])
}

fn fresh_ikm() -> Result<Zeroizing<[u8; IKM_LEN]>, KeyRingError> {
    let mut ikm = Zeroizing::new([0u8; IKM_LEN]);
    getrandom::fill(ikm.as_mut_slice()).map_err(KeyRingError::Random)?;
    Ok(ikm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split_key_list;

    const BOTH: [AeadChoice; 2] = [AeadChoice::Aes128Gcm, AeadChoice::Chacha20Poly1305];
    const HOUR: RotationPolicy = RotationPolicy {
        rotate_every: Duration::from_secs(3600),
        overlap: Duration::from_secs(600),
    };

    #[test]
    fn rotation_keeps_old_key_for_the_overlap_window_only() {
        let mut ring = KeyRing::generate(HOUR, &BOTH, 1000).expect("ring");
        let first = ring.current_key_id();
        assert!(
            !ring.maintain(1000 + 3599).expect("maintain"),
            "not due yet"
        );
        assert!(ring.maintain(1000 + 3600).expect("maintain"), "due");
        let second = ring.current_key_id();
        assert_ne!(first, second);
        assert!(ring.server(first).is_some(), "old key kept during overlap");
        assert!(!ring.maintain(4600 + 599).expect("maintain"));
        assert!(ring.server(first).is_some());
        assert!(ring.maintain(4600 + 600).expect("maintain"));
        assert!(
            ring.server(first).is_none(),
            "old key dropped after overlap"
        );
        assert_eq!(ring.key_ids(), vec![second]);
    }

    #[test]
    fn publishes_only_the_current_key_with_both_aeads() {
        let mut ring = KeyRing::generate(HOUR, &BOTH, 0).expect("ring");
        ring.rotate(10).expect("rotate");
        let list = ring.published_list();
        let configs = split_key_list(&list).expect("valid list");
        assert_eq!(configs, vec![ring.current_config()]);
        let config = configs[0];
        assert_eq!(config[0], ring.current_key_id());
        // key id, KEM 0x0020, 32-byte key, 8 bytes of suites: HKDF-SHA256 with AES-128-GCM then ChaCha20-Poly1305.
        assert_eq!(&config[1..3], &[0x00, 0x20]);
        assert_eq!(&config[35..], &[0, 8, 0, 1, 0, 1, 0, 1, 0, 3]);
        assert_eq!(ring.cache_lifetime(10 + 100), Duration::from_secs(3500));
    }

    #[test]
    fn save_and_load_restore_the_same_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.json");
        let (mut ring, created) =
            KeyRing::load_or_generate(&path, HOUR, &BOTH, 0).expect("created");
        assert!(created);
        ring.rotate(5).expect("rotate");
        ring.save(&path).expect("save");
        let (loaded, created) = KeyRing::load_or_generate(&path, HOUR, &BOTH, 6).expect("loaded");
        assert!(!created);
        assert_eq!(loaded.key_ids(), ring.key_ids());
        assert_eq!(loaded.current_config(), ring.current_config());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn rejects_corrupt_key_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.json");
        for bad in [
            "not json",
            r#"{"version":2,"keys":[]}"#,
            r#"{"version":1,"keys":[]}"#,
            r#"{"version":1,"keys":[{"key_id":1,"ikm":"zz","created_unix":0,"superseded_unix":null}]}"#,
            // Two current keys: the older one would never retire.
            format!(
                r#"{{"version":1,"keys":[{{"key_id":1,"ikm":"{ikm}","created_unix":0,"superseded_unix":null}},{{"key_id":2,"ikm":"{ikm}","created_unix":5,"superseded_unix":null}}]}}"#,
                ikm = "11".repeat(32)
            )
            .as_str(),
        ] {
            fs::write(&path, bad).expect("write");
            let err = KeyRing::load_or_generate(&path, HOUR, &BOTH, 0).expect_err(bad);
            assert!(matches!(err, KeyRingError::Corrupt { .. }), "{bad}: {err}");
        }
        assert!(matches!(
            KeyRing::generate(HOUR, &[], 0),
            Err(KeyRingError::NoAead)
        ));
    }

    #[test]
    fn the_next_key_becomes_current_only_when_due_and_logged() {
        let mut ring = KeyRing::generate(HOUR, &BOTH, 1000).expect("ring");
        let first = ring.current_key_id();
        assert!(ring.prepare_next().expect("prepare"));
        assert!(!ring.prepare_next().expect("prepared once"));
        let next = ring.next_key().expect("prepared");
        let (next_id, activates_at) = (next.key_id, next.activates_at);
        assert_eq!(activates_at, 1000 + 3600);
        assert_ne!(next_id, first);
        assert!(
            ring.server(next_id).is_none(),
            "not used before it is current"
        );
        assert_eq!(
            split_key_list(&ring.published_list()).expect("list"),
            [ring.current_config()],
            "not published before it is current"
        );

        assert!(!ring.maintain_logged(activates_at - 1, true), "not due yet");
        assert!(
            !ring.maintain_logged(activates_at, false),
            "due, but not logged"
        );
        assert_eq!(ring.current_key_id(), first);
        assert!(ring.maintain_logged(activates_at + 5, true));
        assert_eq!(ring.current_key_id(), next_id);
        assert!(ring.next_key().is_none());
        assert_eq!(ring.cache_lifetime(activates_at), HOUR.rotate_every);
    }

    #[test]
    fn a_prepared_next_key_survives_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.json");
        let (mut ring, _) = KeyRing::load_or_generate(&path, HOUR, &BOTH, 0).expect("created");
        ring.prepare_next().expect("prepare");
        ring.save(&path).expect("save");
        let (loaded, _) = KeyRing::load_or_generate(&path, HOUR, &BOTH, 1).expect("loaded");
        let (saved, restored) = (
            ring.next_key().expect("next"),
            loaded.next_key().expect("next"),
        );
        assert_eq!(saved, restored);
    }
}
