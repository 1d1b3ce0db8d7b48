//! The client end: a rustls client driven over any record transport, which
//! releases its payload only to an attested host, and in a mutual session
//! attests itself in turn.

use std::future::Future;
use std::io::Write;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use cloister_api::{FeatureRequest, FeatureResponse, RequestError};
use cloister_attestation::{
    MeasurementAuthority, Nonce, NonceTracker, ProviderError, VerifiedReport, Verifier, VerifyError,
};
use cloister_wire::session;
use rustls::ClientConnection;
use rustls::pki_types::ServerName;
use zeroize::Zeroizing;

use crate::caller::{CallerAttester, NONCE_LIFETIME};
use crate::cancel::Cancellation;
use crate::frame::{Frame, FrameBuffer, FrameError};
use crate::server::{SessionError, SessionTable, drain_plaintext};
use crate::tls::{HOST_NAME, TlsSetupError, client_config, exporter};

/// Why a transport could not carry records to the host.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The host (or the path to it) answered with a failure status.
    #[error("host answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The host's explanation.
        message: String,
    },
    /// The records could not be delivered at all.
    #[error("transport failed: {0}")]
    Failed(String),
}

/// Carries one batch of TLS records to the host's session `session_id` and
/// returns the host's records. Over OHTTP each call is one OHTTP request.
pub trait Transport: Send + Sync {
    /// One round trip.
    fn exchange(
        &self,
        session_id: &str,
        records: Vec<u8>,
    ) -> impl Future<Output = Result<Vec<u8>, TransportError>> + Send;
}

/// A [`Transport`] whose answer may arrive in pieces (a streamed HTTP
/// body), for sessions whose answers stream
/// ([`ClientSession::request_streaming`]).
pub trait StreamingTransport: Transport {
    /// One round trip, handing each piece of the host's records to
    /// `on_records` as it arrives. `on_records` breaking means the caller
    /// wants no more: the transport stops reading and lets the host know
    /// (by dropping the connection).
    fn exchange_streaming(
        &self,
        session_id: &str,
        records: Vec<u8>,
        on_records: &mut (dyn FnMut(&[u8]) -> ControlFlow<()> + Send),
    ) -> impl Future<Output = Result<(), TransportError>> + Send;
}

/// Delivers records straight to a [`SessionTable`] in this process: for
/// tests, and for a CVM talking to a table it holds itself.
#[derive(Debug, Clone)]
pub struct InMemoryTransport {
    table: Arc<SessionTable>,
}

impl InMemoryTransport {
    /// A transport into `table`.
    pub fn new(table: Arc<SessionTable>) -> Self {
        Self { table }
    }
}

impl Transport for InMemoryTransport {
    async fn exchange(
        &self,
        session_id: &str,
        records: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        self.table
            .exchange(session_id, &records)
            .map_err(|error: SessionError| TransportError::Status {
                status: crate::http::status_for(&error).as_u16(),
                message: error.to_string(),
            })
    }
}

impl StreamingTransport for InMemoryTransport {
    async fn exchange_streaming(
        &self,
        session_id: &str,
        records: Vec<u8>,
        on_records: &mut (dyn FnMut(&[u8]) -> ControlFlow<()> + Send),
    ) -> Result<(), TransportError> {
        let cancel = Cancellation::new();
        self.table
            .exchange_streaming(session_id, &records, &cancel, &mut |records| {
                if !cancel.is_cancelled() && on_records(&records).is_break() {
                    cancel.cancel();
                }
            })
            .map_err(|error: SessionError| TransportError::Status {
                status: crate::http::status_for(&error).as_u16(),
                message: error.to_string(),
            })
    }
}

