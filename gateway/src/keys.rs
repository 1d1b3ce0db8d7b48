//! The gateway's OHTTP keys as a shared service: the pipeline decrypts
//! with them, the HTTP face publishes them, a background task rotates them
//! (with a [`KeyPublisher`], only onto keys the ledger already holds).

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::entry::{KeyWindow, Subject};
use cloister_ledger_verify::publish::KeyPublisher;
use cloister_ohttp_keys::{KeyRing, KeyRingError, RotationPolicy};
use cloister_wire::unix_now;

/// The gateway's key ring behind a lock, saved to the key file on every change.
#[derive(Debug)]
pub struct KeyService {
    ring: RwLock<KeyRing>,
    file: Option<PathBuf>,
    max_cache: Duration,
}

impl KeyService {
    /// Wrap `ring`; `file` is where changes are saved (none: memory only).
    /// `max_cache` caps the advertised cache lifetime of the key list.
    #[must_use]
    pub fn new(ring: KeyRing, file: Option<PathBuf>, max_cache: Duration) -> Self {
        Self {
            ring: RwLock::new(ring),
            file,
            max_cache,
        }
    }

    /// Run `f` with the ring locked for reading.
    pub fn with_ring<X>(&self, f: impl FnOnce(&KeyRing) -> X) -> X {
        f(&self.ring.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write_and_save<X>(
        &self,
        f: impl FnOnce(&mut KeyRing) -> Result<(X, bool), KeyRingError>,
    ) -> Result<X, KeyRingError> {
        let mut ring = self.ring.write().unwrap_or_else(PoisonError::into_inner);
        let (out, changed) = f(&mut ring)?;
        if let (true, Some(file)) = (changed, &self.file) {
            ring.save(file)?;
        }
        Ok(out)
    }

    /// Rotate and retire keys as the policy says, saving if anything changed.
    ///
    /// # Errors
    /// Key generation or saving failed; the ring in memory is still usable.
    pub fn maintain(&self, now_unix: u64) -> Result<bool, KeyRingError> {
        self.write_and_save(|ring| ring.maintain(now_unix).map(|changed| (changed, changed)))
    }

    /// One round of rotation through the ledger: logs the current key (if
    /// not yet), prepares the next key once its rotation is `lead_secs`
    /// away and logs it, then rotates onto it when due, only if it is
    /// logged. A ledger that cannot be reached delays the rotation; the
    /// current key keeps serving. Returns whether the ring changed.
    ///
    /// # Errors
    /// Key generation or saving failed.
    pub async fn maintain_published(
        &self,
        publisher: &KeyPublisher,
        now_unix: u64,
        lead_secs: u64,
    ) -> Result<bool, KeyRingError> {
        let (policy, current, since, due) = self.with_ring(|ring| {
            (
                ring.policy(),
                ring.current_config().to_vec(),
                ring.current_since(),
                ring.rotation_due(),
            )
        });
        if let Err(error) = publisher
            .ensure_logged(key_subject(&current, key_window(since, policy)))
            .await
        {
            tracing::warn!(%error, "could not log the current OHTTP key");
        }
        let prepared = if now_unix.saturating_add(lead_secs) >= due {
            self.write_and_save(|ring| ring.prepare_next().map(|changed| (changed, changed)))?
        } else {
            false
        };
        let next = self.with_ring(|ring| {
            ring.next_key()
                .map(|next| (next.config.to_vec(), next.activates_at))
        });
        let next_is_logged = match next {
            Some((config, activates_at)) => match publisher
                .ensure_logged(key_subject(&config, key_window(activates_at, policy)))
                .await
            {
                Ok(appended) => {
                    if appended {
                        tracing::info!(activates_at, "logged the next OHTTP key");
                    }
                    true
                }
                Err(error) => {
                    tracing::warn!(%error, "could not log the next OHTTP key; rotation waits for it");
                    false
                }
            },
            None => false,
        };
        let rotated = self.write_and_save(|ring| {
            let changed = ring.maintain_logged(now_unix, next_is_logged);
            Ok((changed, changed))
        })?;
        Ok(rotated || prepared)
    }

    /// Rotate now, whatever the schedule (operator action, tests). Returns the new key id.
    ///
    /// # Errors
    /// Key generation or saving failed.
    pub fn rotate_now(&self) -> Result<u8, KeyRingError> {
        self.write_and_save(|ring| ring.rotate(unix_now()).map(|id| (id, true)))
    }

    /// The `application/ohttp-keys` body and how long it may be cached.
    #[must_use]
    pub fn published(&self, now_unix: u64) -> (Vec<u8>, Duration) {
        self.with_ring(|ring| {
            (
                ring.published_list(),
                ring.cache_lifetime(now_unix).min(self.max_cache),
            )
        })
    }
}

/// The entry logging the key configuration `config` with `window`.
fn key_subject(config: &[u8], window: KeyWindow) -> Subject {
    Subject::OhttpKeyConfig {
        key_id: cloister_ohttp_keys::leading_key_id(config).unwrap_or_default(),
        digest: HexBytes(cloister_ohttp_keys::key_config_digest(config)),
        window,
    }
}

/// The window a key is logged with when it becomes current at
/// `activates_at`: its rotation period, its overlap, and one more period of
/// slack, so that a rotation delayed by an unreachable ledger does not stop
/// clients at once.
#[must_use]
pub fn key_window(activates_at: u64, policy: RotationPolicy) -> KeyWindow {
    let period = policy.rotate_every.as_secs().max(1);
    KeyWindow {
        not_before: activates_at,
        not_after: activates_at
            .saturating_add(period.saturating_mul(2))
            .saturating_add(policy.overlap.as_secs()),
    }
}

/// Keep rotating through the ledger (see [`KeyService::maintain_published`])
/// every `every` until the runtime stops.
pub fn spawn_published_key_maintenance(
    keys: Arc<KeyService>,
    publisher: Arc<KeyPublisher>,
    every: Duration,
    lead: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(error) = keys
                .maintain_published(&publisher, unix_now(), lead.as_secs())
                .await
            {
                tracing::error!(%error, "key maintenance failed; keeping current keys");
            }
        }
    })
}

/// Keep rotating and retiring keys every `every` until the runtime stops.
pub fn spawn_key_maintenance(
    keys: Arc<KeyService>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(error) = keys.maintain(unix_now()) {
                tracing::error!(%error, "key maintenance failed; keeping current keys");
            }
        }
    })
}
