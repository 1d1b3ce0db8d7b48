//! Looking entries up by the digest they vouch for.

use crate::common;

use cloister_ledger::LogStore;
use cloister_ledger_verify::entry::Subject;
use common::{key, signed};

#[test]
fn finds_every_entry_for_a_digest_in_log_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LogStore::open(&dir.path().join("log.redb"), key(50)).expect("open");
    let first = signed(1, &[]);
    // A rebuild of the same artefact by another builder: same digest, new entry.
    let mut rebuilt = signed(1, &[]);
    rebuilt.body.provenance.builder = "another-builder".into();
    store
        .append(&[first.clone(), signed(2, &[]), rebuilt.clone()])
        .expect("append");

    let Subject::PluginComponent { digest, .. } = &first.body.subject else {
        panic!("fixture is a plugin entry")
    };
    let found = store.entries_for_digest(digest.as_bytes()).expect("lookup");
    let found: Vec<_> = found
        .into_iter()
        .map(|response| (response.index, response.entry))
        .collect();
    assert_eq!(found, vec![(0, first), (2, rebuilt)]);
    assert!(
        store
            .entries_for_digest(&[0xee; 32])
            .expect("lookup")
            .is_empty()
    );
}
