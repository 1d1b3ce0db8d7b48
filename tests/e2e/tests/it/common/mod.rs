//! Shared fixtures: an in-process issuer (the `cloister-issuer` router on a
//! loopback port) with one registered account, a client configuration for
//! a loopback relay, and a plain GET.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use cloister_client::ClientConfig;
use cloister_client::tokens::{AccountKey, IssuerClient, IssuerSettings};
use cloister_issuer::accounts::Accounts;
use cloister_issuer::config::{Config, RateLimitConfig};
use cloister_issuer::keyring::KeyRing;
use cloister_issuer::server::{IssuerState, router, system_clock};
use tokio::net::TcpListener;

/// A running issuer and an account registered with it.
pub struct Issuer {
    /// Its base URL.
    pub url: String,
    /// The registered account.
    pub account: AccountKey,
    /// Its shared state (keys, limits, metrics).
    pub state: Arc<IssuerState>,
    _keys: tempfile::TempDir,
}

impl Issuer {
    /// An issuer allowing `tokens_per_window` tokens per hour per account.
    pub async fn start(tokens_per_window: u32) -> Self {
        Self::start_with(tokens_per_window, |state| state).await
    }

    /// As [`Issuer::start`], its state first passed through `adjust`.
    pub async fn start_with(
        tokens_per_window: u32,
        adjust: impl FnOnce(IssuerState) -> IssuerState,
    ) -> Self {
        let account = AccountKey::generate("alice").unwrap_or_else(|e| panic!("account: {e}"));
        let accounts = Accounts::from_toml(&account.issuer_entry())
            .unwrap_or_else(|e| panic!("accounts: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let keys = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let config = Config {
            request_uri: format!("http://{addr}/token-request"),
            rate_limit: RateLimitConfig {
                tokens_per_window,
                window_secs: 3600,
            },
            ..Config::default()
        };
        let clock = system_clock();
        let ring = KeyRing::open(keys.path(), config.keys.lifetime_secs, clock())
            .unwrap_or_else(|e| panic!("keys: {e}"));
        let store = cloister_state_store::StateStore::in_memory()
            .unwrap_or_else(|e| panic!("state store: {e}"));
        let state = Arc::new(adjust(IssuerState::new(
            config, accounts, ring, clock, &store,
        )));
        let served = Arc::clone(&state);
        tokio::spawn(async move { axum::serve(listener, router(served)).await });
        Self {
            url: format!("http://{addr}"),
            account,
            state,
            _keys: keys,
        }
    }

    /// Settings for a client of this issuer, for the gateway's default challenge.
    pub fn settings(&self) -> IssuerSettings {
        IssuerSettings {
            issuer_url: self.url.clone(),
            timeout: Duration::from_secs(10),
            tls: cloister_client::Outbound::insecure_demo(),
            ..IssuerSettings::default()
        }
    }

    /// A client of this issuer.
    pub fn client(&self) -> IssuerClient {
        IssuerClient::new(self.settings()).unwrap_or_else(|e| panic!("issuer client: {e}"))
    }
}

/// The body of a successful `GET url` (health, metrics), or a panic naming the URL.
pub async fn get_text(url: &str) -> String {
    let response = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response
        .text()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// A client of the relay at `relay_url` fetching keys from
/// `key_config_url`, both plain-HTTP loopback addresses (the declared
/// insecure demo mode).
pub fn loopback_client_config(relay_url: String, key_config_url: String) -> ClientConfig {
    ClientConfig {
        relay_url,
        key_config_url,
        tls: cloister_client::Outbound::insecure_demo(),
        ..ClientConfig::default()
    }
}
