//! RFC 9458 Appendix A ("Complete Example of a Request and Response"),
//! checked as far as it is deterministic, from
//! `testdata/rfc9458/appendix-a.toml`.
//!
//! The `ohttp` crate can neither import a raw private key nor fix the
//! ephemeral key or the response nonce, so the gateway's own code cannot
//! replay the example byte for byte. What is checked, and with what:
//!
//! * the key configuration bytes: rebuilt from `sk_r` with the `hpke` crate,
//!   and parsed/re-encoded by `ohttp` and by our RFC 9540 list framing;
//! * the encapsulated request: its header and the HPKE `info` string, then
//!   decryption with `sk_r` (the `hpke` crate, the same one `ohttp` uses) to
//!   the published Binary HTTP request, which `bhttp` parses;
//! * the encapsulated response: derived with the published response nonce
//!   (RFC 9458 §4.4 steps, `hkdf` + `aes-gcm`) and compared byte for byte;
//! * that `ohttp`'s client encapsulation under the published key decrypts
//!   with `sk_r`, i.e. the crate speaks the RFC's wire format.
//!
//! Not checked: re-creating `encapsulated_request` from `sk_e` (no crate
//! exposes a fixed ephemeral key).

use std::io::Cursor;
use std::path::PathBuf;

use hpke::aead::AesGcm128;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable as _, Kem as _, OpModeR, Serializable as _};

struct Vectors(toml::Table);

impl Vectors {
    fn load() -> Self {
        let testdata = std::env::var_os("CLOISTER_TESTDATA").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata"),
            PathBuf::from,
        );
        let path = testdata.join("rfc9458/appendix-a.toml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "RFC 9458 vectors missing at {}: {e} (set CLOISTER_TESTDATA)",
                path.display()
            )
        });
        Self(toml::from_str(&text).expect("appendix-a.toml parses"))
    }

    fn get(&self, name: &str) -> Vec<u8> {
        let value = self
            .0
            .get(name)
            .and_then(toml::Value::as_str)
            .unwrap_or_else(|| panic!("{name} missing"));
        hex::decode(value).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

#[path = "support/raw_response.rs"]
mod raw_response;

use raw_response::seal_response;

type Receiver = hpke::aead::AeadCtxR<AesGcm128, HkdfSha256, X25519HkdfSha256>;

fn receiver(v: &Vectors, enc: &[u8], info: &[u8]) -> Receiver {
    let sk_r =
        <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(&v.get("sk_r")).expect("sk_r");
    let enc = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(enc).expect("enc");
    hpke::setup_receiver::<AesGcm128, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &sk_r,
        &enc,
        info,
    )
    .expect("receiver context")
}

/// `"message/bhttp request" || 0x00 || header`, RFC 9458 §4.3.
fn request_info(header: &[u8]) -> Vec<u8> {
    [&b"message/bhttp request"[..], &[0], header].concat()
}

#[test]
fn key_configuration_matches_byte_for_byte() {
    let v = Vectors::load();
    let sk_r =
        <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(&v.get("sk_r")).expect("sk_r");
    let pk_r = X25519HkdfSha256::sk_to_pk(&sk_r).to_bytes().to_vec();
    assert_eq!(pk_r, v.get("pk_r"));

    // key id 1, KEM 0x0020, pk, 4 bytes of suites: HKDF-SHA256 (1) with AES-128-GCM (1).
    let built = [
        &[0x01, 0x00, 0x20][..],
        &pk_r,
        &[0x00, 0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x03],
    ]
    .concat();
    let published = v.get("key_config");
    assert_eq!(built, published);

    let parsed = ohttp::KeyConfig::decode(&published).expect("ohttp parses the key config");
    assert_eq!(parsed.encode().expect("re-encodes"), published);

    // RFC 9540 list framing: ours agrees with ohttp's and round-trips.
    let list = cloister_ohttp_keys::encode_key_list(&[&published]).expect("frames");
    assert_eq!(
        &list[..2],
        &u16::try_from(published.len()).expect("short").to_be_bytes()
    );
    assert_eq!(
        list,
        ohttp::KeyConfig::encode_list(&[&parsed]).expect("ohttp frames")
    );
    assert_eq!(
        cloister_ohttp_keys::split_key_list(&list).expect("splits"),
        vec![published.as_slice()]
    );
    assert_eq!(
        ohttp::KeyConfig::decode_list(&list)
            .expect("ohttp splits")
            .len(),
        1
    );
}

#[test]
fn published_request_decrypts_with_sk_r_to_the_published_bhttp() {
    let v = Vectors::load();
    let encapsulated = v.get("encapsulated_request");
    let (header, rest) = encapsulated.split_at(7);
    assert_eq!(
        header,
        [0x01, 0x00, 0x20, 0x00, 0x01, 0x00, 0x01],
        "key id 1, X25519, HKDF-SHA256, AES-128-GCM"
    );
    let info = request_info(header);
    assert_eq!(info, v.get("info"));
    let (enc, ciphertext) = rest.split_at(32);
    assert_eq!(enc, v.get("pk_e"));

    let mut context = receiver(&v, enc, &info);
    let plaintext = context.open(ciphertext, b"").expect("decrypts");
    assert_eq!(plaintext, v.get("request"));

    let message =
        bhttp::Message::read_bhttp(&mut Cursor::new(plaintext.as_slice())).expect("bhttp parses");
    let control = message.control();
    assert_eq!(control.method(), Some(&b"GET"[..]));
    assert_eq!(control.scheme(), Some(&b"https"[..]));
    assert_eq!(control.authority(), Some(&b"example.com"[..]));
    assert_eq!(control.path(), Some(&b"/"[..]));

    // A flipped ciphertext bit must not decrypt.
    let mut tampered = ciphertext.to_vec();
    tampered[0] ^= 1;
    assert!(receiver(&v, enc, &info).open(&tampered, b"").is_err());
}

#[test]
fn response_encapsulation_with_the_published_nonce_matches_byte_for_byte() {
    let v = Vectors::load();
    let encapsulated = v.get("encapsulated_request");
    let (header, rest) = encapsulated.split_at(7);
    let enc = &rest[..32];
    let context = receiver(&v, enc, &request_info(header));

    let nonce: [u8; 16] = v.get("response_nonce").try_into().expect("16-byte nonce");
    let built = seal_response(&context, enc, &nonce, &v.get("response"));
    assert_eq!(built, v.get("encapsulated_response"));

    let response =
        bhttp::Message::read_bhttp(&mut Cursor::new(v.get("response").as_slice())).expect("parses");
    assert_eq!(
        response.control().status().map(bhttp::StatusCode::code),
        Some(200)
    );
}

#[test]
fn ohttp_client_encapsulation_under_the_published_key_decrypts_with_sk_r() {
    let v = Vectors::load();
    let request = v.get("request");
    let client = ohttp::ClientRequest::from_encoded_config(&v.get("key_config")).expect("client");
    let (encapsulated, _) = client.encapsulate(&request).expect("encapsulates");
    let (header, rest) = encapsulated.split_at(7);
    assert_eq!(
        header,
        &v.get("encapsulated_request")[..7],
        "same header as the RFC"
    );
    let (enc, ciphertext) = rest.split_at(32);
    let plaintext = receiver(&v, enc, &request_info(header))
        .open(ciphertext, b"")
        .expect("decrypts");
    assert_eq!(plaintext, request);
}
