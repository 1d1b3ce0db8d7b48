//! Evidence framing, certificate table, report and VCEK extension parsing
//! must return an error, never panic, on any input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cloister_attestation::parse_untrusted(data);
});
