//! Test fixtures for Cloister's end-to-end tests (`tests/e2e`). Dev-only:
//! add it under `[dev-dependencies]`, never `[dependencies]` (a test of this
//! crate fails if any workspace member ships it).
//!
//! Every party's tests need a real gateway and relay in front of whatever
//! they test, wired as production wires them; this crate starts them once,
//! the same way for everyone, instead of each test crate copying the set-up.
//!
//! # Main types
//!
//! * [`Loopback`] starts the real `cloister-gateway` and `cloister-relay` in
//!   the test's own process, each on a fresh `127.0.0.1:0` port. Tests then
//!   point a client at [`Loopback::relay_url`] and
//!   [`Loopback::key_config_url`] (both the relay's, as in production). The
//!   gateway's listener records the address of every peer that connects
//!   ([`Loopback::gateway_peers`]). In-process servers (rather than spawned
//!   binaries) keep tests independent of what else is built on the machine.
//! * [`forward_to`]: the gateway's router to one host; [`serve_app`] and
//!   [`bind_loopback`]: serve a test's own axum app on loopback.
//!
//! The fixtures panic with a message naming what failed: a test that
//! cannot set up its servers has nothing left to check. The crate does not
//! depend on `cloister-client`, so callers build their `ClientConfig` from
//! the two URLs.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! ```rust
//! use cloister_gateway::NoRedeemer;
//! use cloister_ohttp_keys::{key_config_digest, split_key_list};
//! use cloister_test_support::{Loopback, forward_to, serve_app};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A stand-in host; a real test serves the host's session routes here.
//! let host = serve_app(axum::Router::new()).await;
//! let stack = Loopback::start(NoRedeemer { require_tokens: false }, forward_to(host)).await;
//!
//! // What a client fetches first, from the relay's copy: the key
//! // configuration it must find in the ledger.
//! let list = reqwest::get(&stack.key_config_url).await?.bytes().await?;
//! let configs = split_key_list(&list)?;
//! assert_eq!(key_config_digest(configs[0]), stack.key_config_digest());
//! // A client is then configured with `stack.relay_url` and `stack.key_config_url`.
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::serve::ListenerExt as _;
use cloister_gateway::{
    Gateway, GatewayConfig, HttpForwardRouter, KeyService, Metrics, ReplayGuard, Router,
    TokenRedeemer,
};
use cloister_ohttp_keys::KeyRing;
use cloister_relay::{KeyCache, RelayConfig};
use cloister_state_store::StateStore;
use tokio::net::TcpListener;

/// A gateway and a relay in front of it, serving on loopback until the
/// test's runtime ends.
#[derive(Debug)]
pub struct Loopback {
    /// The relay's OHTTP endpoint: where clients send `message/ohttp-req`.
    pub relay_url: String,
    /// The relay's key configuration endpoint (RFC 9540), serving the
    /// relay's copy of the gateway's: where clients fetch keys. The relay
    /// also serves `/healthz` and `/metrics` on the same origin.
    pub key_config_url: String,
    /// The gateway's origin (`http://127.0.0.1:port`): its own key
    /// configuration endpoint, `/healthz` and `/metrics`, for tests that
    /// inspect the gateway itself.
    pub gateway_origin: String,
    /// The gateway's keys, to rotate or retire them mid-test.
    pub keys: Arc<KeyService>,
    /// The relay's copy of the key configuration, to have it refreshed at
    /// once (as its schedule would, later) after a rotation.
    pub relay_keys: Arc<KeyCache>,
    /// The gateway's counters.
    pub metrics: Arc<Metrics>,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Loopback {
    /// A gateway and a relay with their default configuration (the limits
    /// and timeouts an operator gets out of the box), redeeming tokens with
    /// `tokens` and handing inner requests to `router`.
    ///
    /// # Panics
    /// A port cannot be bound, keys cannot be generated or the relay's HTTP
    /// client cannot be built.
    pub async fn start<T: TokenRedeemer, R: Router>(tokens: T, router: R) -> Self {
        Self::start_with(
            &GatewayConfig::default(),
            &RelayConfig::default(),
            tokens,
            router,
        )
        .await
    }

    /// As [`Loopback::start`], with these configurations; each serves HTTPS
    /// when its `[tls]` names a certificate and key (the relay then trusts
    /// its `[tls] ca` for the gateway), and the URLs say so. What cannot apply
    /// to a test is set by the fixture: both listen on `127.0.0.1:0`, the
    /// relay forwards to this gateway (its `gateway_url` is replaced), keys
    /// live in memory only (`keys.file` is ignored) and are not rotated on a
    /// schedule, the replay guard keeps its requests in memory (`[state]` is
    /// ignored; see [`Loopback::start_on`]), and the `[tokens]` and
    /// `[router]` tables give way to `tokens` and `router`.
    ///
    /// # Panics
    /// As [`Loopback::start`].
    pub async fn start_with<T: TokenRedeemer, R: Router>(
        gateway: &GatewayConfig,
        relay: &RelayConfig,
        tokens: T,
        router: R,
    ) -> Self {
        let state = StateStore::in_memory().unwrap_or_else(|e| panic!("state store: {e}"));
        Self::start_on(&state, gateway, relay, tokens, router).await
    }

    /// As [`Loopback::start_with`], the replay guard keeping its requests in
    /// `state`: a store several replicas share, or one that outlives this
    /// gateway.
    ///
    /// # Panics
    /// As [`Loopback::start`].
    pub async fn start_on<T: TokenRedeemer, R: Router>(
        state: &StateStore,
        gateway: &GatewayConfig,
        relay: &RelayConfig,
        tokens: T,
        router: R,
    ) -> Self {
        let settings = &gateway.keys;
        let ring = KeyRing::generate(
            settings.policy(),
            &settings.aeads,
            cloister_wire::unix_now(),
        )
        .unwrap_or_else(|e| panic!("gateway keys: {e}"));
        let keys = Arc::new(KeyService::new(
            ring,
            None,
            Duration::from_secs(settings.max_cache_secs),
        ));
        let metrics = Arc::new(Metrics::default());
        let replay = ReplayGuard::new(
            Duration::from_secs(gateway.replay.window_secs),
            state.once_set("replay", gateway.replay.capacity),
        );
        let service = Arc::new(Gateway::new(
            Arc::clone(&keys),
            replay,
            tokens,
            router,
            Arc::clone(&metrics),
        ));
        let (listener, gateway_addr) = bind_loopback().await;
        let gateway_tls = gateway
            .tls
            .server()
            .unwrap_or_else(|e| panic!("gateway [tls]: {e}"));
        let scheme = |tls: &Option<_>| if tls.is_some() { "https" } else { "http" };
        let gateway_origin = format!("{}://{gateway_addr}", scheme(&gateway_tls));
        let listener = cloister_tls::Listener::new(listener, gateway_tls, "test gateway")
            .unwrap_or_else(|e| panic!("gateway listener: {e}"));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&peers);
        let listener = listener.tap_io(move |stream| {
            if let Ok(peer) = stream.peer_addr() {
                lock(&recorded).push(peer);
            }
        });
        let (path, max_body) = (gateway.path.clone(), gateway.max_request_bytes);
        tokio::spawn(
            async move { cloister_gateway::serve(listener, service, &path, max_body).await },
        );

        let relay = RelayConfig {
            gateway_url: format!("{gateway_origin}{}", gateway.path),
            key_config_url: format!("{gateway_origin}{}", cloister_wire::OHTTP_KEYS_PATH),
            ..relay.clone()
        };
        let relay_path = relay.path.clone();
        let relay_tls = relay
            .tls
            .server()
            .unwrap_or_else(|e| panic!("relay [tls]: {e}"));
        let relay_scheme = scheme(&relay_tls);
        let (relay_app, relay_keys) =
            cloister_relay::app_with_keys(relay).unwrap_or_else(|e| panic!("relay: {e}"));
        tokio::time::timeout(Duration::from_secs(10), relay_keys.loaded())
            .await
            .unwrap_or_else(|_| panic!("the relay did not fetch the gateway's key configuration"));
        let (relay_listener, relay_addr) = bind_loopback().await;
        let relay_listener = cloister_tls::Listener::new(relay_listener, relay_tls, "test relay")
            .unwrap_or_else(|e| panic!("relay listener: {e}"));
        tokio::spawn(async move { axum::serve(relay_listener, relay_app).await });
        Self {
            relay_url: format!("{relay_scheme}://{relay_addr}{relay_path}"),
            key_config_url: format!(
                "{relay_scheme}://{relay_addr}{}",
                cloister_wire::OHTTP_KEYS_PATH
            ),
            gateway_origin,
            keys,
            relay_keys,
            metrics,
            peers,
        }
    }

