//! The DEMO-ONLY reviewer set.

use std::fs;
use std::path::Path;

use cloister_ledger::keys;
use cloister_release::demo::{DEMO_REVIEWERS, DEMO_THRESHOLD, demo_reviewers};

#[test]
fn demo_reviewers_make_a_usable_demo_only_policy_and_reuse_their_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = demo_reviewers(dir.path()).expect("demo reviewers");
    let policy = keys::read_reviewer_policy(&first.policy_path).expect("valid policy");
    assert_eq!(
        (policy.threshold, policy.reviewers.len()),
        (DEMO_THRESHOLD, DEMO_REVIEWERS)
    );
    assert!(
        fs::read_to_string(&first.policy_path)
            .expect("read")
            .starts_with("# DEMO ONLY")
    );
    for (reviewer, path) in policy.reviewers.iter().zip(&first.reviewer_keys) {
        let key = keys::read_key_file(path).expect("reviewer key");
        assert_eq!(
            reviewer.public_key.as_bytes(),
            key.verifying_key().as_bytes()
        );
    }
    let config: toml::Table =
        toml::from_str(&fs::read_to_string(&first.config_path).expect("read")).expect("toml");
    assert_eq!(config["reviewers"].as_str(), first.policy_path.to_str());
    let log_key = keys::read_key_file(Path::new(config["log_key"].as_str().expect("log key path")))
        .expect("log key");
    assert_eq!(
        log_key.verifying_key().to_bytes(),
        *first.log_public_key.as_bytes()
    );

    let again = demo_reviewers(dir.path()).expect("rerun");
    assert_eq!(
        again.log_public_key, first.log_public_key,
        "keys are reused, not replaced"
    );
    assert_eq!(
        keys::read_reviewer_policy(&again.policy_path).expect("policy"),
        policy
    );
}
