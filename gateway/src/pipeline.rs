//! The request pipeline: decapsulate, check, route, encapsulate.

use std::io::Cursor;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cloister_wire::{media, problem, unix_now};

use bhttp::{Message, Mode, StatusCode};
use cloister_ohttp_keys::{KeyRing, leading_key_id};
use cloister_state_store::StateError;
use ohttp::ServerResponse;
use thiserror::Error;

use crate::keys::KeyService;
use crate::metrics::{Metrics, Rejection};
use crate::replay::{ReplayGuard, ReplayVerdict};
use crate::router::{RouteError, Router};
use crate::token::{Redeemed, TokenRedeemer, TokenRejection};

/// Length of the request header before `enc`: key id, KEM, KDF and AEAD ids (RFC 9458 §4.3).
const REQUEST_HEADER_LEN: usize = 7;
/// Length of `enc` for DHKEM(X25519, HKDF-SHA256), the only KEM the gateway offers.
const X25519_ENC_LEN: usize = 32;

/// A failure before the request could be decrypted. Answered in the clear,
/// so it says nothing beyond what the relay could see anyway.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum OuterError {
    /// The body is not `message/ohttp-req`.
    #[error("unsupported media type")]
    BadMediaType,
    /// The key id is not (or no longer) held.
    #[error("unknown key id {0}")]
    UnknownKeyId(u8),
    /// The encapsulation is malformed, truncated, uses an unoffered suite,
    /// or does not decrypt. One error on purpose: RFC 9458 §5.3 asks that
    /// nothing more be revealed.
    #[error("request could not be decapsulated")]
    Decapsulation,
}

/// A decrypted request: the parsed inner message (or why it did not parse),
/// the encapsulated key for the replay check, and the means to encrypt the answer.
pub struct Decapsulated {
    /// The inner Binary HTTP message, or its parse error.
    pub inner: Result<Message, bhttp::Error>,
    /// The request's `enc`: unique per encapsulation.
    pub enc: Vec<u8>,
    /// Encrypts the response to this request.
    pub responder: ServerResponse,
}

/// Decapsulate `body` with the key it names and parse the inner Binary HTTP
/// message. This is the code path that handles untrusted bytes first; the
/// fuzz target and the benchmark call it directly.
///
/// # Errors
/// [`OuterError::UnknownKeyId`] or [`OuterError::Decapsulation`].
pub fn decapsulate_and_parse(keys: &KeyRing, body: &[u8]) -> Result<Decapsulated, OuterError> {
    let key_id = leading_key_id(body).ok_or(OuterError::Decapsulation)?;
    let server = keys
        .server(key_id)
        .ok_or(OuterError::UnknownKeyId(key_id))?;
    let (plaintext, responder) = server
        .decapsulate(body)
        .map_err(|_| OuterError::Decapsulation)?;
    // Decapsulation succeeded, so the body holds the full header and enc.
    let enc = body
        .get(REQUEST_HEADER_LEN..REQUEST_HEADER_LEN + X25519_ENC_LEN)
        .ok_or(OuterError::Decapsulation)?;
    let inner = Message::read_bhttp(&mut Cursor::new(plaintext.as_slice()));
    Ok(Decapsulated {
        inner,
        enc: enc.to_vec(),
        responder,
    })
}

/// The outer answer when the gateway itself failed.
const INTERNAL_ERROR: GatewayResponse = GatewayResponse {
    status: 500,
    content_type: None,
    body: Vec::new(),
};

/// What the HTTP layer sends back for one encapsulated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayResponse {
    /// Outer HTTP status.
    pub status: u16,
    /// Outer content type, if there is a body.
    pub content_type: Option<&'static str>,
    /// Outer body.
    pub body: Vec<u8>,
}

impl GatewayResponse {
    fn outer_error(error: &OuterError) -> Self {
        match error {
            OuterError::BadMediaType => Self {
                status: 415,
                content_type: None,
                body: Vec::new(),
            },
            OuterError::UnknownKeyId(_) => Self {
                status: 400,
                content_type: Some(media::PROBLEM_JSON),
                body: problem_json(problem::OHTTP_KEY, "key identifier unknown"),
            },
            OuterError::Decapsulation => Self {
                status: 400,
                content_type: None,
                body: Vec::new(),
            },
        }
    }
}

fn problem_json(problem_type: &str, title: &str) -> Vec<u8> {
    serde_json::json!({ "type": problem_type, "title": title })
        .to_string()
        .into_bytes()
}

