//! Durable, append-only storage of the log in a redb database.
//!
//! Each append is one redb write transaction that stores the entries, their
//! leaf hashes, every perfect subtree they complete, and the new signed tree
//! head. redb commits transactions atomically and durably (copy-on-write
//! B-trees with a checksummed commit slot), so a crash leaves either the old
//! tree or the new one, never a half-written entry. [`LogStore::open`]
//! nevertheless re-checks the invariants, and refuses a database whose head
//! was signed by another key.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use cloister_ledger_verify::api::{EntryResponse, InclusionProof, SubmitResponse};
use cloister_ledger_verify::checkpoint::{Checkpoint, SignedCheckpoint};
use cloister_ledger_verify::entry::SignedEntry;
use cloister_ledger_verify::merkle::node_hash;
use cloister_ledger_verify::note::{NoteSigner, VerifierKey};
use cloister_ledger_verify::tree_head::{SignedTreeHead, TreeHead};
use cloister_ledger_verify::{Hash, HexBytes};
use ed25519_dalek::SigningKey;
use redb::{
    Database, MultimapTableDefinition, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use crate::LedgerError;
use crate::tree::SubtreeHashes;

/// Perfect subtree hashes keyed by (level, index); level 0 holds the leaf hashes.
const NODES: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("nodes");
/// Entry JSON by index.
const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// Index by leaf hash, for inclusion proofs by leaf hash and de-duplication.
const LEAF_INDEX: TableDefinition<&[u8], u64> = TableDefinition::new("leaf_index");
/// Indices by subject digest (measurement or SHA-256), for clients that know only the digest.
const SUBJECTS: MultimapTableDefinition<&[u8], u64> = MultimapTableDefinition::new("subjects");
/// The latest signed tree head (JSON) under [`LATEST`].
const TREE_HEADS: TableDefinition<&str, &[u8]> = TableDefinition::new("tree_heads");
const LATEST: &str = "latest";

/// Reads perfect-subtree hashes from a redb table inside some transaction.
struct NodeTable<'t, T>(&'t T);

impl<T: ReadableTable<(u8, u64), &'static [u8]>> SubtreeHashes for NodeTable<'_, T> {
    type Error = LedgerError;

    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, LedgerError> {
        let missing =
            || LedgerError::Corrupt(format!("missing tree node at level {level}, index {index}"));
        let level = u8::try_from(level).map_err(|_| missing())?;
        let guard = self.0.get((level, index))?.ok_or_else(missing)?;
        let bytes: [u8; 32] = guard.value().try_into().map_err(|_| missing())?;
        Ok(HexBytes(bytes))
    }
}

/// The log's storage: entries and tree in redb, heads signed with the log key.
///
/// It stores whatever it is given: deciding what may enter (reviewer
/// admission) is [`crate::Ledger`]'s job, which is the type servers use.
pub struct LogStore {
    db: Database,
    log_key: SigningKey,
    /// The log key under the log's origin, for C2SP checkpoints.
    checkpoint_signer: NoteSigner,
}

/// The origin of a log whose configuration names none: a name that is
/// clearly local, so that a real deployment sets its own.
pub const DEFAULT_ORIGIN: &str = "cloister.localhost/ledger";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

fn decode_head(bytes: &[u8]) -> Result<SignedTreeHead, LedgerError> {
    serde_json::from_slice(bytes)
        .map_err(|error| LedgerError::Corrupt(format!("stored tree head: {error}")))
}

fn latest_head<T: ReadableTable<&'static str, &'static [u8]>>(
    heads: &T,
) -> Result<Option<SignedTreeHead>, LedgerError> {
    heads
        .get(LATEST)?
        .map(|guard| decode_head(guard.value()))
        .transpose()
}

fn read_entry<T: ReadableTable<u64, &'static [u8]>>(
    entries: &T,
    index: u64,
) -> Result<EntryResponse, LedgerError> {
    let guard = entries
        .get(index)?
        .ok_or_else(|| LedgerError::NotFound(format!("no entry at index {index}")))?;
    let entry = serde_json::from_slice(guard.value())
        .map_err(|error| LedgerError::Corrupt(format!("entry {index}: {error}")))?;
    Ok(EntryResponse { index, entry })
}

