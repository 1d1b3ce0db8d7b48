//! The host end: a table of TLS sessions fed record by record.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use cloister_api::{FeatureRequest, FeatureResponse, RequestError};
use cloister_attestation::{
    Evidence, EvidenceProvider, Nonce, NonceTracker, ProviderError, TlsExporter, report_data,
};
use cloister_wire::session;
use rustls::{ServerConfig, ServerConnection};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::caller::{CallerVerifier, NONCE_LIFETIME};
use crate::cancel::Cancellation;
use crate::frame::{Frame, FrameBuffer, FrameError};
use crate::tls::{TlsSetupError, ephemeral_server_config, exporter};

/// Runs one feature request. The host runtime implements this by
/// instantiating the feature component for this request alone.
///
/// Called on a blocking thread, only after the session has been attested
/// (and, on a table that requires it, after the caller has attested too).
pub trait FeatureService: Send + Sync {
    /// Serves `request`; the error is returned to the client, typed.
    ///
    /// # Errors
    /// Why the request was not answered.
    fn handle(&self, request: FeatureRequest) -> Result<FeatureResponse, RequestError>;

    /// As [`FeatureService::handle`], for a caller that may give up:
    /// `cancel` is set once nobody waits for the answer any more, and a
    /// service whose requests run long stops then. The table always calls
    /// this; the default, for services that finish promptly, ignores
    /// `cancel`.
    ///
    /// # Errors
    /// Why the request was not answered.
    fn handle_cancellable(
        &self,
        request: FeatureRequest,
        cancel: &Cancellation,
    ) -> Result<FeatureResponse, RequestError> {
        let _ = cancel;
        self.handle(request)
    }
}

/// Serves the requests of attested sessions as bytes: what a table that
/// carries something other than feature requests (a remote inference
/// engine's generate calls) is built with ([`SessionTable::for_payloads`]).
/// A [`FeatureService`] is served through one of these that speaks JSON.
///
/// Called on a blocking thread, only on an attested session (and, on a
/// table that requires it, after the caller attested too).
pub trait PayloadService: Send + Sync {
    /// Answers one request. `partial` sends part of the answer ahead of it,
    /// each part in its own padded frame flushed to the client at once (a
    /// streamed token); it breaks once the parts can no longer be delivered,
    /// and the service should then stop. `cancel` is set when the caller
    /// gave up.
    ///
    /// # Errors
    /// A [`SessionError`] that ends the session; a refusal the client
    /// should read belongs in the returned answer.
    fn serve(
        &self,
        request: &[u8],
        cancel: &Cancellation,
        partial: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<Zeroizing<Vec<u8>>, SessionError>;
}

/// A [`FeatureService`] as the table serves it: JSON
/// [`FeatureRequest`] in, JSON `Result<FeatureResponse, RequestError>` out.
struct FeatureJson(Arc<dyn FeatureService>);

impl PayloadService for FeatureJson {
    fn serve(
        &self,
        request: &[u8],
        cancel: &Cancellation,
        _: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<Zeroizing<Vec<u8>>, SessionError> {
        let outcome = match serde_json::from_slice::<FeatureRequest>(request) {
            Ok(request) => self.0.handle_cancellable(request, cancel),
            Err(error) => Err(RequestError::MalformedRequest {
                reason: error.to_string(),
            }),
        };
        serde_json::to_vec(&outcome)
            .map(Zeroizing::new)
            .map_err(|_| SessionError::UnexpectedMessage("unencodable response"))
    }
}

/// Produces evidence for one TLS session and client nonce.
///
/// Every [`EvidenceProvider`] is an attester: it signs REPORT_DATA =
/// [`report_data`]`(exporter, nonce)`. The trait exists so that tests can
/// play a host that cheats (for example by relaying evidence made for
/// another session) and show that clients refuse it.
pub trait SessionAttester: Send + Sync {
    /// Evidence bound to `exporter` and `nonce`.
    fn attest(&self, exporter: &TlsExporter, nonce: &Nonce) -> Result<Evidence, ProviderError>;
}

impl<P: EvidenceProvider + ?Sized> SessionAttester for P {
    fn attest(&self, exporter: &TlsExporter, nonce: &Nonce) -> Result<Evidence, ProviderError> {
        self.evidence(&report_data(exporter, nonce))
    }
}

/// The time source for idle expiry, injectable so tests need no sleeps.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// Limits of the session table (the `[session]` table of the host config).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// A session unused for this many seconds is dropped with its keys.
    pub idle_timeout_secs: u64,
    /// At most this many sessions exist at once; more are refused.
    pub max_sessions: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 60,
            max_sessions: 1024,
        }
    }
}

