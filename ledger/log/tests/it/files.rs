//! Key files and the reviewer policy file: the shipped example parses, and bad files are refused clearly.

use crate::common;

use std::path::Path;

use cloister_ledger::LedgerError;
use cloister_ledger::keys::{
    generate_key_file, read_key_file, read_or_generate_key_file, read_reviewer_policy,
};
use cloister_ledger_verify::review::PolicyError;

#[test]
fn example_reviewer_policy_is_two_of_the_three_demo_keys() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/reviewers.toml");
    let policy = read_reviewer_policy(&path).expect("example policy is valid");
    assert_eq!(policy, common::policy(2, 3));
}

#[test]
fn production_reviewer_policy_is_valid_and_shares_no_key_with_the_examples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let production = read_reviewer_policy(&root.join("policies/ledger-reviewers.toml"))
        .expect("the production reviewer policy is valid");
    assert!(production.threshold >= 2, "a release needs two reviewers");
    let example = read_reviewer_policy(&root.join("ledger/examples/reviewers.toml"))
        .expect("example policy is valid");
    for reviewer in &production.reviewers {
        assert!(
            example
                .reviewers
                .iter()
                .all(|demo| demo.public_key != reviewer.public_key),
            "{} uses a published demo key",
            reviewer.name
        );
    }
}

#[test]
fn refuses_bad_policy_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reviewers.toml");
    let key = common::key(1)
        .verifying_key()
        .to_bytes()
        .map(|byte| format!("{byte:02x}"))
        .concat();
    std::fs::write(
        &path,
        format!("threshold = 2\n[[reviewer]]\nname = \"a\"\npublic_key = \"{key}\"\n"),
    )
    .expect("write");
    assert!(matches!(
        read_reviewer_policy(&path),
        Err(LedgerError::Policy(PolicyError::BadThreshold { .. }))
    ));
    std::fs::write(
        &path,
        "threshold = 1\n[[reviewer]]\nname = \"a\"\npublic_key = \"00ff\"\n",
    )
    .expect("write");
    assert!(matches!(
        read_reviewer_policy(&path),
        Err(LedgerError::PolicySyntax { .. })
    ));
    assert!(matches!(
        read_reviewer_policy(&dir.path().join("missing.toml")),
        Err(LedgerError::Io { .. })
    ));
}

#[test]
fn key_files_round_trip_and_are_never_overwritten() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("log.key");
    let (created, was_created) = read_or_generate_key_file(&path).expect("create");
    assert!(was_created);
    assert_eq!(
        std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777,
        0o600
    );
    let (read, was_created) = read_or_generate_key_file(&path).expect("read");
    assert!(!was_created);
    assert_eq!(read.to_bytes(), created.to_bytes());
    assert!(matches!(
        generate_key_file(&path),
        Err(LedgerError::Io { .. })
    ));
    assert_eq!(
        read_key_file(&path).expect("still readable").to_bytes(),
        created.to_bytes()
    );

    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "not hex\n").expect("write");
    assert!(matches!(
        read_key_file(&bad),
        Err(LedgerError::BadKeyFile(_))
    ));
}
