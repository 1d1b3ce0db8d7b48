//! Runs the `feature_json` fuzz target's body (`host/fuzz/`) over its seed
//! corpus, against the input types of the built summarise and suggest
//! components, so the normal test suite checks its properties without
//! libFuzzer.

use cloister_host::fuzz_support::{FeatureInputs, exercise_feature_json};

use crate::common;
use crate::fuzz_seeds::run_on_seeds;

fn inputs() -> FeatureInputs {
    let dir = common::config(&common::repo_root()).plugin_dir;
    let read = |feature: &str| {
        let path = dir.join(format!("{feature}.wasm"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let (summarise, suggest) = (read("summarise"), read("suggest"));
    FeatureInputs::load(&[("summarise", &summarise), ("suggest", &suggest)]).expect("input types")
}

#[test]
fn the_feature_json_seed_corpus_passes_the_fuzz_body() {
    let inputs = inputs();
    let mut converted = 0;
    run_on_seeds("feature_json", |seed| {
        if exercise_feature_json(&inputs, seed) {
            converted += 1;
        }
    });
    // At least the hand-made seeds: a summarise and two suggest requests.
    assert!(converted >= 3, "{converted} seeds convert");
}
