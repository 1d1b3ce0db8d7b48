//! A session that outlives its host once per request: when the gateway says
//! the session's host is gone (or the host no longer knows the session),
//! the client opens one new session, says so with what it costs, and sends
//! the request again. A second failure is returned; it never loops.

use std::fmt;

use cloister_api::{FeatureRequest, FeatureResponse};
use cloister_attestation::{MeasurementAuthority, Verifier};
use cloister_ratls::{ClientError, ClientSession, TransportError};
use cloister_wire::problem;

use crate::{KeyConsistency, OhttpTransport};

/// OHTTP requests, hence tokens, a session with one request takes: the TLS
/// handshake, the attestation exchange, the request.
pub const TOKENS_PER_SESSION: usize = 3;

/// True if `error` says the session cannot continue anywhere: the gateway
/// answered the `session-host-gone` problem (503), or the host answered
/// that it does not know the session (404: it restarted, or the session
/// expired).
#[must_use]
pub fn is_session_gone(error: &ClientError) -> bool {
    #[derive(serde::Deserialize)]
    struct Problem {
        #[serde(rename = "type")]
        kind: String,
    }
    match error {
        ClientError::Transport(TransportError::Status { status: 404, .. }) => true,
        ClientError::Transport(TransportError::Status {
            status: 503,
            message,
        }) => serde_json::from_str::<Problem>(message)
            .is_ok_and(|p| p.kind == problem::SESSION_HOST_GONE),
        _ => false,
    }
}

/// A new session opened because the old one's host is gone: what the user
/// is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The session whose host is gone.
    pub lost_session: String,
    /// Tokens the new session costs, the repeated request included.
    pub tokens: usize,
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "host of session {} is gone; opening a new session (costs {} tokens)",
            self.lost_session, self.tokens
        )
    }
}

type Hook = Box<dyn Fn(&Recovery) + Send + Sync>;

/// An attested session over an [`OhttpTransport`] that, when a request
/// fails because the session's host is gone, opens one new session (with
/// the same verifier) and sends the request once more.
pub struct RecoveringSession<'v, K, A> {
    transport: OhttpTransport<K>,
    verifier: &'v Verifier<A>,
    session: ClientSession<OhttpTransport<K>>,
    opened: usize,
    on_recovery: Hook,
}

impl<K, A> fmt::Debug for RecoveringSession<'_, K, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveringSession")
            .field("session", &self.session)
            .field("opened", &self.opened)
            .finish_non_exhaustive()
    }
}

impl<'v, K: KeyConsistency + 'static, A: MeasurementAuthority> RecoveringSession<'v, K, A> {
    /// Opens a session over a fresh copy of `transport` whose host
    /// `verifier` accepts ([`ClientSession::establish`]). A recovery is
    /// logged as a warning unless [`RecoveringSession::on_recovery`] says
    /// otherwise.
    ///
    /// # Errors
    /// As [`ClientSession::establish`].
    pub async fn establish(
        transport: OhttpTransport<K>,
        verifier: &'v Verifier<A>,
    ) -> Result<Self, ClientError> {
        let session = ClientSession::establish(transport.fresh(), verifier).await?;
        Ok(Self {
            transport,
            verifier,
            session,
            opened: 1,
            on_recovery: Box::new(|recovery| tracing::warn!("{recovery}")),
        })
    }

    /// Tells the user about a recovery with `hook` instead of a log line.
    #[must_use]
    pub fn on_recovery(mut self, hook: impl Fn(&Recovery) + Send + Sync + 'static) -> Self {
        self.on_recovery = Box::new(hook);
        self
    }

    /// The session now in use.
    pub fn session(&self) -> &ClientSession<OhttpTransport<K>> {
        &self.session
    }

    /// Sessions opened so far (1 plus one per recovery).
    pub fn sessions_opened(&self) -> usize {
        self.opened
    }

    /// Sends `request`. If the session's host is gone ([`is_session_gone`]),
    /// reports a [`Recovery`], opens one new session and sends the request
    /// on it; whatever that gives is the answer.
    ///
    /// # Errors
    /// As [`ClientSession::request`], or the new session's
    /// [`ClientSession::establish`].
    pub async fn request(
        &mut self,
        request: &FeatureRequest,
    ) -> Result<FeatureResponse, ClientError> {
        match self.session.request(request).await {
            Err(error) if is_session_gone(&error) => {
                tracing::debug!(%error, "session lost");
                (self.on_recovery)(&Recovery {
                    lost_session: self.session.session_id().to_owned(),
                    tokens: TOKENS_PER_SESSION,
                });
                self.opened += 1;
                self.session =
                    ClientSession::establish(self.transport.fresh(), self.verifier).await?;
                self.session.request(request).await
            }
            answer => answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, message: &str) -> ClientError {
        ClientError::Transport(TransportError::Status {
            status,
            message: message.into(),
        })
    }

    #[test]
    fn only_a_lost_session_counts_as_gone() {
        let gone = format!(r#"{{"type":"{}","title":"x"}}"#, problem::SESSION_HOST_GONE);
        assert!(is_session_gone(&status(503, &gone)));
        assert!(is_session_gone(&status(404, "unknown or expired session")));
        for other in [
            status(503, r#"{"type":"about:blank","title":"busy"}"#),
            status(503, "not json"),
            status(502, &gone),
            status(401, "token required"),
            ClientError::Transport(TransportError::Failed("relay down".into())),
            ClientError::Refused("no".into()),
        ] {
            assert!(!is_session_gone(&other), "{other}");
        }
    }

    #[test]
    fn the_user_is_told_the_session_and_the_cost() {
        let recovery = Recovery {
            lost_session: "ab12".into(),
            tokens: TOKENS_PER_SESSION,
        };
        assert_eq!(
            recovery.to_string(),
            "host of session ab12 is gone; opening a new session (costs 3 tokens)"
        );
    }
}
