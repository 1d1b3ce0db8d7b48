//! Every check that guards the ledger, shown accepting the honest case and
//! rejecting the bad one: reviewer admission (k-1 signatures, unknown key,
//! bad or repeated signature), forged tree heads, proofs for another leaf,
//! forked logs, and a database opened with the wrong log key.

use crate::common;

use cloister_ledger::{Ledger, LedgerError, LogStore};
use cloister_ledger_verify::client::{LogVerifier, VerifyError};
use cloister_ledger_verify::entry::ReviewerSignature;
use cloister_ledger_verify::review::{AdmissionError, PolicyError};
use common::{body, key, policy, signed};

const LOG_KEY_SEED: u8 = 200;

fn ledger(dir: &tempfile::TempDir) -> Ledger {
    Ledger::open(
        &dir.path().join("log.redb"),
        key(LOG_KEY_SEED),
        policy(2, 3),
    )
    .expect("open ledger")
}

fn verifier() -> LogVerifier {
    LogVerifier::new(&key(LOG_KEY_SEED).verifying_key().to_bytes(), None).expect("valid key")
}

/// Asserts the rejection left no trace: same head, nothing new at the next index.
fn assert_untouched(ledger: &Ledger, before: u64) {
    let head = ledger.store().tree_head().expect("head");
    assert_eq!(head.head.tree_size, before);
    assert!(matches!(
        ledger.store().entry(before),
        Err(LedgerError::NotFound(_))
    ));
}

#[test]
fn admits_k_of_n_and_the_client_verifies_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = ledger(&dir);
    let entry = signed(1, &[1, 3]);
    let placed = ledger.submit(&entry).expect("two of three reviewers admit");
    assert_eq!(placed.index, 0);
    let mut client = verifier();
    client
        .accept_tree_head(placed.tree_head, &[])
        .expect("first head");
    let proof = ledger
        .store()
        .inclusion_proof(&entry.leaf_hash(), None)
        .expect("proof");
    client.verify_inclusion(&entry, &proof).expect("included");
    // Submitting the same entry again is idempotent.
    assert_eq!(ledger.submit(&entry).expect("resubmit").index, 0);
    assert_eq!(ledger.store().tree_head().expect("head").head.tree_size, 1);
}

#[test]
fn rejects_k_minus_one_reviewer_signatures() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = ledger(&dir);
    let error = ledger
        .submit(&signed(1, &[2]))
        .expect_err("one of two required");
    assert!(matches!(
        error,
        LedgerError::NotAdmitted(AdmissionError::BelowThreshold {
            signed: 1,
            threshold: 2
        })
    ));
    assert_untouched(&ledger, 0);
}

#[test]
fn rejects_a_signature_by_an_unknown_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = ledger(&dir);
    // Two listed reviewers plus one outsider: the outsider alone spoils it.
    let error = ledger
        .submit(&signed(1, &[1, 2, 42]))
        .expect_err("unknown key");
    let outsider = key(42).verifying_key().to_bytes().into();
    assert!(
        matches!(error, LedgerError::NotAdmitted(AdmissionError::UnknownReviewer(key)) if key == outsider)
    );
    assert_untouched(&ledger, 0);
}

#[test]
fn rejects_a_listed_reviewer_signature_over_another_entry() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = ledger(&dir);
    let mut entry = signed(1, &[1]);
    entry
        .signatures
        .push(ReviewerSignature::sign(&key(2), &body(2)));
    let error = ledger
        .submit(&entry)
        .expect_err("signature over another body");
    assert!(
        matches!(error, LedgerError::NotAdmitted(AdmissionError::BadSignature(name)) if name == "reviewer-2")
    );
    assert_untouched(&ledger, 0);
}

#[test]
fn rejects_one_reviewer_counted_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = ledger(&dir);
    let error = ledger
        .submit(&signed(1, &[1, 1]))
        .expect_err("same reviewer twice");
    assert!(matches!(
        error,
        LedgerError::NotAdmitted(AdmissionError::DuplicateReviewer(_))
    ));
    assert_untouched(&ledger, 0);
}

#[test]
fn a_rejected_entry_spoils_its_whole_batch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = ledger(&dir);
    let batch = [signed(1, &[1, 2]), signed(2, &[1])];
    assert!(ledger.submit_batch(&batch).is_err());
    assert_untouched(&ledger, 0);
}

#[test]
fn rejects_unusable_policies() {
    assert!(matches!(
        policy(0, 3).validate(),
        Err(PolicyError::BadThreshold { .. })
    ));
    assert!(matches!(
        policy(4, 3).validate(),
        Err(PolicyError::BadThreshold { .. })
    ));
    let mut duplicated = policy(1, 2);
    duplicated.reviewers[1].public_key = duplicated.reviewers[0].public_key;
    assert!(matches!(
        duplicated.validate(),
        Err(PolicyError::DuplicateKey(_))
    ));
    policy(2, 3).validate().expect("2 of 3 is fine");
}

