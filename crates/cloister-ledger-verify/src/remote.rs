//! The one HTTP client of the ledger's API (feature `http`), async on reqwest.
//!
//! Every party that talks to a ledger goes through [`LedgerClient`]: users'
//! clients keeping their verified view (`cloister_client::ledger::LedgerTrust`),
//! the `cloister-ledger submit` and `verify` commands, and the release tool.
//! Its two verifying calls are the client half of the transparency argument
//! over the network: [`LedgerClient::update_tree_head`] moves a
//! [`LogVerifier`] to the log's latest head only with a consistency proof
//! from the head it remembers, and [`LedgerClient::verify_entry`] proves an
//! entry included under that head.

use cloister_tls::Trust;
use cloister_wire::ledger;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::Hash;
use crate::api::{ConsistencyProof, EntryResponse, ErrorResponse, InclusionProof, SubmitResponse};
use crate::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::client::{LogVerifier, VerifyError};
use crate::entry::SignedEntry;
use crate::tiles::{TileError, TileId, TileSet, plan};
use crate::tree_head::SignedTreeHead;

/// Why a call to the ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The ledger could not be reached, the exchange broke off, or no HTTP
    /// client could be built.
    #[error("{url}: {}", cloister_tls::error_chain(source))]
    Transport {
        /// The URL called.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
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
    /// A tree head or proof did not verify against the pinned log key and
    /// the remembered head: forged head, split view, entry not included.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// A tile that is not one of the tree asked for.
    #[error("{url}: {source}")]
    Tile {
        /// The URL called.
        url: String,
        /// Why.
        #[source]
        source: TileError,
    },
    /// `GET /checkpoint` answered something that is not a signed checkpoint.
    #[error("{url}: not a signed checkpoint: {source}")]
    Checkpoint {
        /// The URL called.
        url: String,
        /// Why.
        #[source]
        source: CheckpointError,
    },
}

/// The ledger at one base URL, such as `http://127.0.0.1:7400`.
#[derive(Debug, Clone)]
pub struct LedgerClient {
    http: reqwest::Client,
    base: String,
}

