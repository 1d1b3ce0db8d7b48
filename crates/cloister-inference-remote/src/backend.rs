//! The feature host's end: an [`InferenceBackend`] that generates on a
//! remote inference host over mutual RA-TLS.

use std::ops::ControlFlow;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cloister_attestation::{MeasurementAuthority, Verifier};
use cloister_inference::{
    EmbedRequest, EngineIdentity, FinishReason, GenerateRequest, Generation, InferenceBackend,
    InferenceError, ModelInfo, Usage,
};
use cloister_ratls::{
    CallerAttester, ClientError, ClientSession, SESSION_PATH, StreamingTransport, Transport,
    TransportError,
};
use cloister_wire::{HexBytes, header as wire_header, media};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::wire::{WireAnswer, WireCall, WireEmbed, WireEmbedAnswer, WireRequest, decode_vector};

/// The `[inference.remote]` table of a feature host: where the inference
/// host is and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RemoteConfig {
    /// Base URL of the inference host (`POST {url}/session`).
    pub url: String,
    /// The model the inference host serves, as plugins name it.
    pub model: String,
    /// Its context window in tokens.
    pub context_tokens: u32,
    /// At most this many sessions (so generations in flight) at once; more
    /// wait for one to free.
    pub max_sessions: usize,
    /// Longest wait for an attested session, and for each next piece of an
    /// answer: past it the call fails, naming the inference host.
    pub timeout_secs: u64,
    /// The digest of how the feature host judges the inference host (its
    /// attestation policy and ledger trust root), set by the feature host
    /// rather than read from the table: part of [`RemoteConfig::identity`],
    /// so of the feature host's HOST_DATA.
    #[serde(skip)]
    pub peer_policy: Option<[u8; 32]>,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:7700".into(),
            model: "smollm2-135m-instruct".into(),
            context_tokens: 4096,
            max_sessions: 8,
            timeout_secs: 30,
            peer_policy: None,
        }
    }
}

impl RemoteConfig {
    /// The identity of a [`RemoteBackend`] with this configuration, known
    /// before it is built (the feature host's HOST_DATA covers it, and its
    /// own evidence, which the backend needs, names that HOST_DATA). No
    /// weights here; the settings name what the feature host relies on. The
    /// inference host's weights are in its own HOST_DATA, which its release
    /// names.
    pub fn identity(&self) -> EngineIdentity {
        let mut settings = format!(
            "backend=remote model={} context={} max-sessions={}",
            self.model, self.context_tokens, self.max_sessions
        );
        if let Some(digest) = self.peer_policy {
            settings.push_str(&format!(" peer-policy={}", HexBytes(digest)));
        }
        EngineIdentity {
            weights: None,
            settings,
        }
    }
}

/// Why a [`RemoteBackend`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RemoteSetupError {
    /// No async runtime for the sessions.
    #[error("cannot start the remote inference runtime: {0}")]
    Runtime(std::io::Error),
    /// No HTTP client.
    #[error("cannot build the HTTP client: {0}")]
    Http(reqwest::Error),
}

