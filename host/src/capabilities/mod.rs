//! Host capabilities, one self-contained module each.
//!
//! Modelled on Spin's "factors": a capability owns its configuration, its
//! per-host state (built once), its per-instance state (built for each
//! request and dropped with the store) and its linker wiring. Adding a
//! capability means adding a module that implements [`Capability`] and
//! naming it once in [`Capabilities`] and [`InstanceState`].

pub mod inference;
pub mod log;
pub mod wasi;

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Linker;

use crate::limits::Limiter;
use crate::manifest::PluginManifest;

/// What a capability knows about the instance it is building state for.
#[derive(Debug, Clone, Copy)]
pub struct InstanceContext<'a> {
    /// The plugin's reviewed manifest, shared so that instance state can keep
    /// it without copying it for every request.
    pub manifest: &'a Arc<PluginManifest>,
    /// The manifest's name, shared, so that per-request state (log records)
    /// can name the plugin without allocating.
    pub plugin: &'a Arc<str>,
    /// When the request's wall-time budget ends.
    pub deadline: Instant,
}

/// One host capability.
pub trait Capability {
    /// The WIT interfaces it serves, as manifests grant them.
    const INTERFACES: &'static [&'static str];
    /// State for one instance; lives in the store and dies with it.
    type Instance: Send + 'static;

    /// Defines the capability's imports, reaching its state through `InstanceState`.
    fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()>;

    /// Builds the state of one instance.
    fn instance(&self, context: InstanceContext<'_>) -> Self::Instance;
}

/// Per-host state of every capability.
pub struct Capabilities {
    /// Text generation by the native engine.
    pub inference: inference::InferenceCapability,
    /// Typed, allow-listed log events.
    pub log: log::LogCapability,
    /// An empty WASI p2 context for components built by other toolchains.
    pub wasi: wasi::WasiCapability,
}

/// The data of one store: every capability's per-instance state plus limits.
pub struct InstanceState {
    pub(crate) inference: inference::InferenceInstance,
    pub(crate) log: log::LogInstance,
    pub(crate) wasi: wasi::WasiInstance,
    pub(crate) limiter: Limiter,
}

impl Capabilities {
    /// Every capability, serving inference from `engine` and filtering plugin
    /// events through `log`.
    pub fn new(
        engine: std::sync::Arc<dyn cloister_inference::InferenceBackend>,
        log: std::sync::Arc<crate::logfilter::LogFilter>,
    ) -> Self {
        Self {
            inference: inference::InferenceCapability::new(engine),
            log: log::LogCapability::new(log),
            wasi: wasi::WasiCapability,
        }
    }

    /// Every interface the host can serve (besides `wasi:*`, which manifests
    /// grant with `wasi = true`).
    pub fn interfaces() -> Vec<&'static str> {
        [
            inference::InferenceCapability::INTERFACES,
            log::LogCapability::INTERFACES,
        ]
        .concat()
    }

    pub(crate) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
        inference::InferenceCapability::add_to_linker(linker)?;
        log::LogCapability::add_to_linker(linker)?;
        wasi::WasiCapability::add_to_linker(linker)
    }

    pub(crate) fn instantiate(&self, context: InstanceContext<'_>) -> InstanceState {
        InstanceState {
            inference: self.inference.instance(context),
            log: self.log.instance(context),
            wasi: self.wasi.instance(context),
            limiter: Limiter::new(&context.manifest.limits),
        }
    }
}
