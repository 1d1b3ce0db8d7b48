//! A small blocking client of the ledger's HTTP API, for the binary's
//! `submit` and `verify` commands and the release tooling.

use std::time::Duration;

use cloister_ledger_verify::api::{
    ConsistencyProof, EntryResponse, ErrorResponse, InclusionProof, SubmitResponse,
};
use cloister_ledger_verify::client::{LogVerifier, VerifyError};
use cloister_ledger_verify::entry::SignedEntry;
use cloister_ledger_verify::tree_head::SignedTreeHead;
use cloister_wire::ledger;
use serde::de::DeserializeOwned;

/// How long one exchange with the ledger may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call to the ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The ledger could not be reached or the exchange broke off.
    #[error("{url}: {source}")]
    Transport {
        /// The URL called.
        url: String,
        /// The cause.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The ledger answered with an error status; `code` is its
    /// machine-readable error (`not_admitted`, `not_found`, ...) when it sent one.
    #[error("{url}: {status}: {message}")]
    Refused {
        /// The URL called.
        url: String,
        /// HTTP status.
        status: u16,
        /// The ledger's error code, if the body was an error document.
        code: Option<String>,
        /// The ledger's explanation (or the raw body).
        message: String,
    },
    /// A success answer that is not the expected JSON.
    #[error("{url}: undecodable answer: {source}")]
    Decode {
        /// The URL called.
        url: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The answer did not verify against the pinned log key and remembered head.
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

/// The ledger at one base URL, such as `http://127.0.0.1:7400`.
pub struct LedgerClient {
    agent: ureq::Agent,
    base: String,
}

impl LedgerClient {
    /// A client for the ledger at `base`.
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .build()
            .into();
        Self {
            agent,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    fn decode<T: DeserializeOwned>(
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, RemoteError> {
        let transport = |source| RemoteError::Transport {
            url: url.to_owned(),
            source: Box::new(source),
        };
        let mut response = response.map_err(transport)?;
        let status = response.status();
        let body = response.body_mut().read_to_string().map_err(transport)?;
        if !status.is_success() {
            let (code, message) = match serde_json::from_str::<ErrorResponse>(&body) {
                Ok(error) => (Some(error.error), error.message),
                Err(_) => (None, body),
            };
            return Err(RemoteError::Refused {
                url: url.to_owned(),
                status: status.as_u16(),
                code,
                message,
            });
        }
        serde_json::from_str(&body).map_err(|source| RemoteError::Decode {
            url: url.to_owned(),
            source,
        })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, RemoteError> {
        let url = format!("{}{path}", self.base);
        Self::decode(&url, self.agent.get(&url).call())
    }

    /// `POST /v1/entries`.
    pub fn submit(&self, entry: &SignedEntry) -> Result<SubmitResponse, RemoteError> {
        let url = format!("{}{}", self.base, ledger::ENTRIES);
        let body = serde_json::to_vec(entry).map_err(|source| RemoteError::Decode {
            url: url.clone(),
            source,
        })?;
        let response = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(&body[..]);
        Self::decode(&url, response)
    }

    /// `GET /v1/tree-head`.
    pub fn tree_head(&self) -> Result<SignedTreeHead, RemoteError> {
        self.get(ledger::TREE_HEAD)
    }

    /// `GET /v1/entries/by-digest/{digest}`: every logged entry vouching for
    /// `digest` (32 or 48 bytes), oldest first. This tells the ledger which
    /// artefact the caller cares about: fine for release tooling, not for
    /// users' clients, which download the log instead.
    pub fn entries_for_digest(&self, digest: &[u8]) -> Result<Vec<EntryResponse>, RemoteError> {
        self.get(&ledger::entries_by_digest(digest))
    }

    /// Brings `verifier` up to the log's latest head (checking consistency with
    /// the head it remembers) and checks that `entry` is included under it.
    pub fn verify_entry(
        &self,
        verifier: &mut LogVerifier,
        entry: &SignedEntry,
    ) -> Result<InclusionProof, RemoteError> {
        let head = self.tree_head()?;
        let proof = match verifier.consistency_range(&head.head) {
            Some((first, second)) => {
                let proof: ConsistencyProof = self.get(&format!(
                    "{}?first={first}&second={second}",
                    ledger::CONSISTENCY_PROOF
                ))?;
                proof.proof
            }
            None => Vec::new(),
        };
        verifier.accept_tree_head(head, &proof)?;
        let size = verifier.latest().map_or(0, |latest| latest.head.tree_size);
        let inclusion: InclusionProof = self.get(&format!(
            "{}?leaf_hash={}&tree_size={size}",
            ledger::INCLUSION_PROOF,
            entry.leaf_hash()
        ))?;
        verifier.verify_inclusion(entry, &inclusion)?;
        Ok(inclusion)
    }
}
