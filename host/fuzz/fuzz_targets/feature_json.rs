//! A feature request as the host reads it from a session: the request's
//! JSON, and its input converted to the real feature's WIT input type.
//! The features are the built plugins in `$CLOISTER_PLUGIN_DIR` (default
//! `target/plugins`).
#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use cloister_host::fuzz_support::{FeatureInputs, exercise_feature_json};

static INPUTS: LazyLock<FeatureInputs> = LazyLock::new(|| {
    let dir = std::env::var_os("CLOISTER_PLUGIN_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/plugins"),
        PathBuf::from,
    );
    let read = |feature: &str| {
        let path = dir.join(format!("{feature}.wasm"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let (summarise, suggest) = (read("summarise"), read("suggest"));
    FeatureInputs::load(&[("summarise", &summarise), ("suggest", &suggest)])
        .unwrap_or_else(|e| panic!("feature input types: {e}"))
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = exercise_feature_json(&INPUTS, data);
});
