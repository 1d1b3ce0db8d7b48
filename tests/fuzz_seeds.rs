//! The seed corpus of a fuzz target (`<crate>/fuzz/corpus/<target>/`), over
//! which each crate's `fuzz_body` tests run the target's body, so the normal
//! test suite checks the fuzz properties on valid inputs without libFuzzer.
//! Included by path into the integration tests of every crate with a fuzz
//! crate (`CARGO_MANIFEST_DIR` is the including crate's).

use std::path::Path;

/// Runs `body` on every seed of `target`, in file name order, naming the
/// seed on stderr first (so a failure says which); panics when there is none.
pub fn run_on_seeds(target: &str, mut body: impl FnMut(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    for seed in seeds {
        eprintln!("{target} seed {}", seed.display());
        body(&std::fs::read(&seed).unwrap_or_else(|e| panic!("{}: {e}", seed.display())));
    }
}