impl LogStore {
    /// Opens (or creates) the database at `path`, signing heads with `log_key`.
    ///
    /// Fails if the stored head is not signed by `log_key` or if the stored
    /// tree does not hash to the stored head.
    /// Its checkpoints carry [`DEFAULT_ORIGIN`] until [`LogStore::with_origin`].
    pub fn open(path: &Path, log_key: SigningKey) -> Result<Self, LedgerError> {
        let db = Database::create(path)?;
        let store = Self {
            db,
            checkpoint_signer: NoteSigner::ed25519(DEFAULT_ORIGIN, log_key.clone())?,
            log_key,
        };
        let txn = store.db.begin_write()?;
        {
            txn.open_table(NODES)?;
            txn.open_table(ENTRIES)?;
            txn.open_table(LEAF_INDEX)?;
            txn.open_multimap_table(SUBJECTS)?;
            let mut heads = txn.open_table(TREE_HEADS)?;
            if latest_head(&heads)?.is_none() {
                store.write_head(&mut heads, 0, cloister_ledger_verify::merkle::empty_root())?;
            }
        }
        txn.commit()?;
        store.check_integrity()?;
        Ok(store)
    }

    /// Re-checks what a reader relies on: the head's signature, the entry
    /// count, and that the stored nodes hash to the head's root.
    fn check_integrity(&self) -> Result<(), LedgerError> {
        let head = self.tree_head()?;
        head.verify(&self.log_key.verifying_key())
            .map_err(|_| LedgerError::LogKeyMismatch)?;
        let txn = self.db.begin_read()?;
        let entries = txn.open_table(ENTRIES)?;
        let leaves = txn.open_table(LEAF_INDEX)?;
        let size = head.head.tree_size;
        for (name, count) in [("entries", entries.len()), ("leaf index", leaves.len())] {
            let count = count?;
            if count != size {
                return Err(LedgerError::Corrupt(format!(
                    "{count} rows in {name}, tree head says {size}"
                )));
            }
        }
        let nodes = txn.open_table(NODES)?;
        if NodeTable(&nodes).root(size)? != head.head.root_hash {
            return Err(LedgerError::Corrupt(
                "stored tree does not hash to the tree head".into(),
            ));
        }
        Ok(())
    }

    /// The log's public key, which clients pin.
    pub fn log_public_key(&self) -> [u8; 32] {
        self.log_key.verifying_key().to_bytes()
    }

    /// Names the log `origin` in its checkpoints: the first line of each, and
    /// the name of the key that signs them. Refused if it cannot be a key name
    /// (empty, or containing a space or `+`).
    pub fn with_origin(mut self, origin: &str) -> Result<Self, LedgerError> {
        self.checkpoint_signer = NoteSigner::ed25519(origin, self.log_key.clone())?;
        Ok(self)
    }

    /// The verifier key (name = origin) that checks this log's checkpoints.
    pub fn checkpoint_key(&self) -> &VerifierKey {
        self.checkpoint_signer.verifier_key()
    }

    /// The latest tree head as a C2SP checkpoint, signed by the log key under
    /// the origin. It is signed on each call: Ed25519 is deterministic, so the
    /// same tree always gives the same bytes, and only stored heads (each
    /// consistent with the ones before) are ever signed.
    pub fn checkpoint(&self) -> Result<SignedCheckpoint, LedgerError> {
        let head = self.tree_head()?.head;
        let checkpoint = Checkpoint {
            origin: self.checkpoint_key().name().to_owned(),
            tree_size: head.tree_size,
            root_hash: head.root_hash,
            extensions: Vec::new(),
        };
        SignedCheckpoint::sign(checkpoint, &self.checkpoint_signer)
            .map_err(|error| LedgerError::Corrupt(format!("signing the checkpoint: {error}")))
    }

    fn write_head(
        &self,
        heads: &mut redb::Table<'_, &'static str, &'static [u8]>,
        tree_size: u64,
        root_hash: Hash,
    ) -> Result<SignedTreeHead, LedgerError> {
        let head = TreeHead {
            tree_size,
            timestamp_ms: now_ms(),
            root_hash,
        }
        .sign(&self.log_key);
        let json =
            serde_json::to_vec(&head).map_err(|error| LedgerError::Corrupt(error.to_string()))?;
        heads.insert(LATEST, json.as_slice())?;
        Ok(head)
    }

