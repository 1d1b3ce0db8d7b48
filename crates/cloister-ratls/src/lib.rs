//! RA-TLS for Cloister (`docs/DESIGN.md`, phase 4): a TLS 1.3 session between
//! the user's device and the CVM host whose records ride inside OHTTP requests,
//! and in which the client releases its payload only after the host has
//! proved, with SEV-SNP evidence bound to this very session, what it runs.
//! Between two CVMs (a feature host calling a separate inference host) the
//! same session is mutual: the calling CVM proves what it runs too. Both ends
//! live in this crate because both sides must agree on every byte of it; the
//! client's OHTTP transport for it lives in `cloister-client`.
//!
//! # Main types
//!
//! * **Host** ([`SessionTable`]): rustls server sessions keyed by the
//!   client-chosen `cloister-session` id, an ephemeral self-signed
//!   certificate generated per boot, TLS 1.3 only, idle expiry on an
//!   injectable [`Clock`], a bound on open sessions. [`routes`] mounts
//!   `POST /session` for the gateway to forward to. Inside TLS the host
//!   answers `Attest { nonce }` with evidence from a [`SessionAttester`]
//!   (any `cloister_attestation::EvidenceProvider`) over REPORT_DATA =
//!   `SHA-512("cloister-attest-v1" || exporter || nonce)`, and serves
//!   feature requests through a [`FeatureService`] only on an attested
//!   session.
//! * **Bounded work per token**: one exchange (one OHTTP request, paid for
//!   by one Privacy Pass token) carries at most one feature request and one
//!   attestation, or the session fails before any of it runs; a session
//!   serves one exchange at a time and refuses a second that arrives
//!   meanwhile; and when the gateway gives up on an exchange, dropping
//!   [`routes`]' handler sets a [`Cancellation`] that stops the feature
//!   request ([`FeatureService::handle_cancellable`]).
//! * **Client** ([`ClientSession`]): drives a rustls client over any
//!   [`Transport`]. The certificate is not checked against a CA (there is
//!   none), but the TLS 1.3 handshake signature is. Then a fresh nonce, the
//!   evidence, and `cloister_attestation::Verifier` (chain, signature,
//!   policy, measurement authority, binding to this session's exporter and
//!   nonce); only a session that passed all of it can send a request.
//!   [`InMemoryTransport`] feeds a table in the same process.
//!
//! Why the binding matters: a host that merely relays evidence produced for
//! another TLS session (a diversion attack on attested TLS) gets a
//! REPORT_DATA that names the other session's exporter, and the client
//! refuses it.
//!
//! # Mutual sessions (CVM to CVM)
//!
//! A table built with [`SessionTable::require_caller_attestation`] holds a
//! [`CallerVerifier`] (any `Verifier`, with its own policy and measurement
//! authority: an allow-list or a ledger client) and runs, after the TLS
//! handshake:
//!
//! 1. caller -> host `Attest { client_nonce }`;
//! 2. host -> caller `Evidence` over
//!    `SHA-512("cloister-attest-v1" || exporter || client_nonce)`, then in
//!    the same flight `Challenge { host_nonce }`, a fresh single-use nonce
//!    that expires after 60 s (and with the session when it idles out);
//! 3. the caller ([`ClientSession::establish_mutual`]) verifies the host's
//!    evidence exactly as a user's device does and only then asks its
//!    [`CallerAttester`] for evidence over
//!    `SHA-512("cloister-attest-caller-v1" || exporter || host_nonce)`:
//!    the same exporter, so it belongs to this session; the host's nonce, so
//!    it is fresh; its own domain, so that it is never mistaken for a host's;
//! 4. caller -> host `CallerEvidence { host_nonce, evidence }`; the host
//!    redeems the nonce and verifies the evidence as the caller's
//!    (`Verifier::verify_as(Role::Caller, ..)`), then answers
//!    `CallerAccepted`, or `Refused` with the reason and closes the session.
//!
//! Until step 4 succeeds the host refuses every request. Evidence relayed
//! from another session names another exporter; evidence replayed from an
//! earlier session names an old nonce; a host's evidence offered by a
//! caller, or a caller's by a host, was hashed under the other domain: each
//! is refused. A table without a caller verifier never sends a
//! challenge; [`ClientSession::establish`] stops with
//! [`ClientError::CallerAttestationRequired`] when it meets one.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! A SIMULATED host and a client in one process: the client verifies the
//! host's evidence, then sends a request inside the attested session.
//!
//! ```rust
//! use std::sync::Arc;
//!
//! use cloister_api::{FeatureRequest, FeatureResponse, Message, RequestError, SummariseRequest, Summary};
//! use cloister_attestation::{
//!     AllowList, DEVELOPMENT_SEED, DEVELOPMENT_TCB, Policy, ProductLine, SimulatedLaunch,
//!     SimulatedPlatform, SimulatedProvider, TrustAnchors, Verifier,
//! };
//! use cloister_wire::{HostData, Measurement};
//! use cloister_ratls::{
//!     ClientSession, FeatureService, InMemoryTransport, SessionConfig, SessionTable,
//! };
//!
//! /// A feature that counts the messages it is given.
//! struct Count;
//!
//! impl FeatureService for Count {
//!     fn handle(&self, request: FeatureRequest) -> Result<FeatureResponse, RequestError> {
//!         let Ok(summarise) = request.decode::<SummariseRequest>() else {
//!             return Err(RequestError::UnknownFeature { name: request.feature().into() });
//!         };
//!         let covered = u32::try_from(summarise.messages.len()).unwrap_or(u32::MAX);
//!         Ok(FeatureResponse::of(&Summary { text: format!("{covered} messages"), messages_covered: covered }))
//!     }
//! }
//!
//! // The host: a SIMULATED CVM launched with a measurement and HOST_DATA.
//! // Its root derives from a public seed once, then comes from the cache.
//! let cache = std::env::temp_dir().join("cloister-simulated");
//! let (platform, _) = SimulatedPlatform::cached(DEVELOPMENT_SEED, DEVELOPMENT_TCB, &cache)?;
//! let anchors = platform.pin_in(TrustAnchors::amd())?;
//! let launch = SimulatedLaunch::new(Measurement([0x4d; 48]), HostData([0x48; 32]));
//! let released = AllowList { launches: [launch.facts()].into() };
//! let provider = SimulatedProvider::new(platform, launch);
//! let table = SessionTable::new(&SessionConfig::default(), Arc::new(provider), Arc::new(Count))?;
//!
//! // The client: what it accepts.
//! let policy = Policy {
//!     allow_simulated: true,
//!     report_versions: 2..=5,
//!     allowed_vmpls: [0].into(),
//!     minimum_tcb: [(ProductLine::Milan, DEVELOPMENT_TCB)].into(),
//!     accepted: AllowList::default(),
//! };
//! let verifier = Verifier::new(anchors, policy, released);
//!
//! let request = FeatureRequest::of(&SummariseRequest {
//!     messages: vec![Message { sender: "ana".into(), sent_at: 0, text: "lunch at 1?".into() }],
//!     max_words: 0,
//! });
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let response = runtime.block_on(async {
//!     let transport = InMemoryTransport::new(Arc::new(table));
//!     let mut session = ClientSession::establish(transport, &verifier).await?;
//!     assert_eq!(session.attestation().host_data, HostData([0x48; 32]));
//!     session.request(&request).await
//! })?;
//! assert!(matches!(response.decode::<Summary>()?, Summary { messages_covered: 1, .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod caller;
mod cancel;
mod client;
mod frame;
pub mod fuzz_support;
mod http;
mod server;
mod tls;

pub use caller::{CallerAttester, CallerVerifier};
pub use cancel::{CancelOnDrop, Cancellation};
pub use client::{
    ClientError, ClientSession, InMemoryTransport, StreamingTransport, Transport, TransportError,
};
pub use frame::{FrameError, MAX_FRAME_LEN, PADDED_FRAME_SIZES};
pub use http::{SESSION_PATH, routes, status_for};
pub use server::{
    Clock, FeatureService, PayloadService, SessionAttester, SessionConfig, SessionError,
    SessionStats, SessionTable, SystemClock,
};
pub use tls::{HOST_NAME, TlsSetupError};
