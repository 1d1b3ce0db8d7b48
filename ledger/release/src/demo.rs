//! DEMO ONLY: a throwaway reviewer set and ledger configuration, so the demo
//! can run a ledger whose releases it is able to sign.

use std::fs;
use std::path::{Path, PathBuf};

use cloister_ledger::keys;
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::entry::PublicKeyBytes;
use cloister_ledger_verify::review::{KeyKind, Publisher, Reviewer, ReviewerPolicy};
use serde::Serialize;

use crate::ReleaseError;

/// The demo reviewer set: k of n.
pub const DEMO_REVIEWERS: usize = 3;
/// How many demo reviewers must sign.
pub const DEMO_THRESHOLD: usize = 2;

/// What [`demo_reviewers`] made (printed as JSON by `cloister-release demo-reviewers --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DemoLedger {
    /// The reviewers' key files.
    pub reviewer_keys: Vec<PathBuf>,
    /// The demo-only reviewer policy.
    pub policy_path: PathBuf,
    /// A `cloister-ledger serve` configuration using it.
    pub config_path: PathBuf,
    /// The demo log's public key, for clients to pin.
    pub log_public_key: PublicKeyBytes,
    /// The gateway's publisher key file (it logs its OHTTP keys with it).
    pub gateway_publisher_key: PathBuf,
    /// The issuer's publisher key file (it logs its token keys with it).
    pub issuer_publisher_key: PathBuf,
}

fn write(path: &Path, text: &str) -> Result<(), ReleaseError> {
    fs::write(path, text).map_err(|source| ReleaseError::Io {
        path: path.to_owned(),
        source,
    })
}

fn key_file(path: &Path) -> Result<ed25519_dalek::SigningKey, ReleaseError> {
    keys::read_or_generate_key_file(path)
        .map(|(key, _)| key)
        .map_err(|source| ReleaseError::Keys {
            path: path.to_owned(),
            source,
        })
}

/// Creates (or reuses) throwaway reviewer keys, a demo-only reviewer policy
/// and a ledger configuration under `dir`. Never for a real ledger: the keys
/// sit unprotected in the build directory.
///
/// # Errors
/// A file under `dir` cannot be read or written.
pub fn demo_reviewers(dir: &Path) -> Result<DemoLedger, ReleaseError> {
    let keys_dir = dir.join("reviewers");
    fs::create_dir_all(&keys_dir).map_err(|source| ReleaseError::Io {
        path: keys_dir.clone(),
        source,
    })?;
    let dir = fs::canonicalize(dir).map_err(|source| ReleaseError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut reviewers = Vec::new();
    let mut reviewer_keys = Vec::new();
    for index in 1..=DEMO_REVIEWERS {
        let name = format!("demo-reviewer-{index}");
        let path = dir.join("reviewers").join(format!("{name}.key"));
        let key = key_file(&path)?;
        reviewers.push(Reviewer {
            name,
            public_key: HexBytes(key.verifying_key().to_bytes()),
        });
        reviewer_keys.push(path);
    }
    let publisher = |name: &str, publishes| {
        let path = dir.join("reviewers").join(format!("{name}-publisher.key"));
        let key = key_file(&path)?;
        let publisher = Publisher {
            name: name.into(),
            public_key: HexBytes(key.verifying_key().to_bytes()),
            publishes,
        };
        Ok::<_, ReleaseError>((publisher, path))
    };
    let (gateway, gateway_publisher_key) = publisher("demo-gateway", KeyKind::OhttpKeyConfig)?;
    let (issuer, issuer_publisher_key) = publisher("demo-issuer", KeyKind::IssuerKey)?;
    let policy = ReviewerPolicy {
        threshold: DEMO_THRESHOLD,
        reviewers,
        publishers: vec![gateway, issuer],
    };
    policy.validate()?;
    let policy_path = dir.join("ledger-reviewers.toml");
    write(
        &policy_path,
        &format!(
            "# DEMO ONLY: throwaway reviewer keys made by `cloister-release demo-reviewers`.\n\
             # Their secret keys are in {}; never let a real ledger trust them.\n\
             # The production reviewer set is policies/ledger-reviewers.toml.\n\n{}",
            dir.join("reviewers").display(),
            toml::to_string(&policy)?
        ),
    )?;
    let log_key_path = dir.join("ledger-log.key");
    let log_key = key_file(&log_key_path)?;
    let config_path = dir.join("cloister-ledger.toml");
    let mut config = toml::Table::new();
    config.insert("listen".into(), "127.0.0.1:7400".into());
    for (key, path) in [
        ("database", dir.join("cloister-ledger.redb")),
        ("log_key", log_key_path),
        ("reviewers", policy_path.clone()),
    ] {
        let text = path
            .to_str()
            .ok_or_else(|| ReleaseError::NonUtf8Path(path.clone()))?;
        config.insert(key.into(), text.into());
    }
    write(
        &config_path,
        &format!(
            "# DEMO ONLY ledger configuration made by `cloister-release demo-reviewers`.\n{}",
            toml::to_string(&config)?
        ),
    )?;
    Ok(DemoLedger {
        reviewer_keys,
        policy_path,
        config_path,
        log_public_key: HexBytes(log_key.verifying_key().to_bytes()),
        gateway_publisher_key,
        issuer_publisher_key,
    })
}