/// Why an exchange failed. Every error but [`SessionError::TableFull`],
/// [`SessionError::UnknownSession`] and [`SessionError::Busy`] also drops the
/// session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The session id is empty, too long or not visible ASCII.
    #[error(
        "invalid session id (1..={} visible ASCII characters)",
        session::MAX_ID_LEN
    )]
    InvalidSessionId,
    /// No such session (never opened, expired or failed), and the records
    /// do not start a new one with a ClientHello.
    #[error("unknown or expired session")]
    UnknownSession,
    /// The table holds its maximum number of sessions.
    #[error("too many open sessions")]
    TableFull,
    /// The records are not valid TLS for this session.
    #[error("TLS error: {0}")]
    Tls(#[from] rustls::Error),
    /// The TLS layer could not take the records (e.g. oversized).
    #[error("cannot read TLS records: {0}")]
    Records(std::io::Error),
    /// The decrypted stream is not a valid frame sequence.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// The client sent a message only a host sends.
    #[error("unexpected message from client: {0}")]
    UnexpectedMessage(&'static str),
    /// One exchange (one OHTTP request, one token) carried more than one
    /// feature request or more than one attestation. Nothing of it was
    /// served: the session fails, so that a token never buys more than one
    /// request's work.
    #[error(
        "one exchange carries at most one feature request and one attestation; \
         this one carried {requests} and {attestations}"
    )]
    ExchangeOverLimit {
        /// Complete `Request` frames in the exchange.
        requests: usize,
        /// Complete `Attest` and `CallerEvidence` frames in the exchange.
        attestations: usize,
    },
    /// The session is serving an earlier exchange; this one was refused at
    /// once rather than queued behind it. The session is kept.
    #[error("the session is busy with an earlier exchange")]
    Busy,
    /// The caller gave up while the exchange ran; the work was stopped and
    /// the session, whose TLS state the caller never saw advance, dropped.
    #[error("the caller gave up; the exchange was cancelled")]
    Cancelled,
}

impl SessionError {
    fn drops_session(&self) -> bool {
        !matches!(self, Self::TableFull | Self::UnknownSession | Self::Busy)
    }
}

/// Aggregate counters, safe to export from the CVM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Sessions open now.
    pub open: usize,
    /// Sessions opened since start.
    pub opened: u64,
    /// Sessions dropped for idleness.
    pub expired: u64,
    /// Sessions dropped after an error.
    pub failed: u64,
    /// Attestation evidence served.
    pub attested: u64,
    /// Feature requests served (successfully or not).
    pub requests: u64,
    /// Requests refused because the session was not attested yet (by the
    /// host, or by a caller the table requires to attest).
    pub refused: u64,
    /// Callers whose evidence verified (mutual sessions).
    pub callers_attested: u64,
    /// Callers whose evidence was refused; each such session was closed.
    pub callers_refused: u64,
}

#[derive(Default)]
struct Counters {
    opened: AtomicU64,
    expired: AtomicU64,
    failed: AtomicU64,
    attested: AtomicU64,
    requests: AtomicU64,
    refused: AtomicU64,
    callers_attested: AtomicU64,
    callers_refused: AtomicU64,
}

/// One client's TLS session.
struct Session {
    tls: ServerConnection,
    inbox: FrameBuffer,
    stage: Stage,
    /// The nonces this host challenged the caller with (mutual sessions).
    caller_nonces: NonceTracker,
}

/// How far a session has come; requests are served only in
/// [`Stage::Serving`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The host has not attested yet.
    Unattested,
    /// The host attested and challenged the caller, which has not answered.
    AwaitingCaller,
    /// Every attestation the table requires is done.
    Serving,
    /// The caller's evidence was refused: the session ends with this flight.
    Closing,
}

/// A session and its last use, locked separately so that expiry never
/// waits for a feature request running inside the session.
struct Slot {
    last_used: Mutex<Instant>,
    session: Mutex<Session>,
}

impl Slot {
    fn touch(&self, now: Instant) {
        *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = now;
    }

    fn idle_for(&self, now: Instant) -> Duration {
        let last = *self
            .last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        now.saturating_duration_since(last)
    }

