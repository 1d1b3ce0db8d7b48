//! A real host booted in-process: the repository's plugins and policies, the
//! deterministic inference backend (no model needed) and SIMULATED
//! attestation on the public development platform. Shared with `tests/e2e`,
//! which includes this file by path, so that both suites boot the same host.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cloister_host::logfilter::MemorySink;
use cloister_host::serve::BootError;
use cloister_host::{Host, HostConfig, PolicySet, RuntimeConfig};
use cloister_inference::{DeterministicBackend, InferenceBackend};

/// The host binary digest the tests launch as (any fixed value: `measure`
/// and `serve` take it from the same place).
pub const HOST_BINARY: [u8; 32] = [0xb1; 32];

/// The repository's root: the first folder above the including crate that
/// holds `Cargo.lock`.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or_else(|| panic!("no Cargo.lock above {}", env!("CARGO_MANIFEST_DIR")))
        .to_path_buf()
}

/// The development-only compile cache the suite shares (`target/wasmtime-cache`):
/// each Python and JavaScript component is compiled once per build, not per test.
pub fn compile_cache() -> PathBuf {
    repo_root().join("target/wasmtime-cache")
}

/// The defaults, with the real policies and components (and the compile cache).
pub fn config(policy_dir: &Path) -> HostConfig {
    HostConfig {
        plugin_dir: std::env::var_os("CLOISTER_PLUGIN_DIR")
            .map_or_else(|| repo_root().join("target/plugins"), PathBuf::from),
        policy_dir: policy_dir.to_path_buf(),
        runtime: RuntimeConfig {
            compile_cache: Some(compile_cache()),
            ..RuntimeConfig::default()
        },
        ..HostConfig::default()
    }
}

/// The policy set of `config`.
pub fn policies(config: &HostConfig) -> PolicySet {
    config
        .policies()
        .unwrap_or_else(|e| panic!("policies in {}: {e}", config.policy_dir.display()))
}

/// The deterministic backend, serving the model the manifests ask for.
pub fn engine() -> Arc<dyn InferenceBackend> {
    Arc::new(DeterministicBackend::serving(
        "smollm2-135m-instruct".to_owned(),
    ))
}

/// Boots a host as `config` says, on the deterministic backend.
pub fn boot(config: &HostConfig) -> Result<Host, BootError> {
    boot_with(config, engine())
}

/// Boots a host as `config` says, on `engine`.
pub fn boot_with(
    config: &HostConfig,
    engine: Arc<dyn InferenceBackend>,
) -> Result<Host, BootError> {
    let policies = policies(config);
    let filter = HostConfig::log_filter(&policies, Arc::new(MemorySink::default()));
    Host::boot(config, &policies, engine, filter, HOST_BINARY)
}
