//! A Cloister witness: a C2SP `tlog-witness` (<https://c2sp.org/tlog-witness>)
//! that cosigns a log's checkpoint only when it extends the last one it cosigned.
//!
//! A transparency log could show one client one history and another client a
//! different one. A witness stops that from going unseen: it remembers, per
//! log, the latest checkpoint it cosigned, and cosigns a new one only with a
//! consistency proof from it. Clients that require k of n witnesses'
//! cosignatures (`cloister_ledger_verify::cosignature::WitnessPolicy`) then
//! accept only histories that k witnesses saw as one append-only log.
//!
//! # Main items
//!
//! * [`Witness`]: the state (one redb file: the latest cosigned checkpoint of
//!   each known log, checked and replaced in one write transaction, so two
//!   concurrent requests cannot roll the size back) and
//!   [`Witness::add_checkpoint`], the protocol's checks in its order.
//! * [`Refusal`]: why a checkpoint was not cosigned, with its HTTP status.
//! * [`router`]: `POST /add-checkpoint` and `GET /healthz` over a [`Witness`].
//! * [`spawn_on_loopback`]: a witness served on a free loopback port, for
//!   tests and the demo.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! A witness that knows one log cosigns its first checkpoint, then refuses
//! a request that claims another previous size, naming its own.
//!
//! ```rust
//! use cloister_ledger_verify::checkpoint::{Checkpoint, SignedCheckpoint};
//! use cloister_ledger_verify::cosignature::Cosigner;
//! use cloister_ledger_verify::merkle::leaf_hash;
//! use cloister_ledger_verify::note::NoteSigner;
//! use cloister_ledger_verify::witness::AddCheckpoint;
//! use cloister_witness::{Refusal, Witness};
//! use ed25519_dalek::SigningKey;
//!
//! let log = NoteSigner::ed25519("example.com/log", SigningKey::from_bytes(&[7; 32]))?;
//! let cosigner = Cosigner::ed25519("example.com/witness", SigningKey::from_bytes(&[8; 32]))?;
//! let dir = tempfile::tempdir()?;
//! let witness = Witness::open(&dir.path().join("w.redb"), cosigner, vec![log.verifier_key().clone()])?;
//!
//! let checkpoint = Checkpoint {
//!     origin: "example.com/log".into(),
//!     tree_size: 1,
//!     root_hash: leaf_hash(b"first entry"),
//!     extensions: vec![],
//! };
//! let signed = SignedCheckpoint::sign(checkpoint, &log)?;
//! let request = AddCheckpoint { old_size: 0, proof: vec![], checkpoint: signed };
//! let lines = witness.add_checkpoint(request.to_string().as_bytes(), 1_700_000_000)?;
//! assert_eq!(lines.len(), 1);
//! assert_eq!(
//!     witness.add_checkpoint(request.to_string().as_bytes(), 1_700_000_000),
//!     Err(Refusal::SizeMismatch { stored: 1 })
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod config;

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use cloister_ledger_verify::checkpoint::{Checkpoint, SignedCheckpoint};
use cloister_ledger_verify::cosignature::{Cosigner, CosignerKey};
use cloister_ledger_verify::merkle::{ProofError, verify_consistency};
use cloister_ledger_verify::note::{MAX_NOTE_BYTES, NoteSignature, VerifierKey};
use cloister_ledger_verify::witness::{ADD_CHECKPOINT, AddCheckpoint, SIZE_CONTENT_TYPE};
use redb::{Database, ReadableTable as _, TableDefinition};

/// The latest cosigned checkpoint of each log (its signed note), by origin.
const LOGS: TableDefinition<&str, &[u8]> = TableDefinition::new("logs");

/// The largest request body read: a note, its proof lines and framing.
const MAX_REQUEST_BYTES: usize = MAX_NOTE_BYTES + 4096;

/// Why a checkpoint was not cosigned; [`Refusal::status`] is the answer the spec requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The body is not an `add-checkpoint` request, or its old size is above the checkpoint's.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No configured log has this origin.
    #[error("unknown log {0:?}")]
    UnknownLog(String),
    /// The log's key did not sign the checkpoint.
    #[error("checkpoint not signed by the log: {0}")]
    BadSignature(String),
    /// The request's old size is not the size this witness last cosigned.
    #[error("old size does not match the {stored} entries last cosigned")]
    SizeMismatch {
        /// The size of the checkpoint last cosigned for this log.
        stored: u64,
    },
    /// A checkpoint of the size last cosigned, with another root: the log forked.
    #[error("checkpoint of size {stored} has another root than the one cosigned")]
    ConflictingRoot {
        /// The size of the checkpoint last cosigned for this log.
        stored: u64,
    },
    /// The consistency proof from the last cosigned checkpoint does not verify.
    #[error("consistency proof from size {from} does not verify: {reason}")]
    BadProof {
        /// The size of the checkpoint last cosigned.
        from: u64,
        /// Why.
        reason: ProofError,
    },
    /// The witness's own storage failed.
    #[error("witness storage: {0}")]
    Storage(String),
}

