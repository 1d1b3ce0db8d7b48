//! A peer's decrypted session stream: framing, padding, and the JSON and
//! evidence the frames carry, must be refused or read, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = cloister_ratls::fuzz_support::exercise_frames(data);
});
