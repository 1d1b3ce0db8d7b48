//! Inclusion and consistency proofs against a tree built from the input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cloister_ledger_verify::fuzz_support::exercise_proofs(data);
});
