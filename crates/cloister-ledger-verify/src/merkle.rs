//! RFC 9162 §2.1 Merkle tree hashing and proof verification.
//!
//! Leaves are hashed as `SHA-256(0x00 || data)` and interior nodes as
//! `SHA-256(0x01 || left || right)`, so a leaf can never be passed off as a
//! node. Proofs are lists of sibling hashes, leaf level first.

use sha2::{Digest, Sha256};

use crate::HexBytes;

/// A SHA-256 tree hash (leaf, node or root).
pub type Hash = HexBytes<32>;

/// Why a proof did not verify. Every variant means "do not trust this".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of size {tree_size}")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        tree_size: u64,
    },
    /// The first tree is bigger than the second: no consistency to prove.
    #[error("first tree size {first} is larger than second tree size {second}")]
    SizesReversed {
        /// Size of the older tree.
        first: u64,
        /// Size of the newer tree.
        second: u64,
    },
    /// The proof has the wrong number of hashes for these tree sizes.
    #[error("proof has the wrong length for these tree sizes")]
    WrongLength,
    /// The hashes recomputed from the proof differ from the expected root(s).
    #[error("proof does not lead to the expected root hash")]
    RootMismatch,
}

/// The root of the empty tree: `SHA-256()` of nothing.
pub fn empty_root() -> Hash {
    HexBytes(Sha256::digest([]).into())
}

/// `SHA-256(0x00 || data)`: the hash of one log entry.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    HexBytes(hasher.finalize().into())
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left.0);
    hasher.update(right.0);
    HexBytes(hasher.finalize().into())
}

/// The largest power of two strictly below `n` (the RFC's `k`); `n` must be at least 2.
pub fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2, "split_point needs at least two leaves");
    1 << (63 - (n - 1).leading_zeros())
}

/// Which side of the running hash a proof's next sibling sits on.
enum Sibling {
    Left,
    Right,
}

/// The loop shared by RFC 9162's inclusion and consistency verification:
/// climbs from node `node_index` of a level whose last node is `last_index`,
/// telling `combine` on which side each sibling of `path` goes, and fails
/// unless the path ends exactly at the root.
fn walk_path(
    mut node_index: u64,
    mut last_index: u64,
    path: &[Hash],
    mut combine: impl FnMut(Sibling, &Hash),
) -> Result<(), ProofError> {
    for sibling in path {
        if last_index == 0 {
            return Err(ProofError::WrongLength);
        }
        if node_index & 1 == 1 || node_index == last_index {
            combine(Sibling::Left, sibling);
            // A right-edge node with no right sibling moves up for free.
            while node_index & 1 == 0 && node_index != 0 {
                node_index >>= 1;
                last_index >>= 1;
            }
        } else {
            combine(Sibling::Right, sibling);
        }
        node_index >>= 1;
        last_index >>= 1;
    }
    if last_index != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(())
}

/// Checks that `leaf` sits at `index` in the tree of `tree_size` leaves whose
/// root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    tree_size: u64,
    leaf: &Hash,
    audit_path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange { index, tree_size });
    }
    let mut computed = *leaf;
    walk_path(index, tree_size - 1, audit_path, |side, sibling| {
        computed = match side {
            Sibling::Left => node_hash(sibling, &computed),
            Sibling::Right => node_hash(&computed, sibling),
        };
    })?;
    if computed != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `first` leaves with root `first_root` is a prefix of
/// the tree of `second` leaves with root `second_root` (RFC 9162 §2.1.4.2).
///
/// The empty tree is a prefix of every tree, and a tree is consistent with
/// itself exactly when both roots are equal; both cases take an empty proof.
pub fn verify_consistency(
    first: u64,
    second: u64,
    proof: &[Hash],
    first_root: &Hash,
    second_root: &Hash,
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesReversed { first, second });
    }
    if first == 0 || first == second {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        if first == second && first_root != second_root {
            return Err(ProofError::RootMismatch);
        }
        return Ok(());
    }
    // When the old tree is a complete subtree, its root is the proof's implicit first node.
    let (start, rest) = if first.is_power_of_two() {
        (*first_root, proof)
    } else {
        let (start, rest) = proof.split_first().ok_or(ProofError::WrongLength)?;
        (*start, rest)
    };
    // Start from the old tree's last node above the leaves that the proof's first hash covers.
    let shift = (first - 1).trailing_ones();
    let mut first_computed = start;
    let mut second_computed = start;
    walk_path(
        (first - 1) >> shift,
        (second - 1) >> shift,
        rest,
        |side, sibling| match side {
            // A left sibling lies inside both trees; a right one only in the newer.
            Sibling::Left => {
                first_computed = node_hash(sibling, &first_computed);
                second_computed = node_hash(sibling, &second_computed);
            }
            Sibling::Right => second_computed = node_hash(&second_computed, sibling),
        },
    )?;
    if first_computed != *first_root || second_computed != *second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn single_leaf_tree_proves_with_empty_path() {
        let leaf = leaf_hash(b"only");
        verify_inclusion(0, 1, &leaf, &[], &leaf).expect("leaf is its own root");
        assert_eq!(
            verify_inclusion(1, 1, &leaf, &[], &leaf),
            Err(ProofError::IndexOutOfRange {
                index: 1,
                tree_size: 1
            })
        );
        assert_eq!(
            verify_inclusion(0, 1, &leaf, &[leaf], &leaf),
            Err(ProofError::WrongLength)
        );
    }

    #[test]
    fn consistency_edge_cases() {
        let a = leaf_hash(b"a");
        let b = leaf_hash(b"b");
        verify_consistency(0, 5, &[], &empty_root(), &a).expect("empty tree is a prefix");
        verify_consistency(3, 3, &[], &a, &a).expect("same tree");
        assert_eq!(
            verify_consistency(3, 3, &[], &a, &b),
            Err(ProofError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(4, 3, &[], &a, &b),
            Err(ProofError::SizesReversed {
                first: 4,
                second: 3
            })
        );
        assert_eq!(
            verify_consistency(3, 4, &[], &a, &b),
            Err(ProofError::WrongLength)
        );
    }
}
