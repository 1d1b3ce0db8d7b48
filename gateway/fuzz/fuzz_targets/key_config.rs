//! Fuzz the client's reading of the gateway's `application/ohttp-keys` body:
//! list framing, key configuration decoding and encapsulation to it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cloister_ohttp_keys::fuzz_support::exercise_key_list(data);
});
