//! `cloister-host serve`: the CVM host's network face (DESIGN.md, phases 4-6),
//! and the one place where a host is assembled.
//!
//! [`Host::boot`] builds it in order: configuration (plain data, with the
//! [`LaunchDigests`] it names and the attestation provider, which must
//! report HOST_DATA equal to the digest of the policy set just loaded) ->
//! engine (chosen and built by the binary, passed in) -> capabilities ->
//! runtime (every plugin compiled) -> sessions (a [`SessionTable`] with a
//! fresh ephemeral TLS certificate) -> server. [`load_runtime`] is the same
//! assembly up to the runtime, for `cloister-host run`. [`Host::serve`]
//! answers, until `shutdown` resolves:
//!
//! * `POST /session`: RA-TLS records forwarded by the gateway
//!   ([`cloister_ratls::routes`]); each feature request runs in a fresh
//!   plugin instance on a blocking thread;
//! * `GET /healthz`: status, attestation mode (announcing simulation
//!   loudly), inference backend, and the public launch digests;
//! * `GET /metrics`: aggregates only, in OpenMetrics text ([`metrics`]).
//!
//! A background task sweeps idle sessions every `expire-every-secs`.

mod attestation;
pub mod metrics;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use cloister_attestation::{EvidenceProvider as _, SIMULATION_WARNING};
use cloister_inference::InferenceBackend;
use cloister_ratls::{SessionTable, TlsSetupError};
use serde::Serialize;

pub use self::attestation::{AttestationError, ConfiguredProvider, check_boot_report, provider};
use self::metrics::{FeatureMeter, HostMetrics, MeteredRuntime};
use crate::capabilities::Capabilities;
use crate::config::{HostConfig, ProviderKind, ServeConfig};
use crate::error::LoadError;
use crate::launch::{LaunchDigests, LaunchError};
use crate::logfilter::LogFilter;
use crate::policy::PolicySet;
use crate::runtime::Runtime;