    /// Appends `entries` in one atomic transaction and signs one new tree head.
    ///
    /// An entry already in the log is not stored twice: its earlier index is
    /// returned. The caller must have admitted every entry.
    pub fn append(&self, entries: &[SignedEntry]) -> Result<Vec<SubmitResponse>, LedgerError> {
        let txn = self.db.begin_write()?;
        let placed = self.append_in(&txn, entries)?;
        txn.commit()?;
        Ok(placed)
    }

    fn append_in(
        &self,
        txn: &WriteTransaction,
        entries: &[SignedEntry],
    ) -> Result<Vec<SubmitResponse>, LedgerError> {
        let mut heads = txn.open_table(TREE_HEADS)?;
        let old_head =
            latest_head(&heads)?.ok_or_else(|| LedgerError::Corrupt("no tree head".into()))?;
        let mut nodes = txn.open_table(NODES)?;
        let mut stored = txn.open_table(ENTRIES)?;
        let mut leaf_index = txn.open_table(LEAF_INDEX)?;
        let mut subjects = txn.open_multimap_table(SUBJECTS)?;
        let mut size = old_head.head.tree_size;
        let mut placed = Vec::with_capacity(entries.len());
        for entry in entries {
            let leaf = entry.leaf_hash();
            if let Some(existing) = leaf_index.get(leaf.as_bytes().as_slice())? {
                placed.push((existing.value(), leaf, false));
                continue;
            }
            let json = serde_json::to_vec(entry)
                .map_err(|error| LedgerError::Corrupt(error.to_string()))?;
            stored.insert(size, json.as_slice())?;
            leaf_index.insert(leaf.as_bytes().as_slice(), size)?;
            if let Some(digest) = entry.body.subject.digest_bytes() {
                subjects.insert(digest, size)?;
            }
            nodes.insert((0, size), leaf.as_bytes().as_slice())?;
            // Store every perfect subtree this leaf completes, walking up while it is a right child.
            let (mut level, mut index, mut hash) = (0u32, size, leaf);
            while index & 1 == 1 {
                let left = NodeTable(&nodes).perfect_subtree(level, index - 1)?;
                hash = node_hash(&left, &hash);
                level += 1;
                index >>= 1;
                let key_level = u8::try_from(level)
                    .map_err(|_| LedgerError::Corrupt("tree too tall".into()))?;
                nodes.insert((key_level, index), hash.as_bytes().as_slice())?;
            }
            placed.push((size, leaf, true));
            size += 1;
        }
        let head = if size == old_head.head.tree_size {
            old_head
        } else {
            let root = NodeTable(&nodes).root(size)?;
            self.write_head(&mut heads, size, root)?
        };
        Ok(placed
            .into_iter()
            .map(|(index, leaf_hash, appended)| SubmitResponse {
                index,
                leaf_hash,
                appended,
                tree_head: head,
            })
            .collect())
    }

    /// The latest signed tree head.
    pub fn tree_head(&self) -> Result<SignedTreeHead, LedgerError> {
        let txn = self.db.begin_read()?;
        let heads = txn.open_table(TREE_HEADS)?;
        latest_head(&heads)?.ok_or_else(|| LedgerError::Corrupt("no tree head".into()))
    }

    /// The entry at `index`.
    pub fn entry(&self, index: u64) -> Result<EntryResponse, LedgerError> {
        let txn = self.db.begin_read()?;
        read_entry(&txn.open_table(ENTRIES)?, index)
    }

    /// Every entry vouching for `digest` (a measurement or SHA-256), oldest first:
    /// how a client that holds only a digest finds the entries to verify.
    pub fn entries_for_digest(&self, digest: &[u8]) -> Result<Vec<EntryResponse>, LedgerError> {
        let txn = self.db.begin_read()?;
        let entries = txn.open_table(ENTRIES)?;
        let subjects = txn.open_multimap_table(SUBJECTS)?;
        let mut found = Vec::new();
        for index in subjects.get(digest)? {
            found.push(read_entry(&entries, index?.value())?);
        }
        Ok(found)
    }

