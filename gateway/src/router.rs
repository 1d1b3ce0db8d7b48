//! Where decapsulated requests go: the [`Router`] seam between the gateway
//! and the hosts.
//!
//! A client's RA-TLS session with a host rides inside many OHTTP requests;
//! all of them name the same session in the inner `cloister-session`
//! header ([`header::SESSION`]), and
//! the router must send them to the same host. This module ships
//! [`HttpForwardRouter`] (HTTP to the configured hosts, placed by
//! rendezvous hashing and health, see [`crate::hosts`]) and [`EchoRouter`]
//! (a test stand-in).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bhttp::{Message, StatusCode};
use cloister_tls::Trust;
use cloister_wire::{header, session};
use thiserror::Error;

use crate::config::{HealthSettings, RouterSettings};
use crate::hosts::{Host, HostListError, HostPool};

/// Why a request could not be delivered. Mapped to 502, 503 or 504 inside
/// the encapsulated response.
#[derive(Debug, Error)]
pub enum RouteError {
    /// The host holding the request's session is gone (no longer
    /// configured, or refusing connections): answered 503 with the
    /// `session-host-gone` problem, so the client opens a new session.
    #[error("the session's host is gone: {0}")]
    SessionHostGone(String),
    /// The host list is not valid.
    #[error(transparent)]
    Hosts(#[from] HostListError),
    /// No host could take the request.
    #[error("no host available: {0}")]
    Unavailable(String),
    /// The host did not answer in time.
    #[error("host timed out")]
    Timeout,
    /// The host answered with something that is not a usable response.
    #[error("bad answer from host: {0}")]
    BadAnswer(String),
}

/// Delivers an inner request to a host and returns the host's response.
pub trait Router: Send + Sync + 'static {
    /// Route `request` (a Binary HTTP request, token already removed).
    fn route(&self, request: Message) -> impl Future<Output = Result<Message, RouteError>> + Send;
}

/// **Test stand-in, not a host.** Answers every request itself with 200 and
/// a body that echoes the method, the path and the content, so tests can see
/// what reached the routing stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoRouter;

impl Router for EchoRouter {
    async fn route(&self, request: Message) -> Result<Message, RouteError> {
        let control = request.control();
        let mut body = Vec::new();
        body.extend_from_slice(control.method().unwrap_or_default());
        body.push(b' ');
        body.extend_from_slice(control.path().unwrap_or_default());
        body.push(b'\n');
        body.extend_from_slice(request.content());
        let mut response = Message::response(StatusCode::OK);
        response.put_header("content-type", "application/octet-stream");
        response.write_content(body);
        Ok(response)
    }
}

/// Headers never forwarded between client and host: hop-by-hop headers,
/// anything the gateway itself consumed, and the route label, which only
/// the gateway sets and reads.
const DROPPED_HEADERS: [&str; 9] = [
    "authorization",
    "cloister-route",
    "connection",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// Largest `/healthz` body read from a host.
const MAX_HEALTH_BODY: usize = 64 * 1024;

/// Forwards inner requests over HTTP to the configured hosts ([`HostPool`]):
/// a new session to the healthy host of highest rendezvous weight for its
/// id, every later request of the session to the host its route label
/// names (see [`crate::hosts`]). Cloning shares the hosts.
#[derive(Debug, Clone)]
pub struct HttpForwardRouter {
    hosts: Arc<HostPool>,
    http: reqwest::Client,
    max_response_bytes: usize,
    /// Time a health probe may take.
    probe_timeout: Duration,
}

/// How one forwarding attempt failed.
enum Failure {
    /// No connection could be opened: the request never reached the host.
    Connect(String),
    Timeout,
    Other(String),
    BadAnswer(String),
}

impl From<Failure> for RouteError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Connect(e) | Failure::Other(e) => Self::Unavailable(e),
            Failure::Timeout => Self::Timeout,
            Failure::BadAnswer(e) => Self::BadAnswer(e),
        }
    }
}

/// The HTTP client for every connection to a host, forwarding and probes
/// alike: the one place that says how the gateway connects to hosts
/// (HTTPS to certificates that chain to `trust`).
fn host_client(
    trust: &Trust,
    timeout: Duration,
    connect_timeout: Duration,
) -> Result<reqwest::Client, RouteError> {
    trust
        .http_client()
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|e| RouteError::Unavailable(e.to_string()))
}

