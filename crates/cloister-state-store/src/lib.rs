//! The state that must outlive one process and be shared by its replicas:
//! spent Privacy Pass tokens and the OHTTP replay guard at the gateway, and
//! the issuer's per-account issuance counters.
//!
//! Two operations are all they need, and each is atomic in every backend:
//!
//! * [`OnceSet::insert`]: record a key under a namespace unless it is there
//!   already, keeping it until a Unix time. Two replicas inserting the same
//!   key at once see exactly one [`Inserted::Fresh`].
//! * [`Counters::take`] and [`Counters::refund`]: a counter per name and
//!   fixed time window, taken only while below its limit.
//!
//! Everything fails closed: a store that cannot answer returns a
//! [`StateError`], and callers refuse the request; an error is never read as
//! "not seen before". A set holds at most its capacity of live entries and
//! refuses new ones when full ([`StateError::Full`]) rather than forgetting
//! an entry early.
//!
//! # Backends
//!
//! * **redb** (the default): one file on one machine, as the ledger keeps
//!   its log. Every write is a committed, fsynced transaction, so a restart
//!   forgets nothing; expired entries are pruned as new ones are written.
//!   redb locks its file, so only one process uses it: replicas on several
//!   processes or machines use Redis. [`StateStore::in_memory`] is the same
//!   code on redb's in-memory backend, for tests and examples.
//! * **Redis** (feature `redis`): shared by a fleet. Redis rather than
//!   PostgreSQL because both operations are native there: `SET NX EXAT` is an
//!   atomic set-if-absent with an absolute expiry, and a counter is `INCR`
//!   with `EXPIREAT` in one Lua script; expiry is the server's own, so nothing
//!   needs pruning, and there is no schema to migrate. Capacity is Redis's
//!   `maxmemory` with the `noeviction` policy: a full Redis refuses writes,
//!   which fails closed, whereas an evicting policy would forget spent
//!   tokens, so [`StateStore::open`] refuses a Redis that reports one.
//!
//! # Cargo features
//!
//! * `redis`: the Redis backend (off by default).
//!
//! # Example
//!
//! ```rust
//! use cloister_state_store::{Inserted, StateStore, Taken};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = StateStore::in_memory()?;
//! let spent = store.once_set("spent", 1_000);
//! let now = 1_000;
//! assert_eq!(spent.insert(b"nonce", now + 60, now).await?, Inserted::Fresh);
//! assert_eq!(spent.insert(b"nonce", now + 60, now).await?, Inserted::Present);
//! // Expired entries are forgotten.
//! assert_eq!(spent.insert(b"nonce", now + 120, now + 60).await?, Inserted::Fresh);
//!
//! let issued = store.counters("issued", 2, 3_600);
//! assert_eq!(issued.take("alice", now).await?, Taken::Granted);
//! assert_eq!(issued.take("alice", now).await?, Taken::Granted);
//! assert_eq!(issued.take("alice", now).await?, Taken::Exhausted { retry_after: 2_600 });
//! # Ok(())
//! # }
//! ```

mod redb_store;
#[cfg(feature = "redis")]
mod redis_store;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

/// Why the store could not answer. Every one of them refuses the request.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The namespace holds its capacity of live entries.
    #[error("state store full: {namespace} holds its capacity of {capacity} live entries")]
    Full {
        /// The namespace that is full.
        namespace: &'static str,
        /// Its capacity.
        capacity: u64,
    },
    /// The redb file could not be opened, read or written.
    #[error("state store (redb): {0}")]
    Redb(#[source] Box<redb::Error>),
    /// Redis could not be reached or refused the command.
    #[cfg(feature = "redis")]
    #[error("state store (redis): {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis may evict keys when full, which would forget spent tokens.
    #[cfg(feature = "redis")]
    #[error(
        "state store (redis): maxmemory-policy is {0:?}; only \"noeviction\" keeps every spent token"
    )]
    Evicting(String),
    /// The blocking task that ran a redb transaction did not finish.
    #[error("state store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Wraps any of redb's per-operation error types.
fn redb_error(error: impl Into<redb::Error>) -> StateError {
    StateError::Redb(Box::new(error.into()))
}

/// Which backend holds the state: the `[state]` table of a party's
/// configuration, e.g. `backend = "redb"` with `path`, or
/// `backend = "redis"` with `url` and `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum StateConfig {
    /// A redb file on this machine (created on first start).
    Redb {
        /// The database file.
        path: PathBuf,
    },
    /// A Redis server shared by every replica.
    #[cfg(feature = "redis")]
    Redis {
        /// `redis://host:port/db` (or `rediss://` for TLS).
        url: String,
        /// Put before every key, so that several parties or deployments can
        /// share one Redis.
        prefix: String,
    },
}

impl StateConfig {
    /// A redb file at `path`.
    pub fn redb(path: impl Into<PathBuf>) -> Self {
        Self::Redb { path: path.into() }
    }
}

/// Names the store for logs and errors without its URL, which may hold a
/// Redis password.
impl std::fmt::Display for StateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Redb { path } => write!(f, "redb file {}", path.display()),
            #[cfg(feature = "redis")]
            Self::Redis { prefix, .. } => write!(f, "redis (key prefix {prefix:?})"),
        }
    }
}

/// An open store. Cheap to clone; clones share the connection or file.
#[derive(Debug, Clone)]
pub struct StateStore(Backend);

#[derive(Debug, Clone)]
enum Backend {
    Redb(Arc<redb_store::RedbStore>),
    #[cfg(feature = "redis")]
    Redis(redis_store::RedisStore),
}