    /// Inclusion proof for the entry with `leaf_hash` in the tree of
    /// `tree_size` entries (the latest tree when `None`).
    pub fn inclusion_proof(
        &self,
        leaf_hash: &Hash,
        tree_size: Option<u64>,
    ) -> Result<InclusionProof, LedgerError> {
        let txn = self.db.begin_read()?;
        let heads = txn.open_table(TREE_HEADS)?;
        let current = latest_head(&heads)?.map_or(0, |head| head.head.tree_size);
        let tree_size = tree_size.unwrap_or(current);
        if tree_size > current {
            return Err(LedgerError::BadRequest(format!(
                "tree size {tree_size} exceeds the log's {current}"
            )));
        }
        let leaves = txn.open_table(LEAF_INDEX)?;
        let leaf_index = leaves
            .get(leaf_hash.as_bytes().as_slice())?
            .map(|guard| guard.value())
            .filter(|&index| index < tree_size)
            .ok_or_else(|| {
                LedgerError::NotFound(format!(
                    "leaf {leaf_hash} is not in the tree of size {tree_size}"
                ))
            })?;
        let nodes = txn.open_table(NODES)?;
        let audit_path = NodeTable(&nodes).inclusion_path(leaf_index, tree_size)?;
        Ok(InclusionProof {
            leaf_index,
            tree_size,
            audit_path,
        })
    }

    /// Consistency proof from the tree of `first` entries to the tree of `second`.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, LedgerError> {
        let txn = self.db.begin_read()?;
        let heads = txn.open_table(TREE_HEADS)?;
        let current = latest_head(&heads)?.map_or(0, |head| head.head.tree_size);
        if first > second || second > current {
            return Err(LedgerError::BadRequest(format!(
                "need first <= second <= {current}, got first {first}, second {second}"
            )));
        }
        let nodes = txn.open_table(NODES)?;
        NodeTable(&nodes).consistency_path(first, second)
    }

    /// The `count` tree hashes at tree height `height` from number `first`
    /// (a C2SP tile's hashes, concatenated): only hashes of complete
    /// subtrees exist, so a tile is served only once the tree has it.
    pub fn subtree_hashes(
        &self,
        height: u8,
        first: u64,
        count: u64,
    ) -> Result<Vec<u8>, LedgerError> {
        let txn = self.db.begin_read()?;
        let nodes = txn.open_table(NODES)?;
        let end = first
            .checked_add(count)
            .ok_or_else(|| LedgerError::BadRequest("tile beyond the tree".into()))?;
        let mut bytes = Vec::with_capacity(usize::try_from(count).unwrap_or(0) * 32);
        for guard in nodes.range((height, first)..(height, end))? {
            bytes.extend_from_slice(guard?.1.value());
        }
        if bytes.len() as u64 != count * 32 {
            return Err(LedgerError::NotFound(format!(
                "the tree has no {count} hashes at height {height} from {first}"
            )));
        }
        Ok(bytes)
    }

    /// The `count` entries from index `first`, oldest first.
    pub fn entries(&self, first: u64, count: u64) -> Result<Vec<SignedEntry>, LedgerError> {
        let txn = self.db.begin_read()?;
        let entries = txn.open_table(ENTRIES)?;
        let end = first
            .checked_add(count)
            .ok_or_else(|| LedgerError::BadRequest("entries beyond the log".into()))?;
        let mut found = Vec::new();
        for guard in entries.range(first..end)? {
            let (index, json) = guard?;
            let entry = serde_json::from_slice(json.value()).map_err(|error| {
                LedgerError::Corrupt(format!("entry {}: {error}", index.value()))
            })?;
            found.push(entry);
        }
        if found.len() as u64 != count {
            return Err(LedgerError::NotFound(format!(
                "the log has no {count} entries from {first}"
            )));
        }
        Ok(found)
    }

    /// Root hash of the tree of the first `tree_size` entries (for audits and tests).
    pub fn root_at(&self, tree_size: u64) -> Result<Hash, LedgerError> {
        let txn = self.db.begin_read()?;
        let heads = txn.open_table(TREE_HEADS)?;
        let current = latest_head(&heads)?.map_or(0, |head| head.head.tree_size);
        if tree_size > current {
            return Err(LedgerError::BadRequest(format!(
                "tree size {tree_size} exceeds the log's {current}"
            )));
        }
        let nodes = txn.open_table(NODES)?;
        NodeTable(&nodes).root(tree_size)
    }
}
