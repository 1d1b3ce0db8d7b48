//! What a host launched from a configuration runs, named by digests: the
//! one computation behind `cloister-host measure` (which the release
//! tooling logs in the ledger) and `cloister-host serve` (which attests to
//! it), so the two can never disagree.
//!
//! * `host_data` is [`cloister_attestation::policy_set_digest`] over exactly
//!   the policy files the host parsed ([`PolicySet::named_contents`]).
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

use cloister_attestation::{PolicySetError, SimulatedLaunch, simulated_measurement};
use cloister_wire::HostData;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::{HostConfig, ProviderKind};
use crate::digest::Digest;
use crate::error::LoadError;
use crate::policy::PolicySet;

/// The digests naming a host launch; serialised as `cloister-host measure`
/// prints it and read back in that form by the release tool (`cloister-release`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchDigests {
    /// The attestation provider the configuration selects.
    pub mode: ProviderKind,
    /// The launch measurement in simulated mode; `None` on real hardware.
    #[serde(with = "optional_hex")]
    pub measurement: Option<[u8; 48]>,
    /// The policy-set digest: what HOST_DATA must be.
    #[serde(with = "hex")]
    pub host_data: [u8; 32],
    /// The SNP guest policy of a simulated launch; set by the VMM on real hardware.
    pub snp_policy: Option<u64>,
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
    /// `host_binary` (see [`host_binary_digest`]).
    ///
    /// # Errors
    /// A component is unreadable or differs from its manifest.
    pub fn compute(
        config: &HostConfig,
        policies: &PolicySet,
        host_binary: [u8; 32],
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
        let mut digests = Self {
            mode: config.attestation.provider,
            measurement: None,
            host_data: policies.digest()?,
            snp_policy: None,
            host_binary,
            plugins,
            policy_files,
        };
        if digests.mode == ProviderKind::Simulated {
            digests.measurement = Some(digests.simulated_measurement());
            digests.snp_policy = Some(SimulatedLaunch::DEFAULT_GUEST_POLICY);
        }
        Ok(digests)
    }

    /// The measurement a simulated CVM running this launch reports.
    pub fn simulated_measurement(&self) -> [u8; 48] {
        let plugins: Vec<[u8; 32]> = self.plugins.iter().map(|p| p.digest).collect();
        simulated_measurement(&self.host_binary, &plugins, &HostData(self.host_data)).0
    }
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

/// `Option<[u8; 48]>` as hex or `null`.
mod optional_hex {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<[u8; 48]>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_str(&hex::encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<[u8; 48]>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| {
                let mut bytes = [0; 48];
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
