//! The log's tree head as a C2SP checkpoint: the same size and root as the
//! signed tree head, signed by the log key under the log's origin.

use crate::common;

use cloister_ledger::{DEFAULT_ORIGIN, LedgerError, LogStore};
use cloister_ledger_verify::checkpoint::{CheckpointError, SignedCheckpoint};
use cloister_ledger_verify::note::VerifierKey;
use common::{key, signed};

#[test]
fn checkpoint_carries_the_signed_tree_head_under_the_origin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LogStore::open(&dir.path().join("log.redb"), key(60))
        .expect("open")
        .with_origin("example.org/ledger")
        .expect("valid origin");
    store
        .append(&[signed(1, &[]), signed(2, &[]), signed(3, &[])])
        .expect("append");
    let head = store
        .tree_head()
        .expect("head")
        .verify(&key(60).verifying_key())
        .copied()
        .expect("signed head");

    let log_key = VerifierKey::ed25519("example.org/ledger", key(60).verifying_key()).expect("key");
    assert_eq!(store.checkpoint_key(), &log_key);
    let served = store.checkpoint().expect("checkpoint").to_string();
    let parsed = SignedCheckpoint::parse(served.as_bytes()).expect("parses");
    let checkpoint = parsed.verify(&log_key).expect("verifies");
    assert_eq!(checkpoint.origin, "example.org/ledger");
    assert_eq!(checkpoint.tree_size, head.tree_size);
    assert_eq!(checkpoint.root_hash, head.root_hash);
    // Deterministic: the same tree gives the same bytes.
    assert_eq!(store.checkpoint().expect("again").to_string(), served);
    // Under the default origin's name the same key does not vouch for it.
    let default = VerifierKey::ed25519(DEFAULT_ORIGIN, key(60).verifying_key()).expect("key");
    assert!(matches!(
        parsed.verify(&default),
        Err(CheckpointError::WrongOrigin { .. })
    ));
}

#[test]
fn default_origin_and_refused_origins() {
    let dir = tempfile::tempdir().expect("temp dir");
    let open = || LogStore::open(&dir.path().join("log.redb"), key(61)).expect("open");
    let checkpoint = open().checkpoint().expect("checkpoint");
    let log_key = VerifierKey::ed25519(DEFAULT_ORIGIN, key(61).verifying_key()).expect("key");
    let empty = checkpoint.verify(&log_key).expect("verifies");
    assert_eq!(empty.tree_size, 0);
    for bad in ["", "has space", "has+plus"] {
        assert!(
            matches!(open().with_origin(bad), Err(LedgerError::Origin(_))),
            "origin {bad:?} accepted"
        );
    }
}
