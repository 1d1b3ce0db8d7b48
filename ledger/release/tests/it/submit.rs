//! Submitting a release to a real ledger on loopback.

use std::time::Duration;

use cloister_ledger::Ledger;
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::entry::PublicKeyBytes;
use cloister_ledger_verify::remote::LedgerClient;
use cloister_ledger_verify::review::{Reviewer, ReviewerPolicy};
use cloister_release::submit::{ReleaseSummary, submit};
use ed25519_dalek::SigningKey;

use crate::entries::{entries, tree};

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A real ledger (2 of 3 reviewers) serving on a loopback port, on the
/// test's runtime.
pub struct TestLedger {
    pub client: LedgerClient,
    pub url: String,
    pub log_key: PublicKeyBytes,
    _dir: tempfile::TempDir,
}

pub async fn start_ledger() -> TestLedger {
    let dir = tempfile::tempdir().expect("tempdir");
    let reviewers = (1..=3)
        .map(|seed| Reviewer {
            name: format!("r{seed}"),
            public_key: HexBytes(key(seed).verifying_key().to_bytes()),
        })
        .collect();
    let log_key = key(9);
    let log_public = HexBytes(log_key.verifying_key().to_bytes());
    let ledger = Ledger::open(
        &dir.path().join("ledger.redb"),
        log_key,
        ReviewerPolicy {
            threshold: 2,
            reviewers,
            publishers: Vec::new(),
        },
    )
    .expect("open ledger");
    let url = cloister_ledger_server::spawn_on_loopback(ledger)
        .await
        .expect("serve");
    TestLedger {
        client: LedgerClient::new(&url, Duration::from_secs(10)).expect("client"),
        url,
        log_key: log_public,
        _dir: dir,
    }
}

#[tokio::test]
async fn release_is_admitted_once_and_rerunning_it_changes_nothing() {
    let tree = tree();
    let bodies = entries(&tree).expect("entries");
    let ledger = start_ledger().await;
    let client = &ledger.client;
    let reviewers = [key(1), key(3)];

    let first = submit(client, &bodies, &reviewers, Some(&ledger.log_key))
        .await
        .expect("release admitted");
    assert_eq!(
        first,
        ReleaseSummary {
            appended: bodies.len(),
            already_logged: 0
        }
    );
    let head = client.tree_head().await.expect("head");
    assert_eq!(head.head.tree_size, bodies.len() as u64);

    let second = submit(client, &bodies, &reviewers, Some(&ledger.log_key))
        .await
        .expect("rerun");
    assert_eq!(
        second,
        ReleaseSummary {
            appended: 0,
            already_logged: bodies.len()
        }
    );
    assert_eq!(
        client.tree_head().await.expect("head"),
        head,
        "a rerun must not touch the log"
    );
}

#[tokio::test]
async fn release_with_too_few_reviewers_is_refused_and_logs_nothing() {
    let tree = tree();
    let bodies = entries(&tree).expect("entries");
    let ledger = start_ledger().await;
    let client = &ledger.client;

    let error = submit(client, &bodies, &[key(2)], None)
        .await
        .expect_err("one reviewer is not enough");
    let message = error.to_string();
    assert!(
        message.contains("1 reviewer signature(s), 2 required"),
        "{message}"
    );
    assert!(message.contains("--reviewer-key"), "{message}");
    let unknown = submit(client, &bodies, &[key(1), key(7)], None)
        .await
        .expect_err("unknown reviewer");
    assert!(unknown.to_string().contains("unknown key"), "{unknown}");
    assert_eq!(client.tree_head().await.expect("head").head.tree_size, 0);
}
