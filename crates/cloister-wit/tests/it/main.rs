//! Integration tests of `cloister-wit`, one test binary.

mod markdown;
mod world;

use std::path::PathBuf;

/// The repository's shared WIT package.
pub fn feature_wit() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../wit/feature.wit")
}
