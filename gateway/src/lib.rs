//! Cloister's Oblivious HTTP gateway (RFC 9458), phase 3 of the request flow.
//!
//! Clients reach the gateway only through a third-party relay, so the gateway
//! sees requests but never who sent them, and the relay sees senders but
//! never requests. For each `message/ohttp-req` the gateway:
//!
//! 1. picks the HPKE key named by the request's key id from its
//!    [`KeyRing`](cloister_ohttp_keys::KeyRing); an unknown id gets the
//!    `ohttp-key` problem so the client refetches the key configuration;
//! 2. decapsulates with the `ohttp` crate and parses the inner Binary HTTP
//!    request (RFC 9292) with `bhttp`;
//! 3. refuses replays: the inner request must carry a `Date` within the
//!    configured window, and the encapsulated key of every accepted request
//!    is remembered for that window (see [`ReplayGuard`]);
//! 4. asks the [`TokenRedeemer`] to redeem the `Authorization: PrivateToken`
//!    header (failing closed), then strips it;
//! 5. hands the request to a [`Router`], which picks the host from the
//!    session id, and encapsulates the host's answer.
//!
//! Errors before decapsulation are plain HTTP errors without detail (RFC
//! 9458 §5.3); errors after it are encapsulated, so only the client reads
//! them. [`Gateway::handle`] is the whole pipeline; [`serve`] puts it behind
//! axum with the key configuration endpoint, `/healthz` and `/metrics`.

mod config;
pub mod fuzzing;
mod keys;
mod metrics;
mod pipeline;
mod replay;
mod router;
mod server;
mod token;

pub use config::{
    GatewayConfig, IssuerSettings, KeyConfigSettings, ReplaySettings, RouterSettings, TokenSettings,
};
pub use keys::{KeyService, spawn_key_maintenance};
pub use metrics::{Metrics, Rejection};
pub use pipeline::{Decapsulated, Gateway, GatewayResponse, OuterError, decapsulate_and_parse};
pub use replay::{ReplayGuard, ReplayVerdict};
pub use router::{EchoRouter, HttpForwardRouter, RouteError, Router};
pub use server::{serve, serve_key_configs};
pub use token::{
    ConfiguredRedeemer, NoRedeemer, PrivacyPassRedeemer, TokenRedeemer, TokenRejection,
};
