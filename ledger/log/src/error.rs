//! The one error type of the ledger library.

use std::path::PathBuf;

use cloister_ledger_verify::entry::EntryError;
use cloister_ledger_verify::note::NoteError;
use cloister_ledger_verify::review::{AdmissionError, PolicyError};

/// Everything that can go wrong opening, reading or appending to the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The entry is malformed (empty or oversized fields, too many signatures).
    #[error("malformed entry: {0}")]
    BadEntry(#[from] EntryError),
    /// The entry lacks the reviewer signatures the policy requires.
    #[error("entry not admitted: {0}")]
    NotAdmitted(#[from] AdmissionError),
    /// A requested index, leaf or tree size is not in the log.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request asks for something impossible (for example, a tree larger than the log).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The database is readable but does not describe a valid log.
    #[error("ledger database is corrupt: {0}")]
    Corrupt(String),
    /// The configured origin cannot name the log's checkpoint key.
    #[error("log origin: {0}")]
    Origin(#[from] NoteError),
    /// The stored tree head was signed by a different key than the one configured.
    #[error("the database's tree head is not signed by the configured log key")]
    LogKeyMismatch,
    /// The embedded database failed (boxed: redb's error is large).
    #[error("storage: {0}")]
    Storage(Box<redb::Error>),
    /// A key or policy file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A key file does not hold a 32-byte hex seed.
    #[error("{0}: not a key file (expected 64 hex digits)")]
    BadKeyFile(PathBuf),
    /// The reviewer policy file is not valid TOML of the expected shape.
    #[error("{path}: {source}")]
    PolicySyntax {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: Box<toml::de::Error>,
    },
    /// The reviewer policy is well-formed but unusable.
    #[error("reviewer policy: {0}")]
    Policy(#[from] PolicyError),
    /// The operating system's random number generator failed.
    #[error("no randomness for key generation: {0}")]
    Random(getrandom::Error),
}

/// redb reports each kind of operation with its own error type; all are storage failures.
macro_rules! storage_errors {
    ($($error:ty),*) => {$(
        impl From<$error> for LedgerError {
            fn from(error: $error) -> Self {
                Self::Storage(Box::new(error.into()))
            }
        }
    )*};
}

storage_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