/// Generates on a remote inference host over mutual RA-TLS.
///
/// Each generation takes an attested session from a pool, or opens one:
/// TLS 1.3, the inference host's evidence verified by `verifier` (platform,
/// policy, its release found by the measurement authority, bound to the
/// session), then this host's own evidence from `attester` answering the
/// inference host's challenge. The prompt is sent only on a session that
/// passed both. Generations in flight each hold their own session, so they
/// reach the far engine together and are batched there. Pieces of text
/// stream back as the far engine decodes them.
///
/// Budgets are not this type's business: the host's inference capability
/// clamps every request before it gets here, as it does for a local engine.
pub struct RemoteBackend<A> {
    inner: Arc<Inner<A>>,
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl<A> Drop for RemoteBackend<A> {
    /// Without waiting for sessions in flight, so that the backend can be
    /// dropped from async code too.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

struct Inner<A> {
    config: RemoteConfig,
    transport: HttpTransport,
    verifier: Verifier<A>,
    attester: Arc<dyn CallerAttester>,
    idle: Mutex<Vec<ClientSession<HttpTransport>>>,
    slots: tokio::sync::Semaphore,
}

impl<A> std::fmt::Debug for RemoteBackend<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteBackend")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What the session task tells the waiting caller.
enum Event {
    Piece(String),
    Done(Result<Generation, InferenceError>),
}

impl<A: MeasurementAuthority + Send + Sync + 'static> RemoteBackend<A> {
    /// A backend for the inference host of `config`, trusting what
    /// `verifier` accepts and proving itself with `attester`. Nothing is
    /// contacted until the first generation.
    ///
    /// # Errors
    /// See [`RemoteSetupError`].
    pub fn new(
        config: RemoteConfig,
        verifier: Verifier<A>,
        attester: Arc<dyn CallerAttester>,
    ) -> Result<Self, RemoteSetupError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("remote-inference")
            .enable_all()
            .build()
            .map_err(RemoteSetupError::Runtime)?;
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let transport = HttpTransport::new(&config.url, timeout)?;
        let slots = tokio::sync::Semaphore::new(config.max_sessions.max(1));
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                transport,
                verifier,
                attester,
                idle: Mutex::new(Vec::new()),
                slots,
            }),
            runtime: Some(runtime),
        })
    }

    fn runtime(&self) -> Result<&tokio::runtime::Runtime, InferenceError> {
        self.runtime
            .as_ref()
            .ok_or_else(|| InferenceError::Engine("remote inference is shutting down".into()))
    }

    /// Opens an attested session now, so that the first prompt does not wait
    /// for one, and so that a misconfigured or impostor inference host is
    /// found at start.
    ///
    /// # Errors
    /// Why no session could be opened (unreachable, evidence refused...).
    pub fn connect(&self) -> Result<(), InferenceError> {
        let inner = Arc::clone(&self.inner);
        self.runtime()?.block_on(async move {
            let session = inner.open().await?;
            inner.release(session);
            Ok(())
        })
    }
}