impl LedgerClient {
    /// A client for the ledger at `base`; each exchange may take `timeout`.
    /// Redirects are not followed: a ledger answers at its own address.
    ///
    /// # Errors
    /// [`RemoteError::Transport`] if no HTTP client can be built.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, RemoteError> {
        Self::with_trust(base, timeout, &Trust::default())
    }

    /// As [`LedgerClient::new`], verifying an `https://` ledger's
    /// certificate against `trust` only.
    ///
    /// # Errors
    /// [`RemoteError::Transport`] if no HTTP client can be built.
    pub fn with_trust(base: &str, timeout: Duration, trust: &Trust) -> Result<Self, RemoteError> {
        let base = base.trim_end_matches('/').to_owned();
        let http = trust
            .http_client()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| RemoteError::Transport {
                url: base.clone(),
                source,
            })?;
        Ok(Self { http, base })
    }

    /// The base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends `request`: a success answer, or its error status as [`RemoteError::Refused`].
    async fn send(
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, RemoteError> {
        let transport = |source| RemoteError::Transport {
            url: url.to_owned(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.bytes().await.map_err(transport)?;
        let (code, message) = match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(error) => (Some(error.error), error.message),
            Err(_) => (None, String::from_utf8_lossy(&body).into_owned()),
        };
        Err(RemoteError::Refused {
            url: url.to_owned(),
            status: status.as_u16(),
            code,
            message,
        })
    }

    /// The body of a success answer to `request`, read whole.
    async fn body(url: &str, request: reqwest::RequestBuilder) -> Result<Vec<u8>, RemoteError> {
        let response = Self::send(url, request).await?;
        let body = response
            .bytes()
            .await
            .map_err(|source| RemoteError::Transport {
                url: url.to_owned(),
                source,
            })?;
        Ok(body.to_vec())
    }

    async fn decode<T: DeserializeOwned>(
        url: String,
        request: reqwest::RequestBuilder,
    ) -> Result<T, RemoteError> {
        let body = Self::body(&url, request).await?;
        serde_json::from_slice(&body).map_err(|source| RemoteError::Decode { url, source })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, RemoteError> {
        let url = format!("{}{path}", self.base);
        let request = self.http.get(&url);
        Self::decode(url, request).await
    }

    /// `POST /v1/entries`.
    ///
    /// # Errors
    /// [`RemoteError::Refused`] with code `not_admitted` when the signatures
    /// do not satisfy the ledger's reviewer policy; any transport or decoding failure.
    pub async fn submit(&self, entry: &SignedEntry) -> Result<SubmitResponse, RemoteError> {
        let url = format!("{}{}", self.base, ledger::ENTRIES);
        let body = serde_json::to_vec(entry).map_err(|source| RemoteError::Decode {
            url: url.clone(),
            source,
        })?;
        let request = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        Self::decode(url, request).await
    }

    /// `GET /v1/tree-head`: the latest signed tree head, unverified.
    ///
    /// # Errors
    /// Any transport, status or decoding failure.
    pub async fn tree_head(&self) -> Result<SignedTreeHead, RemoteError> {
        self.get(ledger::TREE_HEAD).await
    }

    /// `GET /checkpoint`: the log's C2SP checkpoint with its witnesses'
    /// cosignatures, unverified.
    ///
    /// # Errors
    /// Any transport or status failure; [`RemoteError::Checkpoint`] for a
    /// body that is not a signed checkpoint.
    pub async fn checkpoint(&self) -> Result<SignedCheckpoint, RemoteError> {
        let url = format!("{}{}", self.base, ledger::CHECKPOINT);
        let body = Self::body(&url, self.http.get(&url)).await?;
        SignedCheckpoint::parse(&body).map_err(|source| RemoteError::Checkpoint { url, source })
    }

    /// The tiles [`plan`] lists for the tree of `tree_size` leaves, a
    /// consistency proof from the tree of `from` leaves and the leaf hashes
    /// of `leaves`, fetched one after the other (unverified: see
    /// [`TileSet::verify`]).
    ///
    /// # Errors
    /// Any transport or status failure; [`RemoteError::Tile`] for a tile of
    /// the wrong length.
    pub async fn tiles(
        &self,
        tree_size: u64,
        from: Option<u64>,
        leaves: std::ops::Range<u64>,
    ) -> Result<TileSet, RemoteError> {
        let mut tiles = TileSet::new(tree_size);
        for id in plan(tree_size, from, leaves) {
            let url = format!("{}/{}", self.base, id.path());
            let bytes = Self::body(&url, self.http.get(&url)).await?;
            tiles
                .insert(id, &bytes)
                .map_err(|source| RemoteError::Tile { url, source })?;
        }
        Ok(tiles)
    }

    /// `GET /v1/tile/entries/<N>[.p/<W>]`: the entries of level-0 tile `id`
    /// as JSON (unverified: check each against its leaf hash).
    ///
    /// # Errors
    /// Any transport, status or decoding failure.
    pub async fn entry_bundle(&self, id: TileId) -> Result<Vec<SignedEntry>, RemoteError> {
        self.get(&format!("/v1/{}", id.entries_path())).await
    }

    /// `GET /v1/entries/{index}`.
    ///
    /// # Errors
    /// Any transport, status or decoding failure.
    pub async fn entry(&self, index: u64) -> Result<EntryResponse, RemoteError> {
        self.get(&ledger::entry(index)).await
    }

    /// `GET /v1/entries/by-digest/{digest}`: every logged entry vouching for
    /// `digest` (32 or 48 bytes), oldest first. This tells the ledger which
    /// artefact the caller cares about: fine for release tooling, not for
    /// users' clients, which download the log instead.
    ///
    /// # Errors
    /// Any transport, status or decoding failure.
    pub async fn entries_for_digest(
        &self,
        digest: &[u8],
    ) -> Result<Vec<EntryResponse>, RemoteError> {
        self.get(&ledger::entries_by_digest(digest)).await
    }

    /// `GET /v1/proof/consistency`: the proof that the tree of size `second`
    /// extends the one of size `first`.
    ///
    /// # Errors
    /// Any transport, status or decoding failure.
    pub async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, RemoteError> {
        self.get(&format!(
            "{}?first={first}&second={second}",
            ledger::CONSISTENCY_PROOF
        ))
        .await
    }

    /// `GET /v1/proof/inclusion`: where the leaf `leaf_hash` is in the tree of
    /// size `tree_size`, and the audit path proving it.
    ///
    /// # Errors
    /// Any transport, status or decoding failure.
    pub async fn inclusion_proof(
        &self,
        leaf_hash: &Hash,
        tree_size: u64,
    ) -> Result<InclusionProof, RemoteError> {
        self.get(&format!(
            "{}?leaf_hash={leaf_hash}&tree_size={tree_size}",
            ledger::INCLUSION_PROOF
        ))
        .await
    }

    /// Brings `verifier` up to the log's latest tree head, checking its
    /// signature and its consistency with the head `verifier` remembers, and
    /// returns the head `verifier` now holds (the remembered one when the log
    /// offered an older head).
    ///
    /// # Errors
    /// [`RemoteError::Verify`] with [`VerifyError::SplitView`] when the log
    /// contradicts a head it signed before, [`VerifyError::BadSignature`]
    /// for a head the pinned key did not sign; any transport failure.
    pub async fn update_tree_head(
        &self,
        verifier: &mut LogVerifier,
    ) -> Result<SignedTreeHead, RemoteError> {
        let offered = self.tree_head().await?;
        self.move_to(verifier, offered).await
    }

    /// Moves `verifier` to `offered`, a head already fetched (and whatever
    /// else the caller checked about it), with a consistency proof from the
    /// head `verifier` remembers; returns the head `verifier` now holds.
    ///
    /// # Errors
    /// As [`LedgerClient::update_tree_head`].
    pub async fn move_to(
        &self,
        verifier: &mut LogVerifier,
        offered: SignedTreeHead,
    ) -> Result<SignedTreeHead, RemoteError> {
        let proof = match verifier.consistency_range(&offered.head) {
            Some((first, second)) => self.consistency_proof(first, second).await?.proof,
            None => Vec::new(),
        };
        verifier.accept_tree_head(offered, &proof)?;
        Ok(*verifier.latest().ok_or(VerifyError::NoTreeHead)?)
    }

    /// Checks that `entry` is included under the head `verifier` accepted
    /// last, and returns the inclusion proof (whose `leaf_index` is the
    /// entry's place in the log).
    ///
    /// # Errors
    /// [`VerifyError::NoTreeHead`] before any head was accepted,
    /// [`VerifyError::NotIncluded`] when the proof does not hold; any
    /// transport failure.
    pub async fn verify_entry(
        &self,
        verifier: &LogVerifier,
        entry: &SignedEntry,
    ) -> Result<InclusionProof, RemoteError> {
        let size = verifier
            .latest()
            .ok_or(VerifyError::NoTreeHead)?
            .head
            .tree_size;
        let proof = self.inclusion_proof(&entry.leaf_hash(), size).await?;
        verifier.verify_inclusion(entry, &proof)?;
        Ok(proof)
    }
}
