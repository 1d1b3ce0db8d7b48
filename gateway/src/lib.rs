//! Cloister's Oblivious HTTP gateway (RFC 9458), phase 3 of the request flow
//! (`docs/DESIGN.md`).
//!
//! Clients reach the gateway only through a third-party relay, so the gateway
//! sees requests but never who sent them, and the relay sees senders but
//! never requests. The gateway is the operator's front door: it holds the
//! OHTTP keys, spends the Privacy Pass tokens, and picks the host; it never
//! sees conversation text, which stays inside the RA-TLS session it forwards.
//!
//! # Main types
//!
//! [`Gateway::handle`] is the whole pipeline. For each `message/ohttp-req`:
//!
//! 1. it picks the HPKE key named by the request's key id from its
//!    [`KeyService`] (a [`KeyRing`](cloister_ohttp_keys::KeyRing)); an unknown
//!    id gets the `ohttp-key` problem so the client refetches the key
//!    configuration;
//! 2. decapsulates with the `ohttp` crate and parses the inner Binary HTTP
//!    request (RFC 9292) with `bhttp` ([`decapsulate_and_parse`]);
//! 3. refuses a request whose `Date` is outside the configured window;
//! 4. asks the [`TokenRedeemer`] ([`PrivacyPassRedeemer`] in production) to
//!    redeem the `Authorization: PrivateToken` header, failing closed, then
//!    strips it;
//! 5. refuses replays: the encapsulated key of every paid request is
//!    remembered for the window ([`ReplayGuard`]), so requests without a
//!    valid token never take room in that store. Spent tokens and these
//!    keys live in the configured state store (`[state]`: a redb file, or
//!    Redis shared by replicas); a store that cannot answer refuses the
//!    request;
//! 6. hands the request to a [`Router`] ([`HttpForwardRouter`] in
//!    production), which places a new session on a healthy host by
//!    rendezvous hashing of its id and sends every later request of it to
//!    the host its route label names ([`hosts`]), and encapsulates the
//!    host's answer; a session whose host is gone gets the
//!    `session-host-gone` problem (503).
//!
//! Errors before decapsulation are plain HTTP errors without detail (RFC
//! 9458 §5.3); errors after it are encapsulated, so only the client reads
//! them. [`serve`] puts the gateway behind axum with the key configuration
//! endpoint, `/healthz` and `/metrics`; [`GatewayConfig`] is its TOML
//! configuration.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! One encapsulated request through the pipeline, answered by the
//! [`EchoRouter`] test stand-in; a tampered copy is refused without detail.
//!
//! ```rust
//! use std::io::Cursor;
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//!
//! use bhttp::{Message, Mode};
//! use cloister_gateway::{
//!     EchoRouter, Gateway, KeyService, Metrics, NoRedeemer, ReplayGuard,
//! };
//! use cloister_wire::media::OHTTP_REQUEST;
//! use cloister_wire::unix_now;
//! use cloister_ohttp_keys::{AeadChoice, KeyRing, RotationPolicy};
//!
//! let policy = RotationPolicy { rotate_every: Duration::from_secs(86_400), overlap: Duration::from_secs(3_600) };
//! let ring = KeyRing::generate(policy, &[AeadChoice::Aes128Gcm], unix_now())?;
//! let config = ring.current_config().to_vec();
//! let state = cloister_state_store::StateStore::in_memory()?;
//! let gateway = Gateway::new(
//!     Arc::new(KeyService::new(ring, None, Duration::from_secs(3_600))),
//!     ReplayGuard::new(Duration::from_secs(60), state.once_set("replay", 10_000)),
//!     NoRedeemer { require_tokens: false },
//!     EchoRouter,
//!     Arc::new(Metrics::default()),
//! );
//!
//! // What a client does: Binary HTTP with a `Date`, encapsulated to the key.
//! let mut inner = Message::request(b"POST".to_vec(), b"https".to_vec(), b"cloister.invalid".to_vec(), b"/echo".to_vec());
//! inner.put_header("date", httpdate::fmt_http_date(SystemTime::now()));
//! inner.write_content(b"hello");
//! let mut encoded = Vec::new();
//! inner.write_bhttp(Mode::KnownLength, &mut encoded)?;
//! let (request, client_side) = ohttp::ClientRequest::from_encoded_config(&config)?.encapsulate(&encoded)?;
//!
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let answer = runtime.block_on(gateway.handle(Some(OHTTP_REQUEST), &request));
//! assert_eq!(answer.status, 200);
//! let plaintext = client_side.decapsulate(&answer.body)?;
//! let response = Message::read_bhttp(&mut Cursor::new(&plaintext[..]))?;
//! assert_eq!(response.content(), b"POST /echo\nhello");
//!
//! let mut tampered = request.clone();
//! if let Some(last) = tampered.last_mut() {
//!     *last ^= 1;
//! }
//! let refused = runtime.block_on(gateway.handle(Some(OHTTP_REQUEST), &tampered));
//! assert_eq!((refused.status, refused.body.len()), (400, 0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
pub mod fuzzing;
pub mod hosts;
mod keys;
mod metrics;
mod pipeline;
mod reload;
mod replay;
mod router;
mod server;
mod token;

pub use config::{
    GatewayConfig, HealthSettings, IssuerSettings, KeyConfigSettings, ReplaySettings,
    RouterSettings, TokenSettings,
};
pub use keys::{KeyService, key_window, spawn_key_maintenance, spawn_published_key_maintenance};
pub use metrics::{Metrics, Rejection};
pub use pipeline::{Decapsulated, Gateway, GatewayResponse, OuterError, decapsulate_and_parse};
#[cfg(unix)]
pub use reload::spawn_reload_on_hangup;
pub use reload::{ReloadError, reload_hosts};
pub use replay::{ReplayGuard, ReplayVerdict};
pub use router::{EchoRouter, HttpForwardRouter, RouteError, Router};
pub use server::{serve, serve_key_configs};
pub use token::{
    ConfiguredRedeemer, NoRedeemer, PrivacyPassRedeemer, Redeemed, TokenRedeemer, TokenRejection,
};
