//! The bodies of the fuzz targets in `crates/cloister-ledger-verify/fuzz/`
//! (`entry`, `proof`, `checkpoint`), shared with a test that runs them over
//! the seed corpus, so `cargo test` checks the same properties without
//! libFuzzer.

use crate::api::{ConsistencyProof, EntryResponse, InclusionProof};
use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::cosignature;
use crate::entry::SignedEntry;
use crate::merkle::{Hash, leaf_hash, verify_consistency, verify_inclusion};
use crate::note::{Note, NoteSignature, VerifierKey};
use crate::tiles::{TilePath, TileSet};
use crate::tree::SubtreeHashes;
use crate::witness::AddCheckpoint;

/// Reads `data` as a ledger entry arrives: a submitted [`SignedEntry`] (the
/// ledger server) or an [`EntryResponse`] (a client). An entry that parses
/// must survive a JSON round trip with the same leaf hash.
///
/// # Panics
/// When a property fails: that is a finding.
pub fn exercise_entry(data: &[u8]) {
    let entry = serde_json::from_slice::<SignedEntry>(data)
        .or_else(|_| serde_json::from_slice::<EntryResponse>(data).map(|r| r.entry));
    let Ok(entry) = entry else {
        return;
    };
    let _ = entry.validate();
    let _ = entry.body.review_message();
    let json = serde_json::to_vec(&entry)
        .unwrap_or_else(|e| panic!("a parsed entry cannot be written back: {e}"));
    let again = serde_json::from_slice::<SignedEntry>(&json)
        .unwrap_or_else(|e| panic!("a written entry does not read back: {e}"));
    assert_eq!(again, entry, "entry JSON has no fixed point");
    assert_eq!(again.leaf_hash(), entry.leaf_hash(), "leaf hash not stable");
}

/// Checks inclusion and consistency proofs against a tree built here.
///
/// `data` is `[size, index, first, claimed index, claimed first, cut, edits...]`:
/// a tree of `1 + size % 64` leaves, the genuine inclusion proof of leaf
/// `index` and consistency proof from `first` leaves, then the claimed
/// index and first size, the number of hashes to drop from (or repeat onto)
/// each proof, and `(position, xor)` byte pairs flipping bits of the proofs'
/// hashes and of the old root. Genuine proofs must verify; an altered proof
/// that verifies must prove only what is true (the claimed leaf is the one
/// at the claimed index, the claimed old root is the root of that size).
/// The same bytes are also read as JSON proofs, as a client reads them.
///
/// # Panics
/// When a property fails: that is a finding.
pub fn exercise_proofs(data: &[u8]) {
    let _ = serde_json::from_slice::<InclusionProof>(data);
    let _ = serde_json::from_slice::<ConsistencyProof>(data);
    let [
        size,
        index,
        first,
        claimed_index,
        claimed_first,
        cut,
        edits @ ..,
    ] = data
    else {
        return;
    };
    let size = u64::from(*size % 64) + 1;
    let leaves: Vec<Hash> = (0..size).map(|k| leaf_hash(&k.to_be_bytes())).collect();
    let root = |n: u64| {
        leaves
            .root(n)
            .unwrap_or_else(|e| panic!("root of {n}: {e}"))
    };
    let at = |i: u64| leaves[usize::try_from(i).unwrap_or(usize::MAX)];
    let (index, first) = (u64::from(*index) % size, u64::from(*first) % (size + 1));
    let path = leaves
        .inclusion_path(index, size)
        .unwrap_or_else(|e| panic!("inclusion path: {e}"));
    let proof = leaves
        .consistency_path(first, size)
        .unwrap_or_else(|e| panic!("consistency path: {e}"));
    assert_eq!(
        verify_inclusion(index, size, &at(index), &path, &root(size)),
        Ok(()),
        "a genuine inclusion proof fails"
    );
    assert_eq!(
        verify_consistency(first, size, &proof, &root(first), &root(size)),
        Ok(()),
        "a genuine consistency proof fails"
    );

    let claimed_index = u64::from(*claimed_index);
    let claimed_first = u64::from(*claimed_first);
    let (mut path, mut proof, mut old_root) = (path, proof, root(first));
    resize(&mut path, *cut & 0x0f);
    resize(&mut proof, *cut >> 4);
    for pair in edits.chunks_exact(2) {
        let (position, xor) = (usize::from(pair[0]), pair[1]);
        let hash = match position % (path.len() + proof.len() + 1) {
            p if p < path.len() => &mut path[p],
            p if p < path.len() + proof.len() => &mut proof[p - path.len()],
            _ => &mut old_root,
        };
        hash.0[position / 8 % 32] ^= xor;
    }
    if verify_inclusion(claimed_index, size, &at(index), &path, &root(size)).is_ok() {
        assert_eq!(claimed_index, index, "a leaf was proven at another index");
    }
    if claimed_first > 0
        && claimed_first <= size
        && verify_consistency(claimed_first, size, &proof, &old_root, &root(size)).is_ok()
    {
        assert_eq!(old_root, root(claimed_first), "a false old root was proven");
    }
}

