//! Gathering witness cosignatures for the log's checkpoints (C2SP `tlog-witness`).
//!
//! After each append, and on a timer (so the cosignatures' timestamps stay
//! fresh while nothing is appended), the log sends its latest checkpoint to
//! every configured witness with a consistency proof from the size that
//! witness last cosigned, and keeps the cosignatures that verify under the
//! witness's pinned key. `GET /checkpoint` serves the newest checkpoint a
//! round was completed for, with the cosignatures gathered for exactly it.
//! A witness that is down or refuses only costs its own cosignature: the log
//! goes on appending and publishing, and clients that require that witness
//! refuse the checkpoint, as they should.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use cloister_ledger::{Ledger, LedgerError};
use cloister_ledger_verify::checkpoint::SignedCheckpoint;
use cloister_ledger_verify::cosignature::CosignerKey;
use cloister_ledger_verify::note::NoteSignature;
use cloister_ledger_verify::witness::{ADD_CHECKPOINT, AddCheckpoint, SIZE_CONTENT_TYPE};
use cloister_tls::{PlainHttp, TlsError, Trust, check_url};
use serde::Deserialize;

/// One witness in the ledger's configuration (`[[witness]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// The witness's submission prefix, e.g. `http://127.0.0.1:7500`.
    pub url: String,
    /// The witness's name, as its vkey names it.
    pub name: String,
    /// The witness's `cosignature/v1` vkey (`<name>+<id>+<base64(0x04 || key)>`).
    pub vkey: String,
}

