//! A ledger entry as submitted to the ledger or served to a client (JSON).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cloister_ledger_verify::fuzz_support::exercise_entry(data);
});