/// Why a session could not be established or a request not served.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The TLS configuration could not be built.
    #[error(transparent)]
    Setup(#[from] TlsSetupError),
    /// The records did not get through.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The host's TLS is broken or hostile.
    #[error("TLS error: {0}")]
    Tls(#[from] rustls::Error),
    /// The decrypted stream is not a valid frame sequence.
    #[error("bad frame from host: {0}")]
    Frame(#[from] FrameError),
    /// The host's evidence was refused: nothing was sent to it.
    #[error("host attestation refused, payload not sent: {0}")]
    Attestation(#[from] VerifyError),
    /// The host refused to attest or to serve.
    #[error("host refused: {0}")]
    Refused(String),
    /// The host requires its callers to attest (a CVM-to-CVM endpoint), and
    /// this client has no evidence to give: nothing was sent to it. Use
    /// [`ClientSession::establish_mutual`].
    #[error("host requires the caller to attest; nothing was sent")]
    CallerAttestationRequired,
    /// This caller could not produce its own evidence: nothing was sent.
    #[error("cannot produce this caller's evidence: {0}")]
    OwnEvidence(ProviderError),
    /// The host verified this caller's evidence and refused it; the host
    /// closed the session.
    #[error("host refused this caller's evidence: {0}")]
    CallerRefused(String),
    /// The host broke the message protocol.
    #[error("protocol violation by host: {0}")]
    Protocol(String),
    /// The host answered the request with a typed error (a code and its
    /// fields): match on it, or print it.
    #[error("feature failed: {0}")]
    Feature(RequestError),
    /// The caller stopped reading a streamed answer; the session is out of
    /// step with the host and must not be used again.
    #[error("the streamed answer was stopped by the caller")]
    Stopped,
}

/// A TLS session with a host whose evidence has been verified. Only such a
/// session can carry a [`FeatureRequest`]: [`ClientSession::establish`]
/// returns one only after verification succeeded, and
/// [`ClientSession::establish_mutual`] only after, in addition, the host
/// accepted the caller's evidence (when it asks for it).
pub struct ClientSession<T> {
    channel: Channel<T>,
    attestation: VerifiedReport,
}

/// The TLS connection and its transport, before and after attestation.
struct Channel<T> {
    transport: T,
    session_id: String,
    tls: ClientConnection,
    inbox: FrameBuffer,
}

impl<T> std::fmt::Debug for ClientSession<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("session_id", &self.channel.session_id)
            .field(
                "measurement",
                &hex::encode(&self.attestation.measurement.0[..8]),
            )
            .finish_non_exhaustive()
    }
}

impl<T: Transport> ClientSession<T> {
    /// Opens a TLS 1.3 session over `transport`, sends a fresh nonce,
    /// verifies the returned evidence with `verifier` (platform, policy,
    /// measurement authority, REPORT_DATA bound to this session's exporter
    /// and the nonce) and only then returns the session.
    ///
    /// # Errors
    /// [`ClientError::Attestation`] if the evidence is refused;
    /// [`ClientError::CallerAttestationRequired`] if the host wants this
    /// client to attest too; any other [`ClientError`] if the session cannot
    /// be set up.
    pub async fn establish<A: MeasurementAuthority>(
        transport: T,
        verifier: &Verifier<A>,
    ) -> Result<Self, ClientError> {
        let mut session = Self::attest_host(transport, verifier).await?;
        match session.channel.inbox.next_frame()? {
            None => Ok(session),
            Some(Frame::Challenge { .. }) => Err(ClientError::CallerAttestationRequired),
            Some(other) => Err(unexpected(other)),
        }
    }

    /// As [`ClientSession::establish`], for a CVM calling another CVM: once
    /// the host's evidence verified, answers the host's challenge with
    /// evidence from `attester`, bound to the same TLS exporter and the
    /// host's nonce under the caller's domain
    /// (`SHA-512("cloister-attest-caller-v1" || exporter || host_nonce)`),
    /// and returns when the host has accepted it. A host that does not ask
    /// callers to attest gets no evidence, and the session is returned as
    /// [`ClientSession::establish`] would.
    ///
    /// # Errors
    /// [`ClientError::Attestation`] if the host's evidence is refused (the
    /// caller then sends nothing, not even its own evidence);
    /// [`ClientError::OwnEvidence`] if `attester` fails;
    /// [`ClientError::CallerRefused`] if the host refuses the caller's
    /// evidence; any other [`ClientError`] if the session cannot be set up.
    pub async fn establish_mutual<A: MeasurementAuthority>(
        transport: T,
        verifier: &Verifier<A>,
        attester: &dyn CallerAttester,
    ) -> Result<Self, ClientError> {
        let mut session = Self::attest_host(transport, verifier).await?;
        let nonce = match session.channel.inbox.next_frame()? {
            None => return Ok(session),
            Some(Frame::Challenge { nonce }) => nonce,
            Some(other) => return Err(unexpected(other)),
        };
        let exporter = exporter(&session.channel.tls)?;
        let evidence = attester
            .attest_caller(&exporter, &Nonce::from_bytes(nonce))
            .map_err(ClientError::OwnEvidence)?;
        let answer = Frame::CallerEvidence {
            nonce,
            evidence: evidence.encode(),
        };
        match session.channel.call(answer).await? {
            Frame::CallerAccepted => Ok(session),
            Frame::Refused(reason) => Err(ClientError::CallerRefused(reason)),
            other => Err(unexpected(other)),
        }
    }

    /// Handshake, fresh nonce, host evidence verified. The host's challenge
    /// to the caller, if any, arrives with its evidence and is left in the
    /// inbox.
    async fn attest_host<A: MeasurementAuthority>(
        transport: T,
        verifier: &Verifier<A>,
    ) -> Result<Self, ClientError> {
        let mut channel = Channel {
            transport,
            session_id: random_session_id()?,
            tls: ClientConnection::new(client_config()?, server_name()?)?,
            inbox: FrameBuffer::default(),
        };
        channel.handshake().await?;
        let exporter = exporter(&channel.tls)?;
        let mut nonces = NonceTracker::new(NONCE_LIFETIME);
        let nonce = nonces.issue(Instant::now());
        let reply = channel
            .call(Frame::Attest {
                nonce: *nonce.as_bytes(),
            })
            .await?;
        let evidence = match reply {
            Frame::Evidence(bytes) => bytes,
            other => return Err(unexpected(other)),
        };
        let attestation =
            verifier.verify(&evidence, &exporter, &nonce, &mut nonces, Instant::now())?;
        Ok(Self {
            channel,
            attestation,
        })
    }

    /// What the host proved: measurement, HOST_DATA, TCB, root. A ledger
    /// check can inspect it beyond what the verifier's
    /// [`MeasurementAuthority`] already decided.
    pub fn attestation(&self) -> &VerifiedReport {
        &self.attestation
    }

    /// The session id the records travel under.
    pub fn session_id(&self) -> &str {
        &self.channel.session_id
    }

    /// Sends `request` inside the attested session and returns the answer.
    ///
    /// # Errors
    /// [`ClientError::Feature`] if the feature failed; others if the session
    /// broke.
    pub async fn request(
        &mut self,
        request: &FeatureRequest,
    ) -> Result<FeatureResponse, ClientError> {
        let json = Zeroizing::new(
            serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?,
        );
        match self.channel.call(Frame::Request(json)).await? {
            Frame::Response(json) => {
                serde_json::from_slice::<Result<FeatureResponse, RequestError>>(&json)
                    .map_err(|e| ClientError::Protocol(format!("malformed response: {e}")))?
                    .map_err(ClientError::Feature)
            }
            other => Err(unexpected(other)),
        }
    }
}

impl<T: StreamingTransport> ClientSession<T> {
    /// Sends `request` to a table that serves its own payloads
    /// (`SessionTable::for_payloads`) and returns the answer, handing each
    /// part the host streams ahead of it to `on_partial` as it arrives.
    ///
    /// # Errors
    /// [`ClientError::Stopped`] if `on_partial` broke (the session must then
    /// be dropped); [`ClientError::Refused`] if the host refused; others if
    /// the session broke.
    pub async fn request_streaming(
        &mut self,
        request: Zeroizing<Vec<u8>>,
        on_partial: &mut (dyn FnMut(&[u8]) -> ControlFlow<()> + Send),
    ) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        match self
            .channel
            .call_streaming(Frame::Request(request), on_partial)
            .await?
        {
            Frame::Response(answer) => Ok(answer),
            other => Err(unexpected(other)),
        }
    }
}