/// Why the host refused to start.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The launch digests could not be computed.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// Attestation is unavailable or names other policies.
    #[error(transparent)]
    Attestation(#[from] AttestationError),
    /// The runtime or a plugin failed to load.
    #[error("loading plugins: {0}")]
    Runtime(#[from] LoadError),
    /// The ephemeral TLS identity could not be created.
    #[error("TLS setup: {0}")]
    Tls(#[from] TlsSetupError),
}

/// What `GET /healthz` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `ok` while serving.
    pub status: &'static str,
    /// `sev-guest`, or the simulation warning.
    pub attestation: String,
    /// The attestation provider.
    pub attestation_provider: ProviderKind,
    /// The inference engine's name.
    pub inference_backend: String,
    /// True if the inference engine is the simulated stand-in.
    pub inference_simulated: bool,
    /// The public digests of this launch (as `cloister-host measure` prints).
    pub launch: LaunchDigests,
}

/// A booted host, ready to serve.
pub struct Host {
    table: Arc<SessionTable>,
    observed: Arc<Observed>,
    settings: ServeConfig,
}

/// What the health and metrics endpoints read.
struct Observed {
    metrics: Arc<HostMetrics>,
    health: Health,
}

/// The assembly up to the runtime: capabilities serving inference from
/// `engine` and plugin events through `filter`, and a runtime with every
/// plugin of `policies` compiled from `config.plugin_dir`.
///
/// # Errors
/// A plugin or the wasm engine failed to load, or a compile cache is
/// configured without simulated attestation.
pub fn load_runtime(
    config: &HostConfig,
    policies: &PolicySet,
    engine: Arc<dyn InferenceBackend>,
    filter: Arc<LogFilter>,
) -> Result<Runtime, LoadError> {
    if config.runtime.compile_cache.is_some()
        && config.attestation.provider != ProviderKind::Simulated
    {
        return Err(LoadError::CompileCacheOutsideSimulation);
    }
    let capabilities = Capabilities::new(engine, filter);
    let mut runtime = Runtime::new(config.runtime.clone(), capabilities)?;
    runtime.load_policy_set(policies, &config.plugin_dir()?)?;
    Ok(runtime)
}

impl Host {
    /// Boots a host for `policies` under `config`, serving inference from
    /// `engine`, as the binary whose SHA-256 is `host_binary`, logging
    /// plugin events into `filter`. Slow: generates or requests attestation
    /// and compiles every plugin.
    ///
    /// # Errors
    /// See [`BootError`]; notably a HOST_DATA other than the one of
    /// `policies`, the engine's weights and the settings
    /// ([`AttestationError::LaunchMismatch`]).
    pub fn boot(
        config: &HostConfig,
        policies: &PolicySet,
        engine: Arc<dyn InferenceBackend>,
        filter: Arc<LogFilter>,
        host_binary: [u8; 32],
    ) -> Result<Self, BootError> {
        // Configuration: what it names, and attestation to exactly that.
        let launch = LaunchDigests::compute(config, policies, host_binary, &engine.identity())?;
        let provider = provider(&config.attestation, &launch)?;
        check_boot_report(provider.as_ref(), &launch)?;
        let health = Health {
            status: "ok",
            attestation: if provider.is_simulated() {
                SIMULATION_WARNING.to_owned()
            } else {
                "sev-guest".to_owned()
            },
            attestation_provider: config.attestation.provider,
            inference_backend: engine.name().to_owned(),
            inference_simulated: engine.is_simulated(),
            launch,
        };

        // Engine -> capabilities -> runtime.
        let runtime = load_runtime(config, policies, engine, Arc::clone(&filter))?;
        let mut metrics = metrics::host_metrics();
        let meter = FeatureMeter::new(&mut metrics, runtime.manifests().map(|m| m.name.as_str()));
        let service = MeteredRuntime::new(runtime, meter);

        // Sessions -> server.
        let table = Arc::new(SessionTable::new(
            &config.serve.sessions(),
            Arc::clone(&provider) as _,
            Arc::new(service),
        )?);
        metrics::collect_sessions(&mut metrics, Arc::clone(&table), filter);
        let observed = Arc::new(Observed {
            metrics: Arc::new(metrics),
            health,
        });
        Ok(Self {
            table,
            observed,
            settings: config.serve.clone(),
        })
    }

    /// What `/healthz` reports: attestation mode, engine, launch digests.
    pub fn health(&self) -> &Health {
        &self.observed.health
    }

    /// The launch digests this host attests to.
    pub fn launch(&self) -> &LaunchDigests {
        &self.observed.health.launch
    }

    /// The session table (e.g. for its statistics).
    pub fn sessions(&self) -> &Arc<SessionTable> {
        &self.table
    }

    /// `POST /session`, `GET /healthz` and `GET /metrics`.
    pub fn router(&self) -> Router {
        let routes = Router::new()
            .route("/healthz", get(health))
            .with_state(Arc::clone(&self.observed))
            .merge(cloister_ratls::routes(Arc::clone(&self.table)));
        self.observed.metrics.instrument(routes)
    }

    /// Serves on `listener` (a [`TcpListener`](tokio::net::TcpListener), or any axum listener such
    /// as an HTTPS one) until `shutdown` resolves, then finishes the
    /// requests in flight and returns. Idle sessions are swept meanwhile.
    ///
    /// # Errors
    /// The listener failed.
    pub async fn serve<L>(
        self,
        listener: L,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()>
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let table = Arc::clone(&self.table);
        let every = self.settings.expire_every();
        let sweeper = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                table.expire_idle();
            }
        });
        let served = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await;
        sweeper.abort();
        served
    }
}

async fn health(State(observed): State<Arc<Observed>>) -> axum::Json<Health> {
    axum::Json(observed.health.clone())
}
