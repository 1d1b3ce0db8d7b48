//! The gateway's metrics: requests, [`Rejection`]s by kind and latency per
//! route (see `cloister-metrics`), plus what the pipeline itself counts.
//! Totals only, never anything per request or per client.
//!
//! These are the metadata that abuse monitoring works from (the alert rules
//! in `deploy/monitoring/`): token redemptions per issuer key, encapsulated
//! body sizes, and refusals by reason. An issuer key is public (the ledger
//! logs it) and one of the few the gateway trusts, so its label names no
//! client.

use std::sync::Arc;

use cloister_metrics::{Counter, CounterFamily, ErrorKind, Histogram, ServerMetrics};

/// Why the gateway refused an encapsulated request: the `kind` label of
/// `cloister_gateway_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// Outer: wrong media type.
    BadMediaType,
    /// Outer: key id not held (the client should refetch keys).
    UnknownKeyId,
    /// Outer: malformed or undecryptable encapsulation.
    DecapsulationFailed,
    /// Inner: not a valid Binary HTTP request.
    BadInnerRequest,
    /// Inner: `Date` missing or outside the window.
    DateRejected,
    /// Inner: encapsulated request seen before.
    Replayed,
    /// Inner: replay store full, request refused.
    ReplayStoreFull,
    /// Inner: no token, and tokens are required.
    TokenMissing,
    /// Inner: token malformed, badly signed, for another origin, or not checkable.
    TokenInvalid,
    /// Inner: token already spent (a replay, or a wallet shared between clients).
    TokenDoubleSpent,
    /// Inner: the router could not reach a host.
    RouteFailed,
    /// Inner: the state store (spent tokens, replay guard) could not
    /// answer or its spent-token set is full; refused.
    StateStore,
}

impl ErrorKind for Rejection {
    const ALL: &'static [Self] = &[
        Self::BadMediaType,
        Self::UnknownKeyId,
        Self::DecapsulationFailed,
        Self::BadInnerRequest,
        Self::DateRejected,
        Self::Replayed,
        Self::ReplayStoreFull,
        Self::TokenMissing,
        Self::TokenInvalid,
        Self::TokenDoubleSpent,
        Self::RouteFailed,
        Self::StateStore,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::BadMediaType => "bad_media_type",
            Self::UnknownKeyId => "unknown_key_id",
            Self::DecapsulationFailed => "decapsulation_failed",
            Self::BadInnerRequest => "bad_inner_request",
            Self::DateRejected => "date_rejected",
            Self::Replayed => "replayed",
            Self::ReplayStoreFull => "replay_store_full",
            Self::TokenMissing => "token_missing",
            Self::TokenInvalid => "token_invalid",
            Self::TokenDoubleSpent => "token_double_spent",
            Self::RouteFailed => "route_failed",
            Self::StateStore => "state_store",
        }
    }
}

/// The gateway's metrics, shared by the pipeline and both HTTP origins.
#[derive(Debug)]
pub struct Metrics {
    server: Arc<ServerMetrics<Rejection>>,
    encapsulated: Counter,
    routed: Counter,
    key_configs: Counter,
    redeemed: CounterFamily,
    request_bytes: Histogram,
    response_bytes: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut server = ServerMetrics::new("cloister_gateway");
        let encapsulated = server.counter(
            "encapsulated_requests",
            "Bodies handed to the OHTTP pipeline.",
        );
        let routed = server.counter(
            "routed",
            "Requests answered by a host and encapsulated back.",
        );
        let key_configs = server.counter("key_configs_served", "Key configuration lists served.");
        let redeemed = server.counter_family(
            "tokens_redeemed",
            "Tokens accepted, by issuer key (the first 8 bytes of its token key id, hex).",
        );
        let request_bytes = server.size_histogram(
            "encapsulated_request",
            "Sizes of the encapsulated request bodies received.",
        );
        let response_bytes = server.size_histogram(
            "encapsulated_response",
            "Sizes of the encapsulated response bodies sent.",
        );
        Self {
            server: Arc::new(server),
            encapsulated,
            routed,
            key_configs,
            redeemed,
            request_bytes,
            response_bytes,
        }
    }
}

impl Metrics {
    /// The per-route request counts, latency and rejections, for the HTTP face.
    #[must_use]
    pub fn server(&self) -> &Arc<ServerMetrics<Rejection>> {
        &self.server
    }

    pub(crate) fn encapsulated(&self, body_len: usize) {
        self.encapsulated.inc();
        self.request_bytes.observe(body_len as f64);
    }

    pub(crate) fn answered(&self, body_len: usize) {
        self.response_bytes.observe(body_len as f64);
    }

    pub(crate) fn redeemed(&self, issuer_key: &[u8; 32]) {
        self.redeemed
            .inc(&[("issuer_key", &issuer_key_label(issuer_key))]);
    }

    pub(crate) fn routed(&self) {
        self.routed.inc();
    }

    pub(crate) fn key_config_served(&self) {
        self.key_configs.inc();
    }

    pub(crate) fn rejected(&self, rejection: Rejection) {
        self.server.error(rejection);
    }

    /// Bodies the pipeline has received.
    #[must_use]
    pub fn encapsulated_requests(&self) -> u64 {
        self.encapsulated.get()
    }

    /// Requests a host answered.
    #[must_use]
    pub fn routed_requests(&self) -> u64 {
        self.routed.get()
    }

    /// Key configuration lists served.
    #[must_use]
    pub fn key_configs_served(&self) -> u64 {
        self.key_configs.get()
    }

    /// Tokens accepted under the issuer key `issuer_key` (its token key id).
    #[must_use]
    pub fn tokens_redeemed(&self, issuer_key: &[u8; 32]) -> u64 {
        self.redeemed
            .get(&[("issuer_key", &issuer_key_label(issuer_key))])
    }

    /// Requests refused for `rejection`.
    #[must_use]
    pub fn rejections(&self, rejection: Rejection) -> u64 {
        self.server.errors(rejection)
    }
}

/// The label of an issuer key: enough of its public id to tell the few
/// trusted keys apart on a dashboard.
fn issuer_key_label(token_key_id: &[u8; 32]) -> String {
    hex::encode(&token_key_id[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_independent_and_rendered() {
        let metrics = Metrics::default();
        metrics.rejected(Rejection::Replayed);
        metrics.rejected(Rejection::Replayed);
        metrics.key_config_served();
        metrics.redeemed(&[0xab; 32]);
        metrics.encapsulated(300);
        assert_eq!(metrics.rejections(Rejection::Replayed), 2);
        assert_eq!(metrics.tokens_redeemed(&[0xab; 32]), 1);
        assert_eq!(metrics.tokens_redeemed(&[0xac; 32]), 0);
        assert_eq!(metrics.encapsulated_requests(), 1);
        let text = metrics.server().render();
        assert!(text.contains("cloister_gateway_errors_total{kind=\"replayed\"} 2\n"));
        assert!(text.contains(
            "cloister_gateway_tokens_redeemed_total{issuer_key=\"abababababababab\"} 1\n"
        ));
        assert!(
            text.contains("cloister_gateway_encapsulated_request_bytes_bucket{le=\"1024.0\"} 1\n")
        );
        assert!(text.contains("cloister_gateway_key_configs_served_total 1\n"));
        assert_eq!(
            text.matches("cloister_gateway_errors_total{").count(),
            Rejection::ALL.len()
        );
    }
}
