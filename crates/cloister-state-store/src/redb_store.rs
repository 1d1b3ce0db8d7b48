//! The redb backend: one file, one process, every write a committed
//! transaction (redb's default durability fsyncs each commit).
//!
//! Spend-once entries live in `once` with their expiry, indexed again by
//! expiry in `expiry` so that expired ones are found without a scan; `live`
//! counts each namespace's entries for its capacity. Each insert prunes a
//! few expired entries, and all of them before it refuses for capacity, so
//! the file stays about as large as what is live.

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

use crate::{Inserted, StateError, redb_error};

/// (namespace, key) -> Unix time the entry expires.
const ONCE: TableDefinition<(&str, &[u8]), u64> = TableDefinition::new("once");
/// (expiry, namespace, key): the same entries in the order they expire.
const EXPIRY: TableDefinition<(u64, &str, &[u8]), ()> = TableDefinition::new("expiry");
/// namespace -> entries in `once`.
const LIVE: TableDefinition<&str, u64> = TableDefinition::new("live");
/// (namespace, name) -> (window, count).
const COUNTERS: TableDefinition<(&str, &str), (u64, u32)> = TableDefinition::new("counters");

/// Expired entries removed by an insert that does not need the room.
const PRUNE_BATCH: usize = 64;
/// redb's page cache. Its default (1 GiB) let a gateway's memory grow with
/// every token it ever spent; the file's pages are in the kernel's page
/// cache anyway, so a small cache keeps memory flat at little cost.
const CACHE_BYTES: usize = 2 << 20;

#[derive(Debug)]
pub(crate) struct RedbStore {
    db: Database,
}

impl RedbStore {
    pub(crate) fn open(path: &Path) -> Result<Self, StateError> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(redb_error)?;
        Self::with_tables(db)
    }

    pub(crate) fn in_memory() -> Result<Self, StateError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(redb_error)?;
        Self::with_tables(db)
    }

    /// Creates the tables once, so that readers never find one missing.
    fn with_tables(db: Database) -> Result<Self, StateError> {
        let txn = db.begin_write().map_err(redb_error)?;
        txn.open_table(ONCE).map_err(redb_error)?;
        txn.open_table(EXPIRY).map_err(redb_error)?;
        txn.open_table(LIVE).map_err(redb_error)?;
        txn.open_table(COUNTERS).map_err(redb_error)?;
        txn.commit().map_err(redb_error)?;
        Ok(Self { db })
    }

    pub(crate) fn insert(
        &self,
        namespace: &'static str,
        capacity: u64,
        key: &[u8],
        expires_at: u64,
        now: u64,
    ) -> Result<Inserted, StateError> {
        let txn = self.db.begin_write().map_err(redb_error)?;
        {
            let mut once = txn.open_table(ONCE).map_err(redb_error)?;
            let mut expiry = txn.open_table(EXPIRY).map_err(redb_error)?;
            let mut live = txn.open_table(LIVE).map_err(redb_error)?;
            let mut tables = Tables {
                once: &mut once,
                expiry: &mut expiry,
                live: &mut live,
            };
            tables.prune(now, PRUNE_BATCH)?;
            let existing = tables
                .once
                .get((namespace, key))
                .map_err(redb_error)?
                .map(|entry| entry.value());
            match existing {
                Some(until) if until > now => return Ok(Inserted::Present),
                Some(until) => tables.remove(until, namespace, key)?,
                None => {}
            }
            if tables.count(namespace)? >= capacity {
                tables.prune(now, usize::MAX)?;
                if tables.count(namespace)? >= capacity {
                    return Err(StateError::Full {
                        namespace,
                        capacity,
                    });
                }
            }
            tables
                .once
                .insert((namespace, key), expires_at)
                .map_err(redb_error)?;
            tables
                .expiry
                .insert((expires_at, namespace, key), ())
                .map_err(redb_error)?;
            let count = tables.count(namespace)?;
            tables
                .live
                .insert(namespace, count + 1)
                .map_err(redb_error)?;
        }
        txn.commit().map_err(redb_error)?;
        Ok(Inserted::Fresh)
    }

    pub(crate) fn count(&self, namespace: &str) -> Result<u64, StateError> {
        let txn = self.db.begin_read().map_err(redb_error)?;
        let live = txn.open_table(LIVE).map_err(redb_error)?;
        Ok(live
            .get(namespace)
            .map_err(redb_error)?
            .map_or(0, |count| count.value()))
    }

    /// Counts one in `window` unless `limit` is reached; whether it counted.
    pub(crate) fn take(
        &self,
        namespace: &'static str,
        name: &str,
        window: u64,
        limit: u32,
    ) -> Result<bool, StateError> {
        let txn = self.db.begin_write().map_err(redb_error)?;
        let granted = {
            let mut counters = txn.open_table(COUNTERS).map_err(redb_error)?;
            let used = match counters.get((namespace, name)).map_err(redb_error)? {
                Some(entry) if entry.value().0 == window => entry.value().1,
                _ => 0,
            };
            let granted = used < limit;
            if granted {
                counters
                    .insert((namespace, name), (window, used + 1))
                    .map_err(redb_error)?;
            }
            granted
        };
        txn.commit().map_err(redb_error)?;
        Ok(granted)
    }

    /// Gives one back in `window` (nothing once that window has passed).
    pub(crate) fn refund(
        &self,
        namespace: &'static str,
        name: &str,
        window: u64,
    ) -> Result<(), StateError> {
        let txn = self.db.begin_write().map_err(redb_error)?;
        {
            let mut counters = txn.open_table(COUNTERS).map_err(redb_error)?;
            let current = counters
                .get((namespace, name))
                .map_err(redb_error)?
                .map(|entry| entry.value());
            if let Some((stored, used)) = current
                && stored == window
            {
                counters
                    .insert((namespace, name), (window, used.saturating_sub(1)))
                    .map_err(redb_error)?;
            }
        }
        txn.commit().map_err(redb_error)?;
        Ok(())
    }
}

