//! The HTTP API: tree heads, entries, proofs and submission under `/v1`,
//! the C2SP checkpoint at `/checkpoint` (with its witnesses' cosignatures),
//! the C2SP tiles and entry bundles under `/tile/` (and the same bundles as
//! JSON entries under `/v1/tile/entries/`), plus `/healthz` and `/metrics`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cloister_ledger::{Ledger, LedgerError};
use cloister_ledger_verify::Hash;
use cloister_ledger_verify::api::{ConsistencyProof, ErrorResponse};
use cloister_ledger_verify::entry::SignedEntry;
use cloister_ledger_verify::tiles::{TILE_WIDTH, TileId, TilePath};
use cloister_wire::ledger;
use serde::Deserialize;

use crate::metrics::{Failure, LedgerMetrics};
use crate::witnesses::Witnesses;

/// C2SP tiles and entry bundles: `/tile/<L>/<N>[.p/<W>]`, `/tile/entries/<N>[.p/<W>]`.
const TILES: &str = "/tile/{*path}";
/// The entry bundles as JSON `SignedEntry` lists, for clients that read entries
/// as the `/v1` API serves them (the spec bundles carry their canonical encoding).
const JSON_BUNDLES: &str = "/v1/tile/entries/{*path}";

/// How long a partial tile may be cached: the next one is wider.
const PARTIAL_TILE_MAX_AGE: &str = "public, max-age=10";
/// A full tile never changes.
const FULL_TILE_MAX_AGE: &str = "public, max-age=31536000, immutable";

/// What every handler shares.
struct AppState {
    ledger: Arc<Ledger>,
    metrics: LedgerMetrics,
    witnesses: Arc<Witnesses>,
}

/// Builds the router over an opened ledger, `/metrics` included, without witnesses.
pub fn router(ledger: Ledger) -> Router {
    routes(state(ledger, Witnesses::none()))
}

/// Builds the router over an opened ledger whose checkpoints `witnesses`
/// cosign: gathers their cosignatures once before returning, then after
/// each append and every `refresh` (keeping the cosignatures fresh while
/// nothing is appended), on a task of the current tokio runtime that ends
/// with the router.
pub async fn witnessed_router(ledger: Ledger, witnesses: Witnesses, refresh: Duration) -> Router {
    let state = state(ledger, witnesses);
    state.witnesses.gather(&state.ledger).await;
    let weak = Arc::downgrade(&state);
    tokio::spawn(async move {
        let mut timer = tokio::time::interval(refresh);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer.tick().await;
        loop {
            timer.tick().await;
            let Some(state) = weak.upgrade() else { return };
            state.witnesses.gather(&state.ledger).await;
        }
    });
    routes(state)
}

fn state(ledger: Ledger, witnesses: Witnesses) -> Arc<AppState> {
    // The metrics read the tree size from the ledger they count for; a weak
    // reference keeps the two from owning each other.
    Arc::new_cyclic(|state: &Weak<AppState>| {
        let state = Weak::clone(state);
        AppState {
            ledger: Arc::new(ledger),
            witnesses: Arc::new(witnesses),
            metrics: LedgerMetrics::new(move || {
                let state = state.upgrade()?;
                match state.ledger.store().tree_head() {
                    Ok(head) => Some(head.head.tree_size),
                    Err(error) => {
                        tracing::error!(%error, "tree size unavailable for metrics");
                        None
                    }
                }
            }),
        }
    })
}

fn routes(state: Arc<AppState>) -> Router {
    let metrics = Arc::clone(state.metrics.server());
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route(ledger::LOG_KEY, get(log_key))
        .route(ledger::TREE_HEAD, get(tree_head))
        .route(ledger::CHECKPOINT, get(checkpoint))
        .route(ledger::ENTRIES, axum::routing::post(submit))
        .route(ledger::ENTRY, get(entry))
        .route(ledger::ENTRIES_BY_DIGEST, get(entries_for_digest))
        .route(ledger::INCLUSION_PROOF, get(inclusion_proof))
        .route(ledger::CONSISTENCY_PROOF, get(consistency_proof))
        .route(TILES, get(tile))
        .route(JSON_BUNDLES, get(json_bundle))
        .with_state(state);
    metrics.instrument(routes)
}

