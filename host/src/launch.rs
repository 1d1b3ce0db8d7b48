//! What a host launched from a configuration runs, named by digests: the
//! one computation behind `cloister-host measure` (which the release
//! tooling logs in the ledger) and `cloister-host serve` (which attests to
//! it), so the two can never disagree.
//!
//! * `host_data` is [`HostData::of_launch`] of three digests: `policy_set`
//!   ([`cloister_attestation::policy_set_digest`] over exactly the policy
//!   files the host parsed, [`PolicySet::named_contents`]), `model` (the
//!   SHA-256 of the model file the engine loaded, from its
//!   [`EngineIdentity`]) and `host_config` (every host and engine setting
//!   that changes behaviour, see [`host_config_digest`]). Swapping the
//!   weights or a setting therefore changes HOST_DATA, which the host checks
//!   against its report before serving and the client against the ledger.
//! * `plugins` are the SHA-256 digests of the component files, each checked
//!   against its manifest as the runtime checks it before loading.
//! * `measurement`, in simulated mode, is
//!   [`cloister_attestation::simulated_measurement`] of the host binary, the
//!   plugin digests and `host_data`. On real SEV-SNP hardware the launch
//!   measurement is taken by the AMD firmware over the whole VM image (the
//!   host binary is inside it) and computed offline from that image, not by
//!   the host, so it is `null` here.

use std::io;
use std::path::Path;

use cloister_attestation::{LaunchFacts, PolicySetError, SimulatedLaunch, simulated_measurement};
use cloister_inference::EngineIdentity;
use cloister_wire::{HostData, Measurement};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::{HostConfig, ProviderKind, ServeConfig};
use crate::digest::Digest;
use crate::error::LoadError;
use crate::policy::PolicySet;
use crate::runtime::RuntimeConfig;

/// The digests naming a host launch; serialised as `cloister-host measure`
/// prints it and read back in that form by the release tool (`cloister-release`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchDigests {
    /// The attestation provider the configuration selects.
    pub mode: ProviderKind,
    /// The launch measurement in simulated mode; `None` on real hardware.
    #[serde(with = "optional_hex")]
    pub measurement: Option<[u8; 48]>,
    /// What HOST_DATA must be: [`HostData::of_launch`] of the next three.
    #[serde(with = "hex")]
    pub host_data: [u8; 32],
    /// The digest of the policy set.
    #[serde(with = "hex")]
    pub policy_set: [u8; 32],
    /// SHA-256 of the model file; `None` for an engine without weights.
    #[serde(with = "optional_hex")]
    pub model: Option<[u8; 32]>,
    /// The digest of the settings that change behaviour ([`host_config_digest`]).
    #[serde(with = "hex")]
    pub host_config: [u8; 32],
    /// The host's settings, as hashed into `host_config`, for reviewers.
    pub host_settings: String,
    /// The engine's settings, as hashed into `host_config`, for reviewers.
    pub engine_settings: String,
    /// The SNP guest policy of a simulated launch; set by the VMM on real hardware.
    pub snp_policy: Option<u64>,
    /// The PLATFORM_INFO of a simulated launch; the machine's on real hardware.
    pub platform_info: Option<u64>,
    /// SHA-256 of the host executable.
    #[serde(with = "hex")]
    pub host_binary: [u8; 32],
    /// Every plugin, in manifest order.
    pub plugins: Vec<PluginDigest>,
    /// Every policy file, by name.
    pub policy_files: Vec<PolicyFileDigest>,
}

/// A plugin component as loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginDigest {
    /// Manifest name.
    pub name: String,
    /// Manifest version.
    pub version: String,
    /// SHA-256 of the `.wasm`.
    #[serde(with = "hex")]
    pub digest: [u8; 32],
}

/// A policy file as loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyFileDigest {
    /// Path relative to the policy folder, `/`-separated.
    pub name: String,
    /// SHA-256 of its contents.
    #[serde(with = "hex")]
    pub digest: [u8; 32],
}

/// Why the launch digests could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A component is missing or differs from its manifest.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The policy files cannot be hashed as a set.
    #[error("policy set: {0}")]
    PolicySet(#[from] PolicySetError),
    /// The host executable could not be read.
    #[error("cannot hash the host executable: {0}")]
    HostBinary(io::Error),
}

