//! Per-request cost of the gateway's crypto path against raw HPKE, in one run.
//!
//! * `gateway`: [`decapsulate_and_parse`] (key lookup, HPKE receiver setup,
//!   open, Binary HTTP parse) then encoding and encapsulating the response,
//!   exactly what `Gateway::handle` does around the router.
//! * `raw_hpke`: the least crypto any OHTTP gateway must do for the same
//!   exchange, straight on the `hpke` crate: receiver setup, open, export of
//!   the response secret, HKDF and one AES-128-GCM seal.
//!
//! Goal: gateway throughput >= 0.8x raw. Both use X25519 /
//! HKDF-SHA256 / AES-128-GCM and a 1 KiB body each way.
//!
//! Run: `cargo bench -p cloister-gateway --bench decapsulation`.

// `criterion_group!` defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::io::Cursor;
use std::time::Duration;

use bhttp::{Message, Mode, StatusCode};
use cloister_gateway::decapsulate_and_parse;
use cloister_ohttp_keys::{AeadChoice, KeyRing, RotationPolicy};
use criterion::{Criterion, criterion_group, criterion_main};
use hpke::aead::AesGcm128;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Kem as _, OpModeR, OpModeS};

#[path = "../tests/it/support/raw_response.rs"]
mod raw_response;

use raw_response::seal_response;

const BODY: usize = 1024;

fn request_bytes() -> Vec<u8> {
    let mut request = Message::request(
        b"POST".to_vec(),
        b"https".to_vec(),
        b"cloister.invalid".to_vec(),
        b"/v1".to_vec(),
    );
    request.put_header("date", "Sun, 06 Nov 1994 08:49:37 GMT");
    request.write_content(vec![b'q'; BODY]);
    let mut out = Vec::new();
    request
        .write_bhttp(Mode::KnownLength, &mut out)
        .expect("encode request");
    out
}

fn response() -> Message {
    let mut response = Message::response(StatusCode::OK);
    response.put_header("content-type", "text/plain");
    response.write_content(vec![b'a'; BODY]);
    response
}

fn gateway(c: &mut Criterion, request: &[u8]) {
    let policy = RotationPolicy {
        rotate_every: Duration::from_secs(3600),
        overlap: Duration::from_secs(60),
    };
    let ring = KeyRing::generate(policy, &[AeadChoice::Aes128Gcm], 0).expect("ring");
    let (encapsulated, _) = ohttp::ClientRequest::from_encoded_config(ring.current_config())
        .and_then(|client| client.encapsulate(request))
        .expect("encapsulate");
    let response = response();
    c.bench_function("per_request/gateway", |b| {
        b.iter(|| {
            let opened = decapsulate_and_parse(&ring, black_box(&encapsulated)).expect("opens");
            let inner = opened.inner.expect("parses");
            black_box(inner.content().len());
            let mut encoded = Vec::new();
            response
                .write_bhttp(Mode::KnownLength, &mut encoded)
                .expect("encode response");
            black_box(opened.responder.encapsulate(&encoded).expect("seal"))
        });
    });
}

fn raw_hpke(c: &mut Criterion, request: &[u8]) {
    let info = b"message/bhttp request\x00\x01\x00\x20\x00\x01\x00\x01";
    let (sk, pk) = X25519HkdfSha256::derive_keypair(&[7; 32]);
    let (enc, mut sender) =
        hpke::setup_sender::<AesGcm128, HkdfSha256, X25519HkdfSha256>(&OpModeS::Base, &pk, info)
            .expect("sender");
    let ciphertext = sender.seal(request, b"").expect("seal request");
    let enc_bytes = hpke::Serializable::to_bytes(&enc);
    let response_nonce = [9u8; 16];
    let mut response_bytes = Vec::new();
    response()
        .write_bhttp(Mode::KnownLength, &mut response_bytes)
        .expect("encode response");
    c.bench_function("per_request/raw_hpke", |b| {
        b.iter(|| {
            let mut context = hpke::setup_receiver::<AesGcm128, HkdfSha256, X25519HkdfSha256>(
                &OpModeR::Base,
                &sk,
                &enc,
                info,
            )
            .expect("receiver");
            black_box(context.open(black_box(&ciphertext), b"").expect("open"));
            black_box(seal_response(
                &context,
                &enc_bytes,
                &response_nonce,
                &response_bytes,
            ))
        });
    });
}

fn per_request(c: &mut Criterion) {
    let request = request_bytes();
    // Check the raw path decodes the same request the gateway parses.
    assert!(Message::read_bhttp(&mut Cursor::new(request.as_slice())).is_ok());
    gateway(c, &request);
    raw_hpke(c, &request);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = per_request
}
criterion_main!(benches);
