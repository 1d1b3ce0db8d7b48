//! Feeds arbitrary bytes to every Privacy Pass parser (tokens, challenges,
//! requests, responses, PrivateToken headers, the issuer directory).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cloister_privacypass::fuzz_support::exercise_parsers(data);
});