impl<A: MeasurementAuthority + Send + Sync + 'static> InferenceBackend for RemoteBackend<A> {
    fn name(&self) -> &str {
        "remote"
    }

    fn models(&self) -> Vec<ModelInfo> {
        vec![ModelInfo {
            name: self.inner.config.model.clone(),
            context_tokens: self.inner.config.context_tokens,
            // Carried to the inference host, whose engine answers.
            embeddings: true,
        }]
    }

    fn identity(&self) -> EngineIdentity {
        self.inner.config.identity()
    }

    fn generate(
        &self,
        request: &GenerateRequest,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, InferenceError> {
        let payload = prepare(request.deadline, |now| {
            WireCall::Generate(WireRequest::of(request, now))
        })?;
        let (events, received) = mpsc::channel();
        let inner = Arc::clone(&self.inner);
        self.runtime()?.spawn(async move {
            let outcome = inner.generate(payload, &events).await;
            let _ = events.send(Event::Done(outcome));
        });
        let wait = Duration::from_secs(self.inner.config.timeout_secs.max(1));
        let mut text = String::new();
        let mut pieces = 0u32;
        loop {
            let limit = match request.deadline {
                Some(deadline) => wait.min(deadline.saturating_duration_since(Instant::now())),
                None => wait,
            };
            match received.recv_timeout(limit) {
                Ok(Event::Piece(piece)) => {
                    text.push_str(&piece);
                    pieces = pieces.saturating_add(1);
                    if on_token(&piece).is_break() {
                        // Dropping the receiver stops the session task at
                        // its next piece, and with it the far generation.
                        return Ok(Generation {
                            text,
                            usage: Usage {
                                prompt_tokens: 0,
                                generated_tokens: pieces,
                            },
                            finish: FinishReason::Cancelled,
                        });
                    }
                }
                Ok(Event::Done(outcome)) => return outcome,
                Err(RecvTimeoutError::Timeout)
                    if request
                        .deadline
                        .is_some_and(|deadline| deadline <= Instant::now()) =>
                {
                    return Err(InferenceError::DeadlineExceeded);
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(InferenceError::Engine(format!(
                        "the inference host at {} sent nothing for {} s",
                        self.inner.config.url,
                        wait.as_secs()
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => return Err(ended_without_answer()),
            }
        }
    }

    /// On the inference host, in one exchange: the vectors come back one
    /// `Partial` frame each.
    fn embed(&self, request: &EmbedRequest) -> Result<Vec<Vec<f32>>, InferenceError> {
        let payload = prepare(request.deadline, |now| {
            WireCall::Embed(WireEmbed::of(request, now))
        })?;
        let (answer, received) = mpsc::channel();
        let inner = Arc::clone(&self.inner);
        self.runtime()?.spawn(async move {
            let _ = answer.send(inner.embed(payload).await);
        });
        // Without a deadline, the transport's own waits bound the exchange.
        let outcome = match request.deadline {
            Some(deadline) => received
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .map_err(|error| match error {
                    RecvTimeoutError::Timeout => InferenceError::DeadlineExceeded,
                    RecvTimeoutError::Disconnected => ended_without_answer(),
                }),
            None => received.recv().map_err(|_| ended_without_answer()),
        };
        outcome?
    }
}

fn ended_without_answer() -> InferenceError {
    InferenceError::Engine("the remote inference task ended without an answer".into())
}

/// The call made now, as it is sent, unless `deadline` has passed.
fn prepare(
    deadline: Option<Instant>,
    call: impl FnOnce(Instant) -> WireCall,
) -> Result<Zeroizing<Vec<u8>>, InferenceError> {
    let now = Instant::now();
    if deadline.is_some_and(|deadline| deadline <= now) {
        return Err(InferenceError::DeadlineExceeded);
    }
    serde_json::to_vec(&call(now))
        .map(Zeroizing::new)
        .map_err(|error| InferenceError::InvalidRequest(error.to_string()))
}

/// A JSON answer of the inference host.
fn decode<T: serde::de::DeserializeOwned>(answer: &[u8]) -> Result<T, InferenceError> {
    serde_json::from_slice(answer).map_err(|error| {
        InferenceError::Engine(format!("malformed answer from the inference host: {error}"))
    })
}

impl<A: MeasurementAuthority + Send + Sync> Inner<A> {
    /// Sends one generate request, forwarding pieces to `events` as they
    /// arrive.
    async fn generate(
        &self,
        payload: Zeroizing<Vec<u8>>,
        events: &mpsc::Sender<Event>,
    ) -> Result<Generation, InferenceError> {
        let answer = self
            .exchange(payload, &mut |piece| {
                let Ok(piece) = std::str::from_utf8(piece) else {
                    return ControlFlow::Break(());
                };
                match events.send(Event::Piece(piece.to_owned())) {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(_) => ControlFlow::Break(()),
                }
            })
            .await?;
        decode::<WireAnswer>(&answer)?.map_err(InferenceError::from)
    }

    /// Sends one embed request and collects the vectors, one per piece.
    async fn embed(&self, payload: Zeroizing<Vec<u8>>) -> Result<Vec<Vec<f32>>, InferenceError> {
        let mut vectors = Vec::new();
        let answer = self
            .exchange(payload, &mut |piece| {
                vectors.push(decode_vector(piece));
                ControlFlow::Continue(())
            })
            .await?;
        let count = decode::<WireEmbedAnswer>(&answer)?.map_err(InferenceError::from)?;
        let vectors: Option<Vec<_>> = vectors.into_iter().collect();
        match vectors {
            Some(vectors) if vectors.len() == count => Ok(vectors),
            _ => Err(InferenceError::Engine(
                "malformed vectors from the inference host".into(),
            )),
        }
    }

    /// Sends one call on a pooled or new session, passing each `Partial`
    /// piece to `on_piece`, and returns the answer.
    async fn exchange(
        &self,
        payload: Zeroizing<Vec<u8>>,
        on_piece: &mut (dyn FnMut(&[u8]) -> ControlFlow<()> + Send),
    ) -> Result<Zeroizing<Vec<u8>>, InferenceError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| InferenceError::Engine("remote inference is shutting down".into()))?;
        loop {
            let (mut session, pooled) = match self.pooled() {
                Some(session) => (session, true),
                None => (self.open().await?, false),
            };
            let mut streamed = false;
            let outcome = session
                .request_streaming(payload.clone(), &mut |piece| {
                    streamed = true;
                    on_piece(piece)
                })
                .await;
            match outcome {
                Ok(answer) => {
                    self.release(session);
                    return Ok(answer);
                }
                // A pooled session the inference host let expire: nothing was
                // served on it, so a fresh one may carry the request.
                Err(ClientError::Transport(TransportError::Status { status: 404, .. }))
                    if pooled && !streamed => {}
                Err(error) => return Err(self.failure(&error)),
            }
        }
    }

    fn pooled(&self) -> Option<ClientSession<HttpTransport>> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    fn release(&self, session: ClientSession<HttpTransport>) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(session);
    }

    /// A new mutually attested session: nothing but the handshake and
    /// attestation messages is sent before it is returned.
    async fn open(&self) -> Result<ClientSession<HttpTransport>, InferenceError> {
        let wait = Duration::from_secs(self.config.timeout_secs.max(1));
        let establish = ClientSession::establish_mutual(
            self.transport.clone(),
            &self.verifier,
            self.attester.as_ref(),
        );
        let session = tokio::time::timeout(wait, establish)
            .await
            .map_err(|_| {
                InferenceError::Engine(format!(
                    "no attested session with the inference host at {} within {} s",
                    self.config.url,
                    wait.as_secs()
                ))
            })?
            .map_err(|error| self.failure(&error))?;
        tracing::debug!(
            session = session.session_id(),
            "remote inference session attested"
        );
        Ok(session)
    }

    /// A clear error naming the inference host.
    fn failure(&self, error: &ClientError) -> InferenceError {
        let url = &self.config.url;
        InferenceError::Engine(match error {
            ClientError::Transport(TransportError::Failed(why)) => {
                format!("the inference host at {url} is unreachable: {why}")
            }
            ClientError::Attestation(_) | ClientError::CallerRefused(_) => {
                format!("no prompt sent to the inference host at {url}: {error}")
            }
            _ => format!("the inference host at {url} failed: {error}"),
        })
    }
}

/// Records to and from the inference host's `POST /session`, the answer
/// read as it streams.
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    endpoint: String,
    wait: Duration,
}

