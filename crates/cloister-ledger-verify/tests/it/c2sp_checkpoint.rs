//! Checkpoints against the C2SP `tlog-checkpoint` example, Go's `sumdb/tlog`
//! tree format and a checkpoint of the production Go checksum database, byte
//! for byte (sources in `testdata/README.md`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cloister_ledger_verify::checkpoint::{Checkpoint, CheckpointError, SignedCheckpoint};
use cloister_ledger_verify::merkle::leaf_hash;
use cloister_ledger_verify::note::{NoteError, NoteSigner, VerifierKey};
use ed25519_dalek::SigningKey;

use crate::c2sp_vector;

const ORIGIN: &str = "cloister.localhost/ledger";

fn log_signer(origin: &str) -> NoteSigner {
    NoteSigner::ed25519(origin, SigningKey::from_bytes(&[9; 32])).expect("valid name")
}

fn checkpoint(origin: &str) -> Checkpoint {
    Checkpoint {
        origin: origin.into(),
        tree_size: 5,
        root_hash: leaf_hash(b"five leaves, say"),
        extensions: vec![],
    }
}

fn signed(origin: &str) -> String {
    SignedCheckpoint::sign(checkpoint(origin), &log_signer(origin))
        .expect("signs")
        .to_string()
}

#[test]
fn spec_checkpoint_example_parses_and_formats_byte_for_byte() {
    let bytes = c2sp_vector("tlog-checkpoint-example.note");
    let signed = SignedCheckpoint::parse(&bytes).expect("parses");
    let checkpoint = signed.checkpoint();
    assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
    assert_eq!(checkpoint.tree_size, 20_852_163);
    assert_eq!(
        checkpoint.root_hash.to_string(),
        "0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62"
    );
    assert!(checkpoint.extensions.is_empty());
    let signature = &signed.note().signatures()[0];
    assert_eq!(signature.name, "example.com/behind-the-sofa");
    assert_eq!(signature.key_id, 0x033d_e0ae);
    assert_eq!(signed.to_string().as_bytes(), bytes);
    assert_eq!(
        checkpoint.to_string(),
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    );
}

#[test]
fn a_production_sum_golang_org_checkpoint_verifies() {
    // The key the `go` command pins (`cmd/go/internal/modfetch`), quoted by
    // transparency-dev/formats `log/note_test.go` with this checkpoint.
    let key: VerifierKey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
        .parse()
        .expect("vkey");
    assert_eq!(key.key_id(), 0x033d_e0ae);
    let bytes = c2sp_vector("sumdb-checkpoint-6476701.note");
    let signed = SignedCheckpoint::parse(&bytes).expect("parses");
    signed
        .note()
        .verify(std::slice::from_ref(&key))
        .expect("signed by sum.golang.org");
    let checkpoint = signed.checkpoint();
    assert_eq!(checkpoint.origin, "go.sum database tree");
    assert_eq!(checkpoint.tree_size, 6_476_701);
    assert_eq!(signed.to_string().as_bytes(), bytes);
    // The checksum database predates the rule that the key is named after
    // the origin; a log key is only trusted for its own origin.
    assert!(matches!(
        signed.verify(&key),
        Err(CheckpointError::WrongOrigin { .. })
    ));
}

#[test]
fn go_tree_text_is_a_checkpoint_over_the_rfc6962_leaf_hash() {
    // Go `sumdb/tlog/note_test.go`, `TestFormatTree`: tree 123456789012 whose
    // hash is `RecordHash("hello world")`, which is the RFC 6962 leaf hash.
    let golden =
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
    let checkpoint = Checkpoint {
        origin: "go.sum database tree".into(),
        tree_size: 123_456_789_012,
        root_hash: leaf_hash(b"hello world"),
        extensions: vec![],
    };
    assert_eq!(checkpoint.to_string(), golden);
    assert_eq!(Checkpoint::parse(golden), Ok(checkpoint));
}

#[test]
fn a_signed_checkpoint_verifies_under_the_log_key() {
    let signer = log_signer(ORIGIN);
    let bytes = signed(ORIGIN);
    let parsed = SignedCheckpoint::parse(bytes.as_bytes()).expect("parses");
    assert_eq!(
        parsed.verify(signer.verifier_key()).expect("verifies"),
        &checkpoint(ORIGIN)
    );
    assert_eq!(parsed.to_string(), bytes);
    // Extension lines are signed and read back.
    let mut extended = checkpoint(ORIGIN);
    extended.extensions = vec!["an extension".into(), "another".into()];
    let bytes = SignedCheckpoint::sign(extended.clone(), &signer)
        .expect("signs")
        .to_string();
    let parsed = SignedCheckpoint::parse(bytes.as_bytes()).expect("parses");
    assert_eq!(parsed.verify(signer.verifier_key()), Ok(&extended));
}