/// A rejection after decryption, sent back encapsulated.
#[derive(Clone, Copy)]
struct InnerRejection {
    status: u16,
    problem_type: &'static str,
    title: &'static str,
    rejection: Rejection,
}

impl InnerRejection {
    const fn new(
        status: u16,
        problem_type: &'static str,
        title: &'static str,
        rejection: Rejection,
    ) -> Self {
        Self {
            status,
            problem_type,
            title,
            rejection,
        }
    }
}

/// The state store could not record a spend or a request: refused (503),
/// because accepting it unrecorded would let it be replayed.
const STORE_UNAVAILABLE: InnerRejection = InnerRejection::new(
    503,
    "about:blank",
    "token store unavailable",
    Rejection::StateStore,
);

/// The gateway: keys, replay defence, token redemption and routing.
pub struct Gateway<R, T> {
    keys: Arc<KeyService>,
    replay: ReplayGuard,
    tokens: T,
    router: R,
    metrics: Arc<Metrics>,
}

impl<R: Router, T: TokenRedeemer> Gateway<R, T> {
    /// Assemble a gateway.
    pub fn new(
        keys: Arc<KeyService>,
        replay: ReplayGuard,
        tokens: T,
        router: R,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            keys,
            replay,
            tokens,
            router,
            metrics,
        }
    }

    /// The key service (for the key configuration endpoint and rotation).
    #[must_use]
    pub fn keys(&self) -> &Arc<KeyService> {
        &self.keys
    }

    /// The gateway's metrics.
    #[must_use]
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Handle one POSTed body with its `Content-Type`.
    pub async fn handle(&self, content_type: Option<&str>, body: &[u8]) -> GatewayResponse {
        self.metrics.encapsulated(body.len());
        let is_ohttp = content_type
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|media| media.trim().eq_ignore_ascii_case(media::OHTTP_REQUEST));
        if !is_ohttp {
            self.metrics.rejected(Rejection::BadMediaType);
            return GatewayResponse::outer_error(&OuterError::BadMediaType);
        }
        let opened = match self
            .keys
            .with_ring(|ring| decapsulate_and_parse(ring, body))
        {
            Ok(opened) => opened,
            Err(error) => {
                self.metrics.rejected(match error {
                    OuterError::UnknownKeyId(_) => Rejection::UnknownKeyId,
                    OuterError::BadMediaType | OuterError::Decapsulation => {
                        Rejection::DecapsulationFailed
                    }
                });
                tracing::debug!(%error, "outer error");
                return GatewayResponse::outer_error(&error);
            }
        };
        let inner = match self.process(opened.inner, &opened.enc).await {
            Ok(response) => {
                self.metrics.routed();
                response
            }
            Err(rejection) => {
                self.metrics.rejected(rejection.rejection);
                tracing::debug!(
                    status = rejection.status,
                    title = rejection.title,
                    "inner request refused"
                );
                match rejection_message(&rejection) {
                    Some(message) => message,
                    None => return INTERNAL_ERROR,
                }
            }
        };
        let response = encapsulate(opened.responder, &inner);
        self.metrics.answered(response.body.len());
        response
    }

    async fn process(
        &self,
        inner: Result<Message, bhttp::Error>,
        enc: &[u8],
    ) -> Result<Message, InnerRejection> {
        const NOT_A_REQUEST: InnerRejection = InnerRejection::new(
            400,
            "about:blank",
            "not a Binary HTTP request",
            Rejection::BadInnerRequest,
        );
        let request = inner.map_err(|_| NOT_A_REQUEST)?;
        if !request.control().is_request() {
            return Err(NOT_A_REQUEST);
        }
        let date = request
            .header()
            .get(b"date")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
        let date_problem = InnerRejection::new(
            400,
            problem::DATE,
            "date not acceptable",
            Rejection::DateRejected,
        );
        let date = date.ok_or(date_problem)?.as_secs();
        let now = unix_now();
        if !self.replay.date_acceptable(date, now) {
            return Err(date_problem);
        }
        // The token before the replay store: only a request that paid may
        // take a place in it, so a flood without tokens cannot fill it and
        // turn paying clients away. A replayed request carries a token
        // already spent, and is refused here or by the replay check.
        let authorization = request.header().get(b"authorization");
        match self.tokens.redeem(authorization).await {
            Ok(Redeemed::IssuerKey(key_id)) => self.metrics.redeemed(&key_id),
            Ok(Redeemed::Unchecked) => {}
            Err(rejection) => {
                let kind = match &rejection {
                    TokenRejection::StoreUnavailable(error) => {
                        // Fail closed: no token is accepted while spends cannot be recorded.
                        tracing::error!(%error, "token store unavailable; request refused");
                        return Err(STORE_UNAVAILABLE);
                    }
                    TokenRejection::Missing => Rejection::TokenMissing,
                    TokenRejection::DoubleSpend => Rejection::TokenDoubleSpent,
                    TokenRejection::Invalid(_) | TokenRejection::NoRedeemer => {
                        Rejection::TokenInvalid
                    }
                };
                tracing::debug!(%rejection, "token refused");
                return Err(InnerRejection::new(
                    401,
                    "about:blank",
                    "token required",
                    kind,
                ));
            }
        }
        match self.replay.check_and_record(enc, date, now).await {
            Ok(ReplayVerdict::Fresh) => {}
            Ok(ReplayVerdict::DateOutOfWindow) => return Err(date_problem),
            Ok(ReplayVerdict::Replayed) => {
                return Err(InnerRejection::new(
                    400,
                    problem::REPLAYED,
                    "request replayed",
                    Rejection::Replayed,
                ));
            }
            Err(StateError::Full { .. }) => {
                return Err(InnerRejection::new(
                    503,
                    "about:blank",
                    "busy",
                    Rejection::ReplayStoreFull,
                ));
            }
            Err(error) => {
                tracing::error!(%error, "replay store unavailable; request refused");
                return Err(STORE_UNAVAILABLE);
            }
        }
        let request = without_authorization(&request);
        self.router.route(request).await.map_err(|error| {
            tracing::warn!(%error, "routing failed");
            match error {
                RouteError::SessionHostGone(_) => InnerRejection::new(
                    503,
                    problem::SESSION_HOST_GONE,
                    "the host of this session is gone: open a new session",
                    Rejection::SessionHostGone,
                ),
                RouteError::Timeout => InnerRejection::new(
                    504,
                    "about:blank",
                    "host unavailable",
                    Rejection::RouteFailed,
                ),
                RouteError::Unavailable(_) | RouteError::BadAnswer(_) | RouteError::Hosts(_) => {
                    InnerRejection::new(
                        502,
                        "about:blank",
                        "host unavailable",
                        Rejection::RouteFailed,
                    )
                }
            }
        })
    }
}

