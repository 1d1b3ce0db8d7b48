//! Runs the fuzz bodies (see `gateway/fuzz/`) over random inputs and their
//! seed corpora in every CI run, so the property checks hold even where
//! cargo-fuzz is unavailable.

use cloister_gateway::fuzzing::{fuzz_decapsulation, fuzz_inner_request, fuzz_key_ring};
use cloister_ohttp_keys::KeyRing;
use cloister_ohttp_keys::fuzz_support::exercise_key_list;
use proptest::prelude::*;

use crate::fuzz_seeds::run_on_seeds;

fn ring() -> KeyRing {
    fuzz_key_ring().expect("ring")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz_decapsulation(&ring(), &data);
    }

    #[test]
    fn random_inner_messages_never_panic(
        known_length in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        // An odd first byte selects "encapsulate correctly, then parse"; a leading
        // Binary HTTP framing indicator (0 or 2: requests) makes parsing go deep.
        let mut data = vec![1, if known_length { 0 } else { 2 }];
        data.extend_from_slice(&tail);
        fuzz_decapsulation(&ring(), &data);
    }
}

#[test]
fn the_gateway_path_opens_what_the_fuzz_body_encapsulates() {
    // GET https://example.com/ (RFC 9458 Appendix A), encapsulated as the fuzz body's odd mode does.
    let request = hex::decode("00034745540568747470730b6578616d706c652e636f6d012f").expect("hex");
    let ring = ring();
    let (encapsulated, _) = ohttp::ClientRequest::from_encoded_config(ring.current_config())
        .and_then(|c| c.encapsulate(&request))
        .expect("encapsulates");
    let opened = cloister_gateway::decapsulate_and_parse(&ring, &encapsulated).expect("opens");
    let message = opened.inner.expect("parses");
    assert_eq!(message.control().method(), Some(&b"GET"[..]));
    assert_eq!(opened.enc, encapsulated[7..39]);
    fuzz_decapsulation(&ring, &[&[1u8][..], &request].concat());
}

#[test]
fn the_decapsulate_seed_corpus_passes_the_fuzz_body() {
    let ring = ring();
    run_on_seeds("decapsulate", |seed| fuzz_decapsulation(&ring, seed));
}

#[test]
fn the_bhttp_request_seed_corpus_passes_the_fuzz_body() {
    run_on_seeds("bhttp_request", fuzz_inner_request);
}

#[test]
fn the_key_config_seed_corpus_passes_the_fuzz_body() {
    run_on_seeds("key_config", exercise_key_list);
    // A ring's own published list is among the inputs the body accepts.
    exercise_key_list(&ring().published_list());
}
