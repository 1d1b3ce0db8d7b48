//! base64url as Privacy Pass uses it (RFC 9577 §2.1, RFC 9578 §4): we emit
//! it unpadded and accept it with or without padding.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Unpadded base64url.
pub(crate) fn encode(bytes: &[u8]) -> String {
    LENIENT.encode(bytes)
}

/// base64url, padded or not; `None` if not base64url.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    LENIENT.decode(text).ok()
}