impl Refusal {
    /// The HTTP status C2SP `tlog-witness` prescribes.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnknownLog(_) => StatusCode::NOT_FOUND,
            Self::BadSignature(_) => StatusCode::FORBIDDEN,
            Self::SizeMismatch { .. } | Self::ConflictingRoot { .. } => StatusCode::CONFLICT,
            Self::BadProof { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// redb reports each kind of operation with its own error type; all are storage failures.
macro_rules! storage_errors {
    ($($error:ty),*) => {$(
        impl From<$error> for Refusal {
            fn from(error: $error) -> Self {
                Self::Storage(error.to_string())
            }
        }
    )*};
}

storage_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A witness: its key, the logs it knows, and what it last cosigned of each.
pub struct Witness {
    db: Database,
    cosigner: Cosigner,
    logs: Vec<VerifierKey>,
}

impl Witness {
    /// Opens (or creates) the state at `path`, cosigning with `cosigner` the
    /// checkpoints of the `logs` (each named by its origin).
    ///
    /// # Errors
    /// [`Refusal::Storage`] when the database cannot be opened.
    pub fn open(path: &Path, cosigner: Cosigner, logs: Vec<VerifierKey>) -> Result<Self, Refusal> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(LOGS)?;
        txn.commit()?;
        Ok(Self { db, cosigner, logs })
    }

    /// The key clients pin to check this witness's cosignatures.
    pub fn cosigner_key(&self) -> &CosignerKey {
        self.cosigner.verifier_key()
    }

    /// The latest checkpoint cosigned for `origin`, if any.
    ///
    /// # Errors
    /// [`Refusal::Storage`] when the database cannot be read or holds garbage.
    pub fn latest(&self, origin: &str) -> Result<Option<SignedCheckpoint>, Refusal> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOGS)?;
        let stored = table.get(origin)?;
        stored
            .map(|note| stored_checkpoint(note.value()))
            .transpose()
    }

    /// Handles one `add-checkpoint` request body at time `now` (POSIX
    /// seconds): the spec's checks in its order, then the new checkpoint is
    /// stored and its cosignature line returned. Checking the old size and
    /// storing the new checkpoint are one write transaction.
    ///
    /// # Errors
    /// The [`Refusal`] whose status the spec prescribes.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<Vec<NoteSignature>, Refusal> {
        let request =
            AddCheckpoint::parse(body).map_err(|error| Refusal::BadRequest(error.to_string()))?;
        let origin = request.checkpoint.checkpoint().origin.clone();
        let log_key = self
            .logs
            .iter()
            .find(|key| key.name() == origin)
            .ok_or_else(|| Refusal::UnknownLog(origin.clone()))?;
        let offered = request
            .checkpoint
            .verify(log_key)
            .map_err(|error| Refusal::BadSignature(error.to_string()))?;
        if request.old_size > offered.tree_size {
            return Err(Refusal::BadRequest(format!(
                "old size {} exceeds the checkpoint's {}",
                request.old_size, offered.tree_size
            )));
        }
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(LOGS)?;
            let stored = table
                .get(origin.as_str())?
                .map(|note| stored_checkpoint(note.value()))
                .transpose()?;
            let stored = stored.as_ref().map(SignedCheckpoint::checkpoint);
            check_extends(stored, request.old_size, &request.proof, offered)?;
            table.insert(origin.as_str(), request.checkpoint.to_string().as_bytes())?;
        }
        txn.commit()?;
        let line = self
            .cosigner
            .cosign(request.checkpoint.note().text(), now)
            .map_err(|error| Refusal::BadRequest(error.to_string()))?;
        tracing::info!(%origin, tree_size = offered.tree_size, "cosigned");
        Ok(vec![line])
    }
}

/// Checks that `offered` extends `stored` (the checkpoint last cosigned, if
/// any) by `proof`, the request having claimed `old_size` for `stored`.
fn check_extends(
    stored: Option<&Checkpoint>,
    old_size: u64,
    proof: &[cloister_ledger_verify::Hash],
    offered: &Checkpoint,
) -> Result<(), Refusal> {
    let stored_size = stored.map_or(0, |checkpoint| checkpoint.tree_size);
    if old_size != stored_size {
        return Err(Refusal::SizeMismatch {
            stored: stored_size,
        });
    }
    let bad_proof = |reason| Refusal::BadProof {
        from: stored_size,
        reason,
    };
    let Some(stored) = stored else {
        // Nothing cosigned yet: the first checkpoint is taken as it is.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(bad_proof(ProofError::WrongLength))
        };
    };
    if stored.tree_size == offered.tree_size && stored.root_hash != offered.root_hash {
        return Err(Refusal::ConflictingRoot {
            stored: stored_size,
        });
    }
    verify_consistency(
        stored.tree_size,
        offered.tree_size,
        proof,
        &stored.root_hash,
        &offered.root_hash,
    )
    .map_err(bad_proof)
}

fn stored_checkpoint(note: &[u8]) -> Result<SignedCheckpoint, Refusal> {
    SignedCheckpoint::parse(note)
        .map_err(|error| Refusal::Storage(format!("stored checkpoint: {error}")))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        match self {
            Self::SizeMismatch { stored } | Self::ConflictingRoot { stored } => (
                status,
                [(header::CONTENT_TYPE, SIZE_CONTENT_TYPE)],
                format!("{stored}\n"),
            )
                .into_response(),
            Self::Storage(error) => {
                tracing::error!(%error, "witness storage failed");
                (status, "internal error\n").into_response()
            }
            other => {
                tracing::warn!(refusal = %other, "checkpoint not cosigned");
                (status, format!("{other}\n")).into_response()
            }
        }
    }
}

async fn add_checkpoint(
    State(witness): State<Arc<Witness>>,
    body: Bytes,
) -> Result<Response, Refusal> {
    let lines = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now_secs()))
        .await
        .map_err(|error| Refusal::Storage(format!("witness task failed: {error}")))??;
    let body: String = lines.iter().map(ToString::to_string).collect();
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response())
}

/// The witness's HTTP API: `POST /add-checkpoint` and `GET /healthz`.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route(ADD_CHECKPOINT, post(add_checkpoint))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(witness)
}

/// Serves `witness` on a free loopback port, as a task of the current tokio
/// runtime, and returns its base URL.
///
/// # Errors
/// No loopback port can be bound.
pub async fn spawn_on_loopback(witness: Witness) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = router(Arc::new(witness));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
