//! Witness cosignatures (`cosignature/v1`) against the C2SP `tlog-cosignature`
//! example and the vectors of transparency-dev/formats `note/note_cosigv1_test.go`,
//! then the client's k-of-n [`WitnessPolicy`].

use std::time::Duration;

use cloister_ledger_verify::checkpoint::{Checkpoint, SignedCheckpoint};
use cloister_ledger_verify::cosignature::{
    COSIGNATURE_V1, CosignatureError, Cosigner, CosignerKey, WitnessPolicy, WitnessPolicyError,
    signed_message, timestamp,
};
use cloister_ledger_verify::merkle::leaf_hash;
use cloister_ledger_verify::note::{NoteSignature, NoteSigner, VerifierKey};
use cloister_ledger_verify::witness::AddCheckpoint;
use ed25519_dalek::SigningKey;

use crate::c2sp_vector;

/// transparency-dev/formats `TestCoSigV1NewVerifier`, "native algEd25519CosignatureV1 verifier".
const REMORA_VKEY: &str = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
/// transparency-dev/formats `TestCosignatureTimestamp`, "works": key id and timestamp 1727964367.
const FORMATS_COSIGNATURE: &str = "— w ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==\n";
const NOW: u64 = 1_800_000_000;

#[test]
fn a_published_cosigner_vkey_parses_and_reencodes_byte_for_byte() {
    let key: CosignerKey = REMORA_VKEY.parse().expect("published vkey");
    assert_eq!(key.name(), "remora.n621.de");
    assert_eq!(key.key_id(), 0xda77_ade7);
    assert_eq!(key.to_string(), REMORA_VKEY);
    // The same key material as a plain Ed25519 note key is another type.
    assert!(REMORA_VKEY.parse::<VerifierKey>().is_err());
    let wrong_id = REMORA_VKEY.replace("da77ade7", "da77ade8");
    assert!(wrong_id.parse::<CosignerKey>().is_err());
}

