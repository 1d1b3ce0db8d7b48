//! What a request costs on loopback, inference excluded (the deterministic
//! backend): a host booted in-process with the real plugins and policies and
//! SIMULATED attestation, behind a relay and a gateway (tokens not
//! required), and the client of `tests/it/host.rs`.
//!
//! - `first_request/all`: a new client fetches and checks the gateway's
//!   keys, establishes an RA-TLS session (handshake and attestation) and
//!   sends one summarise request.
//! - `first_request/keys`, `first_request/session`: the first two phases
//!   alone (the session on a client whose keys are cached).
//! - `later_request`: one more request in an established session.
//! - `simulated_root/cached`: what pinning the development root costs a
//!   client start once it is cached (`simulated_root/derive` without).
//!
//! Not covered: spending a Privacy Pass token and syncing the ledger.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

use cloister_api::FeatureRequest;
use cloister_attestation::{AllowList, DEVELOPMENT_SEED, SimulatedRoot, Verifier};
use cloister_client::{Client, ClientConfig, OhttpTransport, UncheckedKeys};
use cloister_gateway::NoRedeemer;
use cloister_ratls::ClientSession;
use cloister_test_support::{Loopback, bind_loopback, forward_to};
use criterion::{Criterion, criterion_group, criterion_main};
use tokio::runtime::Runtime;

#[path = "../tests/it/development.rs"]
#[allow(dead_code, reason = "shared with the tests; the bench verifies only")]
mod development;
/// The in-process host of `cloister-host`'s tests.
#[path = "../../../host/tests/it/common/mod.rs"]
mod host_common;

/// A booted host behind a relay and a gateway, and what a client needs.
struct Chain {
    runtime: Runtime,
    client: ClientConfig,
    verifier: Verifier<AllowList>,
    request: FeatureRequest,
    // Dropping them stops the servers.
    _servers: Loopback,
}

impl Chain {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let mut config = host_common::config(&host_common::repo_root().join("policies"));
        // Every iteration opens a session and leaves it to expire.
        config.serve.max_sessions = 1 << 20;
        let host = host_common::boot(&config).unwrap_or_else(|e| panic!("boot: {e}"));
        let verifier = development::verifier(host.launch());
        let servers = runtime.block_on(async {
            let (listener, host_addr): (_, SocketAddr) = bind_loopback().await;
            tokio::spawn(host.serve(listener, std::future::pending()));
            Loopback::start(
                NoRedeemer {
                    require_tokens: false,
                },
                forward_to(host_addr),
            )
            .await
        });
        let path = host_common::repo_root().join("plugins/summarise/testdata/team-lunch.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self {
            client: ClientConfig {
                relay_url: servers.relay_url.clone(),
                key_config_url: servers.key_config_url.clone(),
                tls: cloister_client::Outbound::insecure_demo(),
                ..ClientConfig::default()
            },
            verifier,
            request: serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            runtime,
            _servers: servers,
        }
    }

    /// A new client with the gateway's keys fetched and checked.
    async fn ready_client(&self) -> Arc<Client<UncheckedKeys>> {
        let client = Client::new(self.client.clone(), UncheckedKeys)
            .unwrap_or_else(|e| panic!("client: {e}"));
        client.ready().await.unwrap_or_else(|e| panic!("keys: {e}"));
        Arc::new(client)
    }

    async fn session(
        &self,
        client: Arc<Client<UncheckedKeys>>,
    ) -> ClientSession<OhttpTransport<UncheckedKeys>> {
        let transport = OhttpTransport::new(client, "cloister.invalid");
        ClientSession::establish(transport, &self.verifier)
            .await
            .unwrap_or_else(|e| panic!("establish: {e}"))
    }

    async fn request(&self, session: &mut ClientSession<OhttpTransport<UncheckedKeys>>) {
        session
            .request(&self.request)
            .await
            .unwrap_or_else(|e| panic!("summarise: {e}"));
    }
}

fn first_request(c: &mut Criterion) {
    let chain = Chain::start();
    let mut group = c.benchmark_group("first_request");
    group.bench_function("all", |b| {
        b.iter(|| {
            chain.runtime.block_on(async {
                let mut session = chain.session(chain.ready_client().await).await;
                chain.request(&mut session).await;
            });
        });
    });
    group.bench_function("keys", |b| {
        b.iter(|| chain.runtime.block_on(chain.ready_client()));
    });
    let client = chain.runtime.block_on(chain.ready_client());
    group.bench_function("session", |b| {
        b.iter(|| chain.runtime.block_on(chain.session(Arc::clone(&client))));
    });
    group.finish();
    let mut session = chain.runtime.block_on(chain.session(client));
    c.bench_function("later_request", |b| {
        b.iter(|| chain.runtime.block_on(chain.request(&mut session)));
    });
}

fn simulated_root(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    SimulatedRoot::cached(DEVELOPMENT_SEED, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("simulated_root");
    group.bench_function("cached", |b| {
        b.iter(|| SimulatedRoot::cached(DEVELOPMENT_SEED, dir.path()));
    });
    group.sample_size(10);
    group.bench_function("derive", |b| {
        b.iter(|| SimulatedRoot::from_seed(DEVELOPMENT_SEED));
    });
    group.finish();
}

criterion_group!(benches, first_request, simulated_root);
criterion_main!(benches);
