//! Errors of loading plugins and of serving requests.

use crate::digest::Digest;
use crate::manifest::ManifestError;

/// Why a plugin or policy could not be loaded. The host refuses to serve a
/// plugin rather than load it partly.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading a policy or component file failed.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file, relative to its directory handle.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A manifest is malformed or inconsistent.
    #[error("manifest `{path}`: {source}")]
    Manifest {
        /// The manifest file.
        path: String,
        /// What is wrong with it.
        source: ManifestError,
    },
    /// The log allow-list is malformed.
    #[error("log allow-list `{path}`: {reason}")]
    AllowList {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two manifests claim the same plugin name.
    #[error("two manifests name the plugin `{0}`")]
    DuplicatePlugin(String),
    /// The component's bytes differ from what was reviewed.
    #[error(
        "plugin `{plugin}`: component digest {actual} does not match the manifest's {expected}"
    )]
    DigestMismatch {
        /// Plugin name.
        plugin: String,
        /// Digest in the manifest.
        expected: Digest,
        /// Digest of the file.
        actual: Digest,
    },
    /// The bytes are not a valid component for this host.
    #[error("plugin `{plugin}`: not a valid component: {reason}")]
    InvalidComponent {
        /// Plugin name.
        plugin: String,
        /// The compiler's or linker's reason.
        reason: String,
    },
    /// The component imports something its manifest does not grant.
    #[error("plugin `{plugin}` imports `{import}`, which its manifest does not grant")]
    ImportNotGranted {
        /// Plugin name.
        plugin: String,
        /// The offending import.
        import: String,
    },
    /// The component does not export the feature entry point.
    #[error("plugin `{plugin}` does not export `{export}`")]
    MissingExport {
        /// Plugin name.
        plugin: String,
        /// The missing export.
        export: &'static str,
    },
    /// The `run` export does not have the shape of a feature's entry point.
    #[error(
        "plugin `{plugin}`: `run` must be `func(input: T) -> result<U, feature-error>`: {reason}"
    )]
    BadEntryPoint {
        /// Plugin name.
        plugin: String,
        /// What does not fit.
        reason: String,
    },
    /// The engine could not be configured.
    #[error("wasm engine: {0}")]
    Engine(String),
    /// A compile cache is configured on a host with real attestation.
    #[error(
        "[runtime] compile-cache is for development only: its native code is read from \
         outside the launch measurement, so a host with `sev-guest` attestation refuses it"
    )]
    CompileCacheOutsideSimulation,
}

/// Why one request failed. The host goes on serving other requests.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No plugin of that name is loaded.
    #[error("no plugin named `{0}` is loaded")]
    UnknownPlugin(String),
    /// The request's input does not fit the types the feature declares.
    #[error("plugin `{plugin}`: the input does not fit its types: {error}")]
    InvalidInput {
        /// The plugin.
        plugin: String,
        /// Where and why.
        error: crate::convert::json::ValueError,
    },
    /// The plugin's output cannot be written as JSON (a NaN or infinite float).
    #[error("plugin `{plugin}`: its output cannot be sent: {error}")]
    InvalidOutput {
        /// The plugin.
        plugin: String,
        /// Where and why.
        error: crate::convert::json::ValueError,
    },
    /// Every instance slot is in use.
    #[error("the host is at capacity; retry later")]
    AtCapacity,
    /// The request ran past the manifest's wall-time limit.
    #[error("plugin `{plugin}` exceeded its time limit of {limit_ms} ms")]
    TimeLimit {
        /// Plugin name.
        plugin: String,
        /// The limit.
        limit_ms: u64,
    },
    /// The plugin tried to grow its memory past the manifest's limit.
    #[error("plugin `{plugin}` exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// Plugin name.
        plugin: String,
        /// The limit.
        limit_bytes: u64,
    },
    /// The plugin tried to grow a table past the manifest's limit.
    #[error("plugin `{plugin}` exceeded its table limit")]
    TableLimit {
        /// Plugin name.
        plugin: String,
    },
    /// The plugin recursed past the host's stack limit.
    #[error("plugin `{plugin}` overflowed its stack")]
    StackOverflow {
        /// Plugin name.
        plugin: String,
    },
    /// The plugin trapped for another reason (a panic, an invalid access).
    #[error("plugin `{plugin}` trapped: {reason}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The trap code; never guest data.
        reason: String,
    },
    /// The response (or the plugin's error), encoded as the client would
    /// receive it, is larger than the manifest allows.
    #[error("plugin `{plugin}` returned {actual} bytes; its limit is {limit}")]
    OutputTooLarge {
        /// Plugin name.
        plugin: String,
        /// The limit.
        limit: u64,
        /// The response size.
        actual: u64,
    },
    /// The plugin answered with its own typed error.
    #[error("plugin `{plugin}`: {error}")]
    Feature {
        /// Plugin name.
        plugin: String,
        /// The plugin's error.
        error: cloister_api::FeatureError,
    },
    /// The caller gave up (the gateway timed out or disconnected) and the
    /// request was stopped; nobody receives its answer.
    #[error("the caller of plugin `{plugin}` gave up; the request was stopped")]
    Cancelled {
        /// Plugin name.
        plugin: String,
    },
}

/// What the client is told: a stable code and its fields. The plugin's name
/// is left out (the client named the feature) and so is a trap's reason.
impl From<RunError> for cloister_api::RequestError {
    fn from(error: RunError) -> Self {
        match error {
            RunError::UnknownPlugin(name) => Self::UnknownFeature { name },
            RunError::InvalidInput { error, .. } => Self::InputMismatch {
                path: error.path,
                reason: error.problem.to_string(),
            },
            RunError::InvalidOutput { error, .. } => Self::OutputMismatch {
                path: error.path,
                reason: error.problem.to_string(),
            },
            RunError::AtCapacity => Self::AtCapacity,
            RunError::TimeLimit { limit_ms, .. } => Self::TimeLimit { limit_ms },
            RunError::MemoryLimit { limit_bytes, .. } => Self::MemoryLimit { limit_bytes },
            RunError::TableLimit { .. } => Self::TableLimit,
            RunError::StackOverflow { .. } => Self::StackOverflow,
            RunError::Trap { .. } => Self::PluginTrapped,
            RunError::OutputTooLarge { limit, actual, .. } => {
                Self::OutputTooLarge { limit, actual }
            }
            RunError::Feature { error, .. } => Self::Feature(error),
            // Nobody receives it: the caller is gone. Giving up is the
            // caller's own time limit.
            RunError::Cancelled { .. } => Self::TimeLimit { limit_ms: 0 },
        }
    }
}
