//! C2SP tiles (<https://c2sp.org/tlog-tiles>): the log's Merkle tree as
//! static, cacheable files, and the client's check of the tiles it fetched.
//!
//! A tile at level `L`, number `N`, holds up to 256 consecutive tree hashes
//! at tree height `8 L`: at level 0 the leaf hashes, above that the hash of
//! each full tile of the level below. A tree of `s` leaves has full tiles and,
//! at each level, at most one partial tile of `floor(s / 256^L) mod 256`
//! hashes, served at `tile/<L>/<N>.p/<W>`. Entries are served the same way,
//! `tile/entries/<N>[.p/<W>]`, one bundle per level-0 tile.
//!
//! A client that knows a tree's size and root fetches the tiles
//! [`plan`] lists and checks them with [`TileSet::verify`]: the tiles must
//! hash to the root, and every full tile to its hash in the tile above, so
//! every leaf hash it then reads ([`TileSet::leaf_hash`]) is proven to be in
//! the tree. [`TileSet`] is a [`SubtreeHashes`], so the consistency proof
//! from the client's previous tree is computed from the same tiles and
//! checked as any other proof. The roots are the RFC 6962 roots of
//! [`crate::merkle`]: tiles are only another way to ship the same hashes.
//!
//! # Example
//!
//! A tree of 300 leaves: one full level-0 tile, a partial one of 44 hashes,
//! and a partial level-1 tile holding the full tile's hash.
//!
//! ```rust
//! use cloister_ledger_verify::merkle::leaf_hash;
//! use cloister_ledger_verify::tiles::{TileId, TileSet, plan};
//! use cloister_ledger_verify::tree::SubtreeHashes;
//!
//! let leaves: Vec<_> = (0..300u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
//! let needed = plan(300, None, 0..300);
//! let paths: Vec<String> = needed.iter().map(TileId::path).collect();
//! assert_eq!(paths, ["tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1"]);
//!
//! let mut tiles = TileSet::new(300);
//! for id in &needed {
//!     // What the log serves: the hashes, concatenated.
//!     let hashes: Vec<u8> = match id.level {
//!         0 => leaves[id.index as usize * 256..][..id.width as usize]
//!             .iter()
//!             .flat_map(|hash| hash.0)
//!             .collect(),
//!         _ => TileSet::tile_root(&leaves[..256]).0.to_vec(),
//!     };
//!     tiles.insert(*id, &hashes)?;
//! }
//! let root = tiles.root(300)?;
//! tiles.verify(&root)?;
//! assert_eq!(tiles.leaf_hash(299)?, leaves[299]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::ops::Range;

use crate::merkle::{Hash, empty_root, node_hash};
use crate::tree::SubtreeHashes;

/// Tree levels per tile.
pub const TILE_HEIGHT: u32 = 8;

/// Hashes in a full tile.
pub const TILE_WIDTH: u16 = 1 << TILE_HEIGHT;

/// Why tiles were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// A tile that the tree of this size does not have, or not of this width.
    #[error("tile {0} is not a tile of this tree")]
    NotInTree(String),
    /// A tile's bytes are not `width` hashes.
    #[error("tile {path} has {bytes} bytes, not {width} hashes")]
    WrongLength {
        /// The tile's path.
        path: String,
        /// The bytes received.
        bytes: usize,
        /// Its width.
        width: u16,
    },
    /// A hash was needed from a tile that was not fetched.
    #[error("tile {0} is needed and missing")]
    Missing(String),
    /// The tiles do not hash to the tree's root.
    #[error("the tiles do not hash to the root of the tree of size {0}")]
    RootMismatch(u64),
    /// A full tile does not hash to its hash in the tile above.
    #[error("tile {0} does not hash to its entry in the tile above")]
    ParentMismatch(String),
}

/// One tile: its level, its number in the level, and its width (256: full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TileId {
    /// The level (tree height `8 * level`).
    pub level: u8,
    /// The tile's number within its level.
    pub index: u64,
    /// How many hashes it holds, 1 to 256.
    pub width: u16,
}

/// How many tree hashes at tree height `8 * level` the tree of `tree_size`
/// leaves has (its complete subtrees of `256^level` leaves).
fn hashes_at(level: u8, tree_size: u64) -> u64 {
    u32::from(level)
        .checked_mul(TILE_HEIGHT)
        .and_then(|height| tree_size.checked_shr(height))
        .unwrap_or(0)
}

