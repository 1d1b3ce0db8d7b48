//! C2SP tiles: the spec's paths and widths, and tiles that reproduce the
//! RFC 6962 roots (the reference vectors of `testdata/rfc6962/`) and prove
//! consistency and inclusion as the log's own proofs do.

use std::path::PathBuf;

use cloister_ledger_verify::Hash;
use cloister_ledger_verify::merkle::{leaf_hash, verify_consistency};
use cloister_ledger_verify::tiles::{TileError, TileId, TilePath, TileSet, index_path, plan};
use cloister_ledger_verify::tree::SubtreeHashes;

/// Leaves in memory: the reference a log's tiles are cut from.
struct Leaves(Vec<Hash>);

impl Leaves {
    fn new(count: u32) -> Self {
        Self((0..count).map(|i| leaf_hash(&i.to_be_bytes())).collect())
    }

    /// Tile `id`'s bytes, as a log serves them.
    fn tile(&self, id: TileId) -> Vec<u8> {
        (0..u64::from(id.width))
            .flat_map(|j| {
                self.0
                    .as_slice()
                    .perfect_subtree(u32::from(id.level) * 8, id.index * 256 + j)
                    .expect("in the tree")
                    .0
            })
            .collect()
    }

    fn tiles(&self, size: u64, from: Option<u64>, leaves: std::ops::Range<u64>) -> TileSet {
        let mut set = TileSet::new(size);
        for id in plan(size, from, leaves) {
            set.insert(id, &self.tile(id)).expect("a tile of this tree");
        }
        set
    }
}

#[test]
fn tile_indices_and_paths_are_the_specs() {
    assert_eq!(index_path(1_234_067), "x001/x234/067");
    assert_eq!(index_path(0), "000");
    assert_eq!(index_path(1000), "x001/000");
    let partial = TileId {
        level: 2,
        index: 1_234_067,
        width: 17,
    };
    assert_eq!(partial.path(), "tile/2/x001/x234/067.p/17");
    assert_eq!(
        TilePath::parse("2/x001/x234/067.p/17"),
        Some(TilePath::Hashes(partial))
    );
    let bundle = TileId {
        level: 0,
        index: 5,
        width: 256,
    };
    assert_eq!(bundle.entries_path(), "tile/entries/005");
    assert_eq!(
        TilePath::parse("entries/005"),
        Some(TilePath::Entries(bundle))
    );
    for non_canonical in [
        "0/5",
        "0/x000/005",
        "00/005",
        "64/000",
        "0/005.p/0",
        "0/005.p/256",
        "0/005.p/07",
        "0/1234",
        "0/x1/005",
        "0/005/",
    ] {
        assert_eq!(TilePath::parse(non_canonical), None, "{non_canonical}");
    }
}

#[test]
fn a_tree_has_the_tiles_the_spec_lists() {
    // "a tree of size 70,000 will be represented by 273 full level 0 tiles,
    // one partial level 0 tile of width 112, one full level 1 tile, one
    // partial level 1 tile of width 17, and one partial level 2 tile of width 1."
    let size = 70_000;
    assert!(TileId::in_tree(0, 272, size).expect("tile").is_full());
    assert_eq!(TileId::in_tree(0, 273, size).map(|t| t.width), Some(112));
    assert_eq!(TileId::in_tree(0, 274, size), None);
    assert!(TileId::in_tree(1, 0, size).expect("tile").is_full());
    assert_eq!(TileId::in_tree(1, 1, size).map(|t| t.width), Some(17));
    assert_eq!(TileId::in_tree(2, 0, size).map(|t| t.width), Some(1));
    assert_eq!(TileId::in_tree(3, 0, size), None);
    // "a tree of size 256 will be represented by a full level 0 tile and a
    // partial level 1 tile of width 1."
    assert!(TileId::in_tree(0, 0, 256).expect("tile").is_full());
    assert_eq!(TileId::in_tree(1, 0, 256).map(|t| t.width), Some(1));
}

fn rfc6962_vectors() -> (Vec<Vec<u8>>, Vec<Hash>) {
    #[derive(serde::Deserialize)]
    struct Vectors {
        leaves: Vec<String>,
        roots: Vec<Hash>,
    }
    let testdata = std::env::var_os("CLOISTER_TESTDATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata"),
        PathBuf::from,
    );
    let text = std::fs::read_to_string(testdata.join("rfc6962/merkle-roots.toml"))
        .expect("RFC 6962 vectors");
    let vectors: Vectors = toml::from_str(&text).expect("vectors parse");
    let leaves = vectors
        .leaves
        .iter()
        .map(|leaf| hex::decode(leaf).expect("hex"))
        .collect();
    (leaves, vectors.roots)
}

#[test]
fn tiles_reproduce_the_rfc_6962_roots() {
    let (data, roots) = rfc6962_vectors();
    let leaves = Leaves(data.iter().map(|leaf| leaf_hash(leaf)).collect());
    for (size, root) in (1..=8).zip(&roots) {
        let tiles = leaves.tiles(size, None, 0..size);
        assert_eq!(&tiles.root(size).expect("root"), root, "size {size}");
        tiles.verify(root).expect("tiles verify");
    }
}

#[test]
fn tiles_prove_consistency_and_inclusion_across_tile_levels() {
    let leaves = Leaves::new(70_000);
    for (old, new) in [
        (1, 256),
        (255, 257),
        (256, 65_536),
        (1000, 65_537),
        (65_536, 70_000),
    ] {
        let tiles = leaves.tiles(new, Some(old), old..new);
        let new_root = leaves.0.as_slice().root(new).expect("root");
        let old_root = leaves.0.as_slice().root(old).expect("root");
        tiles.verify(&new_root).expect("tiles of the tree");
        let proof = tiles.consistency_path(old, new).expect("from the tiles");
        verify_consistency(old, new, &proof, &old_root, &new_root).expect("consistent");
        for index in [old, new - 1] {
            assert_eq!(
                tiles.leaf_hash(index),
                Ok(leaves.0[usize::try_from(index).expect("small")])
            );
        }
    }
}

#[test]
fn a_tile_that_does_not_hash_into_the_tree_is_refused() {
    let leaves = Leaves::new(600);
    let root = leaves.0.as_slice().root(600).expect("root");
    let needed = plan(600, None, 0..600);
    let full = TileId {
        level: 0,
        index: 0,
        width: 256,
    };
    assert!(needed.contains(&full));
    for tampered in needed.iter().copied() {
        let mut tiles = TileSet::new(600);
        for id in &needed {
            let mut bytes = leaves.tile(*id);
            if *id == tampered {
                bytes[0] ^= 1;
            }
            tiles.insert(*id, &bytes).expect("well-formed");
        }
        assert!(
            matches!(
                tiles.verify(&root),
                Err(TileError::RootMismatch(600) | TileError::ParentMismatch(_))
            ),
            "tampered {}",
            tampered.path()
        );
    }
    // A partial tile of the wrong width, or short bytes, is not this tree's.
    let mut tiles = TileSet::new(600);
    let wrong = TileId {
        level: 0,
        index: 2,
        width: 80,
    };
    assert!(matches!(
        tiles.insert(wrong, &[0; 80 * 32]),
        Err(TileError::NotInTree(_))
    ));
    assert!(matches!(
        tiles.insert(full, &[0; 31]),
        Err(TileError::WrongLength { .. })
    ));
}
