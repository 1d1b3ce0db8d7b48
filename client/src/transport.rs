//! The RA-TLS transport over this crate's OHTTP [`Client`]: every exchange
//! of TLS records is one OHTTP request through the relay and the gateway to
//! the host's `POST /session`.
//!
//! The gateway names the host a session was opened on in the
//! `cloister-route` header of the answer that opened it; the transport sends
//! that label back with every later request of the session, so whichever
//! gateway replica takes the request finds the session's host.

use std::sync::{Arc, Mutex, PoisonError};

use cloister_ratls::{SESSION_PATH, Transport, TransportError};
use cloister_wire::{header, media};

use crate::{Client, ClientError, InnerRequest, KeyConsistency, TokenSource};

/// Records carried as inner requests of an OHTTP [`Client`].
pub struct OhttpTransport<K> {
    client: Arc<Client<K>>,
    authority: String,
    tokens: Option<Arc<dyn TokenSource>>,
    /// The session id and the route label the gateway gave it.
    route: Mutex<Option<(String, Vec<u8>)>>,
}

impl<K> std::fmt::Debug for OhttpTransport<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OhttpTransport")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl<K> OhttpTransport<K> {
    /// A transport through `client` to the service named `authority`
    /// (e.g. `cloister.invalid`), without tokens.
    pub fn new(client: Arc<Client<K>>, authority: &str) -> Self {
        Self {
            client,
            authority: authority.to_owned(),
            tokens: None,
            route: Mutex::new(None),
        }
    }

    /// A transport for another session: the same client, service and
    /// tokens, no route yet.
    #[must_use]
    pub fn fresh(&self) -> Self {
        Self {
            client: Arc::clone(&self.client),
            authority: self.authority.clone(),
            tokens: self.tokens.clone(),
            route: Mutex::new(None),
        }
    }

    fn route_of(&self, session_id: &str) -> Option<Vec<u8>> {
        let route = self.route.lock().unwrap_or_else(PoisonError::into_inner);
        route
            .as_ref()
            .filter(|(id, _)| id == session_id)
            .map(|(_, label)| label.clone())
    }

    /// Attach a token from `tokens` to every request.
    #[must_use]
    pub fn with_tokens(mut self, tokens: Arc<dyn TokenSource>) -> Self {
        self.tokens = Some(tokens);
        self
    }
}

impl<K: KeyConsistency + 'static> Transport for OhttpTransport<K> {
    async fn exchange(
        &self,
        session_id: &str,
        records: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let failed = |e: ClientError| TransportError::Failed(cloister_tls::error_chain(&e));
        // Keys are checked before a token is taken: a refusal costs none.
        self.client.ready().await.map_err(failed)?;
        let mut request = InnerRequest::new("POST", &self.authority, SESSION_PATH)
            .header(header::SESSION, session_id)
            .header("content-type", media::RATLS_RECORDS)
            .body(records);
        if let Some(route) = self.route_of(session_id) {
            request = request.header(header::ROUTE, route);
        }
        if let Some(token) = self.tokens.as_ref().and_then(|t| t.next_token()) {
            request = request.private_token(&token);
        }
        let response = self.client.send(&request).await.map_err(failed)?;
        if let Some(label) = response.header().get(header::ROUTE.as_bytes()) {
            *self.route.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((session_id.to_owned(), label.to_vec()));
        }
        let status = response.control().status().map_or(0, |s| s.code());
        if status != 200 {
            return Err(TransportError::Status {
                status,
                message: String::from_utf8_lossy(response.content()).into_owned(),
            });
        }
        Ok(response.content().to_vec())
    }
}
