//! Signed notes against the published vectors of Go's `golang.org/x/mod/sumdb/note`
//! (`note_test.go`) and of the C2SP `signed-note` spec, byte for byte
//! (sources in `testdata/README.md`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cloister_ledger_verify::note::{
    MAX_NOTE_BYTES, MAX_SIGNATURES, Note, NoteError, NoteSigner, VerifierKey, ed25519_key_id,
};
use ed25519_dalek::SigningKey;

use crate::c2sp_vector;

/// Go `sumdb/note/note_test.go`, `TestNewVerifier`.
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
/// Go `sumdb/note/note_test.go`, `TestNewSigner` and `TestSign`.
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
/// Go `sumdb/note/note_test.go`, `TestVerifierList` and `TestOpen`.
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
/// The C2SP `signed-note` spec, "Verifier keys", "Example".
const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
/// The text Go's `TestSign` signs.
const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                          then you don't know what your problem is.\n";

fn vkey(text: &str) -> VerifierKey {
    text.parse().expect("published vkey parses")
}

/// Go's private key form: `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`.
fn go_signer(skey: &str) -> NoteSigner {
    let parts: Vec<&str> = skey.splitn(5, '+').collect();
    let [_, _, name, id, key] = parts[..] else {
        panic!("not a Go private key: {skey}")
    };
    let key = BASE64.decode(key).expect("base64");
    let (&0x01, seed) = key.split_first().expect("non-empty") else {
        panic!("not an Ed25519 key")
    };
    let seed: [u8; 32] = seed.try_into().expect("32-byte seed");
    let signer = NoteSigner::ed25519(name, SigningKey::from_bytes(&seed)).expect("valid name");
    assert_eq!(format!("{:08x}", signer.verifier_key().key_id()), id);
    signer
}

fn peter_note() -> Vec<u8> {
    c2sp_vector("go-note-peterneumann.note")
}

#[test]
fn key_ids_are_the_published_ones() {
    for (vkey_text, name, id) in [
        (PETER_VKEY, "PeterNeumann", 0xc74f_20a3),
        (ENOCH_VKEY, "EnochRoot", 0xaf0c_fe78),
        (SPEC_VKEY, "example.com/foo", 0x530d_903a),
    ] {
        let key = vkey(vkey_text);
        assert_eq!(key.name(), name);
        assert_eq!(key.key_id(), id);
        assert_eq!(ed25519_key_id(name, key.public_key()), id);
    }
    // The same public key under another name has another id.
    let peter = vkey(PETER_VKEY);
    assert_ne!(
        ed25519_key_id("PeterNeuman", peter.public_key()),
        peter.key_id()
    );
}

#[test]
fn published_vkeys_parse_and_print_back() {
    for text in [PETER_VKEY, ENOCH_VKEY, SPEC_VKEY] {
        assert_eq!(vkey(text).to_string(), text);
    }
    assert_eq!(go_signer(PETER_SKEY).verifier_key().to_string(), PETER_VKEY);
}

#[test]
fn mangled_vkeys_are_refused() {
    // Go's `TestNewVerifier`: every proper substring and every byte incremented.
    let bytes = PETER_VKEY.as_bytes();
    for start in 0..=bytes.len() {
        for end in start + 1..=bytes.len() {
            if (start, end) != (0, bytes.len()) {
                let part = &PETER_VKEY[start..end];
                assert!(part.parse::<VerifierKey>().is_err(), "accepted {part:?}");
            }
        }
    }
    for index in 0..bytes.len() {
        let mut mangled = bytes.to_vec();
        mangled[index] += 1;
        let mangled = String::from_utf8(mangled).expect("ascii");
        assert!(
            mangled.parse::<VerifierKey>().is_err(),
            "accepted {mangled:?}"
        );
    }
    // Go's two hand-made cases: a key of the wrong length and an unknown
    // algorithm, each with the key id adjusted to match.
    for bad in [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ] {
        assert!(bad.parse::<VerifierKey>().is_err(), "accepted {bad:?}");
    }
}

#[test]
fn go_signed_note_verifies_byte_for_byte() {
    let bytes = peter_note();
    let note = Note::parse(&bytes).expect("parses");
    let peter = vkey(PETER_VKEY);
    let signed = note.verify(std::slice::from_ref(&peter)).expect("verifies");
    assert_eq!(signed, [&peter]);
    assert_eq!(note.text(), PETER_TEXT);
    assert_eq!(note.signatures().len(), 1);
    assert_eq!(note.signatures()[0].key_id, 0xc74f_20a3);
    assert_eq!(note.to_string().as_bytes(), bytes);
}

#[test]
fn signing_with_the_published_private_key_reproduces_the_published_note() {
    let signer = go_signer(PETER_SKEY);
    let note = Note::sign(PETER_TEXT, &[&signer]).expect("signs");
    assert_eq!(note.to_string().as_bytes(), peter_note());
}

#[test]
fn spec_signed_note_example_verifies_byte_for_byte() {
    let bytes = c2sp_vector("signed-note-example.note");
    let note = Note::parse(&bytes).expect("parses");
    let key = vkey(SPEC_VKEY);
    note.verify(std::slice::from_ref(&key)).expect("verifies");
    assert_eq!(note.text(), "This is an example message.\n");
    assert_eq!(note.to_string().as_bytes(), bytes);
}

