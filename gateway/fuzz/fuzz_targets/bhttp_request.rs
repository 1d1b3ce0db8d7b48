//! Fuzz the gateway's handling of a decrypted inner request: Binary HTTP
//! parsing, re-encoding and the copy forwarded to the host.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cloister_gateway::fuzzing::fuzz_inner_request(data));
