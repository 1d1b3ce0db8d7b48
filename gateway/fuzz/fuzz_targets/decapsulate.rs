//! Fuzz the gateway's decapsulation and Binary HTTP parsing.
//! Run: `cargo xtask fuzz decapsulate --time 60`.
#![no_main]

use std::sync::LazyLock;

use cloister_gateway::fuzzing::{fuzz_decapsulation, fuzz_key_ring};
use cloister_ohttp_keys::KeyRing;
use libfuzzer_sys::fuzz_target;

static RING: LazyLock<KeyRing> =
    LazyLock::new(|| fuzz_key_ring().unwrap_or_else(|e| panic!("fuzz key ring: {e}")));

fuzz_target!(|data: &[u8]| fuzz_decapsulation(&RING, data));