#[test]
fn published_cosignatures_carry_their_timestamps() {
    let lines = NoteSignature::parse_lines(FORMATS_COSIGNATURE).expect("one line");
    assert_eq!(lines[0].key_id, 0x6468_46b9);
    assert_eq!(timestamp(&lines[0]), Ok(1_727_964_367));

    let note = c2sp_vector("tlog-cosignature-example.note");
    let signed = SignedCheckpoint::parse(&note).expect("spec example parses");
    assert_eq!(
        signed.to_string().as_bytes(),
        note,
        "re-encodes byte for byte"
    );
    let witness = &signed.note().signatures()[1];
    assert_eq!(witness.name, "witness.example.com/w1");
    assert_eq!(witness.key_id, 0x8d66_cf3f);
    assert_eq!(timestamp(witness), Ok(1_679_315_147));
    // The spec's "Ed25519 signed message" example, byte for byte.
    assert_eq!(
        signed_message(1_679_315_147, signed.note().text()),
        "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    );
}

#[test]
fn the_published_add_checkpoint_request_parses_and_reencodes_byte_for_byte() {
    let body = c2sp_vector("tlog-witness-add-checkpoint-example.txt");
    let request = AddCheckpoint::parse(&body).expect("spec example parses");
    assert_eq!(request.old_size, 20_852_014);
    assert_eq!(request.proof.len(), 4);
    assert_eq!(request.checkpoint.checkpoint().tree_size, 20_852_163);
    assert_eq!(request.checkpoint.note().signatures().len(), 2);
    assert_eq!(request.to_string().as_bytes(), body);
    for broken in [
        "old 01\n\n",
        "old 1\nnot base64\n\n",
        "new 1\n\n",
        "old 1\n",
    ] {
        let mut bad = broken.as_bytes().to_vec();
        bad.extend_from_slice(&c2sp_vector("tlog-checkpoint-example.note"));
        assert!(AddCheckpoint::parse(&bad).is_err(), "{broken:?}");
    }
}

fn log() -> NoteSigner {
    NoteSigner::ed25519("example.com/log", SigningKey::from_bytes(&[7; 32])).expect("name")
}

fn witness(seed: u8) -> Cosigner {
    Cosigner::ed25519(
        &format!("witness-{seed}.example"),
        SigningKey::from_bytes(&[seed; 32]),
    )
    .expect("name")
}

fn checkpoint(size: u64) -> SignedCheckpoint {
    let body = Checkpoint {
        origin: "example.com/log".into(),
        tree_size: size,
        root_hash: leaf_hash(&size.to_be_bytes()),
        extensions: vec![],
    };
    SignedCheckpoint::sign(body, &log()).expect("signs")
}

fn cosigned(size: u64, by: &[(u8, u64)]) -> SignedCheckpoint {
    let mut signed = checkpoint(size);
    for &(seed, at) in by {
        let line = witness(seed)
            .cosign(signed.note().text(), at)
            .expect("cosigns");
        signed.add_cosignature(line).expect("room");
    }
    signed
}

fn policy(threshold: usize) -> WitnessPolicy {
    WitnessPolicy {
        witnesses: [1, 2, 3]
            .map(|seed| witness(seed).verifier_key().clone())
            .to_vec(),
        threshold,
        max_age: Duration::from_secs(24 * 3600),
    }
}

#[test]
fn a_cosignature_round_trips_through_its_vkey_and_the_note() {
    let witness = witness(1);
    let vkey = witness.verifier_key().to_string();
    // base64 of a first byte 0x04 starts with `B`.
    assert!(
        vkey.split('+')
            .nth(2)
            .is_some_and(|key| key.starts_with('B')),
        "type 0x04: {vkey}"
    );
    let pinned: CosignerKey = vkey.parse().expect("own vkey parses");
    let signed = cosigned(5, &[(1, NOW)]);
    let reparsed = SignedCheckpoint::parse(signed.to_string().as_bytes()).expect("parses");
    let line = &reparsed.note().signatures()[1];
    assert_eq!(pinned.verify(reparsed.note().text(), line), Ok(Some(NOW)));
    // The log's own line is not this witness's.
    let log_line = &reparsed.note().signatures()[0];
    assert_eq!(pinned.verify(reparsed.note().text(), log_line), Ok(None));
    // Over another checkpoint, the same line is invalid.
    let other = checkpoint(6);
    assert!(matches!(
        pinned.verify(other.note().text(), line),
        Err(CosignatureError::InvalidSignature { .. })
    ));
    assert_eq!(COSIGNATURE_V1, 0x04);
}

#[test]
fn a_policy_counts_distinct_pinned_witnesses() {
    let log_key = log().verifier_key().clone();
    let two = cosigned(9, &[(1, NOW - 10), (3, NOW - 20)]);
    let two_of_three = policy(2);
    let accepted = two_of_three.verify(&two, &log_key, NOW).expect("2 of 3");
    assert_eq!(accepted.checkpoint.tree_size, 9);
    assert_eq!(accepted.cosigned_at, NOW - 10);

    // The same witness twice, or an unpinned one, does not count twice.
    let padded = cosigned(9, &[(1, NOW - 10), (1, NOW - 5), (4, NOW)]);
    assert_eq!(
        policy(2).verify(&padded, &log_key, NOW),
        Err(WitnessPolicyError::NotEnoughCosignatures {
            tree_size: 9,
            cosigned: 1,
            threshold: 2
        })
    );
    // A cosignature dated in the future is not counted.
    let future = cosigned(9, &[(1, NOW), (2, NOW + 3600)]);
    assert!(matches!(
        policy(2).verify(&future, &log_key, NOW),
        Err(WitnessPolicyError::NotEnoughCosignatures { cosigned: 1, .. })
    ));
}

#[test]
fn freshness_is_judged_on_the_threshold_freshest_cosignatures() {
    let log_key = log().verifier_key().clone();
    let day = 24 * 3600;
    let one_fresh = cosigned(9, &[(1, NOW), (2, NOW - 2 * day)]);
    assert!(matches!(
        policy(2).verify(&one_fresh, &log_key, NOW),
        Err(WitnessPolicyError::Stale { age_secs, .. }) if age_secs == 2 * day
    ));
    policy(1)
        .verify(&one_fresh, &log_key, NOW)
        .expect("1 of 3 is fresh");
}

#[test]
fn unusable_policies_and_forged_cosignatures_are_refused() {
    let log_key = log().verifier_key().clone();
    let signed = cosigned(9, &[(1, NOW), (2, NOW)]);
    for threshold in [0, 4] {
        assert!(matches!(
            policy(threshold).verify(&signed, &log_key, NOW),
            Err(WitnessPolicyError::BadPolicy(_))
        ));
    }
    let mut twice = policy(1);
    twice.witnesses.push(twice.witnesses[0].clone());
    assert!(twice.validate().is_err());

    // A line claiming a pinned witness's name and key id but signed by another key.
    let impostor =
        Cosigner::ed25519("witness-1.example", SigningKey::from_bytes(&[9; 32])).expect("name");
    let mut forged = checkpoint(9);
    let mut line = impostor.cosign(forged.note().text(), NOW).expect("signs");
    line.key_id = witness(1).verifier_key().key_id();
    forged.add_cosignature(line).expect("room");
    assert!(matches!(
        policy(1).verify(&forged, &log_key, NOW),
        Err(WitnessPolicyError::Cosignature(
            CosignatureError::InvalidSignature { .. }
        ))
    ));
    // Cosignatures do not replace the log's own signature.
    let other_log =
        NoteSigner::ed25519("example.com/log", SigningKey::from_bytes(&[8; 32])).expect("name");
    assert!(matches!(
        policy(2).verify(&signed, other_log.verifier_key(), NOW),
        Err(WitnessPolicyError::Checkpoint(_))
    ));
}