/// The encapsulated answer to a rejection; `None` only for a status outside
/// 100..=599, which no rejection here uses.
fn rejection_message(rejection: &InnerRejection) -> Option<Message> {
    let status = StatusCode::try_from(rejection.status).ok()?;
    let mut message = Message::response(status);
    message.put_header("content-type", media::PROBLEM_JSON);
    if rejection.problem_type == problem::DATE {
        // RFC 9458 §6.5.2: tell the client our time so it can correct its clock and retry.
        message.put_header("date", httpdate::fmt_http_date(SystemTime::now()));
    }
    message.write_content(problem_json(rejection.problem_type, rejection.title));
    Some(message)
}

/// The request minus its `Authorization` header: the token was for the
/// gateway, and the host has no business seeing it.
pub(crate) fn without_authorization(request: &Message) -> Message {
    let control = request.control();
    let part = |p: Option<&[u8]>| p.unwrap_or_default().to_vec();
    let mut copy = Message::request(
        part(control.method()),
        part(control.scheme()),
        part(control.authority()),
        part(control.path()),
    );
    for field in request
        .header()
        .iter()
        .filter(|f| !f.name().eq_ignore_ascii_case(b"authorization"))
    {
        copy.put_header(field.name(), field.value());
    }
    copy.write_content(request.content());
    for field in request.trailer().iter() {
        copy.put_trailer(field.name(), field.value());
    }
    copy
}

fn encapsulate(responder: ServerResponse, inner: &Message) -> GatewayResponse {
    let mut encoded = Vec::new();
    let sealed = inner
        .write_bhttp(Mode::KnownLength, &mut encoded)
        .ok()
        .and_then(|()| responder.encapsulate(&encoded).ok());
    match sealed {
        Some(body) => GatewayResponse {
            status: 200,
            content_type: Some(media::OHTTP_RESPONSE),
            body,
        },
        None => {
            tracing::error!("response encapsulation failed");
            INTERNAL_ERROR
        }
    }
}