#[test]
fn a_checkpoint_with_a_flipped_bit_is_refused() {
    let key = log_signer(ORIGIN).verifier_key().clone();
    let bytes = signed(ORIGIN);
    let mut root = *checkpoint(ORIGIN).root_hash.as_bytes();
    root[31] ^= 1;
    let forged = bytes.replacen(
        &BASE64.encode(checkpoint(ORIGIN).root_hash.as_bytes()),
        &BASE64.encode(root),
        1,
    );
    assert_ne!(forged, bytes);
    let forged = SignedCheckpoint::parse(forged.as_bytes()).expect("still a checkpoint");
    assert!(matches!(
        forged.verify(&key),
        Err(CheckpointError::Note(NoteError::InvalidSignature { .. }))
    ));
    let resized = SignedCheckpoint::parse(bytes.replacen("\n5\n", "\n4\n", 1).as_bytes())
        .expect("still a checkpoint");
    assert!(matches!(
        resized.verify(&key),
        Err(CheckpointError::Note(NoteError::InvalidSignature { .. }))
    ));
}

#[test]
fn a_checkpoint_signed_by_an_unknown_key_only_is_refused() {
    let parsed = SignedCheckpoint::parse(signed(ORIGIN).as_bytes()).expect("parses");
    // The same name with another key: a different key id, so ignored.
    let other = VerifierKey::ed25519(ORIGIN, SigningKey::from_bytes(&[8; 32]).verifying_key())
        .expect("key");
    assert_eq!(
        parsed.verify(&other),
        Err(CheckpointError::Note(NoteError::NoKnownSignature))
    );
    // The spec's example, checked under a key of its origin's name that did not sign it.
    let example =
        SignedCheckpoint::parse(&c2sp_vector("tlog-checkpoint-example.note")).expect("parses");
    let sofa = VerifierKey::ed25519(
        "example.com/behind-the-sofa",
        SigningKey::from_bytes(&[8; 32]).verifying_key(),
    )
    .expect("key");
    assert_eq!(
        example.verify(&sofa),
        Err(CheckpointError::Note(NoteError::NoKnownSignature))
    );
}

#[test]
fn a_checkpoint_of_a_wrong_origin_is_refused() {
    // The log's own key pair, but signing as another log: the signature is
    // valid, the origin is not the pinned key's name.
    let log_key = log_signer(ORIGIN).verifier_key().clone();
    let other = SignedCheckpoint::parse(signed("evil.example/ledger").as_bytes()).expect("parses");
    assert_eq!(
        other.verify(&log_key),
        Err(CheckpointError::WrongOrigin {
            origin: "evil.example/ledger".into(),
            key_name: ORIGIN.into(),
        })
    );
    // And a log does not sign a checkpoint of an origin other than its name.
    assert!(matches!(
        SignedCheckpoint::sign(checkpoint("evil.example/ledger"), &log_signer(ORIGIN)),
        Err(CheckpointError::WrongOrigin { .. })
    ));
}

#[test]
fn malformed_checkpoints_are_refused() {
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    let parse = |text: &str| Checkpoint::parse(text);
    let malformed = |text: &str| matches!(parse(text), Err(CheckpointError::Malformed(_)));
    assert!(parse(&format!("o\n20852163\n{root}\n")).is_ok());
    assert!(parse(&format!("o\n0\n{root}\n")).is_ok(), "empty tree");
    assert!(
        parse(&format!("o\n18446744073709551615\n{root}\n")).is_ok(),
        "u64::MAX"
    );
    // Tree size.
    assert!(
        malformed(&format!("o\n020852163\n{root}\n")),
        "leading zero"
    );
    assert!(malformed(&format!("o\n00\n{root}\n")), "two zeros");
    assert!(malformed(&format!("o\n+20852163\n{root}\n")), "sign");
    assert!(malformed(&format!("o\n-1\n{root}\n")), "negative");
    assert!(malformed(&format!("o\n0x13e3c43\n{root}\n")), "hex");
    assert!(malformed(&format!("o\n 20852163\n{root}\n")), "space");
    assert!(malformed(&format!("o\n\n{root}\n")), "empty size");
    assert!(
        malformed(&format!("o\n18446744073709551616\n{root}\n")),
        "past u64::MAX"
    );
    // Root hash.
    assert!(
        malformed("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n"),
        "31 bytes"
    );
    assert!(
        malformed("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA\n"),
        "33 bytes"
    );
    assert!(
        malformed("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n"),
        "no padding"
    );
    assert!(
        malformed("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n"),
        "non-zero padding bits"
    );
    assert!(
        malformed("o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n"),
        "URL-safe alphabet"
    );
    // Go's `TestParseTree` bad trees.
    assert!(
        malformed("go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n"),
        "Go: hex size"
    );
    assert!(
        malformed(
            "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n"
        ),
        "Go: root too big"
    );
    // Lines.
    assert!(malformed(&format!("\n1\n{root}\n")), "empty origin");
    assert!(malformed("o\n1\n"), "no root line");
    assert!(malformed(&format!("o\n1\n{root}")), "no final newline");
    assert!(
        malformed(&format!("o\n1\n{root}\n\nextension\n")),
        "empty extension line"
    );
    // A well-formed note whose text is not a checkpoint.
    let signer = log_signer(ORIGIN);
    let note = cloister_ledger_verify::note::Note::sign("just text\n", &[&signer]).expect("signs");
    assert!(matches!(
        SignedCheckpoint::parse(note.to_string().as_bytes()),
        Err(CheckpointError::Malformed(_))
    ));
}
