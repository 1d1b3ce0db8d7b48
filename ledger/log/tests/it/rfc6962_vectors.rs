//! The RFC 6962 reference tree (eight leaves) from `testdata/rfc6962/merkle-roots.toml`:
//! roots of every prefix, and every inclusion and consistency proof derived
//! from the tree checked against those roots; plus the published reference
//! proofs of the Certificate Transparency test suite.

use crate::common;

use std::path::PathBuf;

use cloister_ledger::tree::SubtreeHashes;
use cloister_ledger_verify::Hash;
use cloister_ledger_verify::merkle::{empty_root, verify_consistency, verify_inclusion};
use common::MemoryTree;
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    leaves: Vec<String>,
    empty_root: Hash,
    roots: Vec<Hash>,
}

fn vectors() -> (MemoryTree, Vectors) {
    // The repository's `testdata/`; CLOISTER_TESTDATA points elsewhere.
    let testdata = std::env::var_os("CLOISTER_TESTDATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata"),
        PathBuf::from,
    );
    let path = testdata.join("rfc6962/merkle-roots.toml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read the RFC 6962 vectors at {}: {error}",
            path.display()
        )
    });
    let vectors: Vectors = toml::from_str(&text).expect("vector file parses");
    let data: Vec<Vec<u8>> = vectors
        .leaves
        .iter()
        .map(|leaf| hex::decode(leaf).expect("hex leaf"))
        .collect();
    (MemoryTree::from_data(&data), vectors)
}

fn hashes(hex_list: &[&str]) -> Vec<Hash> {
    hex_list
        .iter()
        .map(|item| item.parse().expect("hex hash"))
        .collect()
}

#[test]
fn roots_of_every_prefix_match() {
    let (tree, vectors) = vectors();
    assert_eq!(vectors.empty_root, empty_root());
    assert_eq!(tree.root(0).expect("infallible"), vectors.empty_root);
    assert_eq!(vectors.roots.len(), 8);
    for (size, expected) in (1u64..).zip(&vectors.roots) {
        assert_eq!(
            &tree.root(size).expect("infallible"),
            expected,
            "root of size {size}"
        );
    }
}

#[test]
fn every_inclusion_proof_verifies_against_the_published_roots() {
    let (tree, vectors) = vectors();
    for (size, root) in (1u64..).zip(&vectors.roots) {
        for index in 0..size {
            let leaf = tree.0[usize::try_from(index).expect("fits")];
            let path = tree.inclusion_path(index, size).expect("infallible");
            verify_inclusion(index, size, &leaf, &path, root)
                .unwrap_or_else(|error| panic!("leaf {index} in tree {size}: {error}"));
            // The same proof must not vouch for a neighbouring leaf.
            let other = tree.0[usize::try_from((index + 1) % 8).expect("fits")];
            assert!(verify_inclusion(index, size, &other, &path, root).is_err());
        }
    }
}

#[test]
fn every_consistency_proof_verifies_against_the_published_roots() {
    let (tree, vectors) = vectors();
    for (second, second_root) in (1u64..).zip(&vectors.roots) {
        for (first, first_root) in (1u64..)
            .zip(&vectors.roots)
            .take_while(|(first, _)| *first <= second)
        {
            let proof = tree.consistency_path(first, second).expect("infallible");
            verify_consistency(first, second, &proof, first_root, second_root)
                .unwrap_or_else(|error| panic!("{first} -> {second}: {error}"));
            if first < second {
                // The roots swapped or replaced must fail.
                assert!(
                    verify_consistency(first, second, &proof, second_root, first_root).is_err()
                );
            }
        }
    }
}

/// Reference proofs published with the Certificate Transparency implementations
/// (and transparency-dev/merkle) for this tree.
#[test]
fn published_reference_proofs_are_reproduced() {
    let (tree, _) = vectors();
    let inclusion = [
        (
            0,
            8,
            vec![
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            vec![
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            vec!["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            vec![
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (index, size, expected) in inclusion {
        assert_eq!(
            tree.inclusion_path(index, size).expect("infallible"),
            hashes(&expected),
            "leaf {index} of {size}"
        );
    }
    let consistency = [
        (
            1,
            8,
            vec![
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            vec![
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            vec![
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (first, second, expected) in consistency {
        assert_eq!(
            tree.consistency_path(first, second).expect("infallible"),
            hashes(&expected),
            "{first} -> {second}"
        );
    }
}
