//! Runs the fuzz targets' bodies (`crates/cloister-ledger-verify/fuzz/`)
//! over their seed corpora, so the normal test suite checks their
//! properties without libFuzzer.

use cloister_ledger_verify::api::EntryResponse;
use cloister_ledger_verify::entry::SignedEntry;
use cloister_ledger_verify::fuzz_support::{exercise_checkpoint, exercise_entry, exercise_proofs};

use crate::fuzz_seeds::run_on_seeds;

#[test]
fn the_entry_seed_corpus_passes_the_fuzz_body() {
    let mut entries = 0;
    run_on_seeds("entry", |seed| {
        exercise_entry(seed);
        if serde_json::from_slice::<SignedEntry>(seed).is_ok()
            || serde_json::from_slice::<EntryResponse>(seed).is_ok()
        {
            entries += 1;
        }
    });
    // At least the hand-made seeds: one entry of each subject and a response.
    assert!(entries >= 7, "{entries} seeds are entries");
}

#[test]
fn the_proof_seed_corpus_passes_the_fuzz_body() {
    run_on_seeds("proof", exercise_proofs);
    // Every tree size, index and old size, genuine and with one hash flipped.
    for size in 0..64u8 {
        for index in (0..=size).step_by(7) {
            for first in (0..=size).step_by(5) {
                exercise_proofs(&[size, index, first, index, first, 0]);
                exercise_proofs(&[size, index, first, index, first, 0, size, 1]);
            }
        }
    }
}

#[test]
fn the_checkpoint_seed_corpus_passes_the_fuzz_body() {
    run_on_seeds("checkpoint", exercise_checkpoint);
}