/// A ledger error as an HTTP response with a JSON [`ErrorResponse`] body.
struct ApiError(LedgerError);

impl ApiError {
    /// `error`, counted by kind.
    fn counted(state: &AppState, error: LedgerError) -> Self {
        state.metrics.server().error(Failure::of(&error));
        Self(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self.0 {
            LedgerError::BadEntry(_) | LedgerError::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, "bad_request")
            }
            LedgerError::NotAdmitted(_) => (StatusCode::FORBIDDEN, "not_admitted"),
            LedgerError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self.0, "request failed");
            "internal error".to_owned()
        } else {
            self.0.to_string()
        };
        (
            status,
            Json(ErrorResponse {
                error: code.to_owned(),
                message,
            }),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Runs a blocking ledger call off the async workers, counting failures.
async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    call: impl FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, ApiError> {
    let shared = Arc::clone(state);
    let result = tokio::task::spawn_blocking(move || call(&shared.ledger))
        .await
        .unwrap_or_else(|join_error| {
            Err(LedgerError::Corrupt(format!(
                "ledger task failed: {join_error}"
            )))
        });
    result.map_err(|error| ApiError::counted(state, error))
}

async fn healthz(State(state): State<Arc<AppState>>) -> Result<&'static str, ApiError> {
    blocking(&state, |ledger| ledger.store().tree_head()).await?;
    Ok("ok\n")
}

async fn log_key(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let store = state.ledger.store();
    let key = cloister_ledger_verify::HexBytes(store.log_public_key());
    let vkey = store.checkpoint_key().to_string();
    Json(serde_json::json!({ "public_key": key, "vkey": vkey }))
}

async fn tree_head(
    State(state): State<Arc<AppState>>,
) -> ApiResult<cloister_ledger_verify::tree_head::SignedTreeHead> {
    Ok(Json(
        blocking(&state, |ledger| ledger.store().tree_head()).await?,
    ))
}

async fn checkpoint(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let current = blocking(&state, |ledger| ledger.store().checkpoint()).await?;
    let checkpoint = state.witnesses.published(current);
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            // It changes with every append (C2SP tlog-tiles: no caching beyond seconds).
            (header::CACHE_CONTROL, "no-cache"),
        ],
        checkpoint.to_string(),
    )
        .into_response())
}

async fn entry(
    State(state): State<Arc<AppState>>,
    Path(index): Path<u64>,
) -> ApiResult<cloister_ledger_verify::api::EntryResponse> {
    Ok(Json(
        blocking(&state, move |ledger| ledger.store().entry(index)).await?,
    ))
}

async fn submit(
    State(state): State<Arc<AppState>>,
    Json(entry): Json<SignedEntry>,
) -> ApiResult<cloister_ledger_verify::api::SubmitResponse> {
    let result = blocking(&state, move |ledger| ledger.submit(&entry)).await;
    let metrics = &state.metrics;
    match &result {
        Ok(placed) if placed.appended => {
            metrics.appended.inc();
            tracing::info!(index = placed.index, leaf_hash = %placed.leaf_hash, "entry appended");
            // The submitter gets its answer once the new checkpoint is witnessed.
            state.witnesses.gather(&state.ledger).await;
        }
        Ok(placed) => {
            metrics.duplicates.inc();
            tracing::info!(index = placed.index, "entry already logged");
        }
        Err(ApiError(LedgerError::NotAdmitted(reason))) => {
            tracing::warn!(%reason, "entry not admitted");
        }
        Err(ApiError(LedgerError::BadEntry(reason))) => {
            tracing::warn!(%reason, "malformed entry");
        }
        Err(_) => {}
    }
    Ok(Json(result?))
}