/// A witness configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WitnessConfigError {
    /// The vkey does not parse or is named otherwise.
    #[error("witness {name:?}: {reason}")]
    BadVkey {
        /// The configured name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// No HTTP client could be built.
    #[error("HTTP client for witnesses: {0}")]
    Http(#[from] reqwest::Error),
    /// A witness URL is plain HTTP beyond loopback, or not a URL.
    #[error("witness {name:?}: {source}")]
    Url {
        /// The configured name.
        name: String,
        /// Why.
        #[source]
        source: Box<TlsError>,
    },
}

struct Peer {
    url: String,
    key: CosignerKey,
    /// The size this witness last cosigned, as far as the log knows
    /// (changed only during a round).
    size: AtomicU64,
}

/// The witnesses of one log, what each last cosigned, and the cosigned checkpoint.
pub struct Witnesses {
    http: reqwest::Client,
    peers: Vec<Peer>,
    /// One round at a time.
    round: tokio::sync::Mutex<()>,
    /// The newest checkpoint a round completed for, with its cosignatures.
    published: RwLock<Option<SignedCheckpoint>>,
}

impl Witnesses {
    /// No witnesses: `/checkpoint` carries the log's signature only.
    pub fn none() -> Self {
        Self {
            http: reqwest::Client::new(),
            peers: Vec::new(),
            round: tokio::sync::Mutex::new(()),
            published: RwLock::new(None),
        }
    }

    /// The configured witnesses; each exchange with one may take `timeout`.
    ///
    /// # Errors
    /// [`WitnessConfigError`] for a bad vkey or a name that is not the vkey's.
    pub fn new(configs: &[WitnessConfig], timeout: Duration) -> Result<Self, WitnessConfigError> {
        Self::with_trust(configs, timeout, &Trust::default())
    }

    /// As [`Witnesses::new`], over HTTPS to witnesses whose certificate
    /// chains to `trust`; plain `http://` only to a loopback witness.
    ///
    /// # Errors
    /// As [`Witnesses::new`], or [`WitnessConfigError::Url`].
    pub fn with_trust(
        configs: &[WitnessConfig],
        timeout: Duration,
        trust: &Trust,
    ) -> Result<Self, WitnessConfigError> {
        let peers = configs
            .iter()
            .map(|config| {
                check_url("witness URL", &config.url, PlainHttp::Loopback).map_err(|source| {
                    WitnessConfigError::Url {
                        name: config.name.clone(),
                        source: Box::new(source),
                    }
                })?;
                let key =
                    CosignerKey::parse_named(&config.vkey, &config.name).map_err(|error| {
                        WitnessConfigError::BadVkey {
                            name: config.name.clone(),
                            reason: error.to_string(),
                        }
                    })?;
                Ok(Peer {
                    url: config.url.trim_end_matches('/').to_owned(),
                    key,
                    size: AtomicU64::new(0),
                })
            })
            .collect::<Result<Vec<_>, WitnessConfigError>>()?;
        let http = trust
            .http_client()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            round: tokio::sync::Mutex::new(()),
            peers,
            published: RwLock::new(None),
        })
    }

    /// Whether any witness is configured.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// What `/checkpoint` serves: the newest checkpoint a round completed
    /// for, with its cosignatures; `current` before the first round.
    pub fn published(&self, current: SignedCheckpoint) -> SignedCheckpoint {
        if self.is_empty() {
            return current;
        }
        self.published
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or(current)
    }

    /// One round: sends the ledger's latest checkpoint to every witness and
    /// publishes it with the cosignatures that verify. Failures are logged,
    /// never returned: a witness cannot stop the log.
    pub async fn gather(self: &Arc<Self>, ledger: &Arc<Ledger>) {
        if self.is_empty() {
            return;
        }
        let _one_round_at_a_time = self.round.lock().await;
        let checkpoint = match blocking(ledger, |ledger| ledger.store().checkpoint()).await {
            Ok(checkpoint) => checkpoint,
            Err(error) => {
                tracing::error!(%error, "no checkpoint to send to the witnesses");
                return;
            }
        };
        // All witnesses at once: each answers while the others are waited on.
        let mut asks = tokio::task::JoinSet::new();
        for peer in 0..self.peers.len() {
            let (this, ledger, checkpoint) =
                (Arc::clone(self), Arc::clone(ledger), checkpoint.clone());
            asks.spawn(async move { this.ask(&this.peers[peer], &ledger, &checkpoint).await });
        }
        let mut cosigned = checkpoint;
        let mut count = 0usize;
        while let Some(answer) = asks.join_next().await {
            let Ok(Some(line)) = answer else { continue };
            match cosigned.add_cosignature(line) {
                Ok(()) => count += 1,
                Err(error) => tracing::warn!(%error, "cosignature not added"),
            }
        }
        tracing::debug!(
            tree_size = cosigned.checkpoint().tree_size,
            cosignatures = count,
            witnesses = self.peers.len(),
            "witness round done"
        );
        *self
            .published
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(cosigned);
    }

    /// Asks one witness to cosign `checkpoint`, starting from the size it
    /// last cosigned (updated), and returns its valid cosignature.
    async fn ask(
        &self,
        peer: &Peer,
        ledger: &Arc<Ledger>,
        checkpoint: &SignedCheckpoint,
    ) -> Option<NoteSignature> {
        let name = peer.key.name();
        let new_size = checkpoint.checkpoint().tree_size;
        // A witness whose size we do not know answers 409 with it: retry once from there.
        for _ in 0..2 {
            let old = peer.size.load(Ordering::Relaxed);
            if old > new_size {
                tracing::error!(
                    witness = name,
                    witness_size = old,
                    tree_size = new_size,
                    "witness has cosigned a larger tree than this log's"
                );
                return None;
            }
            let proof = match blocking(ledger, move |ledger| {
                ledger.store().consistency_proof(old, new_size)
            })
            .await
            {
                Ok(proof) => proof,
                Err(error) => {
                    tracing::error!(witness = name, %error, "no consistency proof for the witness");
                    return None;
                }
            };
            let body = AddCheckpoint {
                old_size: old,
                proof,
                checkpoint: checkpoint.clone(),
            }
            .to_string();
            let url = format!("{}{ADD_CHECKPOINT}", peer.url);
            let response = match self.http.post(&url).body(body).send().await {
                Ok(response) => response,
                Err(error) => {
                    tracing::warn!(witness = name, %error, "witness unreachable");
                    return None;
                }
            };
            let status = response.status();
            let is_size = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .is_some_and(|value| value.as_bytes() == SIZE_CONTENT_TYPE.as_bytes());
            let text = match response.text().await {
                Ok(text) => text,
                Err(error) => {
                    tracing::warn!(witness = name, %error, "witness answer broke off");
                    return None;
                }
            };
            if status == reqwest::StatusCode::CONFLICT && is_size {
                match text.trim_end_matches('\n').parse() {
                    Ok(witness_size) if witness_size != old => {
                        peer.size.store(witness_size, Ordering::Relaxed);
                        continue;
                    }
                    _ => {
                        tracing::error!(witness = name, answer = %text, "witness refused the checkpoint as conflicting");
                        return None;
                    }
                }
            }
            if !status.is_success() {
                tracing::warn!(witness = name, %status, answer = %text.trim_end(), "witness refused the checkpoint");
                return None;
            }
            peer.size.store(new_size, Ordering::Relaxed);
            return Self::valid_cosignature(peer, checkpoint, &text);
        }
        None
    }

    /// The first line of `answer` that is `peer`'s valid cosignature of `checkpoint`.
    fn valid_cosignature(
        peer: &Peer,
        checkpoint: &SignedCheckpoint,
        answer: &str,
    ) -> Option<NoteSignature> {
        let name = peer.key.name();
        let lines = match NoteSignature::parse_lines(answer) {
            Ok(lines) => lines,
            Err(error) => {
                tracing::warn!(witness = name, %error, "witness answered no signature lines");
                return None;
            }
        };
        let text = checkpoint.note().text();
        let valid = lines
            .into_iter()
            .find(|line| matches!(peer.key.verify(text, line), Ok(Some(_))));
        if valid.is_none() {
            tracing::warn!(
                witness = name,
                "witness answered no valid cosignature under its pinned key"
            );
        }
        valid
    }
}

/// Runs a blocking ledger call off the async workers.
async fn blocking<T: Send + 'static>(
    ledger: &Arc<Ledger>,
    call: impl FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, LedgerError> {
    let ledger = Arc::clone(ledger);
    tokio::task::spawn_blocking(move || call(&ledger))
        .await
        .unwrap_or_else(|join_error| {
            Err(LedgerError::Corrupt(format!(
                "ledger task failed: {join_error}"
            )))
        })
}
