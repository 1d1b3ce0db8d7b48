//! Fuzz the gateway's decapsulation and Binary HTTP parsing.
//! Run: `cd gateway/fuzz && cargo +nightly fuzz run decapsulate`.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use cloister_gateway::fuzzing::fuzz_decapsulation;
use cloister_ohttp_keys::{AeadChoice, KeyRing, RotationPolicy};
use libfuzzer_sys::fuzz_target;

static RING: LazyLock<KeyRing> = LazyLock::new(|| {
    let policy = RotationPolicy {
        rotate_every: Duration::from_secs(3600),
        overlap: Duration::from_secs(60),
    };
    KeyRing::generate(
        policy,
        &[AeadChoice::Aes128Gcm, AeadChoice::Chacha20Poly1305],
        0,
    )
    .unwrap_or_else(|e| panic!("fuzz key ring: {e}"))
});

fuzz_target!(|data: &[u8]| fuzz_decapsulation(&RING, data));