impl LaunchDigests {
    /// The digests of a host running `policies` and the components they
    /// name from `config.plugin_dir`, as the binary whose SHA-256 is
    /// `host_binary` (see [`host_binary_digest`]), with the engine `engine`.
    ///
    /// # Errors
    /// A component is unreadable or differs from its manifest.
    pub fn compute(
        config: &HostConfig,
        policies: &PolicySet,
        host_binary: [u8; 32],
        engine: &EngineIdentity,
    ) -> Result<Self, LaunchError> {
        let plugin_dir = config.plugin_dir()?;
        let mut plugins = Vec::with_capacity(policies.manifests().len());
        for manifest in policies.manifests() {
            let bytes = plugin_dir
                .read(&manifest.component)
                .map_err(|source| LoadError::Io {
                    path: manifest.component.clone(),
                    source,
                })?;
            let actual = Digest::of(&bytes);
            if actual != manifest.digest {
                return Err(LoadError::DigestMismatch {
                    plugin: manifest.name.clone(),
                    expected: manifest.digest,
                    actual,
                }
                .into());
            }
            plugins.push(PluginDigest {
                name: manifest.name.clone(),
                version: manifest.version.clone(),
                digest: *actual.as_bytes(),
            });
        }
        let mut policy_files: Vec<PolicyFileDigest> = policies
            .named_contents()
            .map(|(name, contents)| PolicyFileDigest {
                name: name.to_owned(),
                digest: Sha256::digest(contents).into(),
            })
            .collect();
        policy_files.sort_by(|a, b| a.name.cmp(&b.name));
        let policy_set = policies.digest()?;
        let host_settings = host_settings(config).to_string();
        let host_config = host_config_digest(&host_settings, &engine.settings);
        let mut digests = Self {
            mode: config.attestation.provider,
            measurement: None,
            host_data: HostData::of_launch(&policy_set, engine.weights.as_ref(), &host_config).0,
            policy_set,
            model: engine.weights,
            host_config,
            host_settings,
            engine_settings: engine.settings.clone(),
            snp_policy: None,
            platform_info: None,
            host_binary,
            plugins,
            policy_files,
        };
        if digests.mode == ProviderKind::Simulated {
            digests.measurement = Some(digests.simulated_measurement());
            digests.snp_policy = Some(SimulatedLaunch::DEFAULT_GUEST_POLICY);
            digests.platform_info = Some(SimulatedLaunch::DEFAULT_PLATFORM_INFO);
        }
        Ok(digests)
    }

    /// The four values a report of this launch carries, as a release names
    /// them; `None` until the measurement, guest policy and platform info
    /// are known (on real hardware they come from the image recipe).
    pub fn launch_facts(&self) -> Option<LaunchFacts> {
        Some(LaunchFacts {
            measurement: Measurement(self.measurement?),
            host_data: HostData(self.host_data),
            guest_policy: self.snp_policy?,
            platform_info: self.platform_info?,
        })
    }

    /// The measurement a simulated CVM running this launch reports.
    pub fn simulated_measurement(&self) -> [u8; 48] {
        let plugins: Vec<[u8; 32]> = self.plugins.iter().map(|p| p.digest).collect();
        simulated_measurement(&self.host_binary, &plugins, &HostData(self.host_data)).0
    }
}

/// The digest of every host and engine setting that changes what the host
/// does (paths and the listening address are left out: the digests of the
/// files name their contents):
///
/// ```text
/// SHA-256("cloister-host-config-v1" || u64 len || host settings (JSON)
///         || u64 len || engine settings)
/// ```
pub fn host_config_digest(host_settings: &str, engine_settings: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"cloister-host-config-v1");
    for part in [host_settings.as_bytes(), engine_settings.as_bytes()] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

/// The host's settings that change behaviour, as JSON. Every field is named
/// so that a new setting cannot be left out unnoticed.
fn host_settings(config: &HostConfig) -> serde_json::Value {
    let HostConfig {
        plugin_dir: _,
        policy_dir: _,
        runtime,
        serve,
        attestation,
    } = config;
    let RuntimeConfig {
        pooling,
        max_concurrent_instances,
        max_memory_bytes,
        epoch_tick_ms,
        max_wasm_stack_bytes,
        keep_resident_bytes,
        profiler,
        compile_cache,
    } = runtime;
    let ServeConfig {
        listen: _,
        idle_timeout_secs,
        max_sessions,
        expire_every_secs,
    } = serve;
    serde_json::json!({
        "runtime": {
            "pooling": pooling,
            "max_concurrent_instances": max_concurrent_instances,
            "max_memory_bytes": max_memory_bytes,
            "epoch_tick_ms": epoch_tick_ms,
            "max_wasm_stack_bytes": max_wasm_stack_bytes,
            "keep_resident_bytes": keep_resident_bytes,
            "profiler": format!("{profiler:?}"),
            // Whether native code is read from disk, not where from.
            "compile_cache": compile_cache.is_some(),
        },
        "serve": {
            "idle_timeout_secs": idle_timeout_secs,
            "max_sessions": max_sessions,
            "expire_every_secs": expire_every_secs,
        },
        "attestation": {
            "provider": attestation.provider,
            "vmpl": attestation.sev_guest.vmpl,
        },
    })
}

/// SHA-256 of the running executable (`std::env::current_exe`).
///
/// # Errors
/// The executable cannot be located or read.
pub fn host_binary_digest() -> Result<[u8; 32], LaunchError> {
    let path = std::env::current_exe().map_err(LaunchError::HostBinary)?;
    file_digest(&path).map_err(LaunchError::HostBinary)
}

fn file_digest(path: &Path) -> io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        match io::Read::read(&mut file, &mut chunk)? {
            0 => return Ok(hash.finalize().into()),
            read => hash.update(&chunk[..read]),
        }
    }
}

/// `Option<[u8; N]>` as hex or `null`.
mod optional_hex {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<const N: usize, S: Serializer>(
        value: &Option<[u8; N]>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_str(&hex::encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, const N: usize, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<[u8; N]>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| {
                let mut bytes = [0; N];
                hex::decode_to_slice(&text, &mut bytes).map_err(serde::de::Error::custom)?;
                Ok(bytes)
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_digest_is_sha256_of_the_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("binary");
        std::fs::write(&path, b"abc").expect("write");
        assert_eq!(
            hex::encode(file_digest(&path).expect("digest")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