/// `N` in the spec's path form: 3-digit elements, all but the last prefixed
/// with `x` (`1234067` is `x001/x234/067`).
pub fn index_path(index: u64) -> String {
    let mut elements = vec![format!("{:03}", index % 1000)];
    let mut rest = index / 1000;
    while rest > 0 {
        elements.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    elements.reverse();
    elements.join("/")
}

/// Parses [`index_path`]'s form, refusing any other spelling.
fn parse_index(path: &str) -> Option<u64> {
    let elements: Vec<&str> = path.split('/').collect();
    let (last, leading) = elements.split_last()?;
    let mut index: u64 = 0;
    for (position, element) in leading.iter().enumerate() {
        let digits = element.strip_prefix('x')?;
        if position == 0 && digits == "000" {
            return None;
        }
        index = index
            .checked_mul(1000)?
            .checked_add(three_digits(digits)?)?;
    }
    index.checked_mul(1000)?.checked_add(three_digits(last)?)
}

fn three_digits(text: &str) -> Option<u64> {
    (text.len() == 3 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// A decimal with no leading zero (and no sign).
fn canonical_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

impl TileId {
    /// Tile `index` of `level` as the tree of `tree_size` leaves has it:
    /// full, partial, or `None` when it has no hash yet.
    pub fn in_tree(level: u8, index: u64, tree_size: u64) -> Option<Self> {
        let first = index.checked_mul(u64::from(TILE_WIDTH))?;
        let available = hashes_at(level, tree_size).checked_sub(first)?;
        let width = u16::try_from(available.min(u64::from(TILE_WIDTH))).ok()?;
        (width > 0).then_some(Self {
            level,
            index,
            width,
        })
    }

    /// Whether it holds all 256 hashes.
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    fn suffix(&self) -> String {
        if self.is_full() {
            String::new()
        } else {
            format!(".p/{}", self.width)
        }
    }

    /// `tile/<L>/<N>[.p/<W>]`, relative to the log's prefix.
    pub fn path(&self) -> String {
        format!(
            "tile/{}/{}{}",
            self.level,
            index_path(self.index),
            self.suffix()
        )
    }

    /// `tile/entries/<N>[.p/<W>]`: the entry bundle of this level-0 tile.
    pub fn entries_path(&self) -> String {
        format!("tile/entries/{}{}", index_path(self.index), self.suffix())
    }

    /// The first leaf this tile's hashes cover.
    pub fn first_leaf(&self) -> u64 {
        self.index
            .checked_mul(u64::from(TILE_WIDTH))
            .and_then(|first| first.checked_shl(u32::from(self.level) * TILE_HEIGHT))
            .unwrap_or(u64::MAX)
    }
}

/// What a tile path names: hashes of a level, or an entry bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`.
    Hashes(TileId),
    /// `tile/entries/<N>[.p/<W>]`, as the level-0 tile it bundles the entries of.
    Entries(TileId),
}

impl TilePath {
    /// Parses what follows `tile/` in a request path, in the spec's
    /// canonical spelling only (levels 0 to 63, widths 1 to 255 for partial tiles).
    pub fn parse(rest: &str) -> Option<Self> {
        let (kind, rest) = rest.split_once('/')?;
        let (index, width) = match rest.split_once(".p/") {
            Some((index, width)) => {
                let width = u16::try_from(canonical_decimal(width)?).ok()?;
                (index, (1..TILE_WIDTH).contains(&width).then_some(width)?)
            }
            None => (rest, TILE_WIDTH),
        };
        let index = parse_index(index)?;
        if kind == "entries" {
            return Some(Self::Entries(TileId {
                level: 0,
                index,
                width,
            }));
        }
        let level = u8::try_from(canonical_decimal(kind)?)
            .ok()
            .filter(|&level| level <= 63)?;
        Some(Self::Hashes(TileId {
            level,
            index,
            width,
        }))
    }
}

/// Records which tiles a computation over the tree of `tree_size` reads.
struct Recorder {
    tree_size: u64,
    tiles: std::cell::RefCell<BTreeSet<TileId>>,
}

impl SubtreeHashes for Recorder {
    type Error = Infallible;

    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, Infallible> {
        if let Some((tile, _)) = locate(level, index)
            && let Some(id) = TileId::in_tree(tile.0, tile.1, self.tree_size)
        {
            self.tiles.borrow_mut().insert(id);
        }
        Ok(empty_root())
    }
}

/// Where the perfect subtree of `2^height` leaves number `index` is: the
/// tile `(level, number)`, and the range of that tile's hashes it spans.
fn locate(height: u32, index: u64) -> Option<((u8, u64), Range<usize>)> {
    let level = u8::try_from(height / TILE_HEIGHT).ok()?;
    let span = 1u64 << (height % TILE_HEIGHT);
    let first = index.checked_mul(span)?;
    let offset = usize::try_from(first % u64::from(TILE_WIDTH)).ok()?;
    let span = usize::try_from(span).ok()?;
    Some((
        (level, first / u64::from(TILE_WIDTH)),
        offset..offset + span,
    ))
}

/// The tiles a client needs, for the tree of `tree_size` leaves, to check
/// the tree's root, to prove it consistent with the tree of `from` leaves
/// (if given, not larger), and to read the leaf hashes of `leaves`: those
/// tiles and, above every full one, the tile it hashes into.
pub fn plan(tree_size: u64, from: Option<u64>, leaves: Range<u64>) -> Vec<TileId> {
    let recorder = Recorder {
        tree_size,
        tiles: std::cell::RefCell::new(BTreeSet::new()),
    };
    let Ok(_) = recorder.root(tree_size);
    if let Some(from) = from.filter(|&from| from <= tree_size) {
        let Ok(_) = recorder.consistency_path(from, tree_size);
    }
    let mut tiles = recorder.tiles.into_inner();
    let leaves = leaves.start..leaves.end.min(tree_size);
    if !leaves.is_empty() {
        let width = u64::from(TILE_WIDTH);
        for index in leaves.start / width..=(leaves.end - 1) / width {
            tiles.extend(TileId::in_tree(0, index, tree_size));
        }
    }
    // Every full tile is checked against the tile above it.
    let mut pending: Vec<TileId> = tiles.iter().copied().collect();
    while let Some(tile) = pending.pop() {
        if tile.is_full()
            && let Some(parent) = TileId::in_tree(
                tile.level + 1,
                tile.index / u64::from(TILE_WIDTH),
                tree_size,
            )
            && tiles.insert(parent)
        {
            pending.push(parent);
        }
    }
    tiles.into_iter().collect()
}

/// Tiles of one tree, as fetched; see [`TileSet::verify`].
#[derive(Debug, Clone)]
pub struct TileSet {
    tree_size: u64,
    tiles: BTreeMap<(u8, u64), Vec<Hash>>,
}

impl TileSet {
    /// An empty set for the tree of `tree_size` leaves.
    pub fn new(tree_size: u64) -> Self {
        Self {
            tree_size,
            tiles: BTreeMap::new(),
        }
    }

    /// The size of the tree these tiles are of.
    pub fn tree_size(&self) -> u64 {
        self.tree_size
    }

    /// Adds tile `id` served as `bytes`, refusing a tile this tree does not
    /// have at this width, or bytes that are not its hashes.
    pub fn insert(&mut self, id: TileId, bytes: &[u8]) -> Result<(), TileError> {
        if TileId::in_tree(id.level, id.index, self.tree_size) != Some(id) {
            return Err(TileError::NotInTree(id.path()));
        }
        if bytes.len() != usize::from(id.width) * 32 {
            return Err(TileError::WrongLength {
                path: id.path(),
                bytes: bytes.len(),
                width: id.width,
            });
        }
        let hashes = bytes
            .chunks_exact(32)
            .map(|chunk| {
                let mut hash = [0; 32];
                hash.copy_from_slice(chunk);
                crate::HexBytes(hash)
            })
            .collect();
        self.tiles.insert((id.level, id.index), hashes);
        Ok(())
    }

    /// The Merkle tree hash of a full tile's 256 hashes (or of any power of
    /// two of them): the tile's hash in the tile above.
    pub fn tile_root(hashes: &[Hash]) -> Hash {
        let mut level = hashes.to_vec();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node_hash(left, right),
                    [single] => *single,
                    _ => empty_root(),
                })
                .collect();
        }
        level.first().copied().unwrap_or_else(empty_root)
    }

    fn tile(&self, level: u8, index: u64) -> Result<&[Hash], TileError> {
        self.tiles
            .get(&(level, index))
            .map(Vec::as_slice)
            .ok_or_else(|| {
                let id = TileId::in_tree(level, index, self.tree_size).unwrap_or(TileId {
                    level,
                    index,
                    width: 0,
                });
                TileError::Missing(id.path())
            })
    }

    /// Checks that the tiles hash to `root`, the root of the tree of
    /// [`TileSet::tree_size`] leaves, and that every full tile hashes to its
    /// hash in the tile above: then every hash they hold is the tree's.
    pub fn verify(&self, root: &Hash) -> Result<(), TileError> {
        if self.root(self.tree_size)? != *root {
            return Err(TileError::RootMismatch(self.tree_size));
        }
        let width = u64::from(TILE_WIDTH);
        for (&(level, index), hashes) in &self.tiles {
            if hashes.len() == usize::from(TILE_WIDTH) {
                let parent = self.tile(level + 1, index / width)?;
                let position = usize::try_from(index % width).unwrap_or(usize::MAX);
                if parent.get(position) != Some(&Self::tile_root(hashes)) {
                    let id = TileId {
                        level,
                        index,
                        width: TILE_WIDTH,
                    };
                    return Err(TileError::ParentMismatch(id.path()));
                }
            }
        }
        Ok(())
    }

    /// The leaf hash of entry `index`, from its level-0 tile.
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, TileError> {
        let width = u64::from(TILE_WIDTH);
        let tile = self.tile(0, index / width)?;
        let position = usize::try_from(index % width).unwrap_or(usize::MAX);
        tile.get(position).copied().ok_or_else(|| {
            TileError::Missing(
                TileId::in_tree(0, index / width, self.tree_size)
                    .map_or_else(|| format!("for leaf {index}"), |id| id.path()),
            )
        })
    }
}

impl SubtreeHashes for TileSet {
    type Error = TileError;

    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, TileError> {
        let missing = || TileError::Missing(format!("for height {level}, subtree {index}"));
        let ((tile_level, tile_index), span) = locate(level, index).ok_or_else(missing)?;
        let hashes = self.tile(tile_level, tile_index)?;
        Ok(Self::tile_root(hashes.get(span).ok_or_else(missing)?))
    }
}
