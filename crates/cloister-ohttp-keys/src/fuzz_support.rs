//! The body of the `key_config` fuzz target (`gateway/fuzz/`), shared with
//! a test that runs it over the seed corpus, so `cargo test` checks the same
//! properties without libFuzzer.

use crate::{client_request, encode_key_list, split_key_list};

/// Reads `data` as a client reads an `application/ohttp-keys` body: split
/// into configurations, each read with [`client_request`] and, when usable,
/// used to encapsulate a request. A list that splits must re-encode to exactly
/// `data` (the framing is canonical).
///
/// # Panics
/// When a property fails: that is a finding.
pub fn exercise_key_list(data: &[u8]) {
    let Ok(configs) = split_key_list(data) else {
        return;
    };
    assert_eq!(
        encode_key_list(&configs).ok().as_deref(),
        Some(data),
        "key list framing is not canonical"
    );
    for config in configs {
        // Refusing is fine; panicking is not.
        if let Ok(client) = client_request(config) {
            let _ = client.encapsulate(b"request");
        }
    }
}