/// Every step of a session (the handshake, then each message) takes exactly
/// one round trip: the host's whole flight fits in one answer. Each round
/// trip is one OHTTP exchange and costs one Privacy Pass token, so a host
/// (or gateway) that answers with less, as if it needed another round trip,
/// has the session stopped instead of draining the client's wallet.
impl<T: Transport> Channel<T> {
    async fn handshake(&mut self) -> Result<(), ClientError> {
        self.round_trip().await?;
        if self.tls.is_handshaking() {
            return Err(stalled("handshake"));
        }
        Ok(())
    }

    /// Sends `frame` and returns the host's answer to it.
    async fn call(&mut self, frame: Frame) -> Result<Frame, ClientError> {
        self.tls
            .writer()
            .write_all(&frame.encode())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.round_trip().await?;
        self.inbox.next_frame()?.ok_or_else(|| stalled("answer"))
    }

    /// Flushes pending records to the host and takes in its answer.
    async fn round_trip(&mut self) -> Result<(), ClientError> {
        let out = self.pending_records()?;
        let answer = self.transport.exchange(&self.session_id, out).await?;
        take_records(&mut self.tls, &mut self.inbox, &answer)
    }

    /// The records TLS has ready to send.
    fn pending_records(&mut self) -> Result<Vec<u8>, ClientError> {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls
                .write_tls(&mut out)
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
        }
        Ok(out)
    }
}

