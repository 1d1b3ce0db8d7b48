//! Key configurations as a client receives them from the gateway.

use cloister_ohttp_keys::fuzz_support::exercise_key_list;
use cloister_ohttp_keys::{KeyConfigError, client_request, split_key_list};

/// An `application/ohttp-keys` list whose one configuration (RFC 9458
/// Appendix A's key) offers only HKDF-SHA512 suites, which this build does
/// not support: `ohttp` decodes it, drops both suites, and then indexed the
/// empty suite list when asked for a client request (found by the
/// `key_config` fuzz target).
const ONLY_UNSUPPORTED_SUITES: &str = "002d01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080003000100030003";

#[test]
fn a_key_configuration_without_a_supported_suite_does_not_crash_the_client() {
    let list = hex::decode(ONLY_UNSUPPORTED_SUITES).expect("hex");
    exercise_key_list(&list);
}

#[test]
fn a_client_request_needs_a_supported_suite() {
    let list = hex::decode(ONLY_UNSUPPORTED_SUITES).expect("hex");
    let config = split_key_list(&list).expect("list")[0];
    assert!(matches!(
        client_request(config),
        Err(KeyConfigError::NoSupportedSuite)
    ));
    // The same key with HKDF-SHA256 and AES-128-GCM (RFC 9458 Appendix A) is usable.
    let mut supported = config.to_vec();
    supported[37..].copy_from_slice(&[0, 1, 0, 1, 0, 1, 0, 3]);
    assert!(client_request(&supported).is_ok_and(|c| c.encapsulate(b"hi").is_ok()));
    assert!(matches!(
        client_request(&config[..20]),
        Err(KeyConfigError::Decode(_))
    ));
}