impl HttpForwardRouter {
    /// A router over `hosts` (base URLs such as `http://127.0.0.1:7500`),
    /// all taken as healthy until probed, with the default connect timeout.
    ///
    /// # Errors
    /// An invalid host list ([`RouteError::Hosts`]), or an HTTP client that
    /// cannot be built.
    pub fn new(
        hosts: Vec<String>,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> Result<Self, RouteError> {
        Self::with_trust(hosts, timeout, max_response_bytes, &Trust::default())
    }

    /// As [`HttpForwardRouter::new`], over HTTPS to hosts whose certificate
    /// chains to `trust` (a plain `http://` host only on loopback).
    ///
    /// # Errors
    /// As [`HttpForwardRouter::new`].
    pub fn with_trust(
        hosts: Vec<String>,
        timeout: Duration,
        max_response_bytes: usize,
        trust: &Trust,
    ) -> Result<Self, RouteError> {
        let settings = RouterSettings {
            hosts,
            max_response_bytes,
            ..RouterSettings::default()
        };
        Self::build(&settings, timeout, trust)
    }

    /// The router `settings` describe (hosts, timeouts, response size),
    /// reaching hosts over HTTPS under `trust`.
    ///
    /// # Errors
    /// As [`HttpForwardRouter::new`].
    pub fn from_settings(settings: &RouterSettings, trust: &Trust) -> Result<Self, RouteError> {
        Self::build(settings, Duration::from_secs(settings.timeout_secs), trust)
    }

    /// `settings` with the host timeout `timeout`.
    fn build(
        settings: &RouterSettings,
        timeout: Duration,
        trust: &Trust,
    ) -> Result<Self, RouteError> {
        Ok(Self {
            hosts: Arc::new(HostPool::new(&settings.hosts)?),
            http: host_client(
                trust,
                timeout,
                Duration::from_millis(settings.connect_timeout_ms),
            )?,
            max_response_bytes: settings.max_response_bytes,
            probe_timeout: Duration::from_millis(settings.health.timeout_ms),
        })
    }

    /// The hosts, for reloads and metrics.
    #[must_use]
    pub fn hosts(&self) -> &Arc<HostPool> {
        &self.hosts
    }

    /// Probes every host's `GET /healthz` every `settings.every_ms` until
    /// the returned task is aborted, and logs each change of health.
    pub fn spawn_health_checks(&self, settings: HealthSettings) -> tokio::task::JoinHandle<()> {
        let (hosts, http) = (Arc::clone(&self.hosts), self.http.clone());
        tokio::spawn(async move {
            let timeout = Duration::from_millis(settings.timeout_ms);
            let mut ticks = tokio::time::interval(Duration::from_millis(settings.every_ms.max(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let mut probes = tokio::task::JoinSet::new();
                for host in hosts.hosts().iter() {
                    let (host, http) = (Arc::clone(host), http.clone());
                    probes.spawn(async move {
                        let ok = probe(&http, host.url(), timeout).await;
                        (host, ok)
                    });
                }
                while let Some(Ok((host, ok))) = probes.join_next().await {
                    match host.probed(ok, &settings) {
                        Some(true) => {
                            tracing::info!(host = host.url(), "host healthy: new sessions go to it")
                        }
                        Some(false) => tracing::warn!(
                            host = host.url(),
                            "host unhealthy: no new sessions go to it"
                        ),
                        None => {}
                    }
                }
            }
        })
    }

    /// Sends `request` to `host` and returns its answer, counting both.
    async fn forward(
        &self,
        host: &Host,
        method: &reqwest::Method,
        path: &str,
        request: &Message,
    ) -> Result<Message, Failure> {
        let mut outbound = self
            .http
            .request(method.clone(), format!("{}{path}", host.url()));
        for field in request.header().iter() {
            let name = field.name();
            if !is_dropped(name) {
                outbound = outbound.header(name, field.value());
            }
        }
        host.count_request();
        let answer = outbound
            .body(request.content().to_vec())
            .send()
            .await
            .map_err(|e| {
                host.count_failure();
                if e.is_connect() {
                    Failure::Connect(cloister_tls::error_chain(&e))
                } else if e.is_timeout() {
                    Failure::Timeout
                } else {
                    Failure::Other(cloister_tls::error_chain(&e))
                }
            })?;
        let status = StatusCode::try_from(answer.status().as_u16())
            .map_err(|_| Failure::BadAnswer("status out of range".into()))?;
        let mut response = Message::response(status);
        for (name, value) in answer.headers() {
            if !is_dropped(name.as_str().as_bytes()) {
                response.put_header(name.as_str(), value.as_bytes());
            }
        }
        let body = read_body(answer, self.max_response_bytes)
            .await
            .map_err(Failure::BadAnswer)?;
        response.write_content(body);
        Ok(response)
    }

    /// No new session goes to `host` until probes find it healthy again.
    fn take_out(&self, host: &Host, error: &str) {
        if host.mark_down() {
            tracing::warn!(host = host.url(), %error, "host unreachable: no new sessions go to it until it is healthy");
        }
    }

    /// After a request to `host` failed without an answer (`error`: a
    /// connection reset or closed mid-request): whether the host is gone,
    /// that is, fails a health probe too. A gone host is taken out.
    async fn is_gone(&self, host: &Host, error: &str) -> bool {
        if probe(&self.http, host.url(), self.probe_timeout).await {
            return false;
        }
        self.take_out(host, error);
        true
    }

    /// A new session: the candidates in turn until one accepts a
    /// connection (a refused one has not seen the ClientHello, so the next
    /// may take it). The answer carries the route label of the host.
    async fn open(
        &self,
        session: &[u8],
        method: &reqwest::Method,
        path: &str,
        request: &Message,
    ) -> Result<Message, RouteError> {
        let mut refused = String::from("no hosts configured");
        for host in self.hosts.candidates(session) {
            match self.forward(&host, method, path, request).await {
                Ok(mut answer) => {
                    answer.put_header(header::ROUTE, host.route());
                    return Ok(answer);
                }
                Err(Failure::Connect(error)) => {
                    self.take_out(&host, &error);
                    refused = error;
                }
                // A ClientHello that a dead host may have read opens nothing.
                Err(Failure::Other(error)) if self.is_gone(&host, &error).await => {
                    refused = error;
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(RouteError::Unavailable(format!(
            "no host accepted a connection: {refused}"
        )))
    }

    /// A later request of a session: to the host its route label names (or,
    /// without one, the host a new session of this id would go to now), and
    /// nowhere else.
    async fn resume(
        &self,
        session: &[u8],
        route: Option<&[u8]>,
        method: &reqwest::Method,
        path: &str,
        request: &Message,
    ) -> Result<Message, RouteError> {
        let host = match route {
            Some(route) => self.hosts.by_route(route).ok_or_else(|| {
                RouteError::SessionHostGone("its host is no longer configured".into())
            })?,
            None => self
                .hosts
                .candidates(session)
                .into_iter()
                .next()
                .ok_or_else(|| RouteError::Unavailable("no hosts configured".into()))?,
        };
        match self.forward(&host, method, path, request).await {
            Ok(answer) => Ok(answer),
            Err(Failure::Other(error)) if route.is_some() && self.is_gone(&host, &error).await => {
                Err(RouteError::SessionHostGone(format!(
                    "{} failed and fails its probe: {error}",
                    host.url()
                )))
            }
            Err(Failure::Connect(error)) => {
                self.take_out(&host, &error);
                let gone = format!("{} refused a connection: {error}", host.url());
                // Without a route label the host was only a guess.
                Err(if route.is_some() {
                    RouteError::SessionHostGone(gone)
                } else {
                    RouteError::Unavailable(gone)
                })
            }
            Err(other) => Err(other.into()),
        }
    }
}

fn is_dropped(name: &[u8]) -> bool {
    DROPPED_HEADERS
        .iter()
        .any(|d| d.as_bytes().eq_ignore_ascii_case(name))
}

/// The body of `answer`, refused past `limit` bytes.
async fn read_body(mut answer: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > limit {
            return Err("response too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// One health probe: `GET {url}/healthz` answered 200 with `"status": "ok"`
/// within `timeout`.
async fn probe(http: &reqwest::Client, url: &str, timeout: Duration) -> bool {
    #[derive(serde::Deserialize)]
    struct Health {
        status: String,
    }
    let answer = http
        .get(format!("{url}/healthz"))
        .timeout(timeout)
        .send()
        .await;
    let Ok(answer) = answer else {
        return false;
    };
    if answer.status() != reqwest::StatusCode::OK {
        return false;
    }
    let body = tokio::time::timeout(timeout, read_body(answer, MAX_HEALTH_BODY)).await;
    matches!(body, Ok(Ok(body)) if serde_json::from_slice::<Health>(&body).is_ok_and(|h| h.status == "ok"))
}

impl Router for HttpForwardRouter {
    async fn route(&self, request: Message) -> Result<Message, RouteError> {
        let control = request.control();
        let bad = |what: &str| RouteError::BadAnswer(format!("inner request has no valid {what}"));
        let method = reqwest::Method::from_bytes(control.method().ok_or_else(|| bad("method"))?)
            .map_err(|_| bad("method"))?;
        let path = std::str::from_utf8(control.path().ok_or_else(|| bad("path"))?)
            .map_err(|_| bad("path"))?;
        if !path.starts_with('/') {
            return Err(bad("path"));
        }
        let session = request.header().get(header::SESSION.as_bytes());
        match session {
            Some(id) if !session::starts_with_client_hello(request.content()) => {
                let route = request.header().get(header::ROUTE.as_bytes());
                self.resume(id, route, &method, path, &request).await
            }
            _ => {
                self.open(session.unwrap_or_default(), &method, path, &request)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_session_always_reaches_one_host() {
        let hosts = (0..5)
            .map(|i| format!("http://127.0.0.1:{}", 7500 + i))
            .collect();
        let router = HttpForwardRouter::new(hosts, Duration::from_secs(1), 1024).expect("router");
        let first = |id: &str| router.hosts().candidates(id.as_bytes())[0].url().to_owned();
        let a = first("session-a");
        for _ in 0..10 {
            assert_eq!(first("session-a"), a);
        }
        let spread: std::collections::HashSet<_> =
            (0..50).map(|i| first(&format!("s{i}"))).collect();
        assert!(spread.len() > 1, "sessions spread over hosts");
        assert!(HttpForwardRouter::new(vec![], Duration::from_secs(1), 1).is_err());
    }
}