impl<T: StreamingTransport> Channel<T> {
    /// Sends `frame` and returns the host's final answer to it, handing
    /// every `Partial` frame ahead of it to `on_partial` as it arrives.
    async fn call_streaming(
        &mut self,
        frame: Frame,
        on_partial: &mut (dyn FnMut(&[u8]) -> ControlFlow<()> + Send),
    ) -> Result<Frame, ClientError> {
        self.tls
            .writer()
            .write_all(&frame.encode())
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let out = self.pending_records()?;
        let Self {
            transport,
            session_id,
            tls,
            inbox,
        } = self;
        let mut answer = None;
        let mut failure = None;
        let mut on_records = |records: &[u8]| {
            let step = take_records(tls, inbox, records)
                .and_then(|()| next_answer(inbox, &mut answer, on_partial));
            match step {
                Ok(()) => ControlFlow::Continue(()),
                Err(error) => {
                    failure = Some(error);
                    ControlFlow::Break(())
                }
            }
        };
        transport
            .exchange_streaming(session_id, out, &mut on_records)
            .await?;
        if let Some(error) = failure {
            return Err(error);
        }
        answer.ok_or_else(|| stalled("answer"))
    }
}

/// Decrypts `records` into `inbox`.
fn take_records(
    tls: &mut ClientConnection,
    inbox: &mut FrameBuffer,
    mut records: &[u8],
) -> Result<(), ClientError> {
    while !records.is_empty() {
        tls.read_tls(&mut records)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        tls.process_new_packets()?;
        drain_plaintext(&mut tls.reader(), inbox)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
    }
    Ok(())
}

/// Hands the `Partial` frames in `inbox` to `on_partial` until the final
/// answer arrives (kept in `answer`); [`ClientError::Stopped`] when
/// `on_partial` breaks.
fn next_answer(
    inbox: &mut FrameBuffer,
    answer: &mut Option<Frame>,
    on_partial: &mut (dyn FnMut(&[u8]) -> ControlFlow<()> + Send),
) -> Result<(), ClientError> {
    while answer.is_none() {
        match inbox.next_frame()? {
            None => break,
            Some(Frame::Partial(part)) => {
                if on_partial(&part).is_break() {
                    return Err(ClientError::Stopped);
                }
            }
            Some(other) => *answer = Some(other),
        }
    }
    Ok(())
}

/// The host's answer did not complete the step `what`.
fn stalled(what: &str) -> ClientError {
    ClientError::Protocol(format!(
        "the host's {what} asked for another round trip; session stopped \
         (each step takes one OHTTP exchange and one token)"
    ))
}

fn unexpected(frame: Frame) -> ClientError {
    match frame {
        Frame::Refused(reason) => ClientError::Refused(reason),
        Frame::Attest { .. } => ClientError::Protocol("unexpected attest".into()),
        Frame::Evidence(_) => ClientError::Protocol("unexpected evidence".into()),
        Frame::Request(_) => ClientError::Protocol("unexpected request".into()),
        Frame::Response(_) => ClientError::Protocol("unexpected response".into()),
        Frame::Partial(_) => ClientError::Protocol("unexpected partial answer".into()),
        Frame::Challenge { .. } => ClientError::Protocol("unexpected challenge".into()),
        Frame::CallerEvidence { .. } => ClientError::Protocol("unexpected caller evidence".into()),
        Frame::CallerAccepted => ClientError::Protocol("unexpected caller acceptance".into()),
    }
}

fn server_name() -> Result<ServerName<'static>, ClientError> {
    ServerName::try_from(HOST_NAME).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// A session id from 128 random bits.
