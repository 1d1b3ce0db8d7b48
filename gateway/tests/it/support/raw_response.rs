//! RFC 9458 §4.4 response encapsulation written out on the primitives
//! (HPKE export, HKDF-SHA256, AES-128-GCM), independent of the `ohttp`
//! crate: the Appendix A test checks it against the RFC, and the benchmark
//! uses it as the raw-crypto baseline.

use aes_gcm::aead::{Aead as _, KeyInit as _};

/// Seal `response` for the request whose HPKE receiver context is `context`
/// and whose encapsulated key is `enc`, with the given `response_nonce`.
/// Returns `response_nonce || ciphertext`.
pub fn seal_response<Kem: hpke::Kem>(
    context: &hpke::aead::AeadCtxR<hpke::aead::AesGcm128, hpke::kdf::HkdfSha256, Kem>,
    enc: &[u8],
    response_nonce: &[u8; 16],
    response: &[u8],
) -> Vec<u8> {
    // secret = Export("message/bhttp response", max(Nn, Nk)) = 16 bytes for AES-128-GCM.
    let mut secret = [0u8; 16];
    context
        .export(b"message/bhttp response", &mut secret)
        .expect("export");
    let salt = [enc, response_nonce].concat();
    let (_, prk) = hkdf::Hkdf::<sha2::Sha256>::extract(Some(&salt), &secret);
    let mut key = [0u8; 16];
    let mut nonce = [0u8; 12];
    prk.expand(b"key", &mut key).expect("key");
    prk.expand(b"nonce", &mut nonce).expect("nonce");
    let cipher = aes_gcm::Aes128Gcm::new_from_slice(&key).expect("aes key");
    let nonce = aes_gcm::Nonce::try_from(&nonce[..]).expect("12 bytes");
    let sealed = cipher.encrypt(&nonce, response).expect("seal");
    [response_nonce.as_slice(), &sealed].concat()
}
