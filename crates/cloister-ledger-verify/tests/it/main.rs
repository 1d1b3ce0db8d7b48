//! Integration tests of this crate, as modules of one test binary: one
//! link is much cheaper than one per test file.

mod c2sp_checkpoint;
mod c2sp_cosignature;
mod c2sp_note;
mod c2sp_tiles;
mod fuzz_body;
#[path = "../../../../tests/fuzz_seeds.rs"]
mod fuzz_seeds;

use std::path::PathBuf;

/// A file of `testdata/c2sp/`, from the repository or `$CLOISTER_TESTDATA`.
pub fn c2sp_vector(name: &str) -> Vec<u8> {
    let testdata = std::env::var_os("CLOISTER_TESTDATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata"),
        PathBuf::from,
    );
    let path = testdata.join("c2sp").join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}
