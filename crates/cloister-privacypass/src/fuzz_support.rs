//! The body of the `crates/cloister-privacypass/fuzz` target, shared with a property test so
//! ordinary `cargo test` runs it on random inputs too.
//!
//! Every parser that sees attacker bytes is fed `data`; anything that
//! parses must re-encode to exactly the input (the encodings are canonical).

use crate::directory::IssuerDirectory;
use crate::header::{format_authorization, parse_authorization, parse_www_authenticate};
use crate::wire::{Token, TokenChallenge, TokenRequest, TokenResponse};

/// Runs every untrusted-input parser on `data`; panics only on a bug.
pub fn exercise_parsers(data: &[u8]) {
    if let Ok(token) = Token::decode(data) {
        assert_eq!(token.encode(), data, "Token encoding not canonical");
        let header = format_authorization(&token);
        assert_eq!(
            parse_authorization(&header).ok(),
            Some(token),
            "header round trip"
        );
    }
    if let Ok(challenge) = TokenChallenge::decode(data) {
        assert_eq!(
            challenge.encode(),
            data,
            "TokenChallenge encoding not canonical"
        );
    }
    if let Ok(request) = TokenRequest::decode(data) {
        assert_eq!(
            request.encode(),
            data,
            "TokenRequest encoding not canonical"
        );
    }
    if let Ok(response) = TokenResponse::decode(data) {
        assert_eq!(
            response.encode(),
            data,
            "TokenResponse encoding not canonical"
        );
    }
    let text = String::from_utf8_lossy(data);
    let _ = parse_authorization(&text);
    let _ = parse_www_authenticate(&text);
    if let Ok(directory) = IssuerDirectory::from_json(data) {
        let _ = directory.blind_rsa_keys();
    }
}
