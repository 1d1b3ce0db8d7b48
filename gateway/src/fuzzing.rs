//! The fuzz bodies for the untrusted-input path (decapsulation, Binary HTTP
//! parsing and the inner request's handling), shared by the `cargo fuzz`
//! targets in `gateway/fuzz/` and by normal tests that run them over random
//! inputs and the seed corpus in CI.

use std::io::Cursor;
use std::time::Duration;

use bhttp::{Message, Mode};
use cloister_ohttp_keys::{AeadChoice, KeyRing, KeyRingError, RotationPolicy};

use crate::pipeline::{OuterError, decapsulate_and_parse, without_authorization};

/// The key ring the fuzz bodies decapsulate with: a fresh one offering both
/// AEADs, as a gateway generates it at its first start.
///
/// # Errors
/// When key generation fails.
pub fn fuzz_key_ring() -> Result<KeyRing, KeyRingError> {
    let policy = RotationPolicy {
        rotate_every: Duration::from_secs(3600),
        overlap: Duration::from_secs(60),
    };
    KeyRing::generate(
        policy,
        &[AeadChoice::Aes128Gcm, AeadChoice::Chacha20Poly1305],
        0,
    )
}

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

/// Feed `data` to what the gateway does with a decrypted inner request,
/// without the HPKE layer in front (so the fuzzer spends its time in the
/// Binary HTTP parser): parse it, and for a message that parses, check that
/// both framings re-encode to a fixed point and that the copy forwarded to
/// the host keeps everything but `Authorization`.
///
/// # Panics
/// When one of those properties fails: that is a finding.
pub fn fuzz_inner_request(data: &[u8]) {
    let Ok(message) = Message::read_bhttp(&mut Cursor::new(data)) else {
        return;
    };
    let once = encode(&message);
    for mode in [Mode::KnownLength, Mode::IndeterminateLength] {
        let mut wire = Vec::new();
        if message.write_bhttp(mode, &mut wire).is_err() {
            continue;
        }
        let Ok(reparsed) = Message::read_bhttp(&mut Cursor::new(wire.as_slice())) else {
            panic!("a parsed message re-encoded ({mode:?}) to something unparsable");
        };
        assert_eq!(
            encode(&reparsed),
            once,
            "{mode:?} re-encoding changed the message"
        );
    }
    if !message.control().is_request() {
        return;
    }
    let forwarded = without_authorization(&message);
    let is_token = |f: &&bhttp::Field| f.name().eq_ignore_ascii_case(b"authorization");
    let kept = |m: &Message| {
        m.header()
            .iter()
            .filter(|f| !is_token(f))
            .map(|f| (f.name().to_vec(), f.value().to_vec()))
            .collect::<Vec<_>>()
    };
    assert!(
        !forwarded.header().iter().any(|f| is_token(&f)),
        "the token reached the host"
    );
    assert_eq!(kept(&forwarded), kept(&message), "forwarded headers differ");
    assert_eq!(
        forwarded.content(),
        message.content(),
        "forwarded content differs"
    );
    assert_eq!(forwarded.control().path(), message.control().path());
    assert_eq!(forwarded.control().method(), message.control().method());
}

fn encode(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec only fails for values a parsed message cannot hold.
    if message.write_bhttp(Mode::KnownLength, &mut out).is_err() {
        out.clear();
    }
    out
}