#[test]
fn only_known_keys_count_and_unknown_signatures_are_ignored() {
    // Go's `TestOpen`: one note signed by both keys.
    let bytes = c2sp_vector("go-note-peterneumann-enochroot.note");
    let note = Note::parse(&bytes).expect("parses");
    let (peter, enoch) = (vkey(PETER_VKEY), vkey(ENOCH_VKEY));
    assert_eq!(
        note.verify(std::slice::from_ref(&peter)).expect("peter"),
        [&peter]
    );
    assert_eq!(
        note.verify(std::slice::from_ref(&enoch)).expect("enoch"),
        [&enoch]
    );
    let both = [peter.clone(), enoch.clone()];
    assert_eq!(note.verify(&both).expect("both"), [&peter, &enoch]);
    assert_eq!(note.to_string().as_bytes(), bytes);
}

#[test]
fn a_note_signed_by_an_unknown_key_only_is_refused() {
    let note = Note::parse(&peter_note()).expect("parses");
    assert_eq!(
        note.verify(&[vkey(ENOCH_VKEY)]),
        Err(NoteError::NoKnownSignature)
    );
    assert_eq!(note.verify(&[]), Err(NoteError::NoKnownSignature));
    // Same name, another key (so another id): ignored, as the spec requires.
    let impostor = VerifierKey::ed25519(
        "PeterNeumann",
        SigningKey::from_bytes(&[7; 32]).verifying_key(),
    )
    .expect("key");
    assert_eq!(note.verify(&[impostor]), Err(NoteError::NoKnownSignature));
}

#[test]
fn a_flipped_bit_in_the_text_is_refused() {
    let mut bytes = peter_note();
    bytes[0] ^= 0x20; // "If" becomes "if"
    let note = Note::parse(&bytes).expect("still a note");
    assert_eq!(
        note.verify(&[vkey(PETER_VKEY)]),
        Err(NoteError::InvalidSignature {
            name: "PeterNeumann".into(),
            key_id: 0xc74f_20a3
        })
    );
}

#[test]
fn a_flipped_bit_in_the_signature_is_refused() {
    let mut note = Note::parse(&peter_note()).expect("parses");
    let line = note.signatures()[0].clone();
    let mut signature = line.signature.clone();
    signature[10] ^= 1;
    let forged = format!(
        "{}\n{}",
        note.text(),
        cloister_ledger_verify::note::NoteSignature { signature, ..line }
    );
    note = Note::parse(forged.as_bytes()).expect("still a note");
    assert!(matches!(
        note.verify(&[vkey(PETER_VKEY)]),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn a_bad_signature_by_a_known_key_refuses_the_whole_note() {
    // A valid Peter signature does not save a note that also carries a bad one.
    let good = String::from_utf8(peter_note()).expect("utf-8");
    let line = good.lines().last().expect("signature line");
    let bad_line = line.replacen("x08go/ZJ", "x08go/ZK", 1);
    let note = format!("{good}{bad_line}\n");
    let note = Note::parse(note.as_bytes()).expect("parses");
    assert!(matches!(
        note.verify(&[vkey(PETER_VKEY)]),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn malformed_notes_are_refused() {
    // Go's `TestOpen` "Invalid encoded message syntax", one assertion each.
    let text = PETER_TEXT;
    let signature = String::from_utf8(peter_note()).expect("utf-8")[text.len() + 1..].to_owned();
    let malformed = |bytes: String| Note::parse(bytes.as_bytes()).is_err();
    assert!(malformed(text.to_owned()), "no signatures");
    assert!(malformed(format!("{text}\n")), "blank line, no signatures");
    assert!(
        malformed(format!("{text}\n{}", signature.trim_end())),
        "signature without newline"
    );
    assert!(
        malformed(format!("\x01{text}\n{signature}")),
        "control character"
    );
    assert!(
        Note::parse(&[b"\xff", peter_note().as_slice()].concat()).is_err(),
        "invalid UTF-8"
    );
    assert!(
        malformed(format!(
            "{text}\n{}",
            signature.replace("PeterNeumann", "Bad Name")
        )),
        "space in key name"
    );
    assert!(
        malformed(format!("{text}\n{signature}Unexpected line.\n")),
        "line that is not a signature"
    );
    // And the limits.
    assert!(
        malformed(format!("{text}\n\u{2014} PeterNeumann x08g\n")),
        "signature shorter than 5 bytes"
    );
    assert!(
        malformed(format!("{text}\n{}", signature.replace(' ', "\u{2009}"))),
        "no space after the dash"
    );
    assert_eq!(
        Note::parse(format!("{text}\n{}", signature.repeat(MAX_SIGNATURES + 1)).as_bytes()),
        Err(NoteError::TooManySignatures)
    );
    Note::parse(format!("{text}\n{}", signature.repeat(MAX_SIGNATURES)).as_bytes())
        .expect("the limit itself is accepted");
    let huge = format!("{}\n\n{signature}", "a".repeat(MAX_NOTE_BYTES));
    assert_eq!(
        Note::parse(huge.as_bytes()),
        Err(NoteError::TooLarge(huge.len()))
    );
}

#[test]
fn signing_refuses_text_that_is_not_a_note() {
    let signer = go_signer(PETER_SKEY);
    // Go's `TestSign`: text without its final newline.
    assert!(Note::sign("abc", &[&signer]).is_err());
    assert!(Note::sign("a\x07b\n", &[&signer]).is_err());
    assert!(Note::sign(PETER_TEXT, &[]).is_err());
    assert!(NoteSigner::ed25519("a+b", SigningKey::from_bytes(&[1; 32])).is_err());
}
