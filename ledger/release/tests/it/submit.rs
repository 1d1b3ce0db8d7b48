//! Submitting a release to a real ledger on loopback.

use cloister_ledger::Ledger;
use cloister_ledger_server::LedgerClient;
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::entry::PublicKeyBytes;
use cloister_ledger_verify::review::{Reviewer, ReviewerPolicy};
use cloister_release::submit::{ReleaseSummary, submit};
use ed25519_dalek::SigningKey;

use crate::entries::{entries, tree};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A real ledger (2 of 3 reviewers) serving on a loopback port until dropped.
struct TestLedger {
    url: String,
    log_key: PublicKeyBytes,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn start_ledger() -> TestLedger {
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
        },
    )
    .expect("open ledger");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    runtime
        .spawn(async move { axum::serve(listener, cloister_ledger_server::router(ledger)).await });
    TestLedger {
        url,
        log_key: log_public,
        _runtime: runtime,
        _dir: dir,
    }
}

#[test]
fn release_is_admitted_once_and_rerunning_it_changes_nothing() {
    let tree = tree();
    let bodies = entries(&tree).expect("entries");
    let ledger = start_ledger();
    let client = LedgerClient::new(&ledger.url);
    let reviewers = [key(1), key(3)];

    let first =
        submit(&client, &bodies, &reviewers, Some(&ledger.log_key)).expect("release admitted");
    assert_eq!(
        first,
        ReleaseSummary {
            appended: bodies.len(),
            already_logged: 0
        }
    );
    let head = client.tree_head().expect("head");
    assert_eq!(head.head.tree_size, bodies.len() as u64);

    let second = submit(&client, &bodies, &reviewers, Some(&ledger.log_key)).expect("rerun");
    assert_eq!(
        second,
        ReleaseSummary {
            appended: 0,
            already_logged: bodies.len()
        }
    );
    assert_eq!(
        client.tree_head().expect("head"),
        head,
        "a rerun must not touch the log"
    );
}

#[test]
fn release_with_too_few_reviewers_is_refused_and_logs_nothing() {
    let tree = tree();
    let bodies = entries(&tree).expect("entries");
    let ledger = start_ledger();
    let client = LedgerClient::new(&ledger.url);

    let error = submit(&client, &bodies, &[key(2)], None).expect_err("one reviewer is not enough");
    let message = error.to_string();
    assert!(
        message.contains("1 reviewer signature(s), 2 required"),
        "{message}"
    );
    assert!(message.contains("--reviewer-key"), "{message}");
    let unknown = submit(&client, &bodies, &[key(1), key(7)], None).expect_err("unknown reviewer");
    assert!(unknown.to_string().contains("unknown key"), "{unknown}");
    assert_eq!(client.tree_head().expect("head").head.tree_size, 0);
}
