//! Property tests on random trees: the stored tree and its proofs agree with
//! the RFC's recursive definition, every honest proof verifies, and a proof
//! with any hash changed does not.

use crate::common;

use cloister_ledger::LogStore;
use cloister_ledger::tree::SubtreeHashes;
use cloister_ledger_verify::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use common::{MemoryTree, key, reference_root, signed};
use proptest::prelude::*;

fn leaves(max: usize) -> impl Strategy<Value = MemoryTree> {
    prop::collection::vec(any::<u32>(), 1..max).prop_map(|data| {
        MemoryTree(
            data.iter()
                .map(|item| leaf_hash(&item.to_be_bytes()))
                .collect(),
        )
    })
}

proptest! {
    #[test]
    fn inclusion_proofs_verify_and_tampering_fails(
        tree in leaves(200),
        index_seed in any::<u64>(),
        size_seed in any::<u64>(),
        flip in any::<(usize, usize)>(),
    ) {
        let total = tree.0.len() as u64;
        let size = 1 + size_seed % total;
        let index = index_seed % size;
        let root = reference_root(&tree.0[..usize::try_from(size).expect("fits")]);
        prop_assert_eq!(tree.root(size).expect("infallible"), root);
        let leaf = tree.0[usize::try_from(index).expect("fits")];
        let mut path = tree.inclusion_path(index, size).expect("infallible");
        prop_assert!(verify_inclusion(index, size, &leaf, &path, &root).is_ok());
        if !path.is_empty() {
            let position = flip.0 % path.len();
            path[position].0[flip.1 % 32] ^= 1;
            prop_assert!(verify_inclusion(index, size, &leaf, &path, &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_tampering_fails(
        tree in leaves(200),
        first_seed in any::<u64>(),
        second_seed in any::<u64>(),
        flip in any::<(usize, usize)>(),
    ) {
        let total = tree.0.len() as u64;
        let second = 1 + second_seed % total;
        let first = 1 + first_seed % second;
        let first_root = reference_root(&tree.0[..usize::try_from(first).expect("fits")]);
        let second_root = reference_root(&tree.0[..usize::try_from(second).expect("fits")]);
        let mut proof = tree.consistency_path(first, second).expect("infallible");
        prop_assert!(verify_consistency(first, second, &proof, &first_root, &second_root).is_ok());
        if !proof.is_empty() {
            let position = flip.0 % proof.len();
            proof[position].0[flip.1 % 32] ^= 1;
            prop_assert!(verify_consistency(first, second, &proof, &first_root, &second_root).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The redb store, appended in random batches, matches the reference tree
    /// at every size, and serves the same proofs.
    #[test]
    fn redb_store_matches_reference(batches in prop::collection::vec(1usize..20, 1..8)) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LogStore::open(&dir.path().join("log.redb"), key(99)).expect("open");
        let mut reference = MemoryTree(Vec::new());
        let mut next = 0u64;
        for batch in batches {
            let entries: Vec<_> = (next..next + batch as u64).map(|n| signed(n, &[])).collect();
            next += batch as u64;
            reference.0.extend(entries.iter().map(|entry| entry.leaf_hash()));
            let placed = store.append(&entries).expect("append");
            let head = placed.last().expect("non-empty batch").tree_head;
            prop_assert_eq!(head.head.tree_size, next);
            prop_assert_eq!(head.head.root_hash, reference_root(&reference.0));
        }
        for size in 1..=next {
            prop_assert_eq!(store.root_at(size).expect("root"), reference.root(size).expect("infallible"));
            prop_assert_eq!(
                store.consistency_proof(size / 2, size).expect("proof"),
                reference.consistency_path(size / 2, size).expect("infallible")
            );
            let leaf = reference.0[usize::try_from(size - 1).expect("fits")];
            let proof = store.inclusion_proof(&leaf, Some(size)).expect("proof");
            prop_assert_eq!(proof.leaf_index, size - 1);
            prop_assert_eq!(proof.audit_path, reference.inclusion_path(size - 1, size).expect("infallible"));
        }
    }
}
