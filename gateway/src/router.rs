//! Where decapsulated requests go: the [`Router`] seam between the gateway
//! and the hosts.
//!
//! A client's RA-TLS session with a host rides inside many OHTTP requests;
//! all of them name the same session in the inner `cloister-session`
//! header ([`header::SESSION`]), and
//! the router must send them to the same host. The RA-TLS layer provides its
//! own router; this module ships [`HttpForwardRouter`] (plain HTTP to a
//! fixed set of hosts on loopback) and [`EchoRouter`] (a test stand-in).

use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use bhttp::{Message, StatusCode};
use cloister_tls::{PlainHttp, Trust, check_url};
use cloister_wire::header;
use thiserror::Error;

/// Why a request could not be delivered. Mapped to 502/504 inside the encapsulated response.
#[derive(Debug, Error)]
pub enum RouteError {
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

/// Headers never forwarded to a host: hop-by-hop headers and anything the
/// gateway itself consumed.
const DROPPED_HEADERS: [&str; 8] = [
    "authorization",
    "connection",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// Forwards inner requests over plain HTTP to one of a fixed list of hosts,
/// chosen by a hash of the session id so one session always reaches one
/// host. Meant for loopback deployments; the RA-TLS layer replaces it.
#[derive(Debug, Clone)]
pub struct HttpForwardRouter {
    hosts: Vec<String>,
    http: reqwest::Client,
    max_response_bytes: usize,
}

impl HttpForwardRouter {
    /// A router over `hosts` (base URLs such as `http://127.0.0.1:7500`).
    ///
    /// # Errors
    /// An empty host list, or an HTTP client that cannot be built.
    pub fn new(
        hosts: Vec<String>,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> Result<Self, RouteError> {
        Self::with_trust(hosts, timeout, max_response_bytes, &Trust::default())
    }

    /// As [`HttpForwardRouter::new`], over HTTPS to hosts whose certificate
    /// chains to `trust`; a plain `http://` host is refused unless it is on
    /// loopback.
    ///
    /// # Errors
    /// As [`HttpForwardRouter::new`], or a plain-HTTP host beyond loopback.
    pub fn with_trust(
        hosts: Vec<String>,
        timeout: Duration,
        max_response_bytes: usize,
        trust: &Trust,
    ) -> Result<Self, RouteError> {
        if hosts.is_empty() {
            return Err(RouteError::Unavailable("no hosts configured".into()));
        }
        for host in &hosts {
            check_url("host URL", host, PlainHttp::Loopback)
                .map_err(|e| RouteError::Unavailable(e.to_string()))?;
        }
        let http = trust
            .http_client()
            .timeout(timeout)
            .build()
            .map_err(|e| RouteError::Unavailable(e.to_string()))?;
        Ok(Self {
            hosts,
            http,
            max_response_bytes,
        })
    }

    fn host_for(&self, session: Option<&[u8]>) -> &str {
        let mut hasher = DefaultHasher::new();
        session.hash(&mut hasher);
        // The modulo result is below hosts.len(), so it fits usize.
        let index = usize::try_from(hasher.finish() % self.hosts.len() as u64).unwrap_or(0);
        &self.hosts[index]
    }
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
        let host = self.host_for(request.header().get(header::SESSION.as_bytes()));
        let mut outbound = self.http.request(method, format!("{host}{path}"));
        for field in request.header().iter() {
            let name = field.name();
            if DROPPED_HEADERS
                .iter()
                .any(|d| d.as_bytes().eq_ignore_ascii_case(name))
            {
                continue;
            }
            outbound = outbound.header(name, field.value());
        }
        let answer = outbound
            .body(request.content().to_vec())
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    RouteError::Timeout
                } else {
                    RouteError::Unavailable(cloister_tls::error_chain(&e))
                }
            })?;
        let status = StatusCode::try_from(answer.status().as_u16())
            .map_err(|_| RouteError::BadAnswer("status out of range".into()))?;
        let mut response = Message::response(status);
        for (name, value) in answer.headers() {
            if !DROPPED_HEADERS.contains(&name.as_str()) {
                response.put_header(name.as_str(), value.as_bytes());
            }
        }
        let mut answer = answer;
        let mut body = Vec::new();
        while let Some(chunk) = answer
            .chunk()
            .await
            .map_err(|e| RouteError::BadAnswer(e.to_string()))?
        {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(RouteError::BadAnswer("response too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        response.write_content(body);
        Ok(response)
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
        let first = router.host_for(Some(b"session-a")).to_owned();
        for _ in 0..10 {
            assert_eq!(router.host_for(Some(b"session-a")), first);
        }
        let spread: std::collections::HashSet<_> = (0..50)
            .map(|i| router.host_for(Some(format!("s{i}").as_bytes())).to_owned())
            .collect();
        assert!(spread.len() > 1, "sessions spread over hosts");
        assert!(HttpForwardRouter::new(vec![], Duration::from_secs(1), 1).is_err());
    }
}