type Once<'t> = redb::Table<'t, (&'static str, &'static [u8]), u64>;
type Expiry<'t> = redb::Table<'t, (u64, &'static str, &'static [u8]), ()>;
type Live<'t> = redb::Table<'t, &'static str, u64>;

/// The spend-once tables of one write transaction.
struct Tables<'a, 't> {
    once: &'a mut Once<'t>,
    expiry: &'a mut Expiry<'t>,
    live: &'a mut Live<'t>,
}

impl Tables<'_, '_> {
    fn count(&self, namespace: &str) -> Result<u64, StateError> {
        Ok(self
            .live
            .get(namespace)
            .map_err(redb_error)?
            .map_or(0, |count| count.value()))
    }

    fn remove(&mut self, until: u64, namespace: &str, key: &[u8]) -> Result<(), StateError> {
        self.once.remove((namespace, key)).map_err(redb_error)?;
        self.expiry
            .remove((until, namespace, key))
            .map_err(redb_error)?;
        let count = self.count(namespace)?;
        self.live
            .insert(namespace, count.saturating_sub(1))
            .map_err(redb_error)?;
        Ok(())
    }

    /// Removes up to `most` entries that expired at or before `now`.
    fn prune(&mut self, now: u64, most: usize) -> Result<(), StateError> {
        let end = (now.saturating_add(1), "", &[][..]);
        let expired: Vec<(u64, String, Vec<u8>)> = self
            .expiry
            .range(..end)
            .map_err(redb_error)?
            .take(most)
            .map(|entry| {
                entry.map(|(key, _)| {
                    let (until, namespace, key) = key.value();
                    (until, namespace.to_owned(), key.to_vec())
                })
            })
            .collect::<Result<_, _>>()
            .map_err(redb_error)?;
        for (until, namespace, key) in expired {
            self.remove(until, &namespace, &key)?;
        }
        Ok(())
    }
}