    /// The session, unless an exchange holds it: a second exchange is
    /// refused, never queued behind the first.
    fn try_session(&self) -> Result<MutexGuard<'_, Session>, SessionError> {
        match self.session.try_lock() {
            Ok(session) => Ok(session),
            Err(TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => Err(SessionError::Busy),
        }
    }

    /// Whether a request holds the session at this moment.
    fn is_busy(&self) -> bool {
        matches!(self.session.try_lock(), Err(TryLockError::WouldBlock))
    }
}

type SharedSession = Arc<Slot>;

/// All RA-TLS sessions of this host, in memory only.
///
/// Each session is a rustls [`ServerConnection`] fed with the TLS records a
/// client sends inside successive OHTTP requests. The host certificate is
/// generated when the table is built (once per boot).
pub struct SessionTable {
    tls_config: Arc<ServerConfig>,
    attester: Arc<dyn SessionAttester>,
    caller_verifier: Option<Arc<dyn CallerVerifier>>,
    service: Arc<dyn PayloadService>,
    clock: Arc<dyn Clock>,
    idle_timeout: Duration,
    max_sessions: usize,
    sessions: Mutex<HashMap<String, SharedSession>>,
    counters: Counters,
}

impl std::fmt::Debug for SessionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTable")
            .field("idle_timeout", &self.idle_timeout)
            .field("max_sessions", &self.max_sessions)
            .field(
                "requires_caller_attestation",
                &self.caller_verifier.is_some(),
            )
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SessionTable {
    /// A table with a fresh ephemeral certificate, answering attestation
    /// with `attester` and requests with `features`, on the system clock.
    ///
    /// # Errors
    /// The certificate or TLS configuration cannot be created.
    pub fn new(
        config: &SessionConfig,
        attester: Arc<dyn SessionAttester>,
        features: Arc<dyn FeatureService>,
    ) -> Result<Self, TlsSetupError> {
        Self::with_clock(config, attester, features, Arc::new(SystemClock))
    }

    /// As [`SessionTable::new`], with an explicit clock (tests).
    ///
    /// # Errors
    /// The certificate or TLS configuration cannot be created.
    pub fn with_clock(
        config: &SessionConfig,
        attester: Arc<dyn SessionAttester>,
        features: Arc<dyn FeatureService>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, TlsSetupError> {
        Self::for_payloads(config, attester, Arc::new(FeatureJson(features)), clock)
    }

    /// A table whose attested sessions carry `service`'s own requests
    /// rather than feature requests, with answers that may stream
    /// ([`SessionTable::exchange_streaming`]).
    ///
    /// # Errors
    /// The certificate or TLS configuration cannot be created.
    pub fn for_payloads(
        config: &SessionConfig,
        attester: Arc<dyn SessionAttester>,
        service: Arc<dyn PayloadService>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, TlsSetupError> {
        Ok(Self {
            tls_config: ephemeral_server_config()?,
            attester,
            caller_verifier: None,
            service,
            clock,
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
            max_sessions: config.max_sessions,
            sessions: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        })
    }

    /// Requires every caller to attest as well (mutual RA-TLS, for a CVM
    /// serving other CVMs): after its own evidence the host challenges the
    /// caller with a fresh nonce, and serves requests only once `verifier`
    /// accepted the caller's evidence for this session and that nonce. A
    /// caller whose evidence is refused gets a `Refused` message and its
    /// session is closed.
    #[must_use]
    pub fn require_caller_attestation(mut self, verifier: Arc<dyn CallerVerifier>) -> Self {
        self.caller_verifier = Some(verifier);
        self
    }

    /// Feeds the TLS records a client sent for `session_id` and returns the
    /// records to send back. Records starting with a ClientHello open a new
    /// session under an id not in use.
    ///
    /// Blocking: a feature request runs inside. Call it from a blocking
    /// thread in async code, through [`SessionTable::exchange_cancellable`]
    /// when the caller may give up.
    ///
    /// One exchange is paid for by one token, so it buys bounded work: at
    /// most one feature request and one attestation
    /// ([`SessionError::ExchangeOverLimit`] otherwise, before any of it
    /// runs), and at most one exchange per session at a time
    /// ([`SessionError::Busy`]).
    ///
    /// # Errors
    /// See [`SessionError`]; a failed session is dropped, others are
    /// unaffected.
    pub fn exchange(&self, session_id: &str, records_in: &[u8]) -> Result<Vec<u8>, SessionError> {
        self.exchange_cancellable(session_id, records_in, &Cancellation::new())
    }

    /// As [`SessionTable::exchange`], stopping the feature request when
    /// `cancel` is set (the caller gave up): the exchange then fails with
    /// [`SessionError::Cancelled`] and the session is dropped.
    ///
    /// # Errors
    /// See [`SessionError`].
    pub fn exchange_cancellable(
        &self,
        session_id: &str,
        records_in: &[u8],
        cancel: &Cancellation,
    ) -> Result<Vec<u8>, SessionError> {
        let mut out = Vec::new();
        self.exchange_streaming(session_id, records_in, cancel, &mut |records| {
            out.extend_from_slice(&records);
        })?;
        Ok(out)
    }

    /// As [`SessionTable::exchange_cancellable`], handing the records to
    /// send back to `sink` as they are produced: each part of an answer a
    /// [`PayloadService`] streams, then the rest. Their concatenation is
    /// what [`SessionTable::exchange`] returns.
    ///
    /// # Errors
    /// See [`SessionError`]; records already given to `sink` stay sent.
    pub fn exchange_streaming(
        &self,
        session_id: &str,
        records_in: &[u8],
        cancel: &Cancellation,
        sink: &mut dyn FnMut(Vec<u8>),
    ) -> Result<(), SessionError> {
        if !session::is_valid_id(session_id) {
            return Err(SessionError::InvalidSessionId);
        }
        let now = self.clock.now();
        let shared = self.session(session_id, records_in, now)?;
        let result = shared.try_session().and_then(|mut session| {
            self.advance(&mut session, records_in, cancel, sink)
                .map(|()| session.stage == Stage::Closing)
        });
        let result = result.and_then(|outcome| {
            if cancel.is_cancelled() {
                Err(SessionError::Cancelled)
            } else {
                Ok(outcome)
            }
        });
        shared.touch(self.clock.now());
        match result {
            Ok(closing) => {
                if closing {
                    self.forget(session_id, &shared);
                }
                Ok(())
            }
            Err(error) if error.drops_session() => {
                tracing::debug!(%error, "RA-TLS session failed; dropping it");
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                self.forget(session_id, &shared);
                Err(error)
            }
            Err(error) => Err(error),
        }
    }

    /// Removes `shared` from the table, unless `id` was meanwhile reused.
    fn forget(&self, id: &str, shared: &SharedSession) {
        let mut sessions = self.sessions();
        if sessions.get(id).is_some_and(|s| Arc::ptr_eq(s, shared)) {
            sessions.remove(id);
        }
    }

    /// Drops every session idle for longer than the timeout. Also done on
    /// each new session; a host may call it periodically as well.
    pub fn expire_idle(&self) {
        let now = self.clock.now();
        let mut sessions = self.sessions();
        let before = sessions.len();
        sessions.retain(|_, slot| !self.is_idle(slot, now));
        let expired = before - sessions.len();
        self.counters.expired.fetch_add(
            u64::try_from(expired).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// Aggregate counters.
    pub fn stats(&self) -> SessionStats {
        let count = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SessionStats {
            open: self.sessions().len(),
            opened: count(&self.counters.opened),
            expired: count(&self.counters.expired),
            failed: count(&self.counters.failed),
            attested: count(&self.counters.attested),
            requests: count(&self.counters.requests),
            refused: count(&self.counters.refused),
            callers_attested: count(&self.counters.callers_attested),
            callers_refused: count(&self.counters.callers_refused),
        }
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, SharedSession>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Idle: unused for longer than the timeout and not serving a request
    /// right now (a feature request may legitimately outlast the timeout).
    fn is_idle(&self, slot: &Slot, now: Instant) -> bool {
        slot.idle_for(now) > self.idle_timeout && !slot.is_busy()
    }

    /// The live session under `id`, or a new one if `records` open one.
    fn session(
        &self,
        id: &str,
        records: &[u8],
        now: Instant,
    ) -> Result<SharedSession, SessionError> {
        let mut sessions = self.sessions();
        if let Some(existing) = sessions.get(id).cloned() {
            if !self.is_idle(&existing, now) {
                existing.touch(now);
                return Ok(existing);
            }
            sessions.remove(id);
            self.counters.expired.fetch_add(1, Ordering::Relaxed);
            return Err(SessionError::UnknownSession);
        }
        if !session::starts_with_client_hello(records) {
            return Err(SessionError::UnknownSession);
        }
        drop(sessions);
        self.expire_idle();
        let mut sessions = self.sessions();
        if sessions.len() >= self.max_sessions {
            return Err(SessionError::TableFull);
        }
        let session = Arc::new(Slot {
            last_used: Mutex::new(now),
            session: Mutex::new(Session {
                tls: ServerConnection::new(Arc::clone(&self.tls_config))?,
                inbox: FrameBuffer::default(),
                stage: Stage::Unattested,
                caller_nonces: NonceTracker::new(NONCE_LIFETIME),
            }),
        });
        sessions.insert(id.to_owned(), Arc::clone(&session));
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
        Ok(session)
    }

    /// Decrypts `records`, answers every complete frame, and hands the
    /// records to send back to `sink`. The frames are counted before any is
    /// answered: a batch over the per-exchange limit is refused whole.
    fn advance(
        &self,
        session: &mut Session,
        mut records: &[u8],
        cancel: &Cancellation,
        sink: &mut dyn FnMut(Vec<u8>),
    ) -> Result<(), SessionError> {
        while !records.is_empty() {
            session
                .tls
                .read_tls(&mut records)
                .map_err(SessionError::Records)?;
            session.tls.process_new_packets()?;
            drain_plaintext(&mut session.tls.reader(), &mut session.inbox)?;
        }
        let mut frames = Vec::new();
        while let Some(frame) = session.inbox.next_frame()? {
            frames.push(frame);
        }
        check_work(&frames)?;
        for frame in frames {
            for reply in self.answer(session, frame, cancel, sink)? {
                write_frame(&mut session.tls, &reply)?;
            }
            if session.stage == Stage::Closing {
                // Nothing the refused caller sent after its evidence is read.
                session.tls.send_close_notify();
                break;
            }
        }
        flush(&mut session.tls, sink)
    }

    /// The replies to one frame: usually one, two when the host's evidence
    /// is followed by its challenge to the caller.
    fn answer(
        &self,
        session: &mut Session,
        frame: Frame,
        cancel: &Cancellation,
        sink: &mut dyn FnMut(Vec<u8>),
    ) -> Result<Vec<Frame>, SessionError> {
        match frame {
            Frame::Attest { nonce } => self.attest(session, &Nonce::from_bytes(nonce)),
            Frame::CallerEvidence { nonce, evidence } => {
                self.check_caller(session, &Nonce::from_bytes(nonce), &evidence)
            }
            Frame::Request(payload) if session.stage == Stage::Serving => {
                self.counters.requests.fetch_add(1, Ordering::Relaxed);
                let tls = &mut session.tls;
                let mut broken = None;
                let mut partial = |part: &[u8]| {
                    let sent = write_frame(tls, &Frame::Partial(Zeroizing::new(part.to_vec())))
                        .and_then(|()| flush(tls, sink));
                    match sent {
                        Ok(()) if !cancel.is_cancelled() => ControlFlow::Continue(()),
                        Ok(()) => ControlFlow::Break(()),
                        Err(error) => {
                            broken = Some(error);
                            ControlFlow::Break(())
                        }
                    }
                };
                let answer = self.service.serve(&payload, cancel, &mut partial)?;
                drop(payload);
                match broken {
                    Some(error) => Err(error),
                    None => Ok(vec![Frame::Response(answer)]),
                }
            }
            Frame::Request(_) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                let reason = match session.stage {
                    Stage::AwaitingCaller => "request refused: the caller must attest first",
                    _ => "request refused: attest this session first",
                };
                Ok(vec![Frame::Refused(reason.into())])
            }
            Frame::Evidence(_) => Err(SessionError::UnexpectedMessage("evidence")),
            Frame::Response(_) => Err(SessionError::UnexpectedMessage("response")),
            Frame::Partial(_) => Err(SessionError::UnexpectedMessage("partial answer")),
            Frame::Refused(_) => Err(SessionError::UnexpectedMessage("refusal")),
            Frame::Challenge { .. } => Err(SessionError::UnexpectedMessage("challenge")),
            Frame::CallerAccepted => Err(SessionError::UnexpectedMessage("caller acceptance")),
        }
    }

    /// Evidence for the client's `nonce`, followed by a challenge to the
    /// caller when the table requires callers to attest.
    fn attest(&self, session: &mut Session, nonce: &Nonce) -> Result<Vec<Frame>, SessionError> {
        let exporter = exporter(&session.tls)?;
        let evidence = match self.attester.attest(&exporter, nonce) {
            Ok(evidence) => evidence,
            Err(error) => {
                tracing::warn!(%error, "no attestation evidence for a session");
                return Ok(vec![Frame::Refused(format!("no evidence: {error}"))]);
            }
        };
        self.counters.attested.fetch_add(1, Ordering::Relaxed);
        let mut replies = vec![Frame::Evidence(evidence.encode())];
        if self.caller_verifier.is_some() {
            let challenge = session.caller_nonces.issue(self.clock.now());
            replies.push(Frame::Challenge {
                nonce: *challenge.as_bytes(),
            });
            session.stage = Stage::AwaitingCaller;
        } else {
            session.stage = Stage::Serving;
        }
        Ok(replies)
    }

    /// Verifies the caller's answer to this host's challenge: serving on
    /// success, closing the session on refusal.
    fn check_caller(
        &self,
        session: &mut Session,
        nonce: &Nonce,
        evidence: &[u8],
    ) -> Result<Vec<Frame>, SessionError> {
        let verifier = match (&self.caller_verifier, session.stage) {
            (Some(verifier), Stage::AwaitingCaller) => verifier,
            _ => {
                return Err(SessionError::UnexpectedMessage(
                    "unsolicited caller evidence",
                ));
            }
        };
        let exporter = exporter(&session.tls)?;
        let now = self.clock.now();
        match verifier.verify_caller(evidence, &exporter, nonce, &mut session.caller_nonces, now) {
            Ok(caller) => {
                tracing::debug!(root = ?caller.root, "caller attested");
                self.counters
                    .callers_attested
                    .fetch_add(1, Ordering::Relaxed);
                session.stage = Stage::Serving;
                Ok(vec![Frame::CallerAccepted])
            }
            Err(error) => {
                tracing::warn!(%error, "caller attestation refused; closing the session");
                self.counters
                    .callers_refused
                    .fetch_add(1, Ordering::Relaxed);
                session.stage = Stage::Closing;
                Ok(vec![Frame::Refused(error.to_string())])
            }
        }
    }
}

/// Refuses a batch that asks for more than one exchange's worth of work:
/// one feature request, one attestation (the host's `Attest` or, on a
/// mutual session, the caller's `CallerEvidence`; both cost a report or a
/// verification). Other frames are not counted.
fn check_work(frames: &[Frame]) -> Result<(), SessionError> {
    let requests = frames
        .iter()
        .filter(|frame| matches!(frame, Frame::Request(_)))
        .count();
    let attestations = frames
        .iter()
        .filter(|frame| matches!(frame, Frame::Attest { .. } | Frame::CallerEvidence { .. }))
        .count();
    if requests > 1 || attestations > 1 {
        return Err(SessionError::ExchangeOverLimit {
            requests,
            attestations,
        });
    }
    Ok(())
}

/// Writes `frame` into the TLS session's plaintext stream.
fn write_frame(tls: &mut ServerConnection, frame: &Frame) -> Result<(), SessionError> {
    tls.writer()
        .write_all(&frame.encode())
        .map_err(SessionError::Records)
}

/// Hands every record TLS has pending to `sink`, in one piece.
fn flush(tls: &mut ServerConnection, sink: &mut dyn FnMut(Vec<u8>)) -> Result<(), SessionError> {
    let mut out = Vec::new();
    while tls.wants_write() {
        tls.write_tls(&mut out).map_err(SessionError::Records)?;
    }
    if !out.is_empty() {
        sink(out);
    }
    Ok(())
}

/// Moves decrypted application data from rustls into `inbox`.
pub(crate) fn drain_plaintext(
    tls: &mut impl Read,
    inbox: &mut FrameBuffer,
) -> Result<(), SessionError> {
    let mut chunk = Zeroizing::new([0u8; 4096]);
    loop {
        match tls.read(chunk.as_mut_slice()) {
            Ok(0) => return Ok(()),
            Ok(n) => inbox.push(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(SessionError::Records(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use cloister_attestation::{
        DEVELOPMENT_SEED, DEVELOPMENT_TCB, SimulatedLaunch, SimulatedPlatform, SimulatedProvider,
    };
    use cloister_wire::{HostData, Measurement};
    use rustls::ClientConnection;
    use rustls::pki_types::ServerName;

    use super::*;
    use crate::tls::{HOST_NAME, client_config};

    const SESSION_ID: &str = "batching-client";

    /// Counts the feature requests it serves.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl Counting {
        fn calls(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl FeatureService for Counting {
        fn handle(&self, _: FeatureRequest) -> Result<FeatureResponse, RequestError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(RequestError::AtCapacity)
        }
    }

    /// A table on a SIMULATED platform serving `feature`.
    fn table(feature: Arc<Counting>) -> SessionTable {
        let platform = SimulatedPlatform::from_seed(DEVELOPMENT_SEED, DEVELOPMENT_TCB)
            .unwrap_or_else(|e| panic!("{e}"));
        let launch = SimulatedLaunch::new(Measurement([0x4d; 48]), HostData([0x48; 32]));
        let provider = SimulatedProvider::new(platform, launch);
        SessionTable::new(&SessionConfig::default(), Arc::new(provider), feature)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A client that writes frames by hand, as a hostile one would, and
    /// never checks what the host sends back.
    struct RawClient {
        tls: ClientConnection,
        inbox: FrameBuffer,
    }

    impl RawClient {
        fn connect(table: &SessionTable) -> Self {
            let name = ServerName::try_from(HOST_NAME).unwrap_or_else(|e| panic!("{e}"));
            let config = client_config().unwrap_or_else(|e| panic!("{e}"));
            let mut client = Self {
                tls: ClientConnection::new(config, name).unwrap_or_else(|e| panic!("{e}")),
                inbox: FrameBuffer::default(),
            };
            // A whole batch is written before it is sent.
            client.tls.set_buffer_limit(None);
            while client.tls.is_handshaking() {
                client
                    .send(table, Vec::new())
                    .unwrap_or_else(|e| panic!("handshake: {e}"));
            }
            client
        }

        /// Sends `frames`, and whatever TLS has pending, in one exchange.
        fn send(&mut self, table: &SessionTable, frames: Vec<Frame>) -> Result<(), SessionError> {
            for frame in frames {
                self.tls
                    .writer()
                    .write_all(&frame.encode())
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            let mut out = Vec::new();
            while self.tls.wants_write() {
                self.tls
                    .write_tls(&mut out)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            let answer = table.exchange(SESSION_ID, &out)?;
            let mut records = answer.as_slice();
            while !records.is_empty() {
                self.tls
                    .read_tls(&mut records)
                    .unwrap_or_else(|e| panic!("{e}"));
                self.tls
                    .process_new_packets()
                    .unwrap_or_else(|e| panic!("{e}"));
                drain_plaintext(&mut self.tls.reader(), &mut self.inbox)?;
            }
            Ok(())
        }
    }

    fn request() -> Frame {
        Frame::Request(Zeroizing::new(
            br#"{"feature":"suggest","input":{"draft":"secret","count":1}}"#.to_vec(),
        ))
    }

    #[test]
    fn one_ohttp_exchange_runs_at_most_one_feature_request() {
        let feature = Arc::new(Counting::default());
        let table = table(Arc::clone(&feature));
        let mut client = RawClient::connect(&table);
        // One attestation and one request in one exchange: within the limit.
        client
            .send(&table, vec![Frame::Attest { nonce: [1; 32] }, request()])
            .unwrap_or_else(|e| panic!("one attestation and one request: {e}"));
        assert_eq!(feature.calls(), 1);

        // A thousand requests in one exchange: none of them runs, and the
        // session that asked for them is gone.
        let outcome = client.send(&table, (0..1000).map(|_| request()).collect());
        assert_eq!(feature.calls(), 1, "requests served for one token");
        assert!(
            matches!(
                outcome,
                Err(SessionError::ExchangeOverLimit {
                    requests: 1000,
                    attestations: 0
                })
            ),
            "{outcome:?}"
        );
        assert_eq!((table.stats().open, table.stats().failed), (0, 1));

        // Two attestations in one exchange: refused before either report.
        let mut client = RawClient::connect(&table);
        let attested = table.stats().attested;
        let outcome = client.send(
            &table,
            vec![
                Frame::Attest { nonce: [2; 32] },
                Frame::Attest { nonce: [3; 32] },
            ],
        );
        assert!(
            matches!(
                outcome,
                Err(SessionError::ExchangeOverLimit {
                    requests: 0,
                    attestations: 2
                })
            ),
            "{outcome:?}"
        );
        assert_eq!(table.stats().attested, attested, "no report was made");
    }
}