async fn entries_for_digest(
    State(state): State<Arc<AppState>>,
    Path(digest): Path<String>,
) -> ApiResult<Vec<cloister_ledger_verify::api::EntryResponse>> {
    let digest = hex::decode(&digest)
        .ok()
        .filter(|bytes| bytes.len() == 32 || bytes.len() == 48)
        .ok_or_else(|| {
            ApiError::counted(
                &state,
                LedgerError::BadRequest("digest must be 64 or 96 hex digits".into()),
            )
        })?;
    Ok(Json(
        blocking(&state, move |ledger| {
            ledger.store().entries_for_digest(&digest)
        })
        .await?,
    ))
}

#[derive(Deserialize)]
struct InclusionQuery {
    leaf_hash: Hash,
    tree_size: Option<u64>,
}

async fn inclusion_proof(
    State(state): State<Arc<AppState>>,
    Query(query): Query<InclusionQuery>,
) -> ApiResult<cloister_ledger_verify::api::InclusionProof> {
    Ok(Json(
        blocking(&state, move |ledger| {
            ledger
                .store()
                .inclusion_proof(&query.leaf_hash, query.tree_size)
        })
        .await?,
    ))
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    first: u64,
    second: u64,
}

async fn consistency_proof(
    State(state): State<Arc<AppState>>,
    Query(ConsistencyQuery { first, second }): Query<ConsistencyQuery>,
) -> ApiResult<ConsistencyProof> {
    let proof = blocking(&state, move |ledger| {
        ledger.store().consistency_proof(first, second)
    })
    .await?;
    Ok(Json(ConsistencyProof {
        first,
        second,
        proof,
    }))
}

/// The tile a request path names, or a 404.
fn tile_path(state: &AppState, path: &str) -> Result<TilePath, ApiError> {
    TilePath::parse(path).ok_or_else(|| {
        ApiError::counted(state, LedgerError::NotFound(format!("no tile at {path:?}")))
    })
}

/// The first leaf and the number of entries of a level-0 tile's bundle.
fn bundle_range(id: TileId) -> (u64, u64) {
    (id.first_leaf(), u64::from(id.width))
}

fn cached(id: TileId, content_type: &'static str, body: impl IntoResponse) -> Response {
    let max_age = if id.is_full() {
        FULL_TILE_MAX_AGE
    } else {
        PARTIAL_TILE_MAX_AGE
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, max_age),
        ],
        body,
    )
        .into_response()
}

async fn tile(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let body = match tile_path(&state, &path)? {
        TilePath::Hashes(id) => {
            // Heights above 255, like indices past the end, name no stored hash.
            let start = id
                .level
                .checked_mul(8)
                .zip(id.index.checked_mul(u64::from(TILE_WIDTH)))
                .ok_or_else(|| LedgerError::NotFound(format!("no tile at {path:?}")));
            blocking(&state, move |ledger| {
                let (height, first) = start?;
                ledger
                    .store()
                    .subtree_hashes(height, first, u64::from(id.width))
            })
            .await
            .map(|bytes| cached(id, "application/octet-stream", bytes))?
        }
        TilePath::Entries(id) => {
            let (first, count) = bundle_range(id);
            let entries =
                blocking(&state, move |ledger| ledger.store().entries(first, count)).await?;
            let mut bundle = Vec::new();
            for entry in entries {
                let data = entry.leaf_data();
                let length = u16::try_from(data.len()).map_err(|_| {
                    ApiError::counted(
                        &state,
                        LedgerError::Corrupt("an entry longer than a bundle allows".into()),
                    )
                })?;
                bundle.extend_from_slice(&length.to_be_bytes());
                bundle.extend_from_slice(&data);
            }
            cached(id, "application/octet-stream", bundle)
        }
    };
    Ok(body)
}

async fn json_bundle(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let TilePath::Entries(id) = tile_path(&state, &format!("entries/{path}"))? else {
        return Err(ApiError::counted(
            &state,
            LedgerError::NotFound(format!("no entry bundle at {path:?}")),
        ));
    };
    let (first, count) = bundle_range(id);
    let entries = blocking(&state, move |ledger| ledger.store().entries(first, count)).await?;
    Ok(cached(id, "application/json", Json(entries)))
}
