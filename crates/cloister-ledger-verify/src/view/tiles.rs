//! Bringing the client's view forward from the ledger's C2SP tiles.
//!
//! Instead of one request per entry and one per inclusion proof, the client
//! fetches the tiles of the tree it is about to accept and the entry bundles
//! it has not verified yet: about `n / 256` requests for `n` new entries,
//! plus a few tiles above them. The tiles must hash to the accepted root
//! (and every full tile into the tile above), the consistency proof from the
//! remembered head is computed from them and checked by the same
//! [`LogVerifier`] as before, and each bundled entry must hash to its leaf
//! in the verified level-0 tile: the same guarantees as an inclusion proof
//! per entry.

use crate::client::LogVerifier;
use crate::entry::SignedEntry;
use crate::remote::LedgerClient;
use crate::tiles::{TILE_WIDTH, TileError, TileId, TileSet};
use crate::tree::SubtreeHashes as _;
use crate::tree_head::SignedTreeHead;

use super::LedgerTrustError;

/// Moves `verifier` to `offered` (or keeps its remembered head, if that is
/// larger) with a consistency proof computed from verified tiles, and
/// returns the head it now holds with the tiles of that head's tree, which
/// cover the leaves from `unverified` on.
pub(super) async fn move_to(
    ledger: &LedgerClient,
    verifier: &mut LogVerifier,
    offered: SignedTreeHead,
    unverified: u64,
) -> Result<(SignedTreeHead, TileSet), LedgerTrustError> {
    let remembered = verifier.latest().copied();
    let target = match remembered {
        Some(known) if known.head.tree_size > offered.head.tree_size => known,
        _ => offered,
    };
    let size = target.head.tree_size;
    let from = remembered.map(|known| known.head.tree_size.min(offered.head.tree_size));
    let tiles = ledger.tiles(size, from, unverified..size).await?;
    tiles.verify(&target.head.root_hash)?;
    let proof = match from {
        Some(from) => tiles.consistency_path(from, size)?,
        None => Vec::new(),
    };
    verifier.accept_tree_head(offered, &proof)?;
    let head = verifier
        .latest()
        .copied()
        .ok_or(crate::client::VerifyError::NoTreeHead)?;
    Ok((head, tiles))
}

/// Hands `take` each entry from `first` to the end of `tiles`' tree, with
/// its index, once it is checked against its leaf hash in the (verified)
/// tiles; one bundle is held at a time.
pub(super) async fn entries(
    ledger: &LedgerClient,
    tiles: &TileSet,
    first: u64,
    mut take: impl FnMut(u64, &SignedEntry) -> Result<(), LedgerTrustError>,
) -> Result<(), LedgerTrustError> {
    let size = tiles.tree_size();
    let width = u64::from(TILE_WIDTH);
    if first >= size {
        return Ok(());
    }
    for tile in first / width..=(size - 1) / width {
        let Some(id) = TileId::in_tree(0, tile, size) else {
            continue;
        };
        let bundle = ledger.entry_bundle(id).await?;
        if bundle.len() != usize::from(id.width) {
            return Err(LedgerTrustError::BadEntry {
                index: id.first_leaf(),
                reason: format!(
                    "the bundle {} holds {} entries, not {}",
                    id.entries_path(),
                    bundle.len(),
                    id.width
                ),
            });
        }
        for (index, entry) in (id.first_leaf()..).zip(bundle) {
            if index < first {
                continue;
            }
            if entry.leaf_hash() != tiles.leaf_hash(index)? {
                return Err(LedgerTrustError::BadEntry {
                    index,
                    reason: "it does not hash to its leaf in the verified tiles".into(),
                });
            }
            take(index, &entry)?;
        }
    }
    Ok(())
}

impl From<TileError> for LedgerTrustError {
    fn from(error: TileError) -> Self {
        Self::Tiles(error)
    }
}
