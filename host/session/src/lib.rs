//! RA-TLS for Cloister (DESIGN.md, phase 4): a TLS 1.3 session between the
//! user's device and the CVM host whose records ride inside OHTTP requests,
//! and in which the client releases its payload only after the host has
//! proved, with SEV-SNP evidence bound to this very session, what it runs.
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
//! * **Client** ([`ClientSession`]): drives a rustls client over any
//!   [`Transport`]. The certificate is not checked against a CA (there is
//!   none), but the TLS 1.3 handshake signature is. Then a fresh nonce, the
//!   evidence, and `cloister_attestation::Verifier` (chain, signature,
//!   policy, measurement authority, binding to this session's exporter and
//!   nonce); only a session that passed all of it can send a request.
//!
//! Why the binding matters: a host that merely relays evidence produced for
//! another TLS session (a diversion attack on attested TLS) gets a
//! REPORT_DATA that names the other session's exporter, and the client
//! refuses it.

mod client;
mod frame;
mod http;
#[cfg(feature = "ohttp")]
mod ohttp;
mod server;
mod tls;

pub use client::{ClientError, ClientSession, InMemoryTransport, Transport, TransportError};
pub use frame::{FrameError, MAX_FRAME_LEN};
pub use http::{RECORDS_MEDIA_TYPE, SESSION_HEADER, SESSION_PATH, routes};
#[cfg(feature = "ohttp")]
pub use ohttp::{OhttpTransport, TokenSource};
pub use server::{
    Clock, FeatureService, MAX_SESSION_ID_LEN, SessionAttester, SessionConfig, SessionError,
    SessionStats, SessionTable, SystemClock,
};
pub use tls::{HOST_NAME, TlsSetupError};