    /// The address of every peer that has connected to the gateway's
    /// listener so far, in order.
    #[must_use]
    pub fn gateway_peers(&self) -> Vec<SocketAddr> {
        lock(&self.peers).clone()
    }

    /// SHA-256 of the key configuration the gateway publishes now: the
    /// digest a ledger (or a pinned allow-list) must hold for clients that
    /// check key consistency to accept it.
    #[must_use]
    pub fn key_config_digest(&self) -> [u8; 32] {
        self.keys
            .with_ring(|ring| cloister_ohttp_keys::key_config_digest(ring.current_config()))
    }
}

fn lock<X>(mutex: &Mutex<X>) -> std::sync::MutexGuard<'_, X> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The gateway's HTTP router forwarding every session to the one `host`,
/// with the default `[router]` timeout and response limit.
///
/// # Panics
/// The router's HTTP client cannot be built.
#[must_use]
pub fn forward_to(host: SocketAddr) -> HttpForwardRouter {
    let settings = GatewayConfig::default().router;
    HttpForwardRouter::new(
        vec![format!("http://{host}")],
        Duration::from_secs(settings.timeout_secs),
        settings.max_response_bytes,
    )
    .unwrap_or_else(|e| panic!("router: {e}"))
}

/// Serves `app` on a fresh loopback port until the runtime ends; returns
/// its address.
///
/// # Panics
/// No loopback port can be bound.
pub async fn serve_app(app: axum::Router) -> SocketAddr {
    let (listener, addr) = bind_loopback().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A listener on a fresh `127.0.0.1` port, and that port's address.
///
/// # Panics
/// No loopback port can be bound.
pub async fn bind_loopback() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind 127.0.0.1:0: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local address: {e}"));
    (listener, addr)
}

/// A `redis-server` of the test's own: an ephemeral loopback port, no
/// persistence (`--save ''`, `--appendonly no`, a temporary directory),
/// killed when dropped. The shared state store of the replica tests.
#[derive(Debug)]
pub struct RedisServer {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` with `extra` arguments (e.g. `--maxmemory`)
    /// and waits until it accepts connections.
    ///
    /// # Panics
    /// `redis-server` is not installed (`cargo xtask test` installs
    /// Debian's), or it does not start within ten seconds.
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("redis dir: {e}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .unwrap_or_else(|e| panic!("a free port for redis-server: {e}"))
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-server ({e}): the shared-store tests need it; \
                     install it with `apt-get install -y redis-server` (cargo xtask test does)"
                )
            });
        let mut server = Self {
            child,
            port,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("redis-server exited at start-up with {status}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not listen on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// `redis://127.0.0.1:port`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server now (the store is down from here on).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
