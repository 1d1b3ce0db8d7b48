//! Runs the `frames` fuzz target's body (`crates/cloister-ratls/fuzz/`) over
//! its seed corpus and over cut and corrupted streams, so the normal test
//! suite checks its properties without libFuzzer.

use cloister_ratls::fuzz_support::exercise_frames;

use crate::fuzz_seeds::run_on_seeds;

#[test]
fn the_frames_seed_corpus_passes_the_fuzz_body() {
    let mut streams = 0;
    run_on_seeds("frames", |seed| {
        if exercise_frames(seed) >= 3 {
            streams += 1;
        }
    });
    // The hand-made seeds: a client's, a host's, a caller's stream, and one
    // with a suggest request and an error answer.
    assert!(streams >= 4, "{streams} seeds hold three frames or more");
}

#[test]
fn cut_and_corrupted_seed_streams_pass_the_fuzz_body() {
    run_on_seeds("frames", |seed| {
        for cut in (0..seed.len()).step_by(97) {
            let _ = exercise_frames(&seed[..cut]);
            let mut corrupted = seed.to_vec();
            corrupted[cut] ^= 0x5a;
            let _ = exercise_frames(&corrupted);
        }
    });
}