impl HttpTransport {
    /// A transport to `{base_url}/session`, waiting at most `wait` to
    /// connect and for each piece of an answer.
    ///
    /// # Errors
    /// No HTTP client.
    pub fn new(base_url: &str, wait: Duration) -> Result<Self, RemoteSetupError> {
        let client = reqwest::Client::builder()
            .connect_timeout(wait)
            .build()
            .map_err(RemoteSetupError::Http)?;
        Ok(Self {
            client,
            endpoint: format!("{}{SESSION_PATH}", base_url.trim_end_matches('/')),
            wait,
        })
    }

    async fn send(
        &self,
        session_id: &str,
        records: Vec<u8>,
    ) -> Result<reqwest::Response, TransportError> {
        let response = tokio::time::timeout(
            self.wait,
            self.client
                .post(&self.endpoint)
                .header(wire_header::SESSION, session_id)
                .header(reqwest::header::CONTENT_TYPE, media::RATLS_RECORDS)
                .body(records)
                .send(),
        )
        .await
        .map_err(|_| self.silent())?
        .map_err(|error| TransportError::Failed(error.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let message = response.text().await.unwrap_or_default();
        Err(TransportError::Status {
            status: status.as_u16(),
            message,
        })
    }

    fn silent(&self) -> TransportError {
        TransportError::Failed(format!("no answer within {} s", self.wait.as_secs()))
    }
}

impl Transport for HttpTransport {
    async fn exchange(
        &self,
        session_id: &str,
        records: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let mut answer = Vec::new();
        self.exchange_streaming(session_id, records, &mut |piece| {
            answer.extend_from_slice(piece);
            ControlFlow::Continue(())
        })
        .await?;
        Ok(answer)
    }
}

impl StreamingTransport for HttpTransport {
    async fn exchange_streaming(
        &self,
        session_id: &str,
        records: Vec<u8>,
        on_records: &mut (dyn FnMut(&[u8]) -> ControlFlow<()> + Send),
    ) -> Result<(), TransportError> {
        let mut response = self.send(session_id, records).await?;
        loop {
            let piece = tokio::time::timeout(self.wait, response.chunk())
                .await
                .map_err(|_| self.silent())?
                .map_err(|error| TransportError::Failed(error.to_string()))?;
            match piece {
                // Returning drops the response: the host sees the hang-up.
                Some(piece) if on_records(&piece).is_break() => return Ok(()),
                Some(_) => {}
                None => return Ok(()),
            }
        }
    }
}
