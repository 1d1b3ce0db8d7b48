//! `cloister-host serve`: the CVM host's network face (DESIGN.md, phases 4-6).
//!
//! [`Host::boot`] computes the [`LaunchDigests`], starts the configured
//! attestation provider, requests one report and refuses to start unless its
//! HOST_DATA is the digest of the policy set just loaded; only then does it
//! compile the plugins and open a [`SessionTable`] with a fresh ephemeral
//! TLS certificate. [`Host::serve`] answers, until `shutdown` resolves:
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
mod config;
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
use tokio::net::TcpListener;

pub use self::attestation::{AttestationError, ConfiguredProvider, check_boot_report, provider};
pub use self::config::{
    AttestationConfig, ProviderKind, ServeConfig, SevGuestConfig, SimulatedConfig,
};
use self::metrics::{FeatureMeter, HostMetrics, MeteredRuntime};
use crate::config::HostConfig;
use crate::error::LoadError;
use crate::launch::{LaunchDigests, LaunchError};
use crate::logfilter::LogFilter;
use crate::policy::PolicySet;

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
    backend: Arc<dyn InferenceBackend>,
    observed: Arc<Observed>,
    settings: ServeConfig,
}

/// What the health and metrics endpoints read.
struct Observed {
    metrics: Arc<HostMetrics>,
    health: Health,
}

impl Host {
    /// Boots a host for `policies` under `config`, as the binary whose
    /// SHA-256 is `host_binary`, logging plugin events into `filter`.
    /// Slow: generates or requests attestation, compiles every plugin and
    /// loads the inference engine.
    ///
    /// # Errors
    /// See [`BootError`]; notably a HOST_DATA other than the digest of
    /// `policies` ([`AttestationError::PolicySet`]).
    pub fn boot(
        config: &HostConfig,
        policies: &PolicySet,
        filter: Arc<LogFilter>,
        host_binary: [u8; 32],
    ) -> Result<Self, BootError> {
        let launch = LaunchDigests::compute(config, policies, host_binary)?;
        let provider = provider(&config.attestation, &launch)?;
        check_boot_report(provider.as_ref(), policies)?;

        let runtime = config.start(policies, Arc::clone(&filter))?;
        let backend = runtime.capabilities().inference.backend().clone();
        let mut metrics = metrics::host_metrics();
        let meter = FeatureMeter::new(&mut metrics, runtime.manifests().map(|m| m.name.as_str()));
        let service = MeteredRuntime::new(runtime, meter);
        let table = Arc::new(SessionTable::new(
            &config.serve.sessions(),
            Arc::clone(&provider) as _,
            Arc::new(service),
        )?);
        metrics::collect_sessions(&mut metrics, Arc::clone(&table), filter);

        let attestation = if provider.is_simulated() {
            SIMULATION_WARNING.to_owned()
        } else {
            "sev-guest".to_owned()
        };
        let health = Health {
            status: "ok",
            attestation,
            attestation_provider: config.attestation.provider,
            inference_backend: backend.name().to_owned(),
            inference_simulated: backend.is_simulated(),
            launch,
        };
        let observed = Arc::new(Observed {
            metrics: Arc::new(metrics),
            health,
        });
        Ok(Self {
            table,
            backend,
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

    /// The inference engine serving the plugins.
    pub fn backend(&self) -> &Arc<dyn InferenceBackend> {
        &self.backend
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

    /// Serves on `listener` until `shutdown` resolves, then finishes the
    /// requests in flight and returns. Idle sessions are swept meanwhile.
    ///
    /// # Errors
    /// The listener failed.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
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