impl StateStore {
    /// Opens the store `config` names: creates the redb file, or connects to
    /// Redis and checks that it never evicts keys.
    ///
    /// # Errors
    /// The file cannot be created or opened (another process holds it), or
    /// Redis is unreachable or configured to evict.
    pub async fn open(config: &StateConfig) -> Result<Self, StateError> {
        match config {
            StateConfig::Redb { path } => {
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || redb_store::RedbStore::open(&path))
                    .await??;
                Ok(Self(Backend::Redb(Arc::new(store))))
            }
            #[cfg(feature = "redis")]
            StateConfig::Redis { url, prefix } => Ok(Self(Backend::Redis(
                redis_store::RedisStore::connect(url, prefix).await?,
            ))),
        }
    }

    /// A store in this process's memory (redb's in-memory backend): what
    /// tests and examples use; it is neither durable nor shared.
    ///
    /// # Errors
    /// redb could not set up the database.
    pub fn in_memory() -> Result<Self, StateError> {
        Ok(Self(Backend::Redb(Arc::new(
            redb_store::RedbStore::in_memory()?,
        ))))
    }

    /// The spend-once set `namespace`, holding at most `capacity` live entries.
    #[must_use]
    pub fn once_set(&self, namespace: &'static str, capacity: u64) -> OnceSet {
        OnceSet {
            store: self.clone(),
            namespace,
            capacity,
        }
    }

    /// Counters in `namespace`: at most `limit` per name in each fixed
    /// window of `window_secs` (at least one second).
    #[must_use]
    pub fn counters(&self, namespace: &'static str, limit: u32, window_secs: u64) -> Counters {
        Counters {
            store: self.clone(),
            namespace,
            limit,
            window_secs: window_secs.max(1),
        }
    }
}

/// The outcome of [`OnceSet::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The key was absent (or expired) and is now recorded.
    Fresh,
    /// The key is recorded and not expired.
    Present,
}

/// A namespace of keys each recorded once until its expiry. See the crate docs.
#[derive(Debug, Clone)]
pub struct OnceSet {
    store: StateStore,
    namespace: &'static str,
    capacity: u64,
}

impl OnceSet {
    /// Records `key` unless it is recorded and live; it stays live while the
    /// Unix time is below `expires_at`. `now` is the caller's clock (the
    /// redb backend prunes by it; Redis expires keys by its own).
    ///
    /// # Errors
    /// [`StateError::Full`] when the set holds its capacity of live
    /// entries, or any failure of the backend: the caller must refuse.
    pub async fn insert(
        &self,
        key: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<Inserted, StateError> {
        match &self.store.0 {
            Backend::Redb(store) => {
                let (store, namespace, capacity, key) = (
                    Arc::clone(store),
                    self.namespace,
                    self.capacity,
                    key.to_vec(),
                );
                tokio::task::spawn_blocking(move || {
                    store.insert(namespace, capacity, &key, expires_at, now)
                })
                .await?
            }
            #[cfg(feature = "redis")]
            Backend::Redis(store) => store.insert(self.namespace, key, expires_at).await,
        }
    }

    /// How many entries the set holds: for tests and diagnostics (on Redis
    /// it scans the namespace's keys). Expired entries that redb has not
    /// pruned yet are counted.
    ///
    /// # Errors
    /// Any failure of the backend.
    pub async fn count(&self) -> Result<u64, StateError> {
        match &self.store.0 {
            Backend::Redb(store) => {
                let (store, namespace) = (Arc::clone(store), self.namespace);
                tokio::task::spawn_blocking(move || store.count(namespace)).await?
            }
            #[cfg(feature = "redis")]
            Backend::Redis(store) => store.count(self.namespace).await,
        }
    }
}

/// The outcome of [`Counters::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Below the limit: counted.
    Granted,
    /// The limit is reached in this window; the next opens in `retry_after` seconds.
    Exhausted {
        /// Seconds until the next window.
        retry_after: u64,
    },
}

/// Fixed-window counters. See the crate docs.
#[derive(Debug, Clone)]
pub struct Counters {
    store: StateStore,
    namespace: &'static str,
    limit: u32,
    window_secs: u64,
}

impl Counters {
    /// Counts one for `name` in the window of `now`, unless its limit is reached.
    ///
    /// # Errors
    /// Any failure of the backend: the caller must refuse.
    pub async fn take(&self, name: &str, now: u64) -> Result<Taken, StateError> {
        let window = now / self.window_secs;
        let granted = match &self.store.0 {
            Backend::Redb(store) => {
                let (store, namespace, limit, name) = (
                    Arc::clone(store),
                    self.namespace,
                    self.limit,
                    name.to_owned(),
                );
                tokio::task::spawn_blocking(move || store.take(namespace, &name, window, limit))
                    .await??
            }
            #[cfg(feature = "redis")]
            Backend::Redis(store) => {
                let expires_at = (window + 1) * self.window_secs;
                store
                    .take(self.namespace, name, window, self.limit, expires_at)
                    .await?
            }
        };
        Ok(if granted {
            Taken::Granted
        } else {
            Taken::Exhausted {
                retry_after: (window + 1) * self.window_secs - now,
            }
        })
    }

    /// Gives back one count taken at `now` for a request that then failed.
    ///
    /// # Errors
    /// Any failure of the backend.
    pub async fn refund(&self, name: &str, now: u64) -> Result<(), StateError> {
        let window = now / self.window_secs;
        match &self.store.0 {
            Backend::Redb(store) => {
                let (store, namespace, name) = (Arc::clone(store), self.namespace, name.to_owned());
                tokio::task::spawn_blocking(move || store.refund(namespace, &name, window)).await?
            }
            #[cfg(feature = "redis")]
            Backend::Redis(store) => store.refund(self.namespace, name, window).await,
        }
    }
}