fn random_session_id() -> Result<String, ClientError> {
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| ClientError::Protocol("no randomness for a session id".into()))?;
    Ok(session::id_from_random(bytes))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use cloister_attestation::{
        AllowList, CertTable, Evidence, Nonce, Policy, ProductLine, ProviderError, REPORT_LEN,
        RawReport, Tcb, TlsExporter, TrustAnchors,
    };

    use super::*;
    use crate::server::{FeatureService, SessionAttester, SessionConfig};

    struct NoEvidence;

    impl SessionAttester for NoEvidence {
        fn attest(&self, _: &TlsExporter, _: &Nonce) -> Result<Evidence, ProviderError> {
            Err(ProviderError::NoEndorsementKey)
        }
    }

    #[derive(Default)]
    struct Counting(AtomicUsize);

    impl FeatureService for Counting {
        fn handle(&self, _: FeatureRequest) -> Result<FeatureResponse, RequestError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(RequestError::AtCapacity)
        }
    }

    /// A handshaken but unattested channel, as a client that skips
    /// attestation would hold.
    async fn unattested(table: &Arc<SessionTable>) -> Channel<InMemoryTransport> {
        unattested_as(table, "skips-attestation").await
    }

    async fn unattested_as(
        table: &Arc<SessionTable>,
        session_id: &str,
    ) -> Channel<InMemoryTransport> {
        let mut channel = Channel {
            transport: InMemoryTransport::new(Arc::clone(table)),
            session_id: session_id.into(),
            tls: ClientConnection::new(
                client_config().unwrap_or_else(|e| panic!("{e}")),
                server_name().unwrap_or_else(|e| panic!("{e}")),
            )
            .unwrap_or_else(|e| panic!("{e}")),
            inbox: FrameBuffer::default(),
        };
        channel
            .handshake()
            .await
            .unwrap_or_else(|e| panic!("handshake: {e}"));
        channel
    }

    fn table(feature: Arc<Counting>) -> Arc<SessionTable> {
        Arc::new(
            SessionTable::new(&SessionConfig::default(), Arc::new(NoEvidence), feature)
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    #[tokio::test]
    async fn the_host_refuses_a_request_before_attestation() {
        let feature = Arc::new(Counting::default());
        let table = table(Arc::clone(&feature));
        let mut channel = unattested(&table).await;
        let request = br#"{"feature":"suggest","input":{"draft":"secret","count":1}}"#.to_vec();
        let reply = channel.call(Frame::Request(Zeroizing::new(request))).await;
        assert!(
            matches!(&reply, Ok(Frame::Refused(reason)) if reason.contains("attest this session first")),
            "{reply:?}"
        );
        assert_eq!(feature.0.load(Ordering::SeqCst), 0);
        let stats = table.stats();
        assert_eq!((stats.refused, stats.requests, stats.open), (1, 0, 1));
    }

    /// A host that, from its `honest_answers`-th exchange on, answers with
    /// no records at all, as if it needed another round trip; counts the
    /// exchanges the client sent.
    struct KeepsAsking {
        inner: InMemoryTransport,
        honest_answers: usize,
        sent: Arc<AtomicUsize>,
    }

    impl Transport for KeepsAsking {
        async fn exchange(
            &self,
            session_id: &str,
            records: Vec<u8>,
        ) -> Result<Vec<u8>, TransportError> {
            if self.sent.fetch_add(1, Ordering::SeqCst) < self.honest_answers {
                self.inner.exchange(session_id, records).await
            } else {
                Ok(Vec::new())
            }
        }
    }

    #[tokio::test]
    async fn a_host_that_keeps_asking_gets_one_exchange_per_step() {
        let verifier = production_verifier();
        // Stalling in the handshake (0 honest answers), then in the
        // attestation step (1 honest answer: the handshake).
        for honest_answers in [0, 1] {
            let feature = Arc::new(Counting::default());
            let sent = Arc::new(AtomicUsize::new(0));
            let transport = KeepsAsking {
                inner: InMemoryTransport::new(table(Arc::clone(&feature))),
                honest_answers,
                sent: Arc::clone(&sent),
            };
            let outcome = ClientSession::establish(transport, &verifier).await;
            let message = outcome.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                message.contains("another round trip"),
                "stalled after {honest_answers}: {message}"
            );
            assert_eq!(
                sent.load(Ordering::SeqCst),
                honest_answers + 1,
                "one exchange per step, none after the stall"
            );
            assert_eq!(feature.0.load(Ordering::SeqCst), 0);
        }
    }

    #[tokio::test]
    async fn a_client_sending_host_messages_loses_its_session() {
        let feature = Arc::new(Counting::default());
        let table = table(Arc::clone(&feature));
        let mut channel = unattested(&table).await;
        let reply = channel.call(Frame::Evidence(vec![1, 2, 3])).await;
        assert!(
            matches!(&reply, Err(ClientError::Transport(TransportError::Status { status: 400, message }))
                if message.contains("unexpected message")),
            "{reply:?}"
        );
        assert_eq!((table.stats().open, table.stats().failed), (0, 1));
    }

    /// Hands out a well-formed but unsigned report: the misbehaving callers
    /// below never check the host, so only the host's side is under test.
    struct PlaceholderEvidence;

    impl SessionAttester for PlaceholderEvidence {
        fn attest(&self, _: &TlsExporter, _: &Nonce) -> Result<Evidence, ProviderError> {
            let report = RawReport::from_bytes(&[0; REPORT_LEN]).unwrap_or_else(|e| panic!("{e}"));
            Ok(Evidence {
                report,
                certificates: CertTable::new(),
            })
        }
    }

    /// A verifier under a production policy (real AMD roots only).
    fn production_verifier() -> Verifier<AllowList> {
        let policy = Policy {
            allow_simulated: false,
            report_versions: 2..=5,
            allowed_vmpls: [0].into(),
            minimum_tcb: [(ProductLine::Milan, Tcb::default())].into(),
            accepted: AllowList::default(),
        };
        Verifier::new(TrustAnchors::amd(), policy, AllowList::default())
    }

    /// A table requiring callers to attest under a production policy.
    fn mutual_table(feature: Arc<Counting>) -> Arc<SessionTable> {
        let callers = production_verifier();
        let table = SessionTable::new(
            &SessionConfig::default(),
            Arc::new(PlaceholderEvidence),
            feature,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Arc::new(table.require_caller_attestation(Arc::new(callers)))
    }

    /// Asks the host to attest and returns its challenge to the caller.
    async fn challenge(channel: &mut Channel<InMemoryTransport>) -> [u8; 32] {
        let reply = channel.call(Frame::Attest { nonce: [3; 32] }).await;
        assert!(matches!(reply, Ok(Frame::Evidence(_))), "{reply:?}");
        match channel.inbox.next_frame() {
            Ok(Some(Frame::Challenge { nonce })) => nonce,
            other => panic!("expected a challenge behind the evidence, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_host_refuses_a_caller_that_skips_its_attestation() {
        let feature = Arc::new(Counting::default());
        let table = mutual_table(Arc::clone(&feature));
        let mut channel = unattested(&table).await;
        challenge(&mut channel).await;
        let request = br#"{"feature":"suggest","input":{"draft":"secret","count":1}}"#.to_vec();
        let reply = channel.call(Frame::Request(Zeroizing::new(request))).await;
        assert!(
            matches!(&reply, Ok(Frame::Refused(reason)) if reason.contains("the caller must attest first")),
            "{reply:?}"
        );
        assert_eq!(feature.0.load(Ordering::SeqCst), 0);
        let stats = table.stats();
        assert_eq!(
            (stats.refused, stats.requests, stats.callers_attested),
            (1, 0, 0)
        );
    }

    #[tokio::test]
    async fn a_challenge_from_an_earlier_session_is_refused() {
        let feature = Arc::new(Counting::default());
        let table = mutual_table(Arc::clone(&feature));
        let mut earlier = unattested_as(&table, "earlier").await;
        let stale = challenge(&mut earlier).await;
        let mut later = unattested_as(&table, "later").await;
        challenge(&mut later).await;
        let reply = later
            .call(Frame::CallerEvidence {
                nonce: stale,
                evidence: vec![],
            })
            .await;
        assert!(
            matches!(&reply, Ok(Frame::Refused(reason)) if *reason == VerifyError::NonceUnknown.to_string()),
            "{reply:?}"
        );
        let stats = table.stats();
        assert_eq!(
            (stats.open, stats.callers_refused),
            (1, 1),
            "the later session is closed"
        );
        // Nothing the refused caller sends afterwards is read.
        let after = later.call(Frame::Attest { nonce: [4; 32] }).await;
        assert!(
            matches!(after, Err(ClientError::Tls(_) | ClientError::Transport(_))),
            "{after:?}"
        );
        assert_eq!(feature.0.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn unsolicited_caller_evidence_ends_the_session() {
        let feature = Arc::new(Counting::default());
        for table in [
            table(Arc::clone(&feature)),
            mutual_table(Arc::clone(&feature)),
        ] {
            let mut channel = unattested(&table).await;
            let reply = channel
                .call(Frame::CallerEvidence {
                    nonce: [5; 32],
                    evidence: vec![],
                })
                .await;
            assert!(
                matches!(&reply, Err(ClientError::Transport(TransportError::Status { status: 400, message }))
                    if message.contains("unsolicited caller evidence")),
                "{reply:?}"
            );
            assert_eq!((table.stats().open, table.stats().failed), (0, 1));
        }
    }
}
