//! Runs the fuzz target's body (`crates/cloister-privacypass/fuzz`) over random and
//! near-valid inputs in the normal test suite.

use cloister_privacypass::fuzz_support::exercise_parsers;
use cloister_privacypass::header::format_authorization;
use cloister_privacypass::{Token, TokenChallenge};
use proptest::prelude::*;

use crate::fuzz_seeds::run_on_seeds;

fn valid_token_bytes() -> Vec<u8> {
    Token {
        nonce: [1; 32],
        challenge_digest: [2; 32],
        token_key_id: [3; 32],
        authenticator: [4; 256],
    }
    .encode()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise_parsers(&data);
    }

    #[test]
    fn mutated_tokens_and_challenges_never_panic(index in 0usize..354, byte in any::<u8>(), cut in 0usize..400) {
        let mut token = valid_token_bytes();
        token[index] = byte;
        token.truncate(cut.max(1));
        exercise_parsers(&token);
        let mut challenge = TokenChallenge::new("issuer.example", Some([9; 32]), &["a.example"])
            .expect("challenge")
            .encode();
        let at = index % challenge.len();
        challenge[at] = byte;
        exercise_parsers(&challenge);
    }

    #[test]
    fn header_shaped_text_never_panics(prefix in "[ ,=\"a-zA-Z\\\\-]{0,40}", suffix in "[ ,=\"a-zA-Z0-9_\\\\-]{0,40}") {
        let header = format_authorization(&Token::decode(&valid_token_bytes()).expect("token"));
        exercise_parsers(format!("{prefix}{header}{suffix}").as_bytes());
        exercise_parsers(format!("PrivateToken challenge={prefix}, token-key={suffix}").as_bytes());
    }
}

#[test]
fn the_tokens_seed_corpus_passes_the_fuzz_body() {
    run_on_seeds("tokens", exercise_parsers);
}
