//! Ed25519 key files and the reviewer policy file.
//!
//! A key file holds the 32-byte Ed25519 seed as 64 hex digits and a newline,
//! created with mode 0600. The same format serves the log's signing key and
//! reviewers' keys, so `cloister-ledger keygen` makes both.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use cloister_ledger_verify::review::ReviewerPolicy;
use ed25519_dalek::SigningKey;
use zeroize::Zeroizing;

use crate::LedgerError;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> LedgerError + '_ {
    move |source| LedgerError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads a key file written by [`generate_key_file`].
pub fn read_key_file(path: &Path) -> Result<SigningKey, LedgerError> {
    let text = Zeroizing::new(fs::read_to_string(path).map_err(io_error(path))?);
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut_slice())
        .map_err(|_| LedgerError::BadKeyFile(path.to_owned()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Creates a fresh key at `path` (mode 0600). Refuses to overwrite an existing file,
/// so a typo cannot destroy a key.
pub fn generate_key_file(path: &Path) -> Result<SigningKey, LedgerError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice()).map_err(LedgerError::Random)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_error(path))?;
    let text = Zeroizing::new(format!("{}\n", hex::encode(seed.as_slice())));
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(path))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads the key at `path`, creating it first if the file does not exist.
/// Returns whether it was created, so the caller can announce the new public key.
pub fn read_or_generate_key_file(path: &Path) -> Result<(SigningKey, bool), LedgerError> {
    if path.exists() {
        Ok((read_key_file(path)?, false))
    } else {
        Ok((generate_key_file(path)?, true))
    }
}

/// Reads and validates a reviewer policy TOML file (format: [`cloister_ledger_verify::review`]).
pub fn read_reviewer_policy(path: &Path) -> Result<ReviewerPolicy, LedgerError> {
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    let policy: ReviewerPolicy =
        toml::from_str(&text).map_err(|source| LedgerError::PolicySyntax {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
    policy.validate()?;
    Ok(policy)
}
