//! RFC 9162 §2.1 tree hashes and proof generation over any store of subtree hashes.
//!
//! The log keeps the hash of every *perfect* subtree (2^level leaves starting
//! at a multiple of 2^level) as it appends. Every hash the RFC's recursive
//! definitions need is either such a subtree or the right edge of the tree,
//! which splits into O(log n) of them, so roots and proofs cost O(log² n)
//! lookups at most and never touch the leaves in bulk.

use crate::Hash;
use crate::merkle::{ProofError, empty_root, node_hash, split_point};

/// A source of perfect-subtree hashes: the log's redb store, a client's
/// tiles ([`crate::tiles`]), or a test's leaf list.
pub trait SubtreeHashes {
    /// Error reading the underlying storage.
    type Error;

    /// Hash of the perfect subtree of `2^level` leaves starting at leaf `index << level`.
    /// Level 0 is the leaf hashes themselves.
    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;

    /// `MTH(D[start:end])` of RFC 9162 §2.1.1.
    fn range_hash(&self, start: u64, end: u64) -> Result<Hash, Self::Error> {
        let size = end - start;
        if size == 0 {
            return Ok(empty_root());
        }
        if size.is_power_of_two() && start.is_multiple_of(size) {
            let level = size.trailing_zeros();
            return self.perfect_subtree(level, start >> level);
        }
        let split = start + split_point(size);
        Ok(node_hash(
            &self.range_hash(start, split)?,
            &self.range_hash(split, end)?,
        ))
    }

    /// Root hash of the tree of the first `tree_size` leaves.
    fn root(&self, tree_size: u64) -> Result<Hash, Self::Error> {
        self.range_hash(0, tree_size)
    }

    /// `PATH(index, D[0:tree_size])` of RFC 9162 §2.1.3.1. Needs `index < tree_size`.
    fn inclusion_path(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, Self::Error> {
        let mut path = Vec::new();
        self.push_inclusion_path(index, 0, tree_size, &mut path)?;
        Ok(path)
    }

    /// Appends `PATH` for the subtree `D[start:end]`, leaf level first.
    fn push_inclusion_path(
        &self,
        index: u64,
        start: u64,
        end: u64,
        path: &mut Vec<Hash>,
    ) -> Result<(), Self::Error> {
        if end - start <= 1 {
            return Ok(());
        }
        let split = start + split_point(end - start);
        if index < split {
            self.push_inclusion_path(index, start, split, path)?;
            path.push(self.range_hash(split, end)?);
        } else {
            self.push_inclusion_path(index, split, end, path)?;
            path.push(self.range_hash(start, split)?);
        }
        Ok(())
    }

    /// `PROOF(first, D[0:second])` of RFC 9162 §2.1.4.1. Needs `first <= second`;
    /// empty when `first` is 0 or equal to `second`.
    fn consistency_path(&self, first: u64, second: u64) -> Result<Vec<Hash>, Self::Error> {
        let mut path = Vec::new();
        if first > 0 && first < second {
            self.push_subproof(first, 0, second, true, &mut path)?;
        }
        Ok(path)
    }

    /// Appends `SUBPROOF(first, D[start:end], whole_old_tree)`.
    fn push_subproof(
        &self,
        first: u64,
        start: u64,
        end: u64,
        whole_old_tree: bool,
        path: &mut Vec<Hash>,
    ) -> Result<(), Self::Error> {
        if first == end {
            if !whole_old_tree {
                path.push(self.range_hash(start, end)?);
            }
            return Ok(());
        }
        let split = start + split_point(end - start);
        if first <= split {
            self.push_subproof(first, start, split, whole_old_tree, path)?;
            path.push(self.range_hash(split, end)?);
        } else {
            self.push_subproof(first, split, end, false, path)?;
            path.push(self.range_hash(start, split)?);
        }
        Ok(())
    }
}

/// A whole tree's leaf hashes in memory (tests, tools, small trees): every
/// subtree hash is computed from the leaves.
impl SubtreeHashes for [Hash] {
    type Error = ProofError;

    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
        let tree_size = self.len() as u64;
        let out_of_range = ProofError::IndexOutOfRange { index, tree_size };
        let start = index.checked_shl(level).ok_or(out_of_range.clone())?;
        let leaves = usize::try_from(start)
            .ok()
            .and_then(|start| self.get(start..start.checked_add(1usize.checked_shl(level)?)?))
            .ok_or(out_of_range.clone())?;
        let mut hashes = leaves.to_vec();
        while hashes.len() > 1 {
            hashes = hashes
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
        }
        hashes.first().copied().ok_or(out_of_range)
    }
}
