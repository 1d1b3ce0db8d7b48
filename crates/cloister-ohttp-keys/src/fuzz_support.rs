//! The body of the `key_config` fuzz target (`gateway/fuzz/`), shared with
//! a test that runs it over the seed corpus, so `cargo test` checks the same
//! properties without libFuzzer.

use crate::{encode_key_list, split_key_list};

/// Reads `data` as a client reads an `application/ohttp-keys` body: split
/// into configurations, each decoded and, when it decodes, used to
/// encapsulate a request. A list that splits must re-encode to exactly
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
        if ohttp::KeyConfig::decode(config).is_ok() {
            // Refusing is fine; panicking on a configuration that decoded is not.
            let _ = ohttp::ClientRequest::from_encoded_config(config)
                .and_then(|client| client.encapsulate(b"request"));
        }
    }
}
