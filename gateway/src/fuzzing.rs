//! The fuzz body for the untrusted-input path (decapsulation + Binary HTTP
//! parsing), shared by the `cargo fuzz` target in `gateway/fuzz/` and by a
//! normal test that runs it over random inputs in CI.

use std::io::Cursor;

use bhttp::{Message, Mode};
use cloister_ohttp_keys::KeyRing;

use crate::pipeline::{OuterError, decapsulate_and_parse};

/// Feed `data` to the gateway's input path. The first byte picks how:
///
/// * even: the rest is an encapsulated request, as if from the network. Bit 1
///   clear forces the first byte to the ring's key id, so decryption is
///   actually attempted instead of stopping at the key lookup. It must be
///   refused or accepted, never panic.
/// * odd: the rest is a plaintext inner message, encapsulated correctly, so
///   the fuzzer reaches the Binary HTTP parser. Decapsulation must succeed,
///   and a message that parses must re-encode to a fixed point.
///
/// # Panics
/// When one of those properties fails: that is a finding.
pub fn fuzz_decapsulation(ring: &KeyRing, data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let mut body = rest.to_vec();
        if mode & 2 == 0
            && let Some(first) = body.first_mut()
        {
            *first = ring.current_key_id();
        }
        match decapsulate_and_parse(ring, &body) {
            Ok(_) | Err(OuterError::Decapsulation | OuterError::UnknownKeyId(_)) => {}
            Err(OuterError::BadMediaType) => panic!("decapsulation cannot judge media types"),
        }
        return;
    }
    let Ok((encapsulated, _)) = ohttp::ClientRequest::from_encoded_config(ring.current_config())
        .and_then(|c| c.encapsulate(rest))
    else {
        panic!("client encapsulation under the gateway's own key failed");
    };
    let Ok(opened) = decapsulate_and_parse(ring, &encapsulated) else {
        panic!("the gateway refused a correct encapsulation");
    };
    if let Ok(message) = opened.inner {
        let once = encode(&message);
        let reparsed = Message::read_bhttp(&mut Cursor::new(once.as_slice()));
        let Ok(reparsed) = reparsed else {
            panic!("a parsed message re-encoded to something unparsable");
        };
        assert_eq!(
            encode(&reparsed),
            once,
            "Binary HTTP encoding is not a fixed point"
        );
    }
}

fn encode(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec only fails for values a parsed message cannot hold.
    if message.write_bhttp(Mode::KnownLength, &mut out).is_err() {
        out.clear();
    }
    out
}
