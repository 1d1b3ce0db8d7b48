//! Signed checkpoints, witness requests, notes, keys and tiles (text).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cloister_ledger_verify::fuzz_support::exercise_checkpoint(data);
});
