//! Signing a release's entries and logging them in the ledger.

use cloister_ledger_verify::client::LogVerifier;
use cloister_ledger_verify::entry::{
    EntryBody, PublicKeyBytes, ReviewerSignature, SignedEntry, Subject,
};
use cloister_ledger_verify::remote::{LedgerClient, RemoteError};
use ed25519_dalek::SigningKey;

use crate::ReleaseError;

/// What a submission did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReleaseSummary {
    /// Entries newly appended.
    pub appended: usize,
    /// Entries whose body was already logged.
    pub already_logged: usize,
}

/// Signs each entry with every reviewer key and submits it, skipping entries
/// whose body the ledger already holds, so rerunning a release is harmless.
/// With `log_key`, each entry's inclusion is then checked the way a client
/// checks it.
///
/// # Errors
/// Stops at the first refusal: the ledger writes nothing for a refused entry,
/// so the release can be rerun. [`ReleaseError::NotAdmitted`] when the
/// signatures do not satisfy the ledger's reviewer policy.
pub async fn submit(
    ledger: &LedgerClient,
    bodies: &[EntryBody],
    reviewer_keys: &[SigningKey],
    log_key: Option<&PublicKeyBytes>,
) -> Result<ReleaseSummary, ReleaseError> {
    let mut verifier = log_key
        .map(|key| LogVerifier::new(key.as_bytes(), None))
        .transpose()?;
    let mut summary = ReleaseSummary::default();
    for body in bodies {
        let what = describe(&body.subject);
        let logged =
            match body.subject.digest_bytes() {
                Some(digest) => ledger.entries_for_digest(digest).await.map_err(|source| {
                    ReleaseError::Ledger {
                        what: format!("looking up {what} in the ledger"),
                        source,
                    }
                })?,
                None => Vec::new(),
            };
        let entry = match logged.into_iter().find(|logged| logged.entry.body == *body) {
            Some(logged) => {
                summary.already_logged += 1;
                logged.entry
            }
            None => {
                let entry = SignedEntry {
                    body: body.clone(),
                    signatures: reviewer_keys
                        .iter()
                        .map(|key| ReviewerSignature::sign(key, body))
                        .collect(),
                };
                let placed = ledger
                    .submit(&entry)
                    .await
                    .map_err(|error| refusal(error, &what))?;
                tracing::info!(entry = %what, index = placed.index, "logged");
                summary.appended += usize::from(placed.appended);
                summary.already_logged += usize::from(!placed.appended);
                entry
            }
        };
        if let Some(verifier) = &mut verifier {
            let verifying = |source| ReleaseError::Ledger {
                what: format!("verifying {what}"),
                source,
            };
            ledger.update_tree_head(verifier).await.map_err(verifying)?;
            ledger
                .verify_entry(verifier, &entry)
                .await
                .map_err(verifying)?;
        }
    }
    Ok(summary)
}

/// Turns the ledger's refusal into an error that says what to do.
fn refusal(error: RemoteError, what: &str) -> ReleaseError {
    match error {
        RemoteError::Refused {
            code: Some(code),
            message,
            ..
        } if code == "not_admitted" => ReleaseError::NotAdmitted {
            what: what.to_owned(),
            message,
        },
        source => ReleaseError::Ledger {
            what: format!("submitting {what}"),
            source,
        },
    }
}

/// A short human name for an entry.
pub fn describe(subject: &Subject) -> String {
    match subject {
        Subject::Release(release) => format!(
            "release {} #{} (measurement {})",
            release.series, release.sequence, release.measurement
        ),
        Subject::Revocation {
            series, sequence, ..
        } => format!("revocation of release {series} #{sequence}"),
        Subject::PluginComponent { name, version, .. } => format!("plugin {name} {version}"),
        Subject::OhttpKeyConfig { key_id, .. } => format!("OHTTP key configuration {key_id}"),
        Subject::IssuerKey { token_key_id, .. } => format!("issuer key {token_key_id}"),
        Subject::PolicyFile { name, .. } => format!("policy file {name}"),
    }
}