#[test]
fn rejects_a_forged_tree_head_signature() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = ledger(&dir);
    let head = ledger
        .submit(&signed(1, &[1, 2]))
        .expect("admitted")
        .tree_head;

    // Signed by another key.
    let forged = head.head.sign(&key(7));
    assert!(matches!(
        verifier().accept_tree_head(forged, &[]),
        Err(VerifyError::BadSignature(_))
    ));
    // Signed by the log, then altered.
    let mut altered = head;
    altered.head.tree_size += 1;
    assert!(matches!(
        verifier().accept_tree_head(altered, &[]),
        Err(VerifyError::BadSignature(_))
    ));
    // A remembered head is re-checked too.
    let pinned = key(LOG_KEY_SEED).verifying_key().to_bytes();
    assert!(LogVerifier::new(&pinned, Some(forged)).is_err());
    verifier()
        .accept_tree_head(head, &[])
        .expect("the genuine head");
}

#[test]
fn rejects_an_inclusion_proof_for_another_leaf() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = ledger(&dir);
    let entries: Vec<_> = (0..5).map(|n| signed(n, &[2, 3])).collect();
    let head = ledger.submit_batch(&entries).expect("admitted")[0].tree_head;
    let mut client = verifier();
    client.accept_tree_head(head, &[]).expect("head");
    let proof = ledger
        .store()
        .inclusion_proof(&entries[2].leaf_hash(), None)
        .expect("proof");
    client
        .verify_inclusion(&entries[2], &proof)
        .expect("the right leaf");
    assert!(matches!(
        client.verify_inclusion(&entries[3], &proof),
        Err(VerifyError::NotIncluded(_))
    ));
    // An entry never logged, with a proof borrowed from a logged one.
    assert!(matches!(
        client.verify_inclusion(&signed(99, &[2, 3]), &proof),
        Err(VerifyError::NotIncluded(_))
    ));
    // A proof for an older tree than the accepted head.
    let old = ledger
        .store()
        .inclusion_proof(&entries[2].leaf_hash(), Some(3))
        .expect("proof");
    assert!(matches!(
        client.verify_inclusion(&entries[2], &old),
        Err(VerifyError::ProofForOtherTree { .. })
    ));
}

#[test]
fn detects_forked_tree_heads() {
    // One log key, two databases: the log shows different histories to different clients.
    let honest_dir = tempfile::tempdir().expect("temp dir");
    let forked_dir = tempfile::tempdir().expect("temp dir");
    let honest = ledger(&honest_dir);
    let forked = ledger(&forked_dir);
    let shared: Vec<_> = (0..3).map(|n| signed(n, &[1, 2])).collect();
    honest.submit_batch(&shared).expect("admitted");
    forked.submit_batch(&shared).expect("admitted");
    let common_head = honest.store().tree_head().expect("head");
    honest
        .submit_batch(&[signed(10, &[1, 2]), signed(11, &[1, 2])])
        .expect("admitted");
    forked
        .submit_batch(&[signed(20, &[1, 2]), signed(21, &[1, 2])])
        .expect("admitted");

    let mut client = verifier();
    client
        .accept_tree_head(common_head, &[])
        .expect("common prefix");
    let honest_head = honest.store().tree_head().expect("head");
    let proof = honest.store().consistency_proof(3, 5).expect("proof");
    client
        .accept_tree_head(honest_head, &proof)
        .expect("honest extension");

    // Same size, different root: no proof can help.
    let forked_head = forked.store().tree_head().expect("head");
    assert!(matches!(
        client.accept_tree_head(forked_head, &[]),
        Err(VerifyError::SplitView { .. })
    ));
    // Even with the forked log's own consistency proof.
    let forked_proof = forked.store().consistency_proof(3, 5).expect("proof");
    assert!(matches!(
        client.accept_tree_head(forked_head, &forked_proof),
        Err(VerifyError::SplitView { .. })
    ));
    // A larger forked head with its proof from the size the client knows.
    forked.submit(&signed(22, &[1, 2])).expect("admitted");
    let bigger = forked.store().tree_head().expect("head");
    let bigger_proof = forked.store().consistency_proof(5, 6).expect("proof");
    assert!(matches!(
        client.accept_tree_head(bigger, &bigger_proof),
        Err(VerifyError::SplitView { .. })
    ));
    assert_eq!(
        client.latest(),
        Some(&honest_head),
        "a refused head is not adopted"
    );
}

#[test]
fn reopens_durably_and_refuses_another_log_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("log.redb");
    let head = {
        let ledger = ledger(&dir);
        ledger
            .submit_batch(&[signed(1, &[1, 2]), signed(2, &[1, 2])])
            .expect("admitted");
        ledger.store().tree_head().expect("head")
    };
    let reopened = LogStore::open(&path, key(LOG_KEY_SEED)).expect("reopen");
    assert_eq!(reopened.tree_head().expect("head"), head);
    assert_eq!(reopened.entry(1).expect("entry").entry, signed(2, &[1, 2]));
    drop(reopened);
    assert!(matches!(
        LogStore::open(&path, key(7)),
        Err(LedgerError::LogKeyMismatch)
    ));
}
