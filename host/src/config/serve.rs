//! The `[serve]` and `[attestation]` tables of the host configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cloister_attestation::DEVELOPMENT_SEED;
use cloister_ratls::SessionConfig;
use serde::{Deserialize, Deserializer, Serialize};

/// The network face: where the gateway reaches the host, and session limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address of `POST /session`, `/healthz` and `/metrics`.
    pub listen: SocketAddr,
    /// An RA-TLS session unused for this long is dropped with its keys.
    pub idle_timeout_secs: u64,
    /// At most this many sessions at once; more are refused (503).
    pub max_sessions: usize,
    /// How often idle sessions are swept (they also expire on next use).
    pub expire_every_secs: u64,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7500)),
            idle_timeout_secs: 60,
            max_sessions: 1024,
            expire_every_secs: 10,
        }
    }
}

impl ServeConfig {
    /// The session table's limits.
    pub fn sessions(&self) -> SessionConfig {
        SessionConfig {
            idle_timeout_secs: self.idle_timeout_secs,
            max_sessions: self.max_sessions,
        }
    }

    /// The sweep period (at least one second).
    pub fn expire_every(&self) -> Duration {
        Duration::from_secs(self.expire_every_secs.max(1))
    }
}

/// Where attestation evidence comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AttestationConfig {
    /// `simulated` (development, announced loudly) or `sev-guest`.
    pub provider: ProviderKind,
    /// Settings of the simulated provider.
    pub simulated: SimulatedConfig,
    /// Settings of the real provider.
    pub sev_guest: SevGuestConfig,
}

/// The attestation providers the host can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    /// A locally generated signing chain: no hardware protection at all.
    #[default]
    Simulated,
    /// The AMD secure processor through `/dev/sev-guest`.
    SevGuest,
}

/// The simulated platform and launch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SimulatedConfig {
    /// Seed of the simulated signing chain (32 bytes, hex). Clients pin the
    /// simulated root by deriving it from the same seed, which is public.
    #[serde(deserialize_with = "hex::deserialize")]
    pub platform_seed: [u8; 32],
    /// HOST_DATA the simulated CVM is launched with (32 bytes, hex): what a
    /// hypervisor sets on real hardware. Absent: the loaded policy set's digest.
    #[serde(deserialize_with = "optional_hex")]
    pub host_data: Option<[u8; 32]>,
    /// Where the simulated platform derived from the seed is kept, so that
    /// only the first start pays its RSA-4096 key generations (seconds).
    /// Nothing secret: the seed is public and derives it.
    pub cache_dir: PathBuf,
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        Self {
            platform_seed: DEVELOPMENT_SEED,
            host_data: None,
            cache_dir: std::env::temp_dir().join("cloister-simulated"),
        }
    }
}

/// The real provider.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct SevGuestConfig {
    /// VMPL reports are requested at (0 unless running under an SVSM).
    pub vmpl: u32,
    /// A VCEK (DER) to send when the hypervisor supplies no certificates.
    pub vcek_file: Option<PathBuf>,
}

fn optional_hex<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<[u8; 32]>, D::Error> {
    hex::deserialize(deserializer).map(Some)
}
