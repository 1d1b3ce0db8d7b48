//! A small blocking client of the ledger's HTTP API, for the `submit` and
//! `verify` commands (and the release tooling that calls them).

use anyhow::{Context, bail};
use cloister_ledger_verify::api::{
    ConsistencyProof, ErrorResponse, InclusionProof, SubmitResponse,
};
use cloister_ledger_verify::client::LogVerifier;
use cloister_ledger_verify::entry::SignedEntry;
use cloister_ledger_verify::tree_head::SignedTreeHead;
use serde::de::DeserializeOwned;

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
            .build()
            .into();
        Self {
            agent,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    fn decode<T: DeserializeOwned>(
        what: &str,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> anyhow::Result<T> {
        let status = response.status();
        let body = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading {what}"))?;
        if !status.is_success() {
            match serde_json::from_str::<ErrorResponse>(&body) {
                Ok(error) => bail!("{what}: {status}: {}", error.message),
                Err(_) => bail!("{what}: {status}: {body}"),
            }
        }
        serde_json::from_str(&body).with_context(|| format!("decoding {what}"))
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let response = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        Self::decode(&url, response)
    }

    /// `POST /v1/entries`.
    pub fn submit(&self, entry: &SignedEntry) -> anyhow::Result<SubmitResponse> {
        let url = format!("{}/v1/entries", self.base);
        let body = serde_json::to_vec(entry)?;
        let response = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(&body[..])
            .with_context(|| format!("POST {url}"))?;
        Self::decode(&url, response)
    }

    /// `GET /v1/tree-head`.
    pub fn tree_head(&self) -> anyhow::Result<SignedTreeHead> {
        self.get("/v1/tree-head")
    }

    /// Brings `verifier` up to the log's latest head (checking consistency with
    /// the head it remembers) and checks that `entry` is included under it.
    pub fn verify_entry(
        &self,
        verifier: &mut LogVerifier,
        entry: &SignedEntry,
    ) -> anyhow::Result<InclusionProof> {
        let head = self.tree_head()?;
        let proof = match verifier.latest() {
            Some(known) if known.head.tree_size != head.head.tree_size => {
                let first = known.head.tree_size.min(head.head.tree_size);
                let second = known.head.tree_size.max(head.head.tree_size);
                let proof: ConsistencyProof = self.get(&format!(
                    "/v1/proof/consistency?first={first}&second={second}"
                ))?;
                proof.proof
            }
            _ => Vec::new(),
        };
        verifier.accept_tree_head(head, &proof)?;
        let size = verifier.latest().map_or(0, |latest| latest.head.tree_size);
        let inclusion: InclusionProof = self.get(&format!(
            "/v1/proof/inclusion?leaf_hash={}&tree_size={size}",
            entry.leaf_hash()
        ))?;
        verifier.verify_inclusion(entry, &inclusion)?;
        Ok(inclusion)
    }
}