/// Drops the last `amount % 8` hashes of `hashes` when `amount < 8`, else
/// repeats its last hash `amount - 8` more times.
fn resize(hashes: &mut Vec<Hash>, amount: u8) {
    let amount = usize::from(amount);
    if amount < 8 {
        hashes.truncate(hashes.len().saturating_sub(amount));
    } else if let Some(&last) = hashes.last() {
        hashes.extend(std::iter::repeat_n(last, amount - 8));
    }
}

/// Reads `data` as the ledger's text formats arrive: a signed checkpoint
/// (clients and witnesses), a witness's `add-checkpoint` request, a
/// cosignature's timestamp, a verifier key, and a tile path with its
/// hashes. A checkpoint that parses must print back to its note's text;
/// nothing may verify under a key that signed nothing.
///
/// # Panics
/// When a property fails: that is a finding.
pub fn exercise_checkpoint(data: &[u8]) {
    if let Ok(signed) = SignedCheckpoint::parse(data) {
        assert_eq!(
            signed.checkpoint().to_string(),
            signed.note().text(),
            "checkpoint text is not canonical"
        );
        assert!(
            signed
                .verify(&unused_key(&signed.checkpoint().origin))
                .is_err(),
            "a checkpoint verified under a key that signed nothing"
        );
        for signature in signed.note().signatures() {
            let _ = cosignature::timestamp(signature);
        }
    }
    if let Ok(request) = AddCheckpoint::parse(data) {
        assert!(request.proof.len() <= crate::witness::MAX_PROOF_LINES);
    }
    let _ = Note::parse(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(checkpoint) = Checkpoint::parse(text) {
        assert_eq!(
            checkpoint.to_string(),
            text,
            "checkpoint text is not canonical"
        );
    }
    let _ = NoteSignature::parse_lines(text);
    let _ = VerifierKey::parse_named(text, "fuzz.example/log");
    if let Some((path, hashes)) = text.split_once('\n')
        && let Some(tile) = path.strip_prefix("tile/").and_then(TilePath::parse)
    {
        let (TilePath::Hashes(id) | TilePath::Entries(id)) = tile;
        let printed = match tile {
            TilePath::Hashes(_) => id.path(),
            TilePath::Entries(_) => id.entries_path(),
        };
        assert_eq!(printed, path, "tile path is not canonical");
        let mut tiles = TileSet::new(id.first_leaf().saturating_add(1 << 16));
        let _ = tiles.insert(id, hashes.as_bytes());
    }
}

/// A key named `origin` that has signed nothing.
fn unused_key(origin: &str) -> VerifierKey {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    VerifierKey::ed25519(origin, key).unwrap_or_else(|_| {
        VerifierKey::ed25519("fuzz.example/log", key).unwrap_or_else(|e| panic!("key: {e}"))
    })
}
