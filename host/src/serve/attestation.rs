//! The attestation provider chosen by `[attestation]`, and the boot check
//! that the CVM's HOST_DATA names the policies, model and settings the host
//! loaded.

use std::path::PathBuf;
use std::sync::Arc;

use cloister_attestation::{
    DEVELOPMENT_TCB, Evidence, EvidenceProvider, ProviderError, SevGuestProvider, SimulatedLaunch,
    SimulatedPlatform, SimulatedProvider, SimulationError,
};
use cloister_wire::{HostData, Measurement};

use crate::config::{AttestationConfig, ProviderKind};
use crate::launch::LaunchDigests;

/// REPORT_DATA of the report requested at boot. It binds no TLS session,
/// so no client would accept it; the host only reads its HOST_DATA.
const BOOT_REPORT_DATA: [u8; 64] = [0; 64];

/// Why the attestation provider could not start or the launch is refused.
#[derive(Debug, thiserror::Error)]
pub enum AttestationError {
    /// The simulated platform could not generate its chain.
    #[error("simulated platform: {0}")]
    Simulation(#[from] SimulationError),
    /// The configured fallback VCEK could not be read.
    #[error("cannot read VCEK `{path}`: {source}")]
    VcekFile {
        /// The configured file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The provider gave no report at boot.
    #[error("cannot obtain the boot attestation report: {0}")]
    BootReport(#[from] ProviderError),
    /// HOST_DATA is not what the loaded policies, model and settings hash to.
    #[error(
        "refusing to start: the CVM's HOST_DATA is {reported}, but the loaded policies, \
         model and settings hash to {loaded}"
    )]
    LaunchMismatch {
        /// HOST_DATA from the report.
        reported: HostData,
        /// [`HostData::of_launch`] of what was loaded.
        loaded: HostData,
    },
}

/// The provider `[attestation]` selects.
#[derive(Debug)]
pub enum ConfiguredProvider {
    /// Development only: a simulated platform.
    Simulated(Box<SimulatedProvider>),
    /// The AMD secure processor.
    SevGuest(SevGuestProvider),
}

impl EvidenceProvider for ConfiguredProvider {
    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence, ProviderError> {
        match self {
            Self::Simulated(provider) => provider.evidence(report_data),
            Self::SevGuest(provider) => provider.evidence(report_data),
        }
    }

    fn is_simulated(&self) -> bool {
        match self {
            Self::Simulated(provider) => provider.is_simulated(),
            Self::SevGuest(provider) => provider.is_simulated(),
        }
    }
}

/// The configured provider, for a host whose launch is `launch`.
///
/// A simulated CVM is "launched" here: with the simulated measurement of
/// `launch` and the configured HOST_DATA (default: `launch.host_data`).
///
/// # Errors
/// See [`AttestationError`].
pub fn provider(
    config: &AttestationConfig,
    launch: &LaunchDigests,
) -> Result<Arc<ConfiguredProvider>, AttestationError> {
    let provider = match config.provider {
        ProviderKind::Simulated => {
            let settings = &config.simulated;
            let (platform, source) = SimulatedPlatform::cached(
                settings.platform_seed,
                DEVELOPMENT_TCB,
                &settings.cache_dir,
            )?;
            tracing::debug!(?source, dir = %settings.cache_dir.display(), "simulated platform");
            let host_data = settings.host_data.unwrap_or(launch.host_data);
            let launch = SimulatedLaunch::new(
                Measurement(launch.simulated_measurement()),
                HostData(host_data),
            );
            ConfiguredProvider::Simulated(Box::new(SimulatedProvider::new(platform, launch)))
        }
        ProviderKind::SevGuest => {
            let settings = &config.sev_guest;
            let mut provider = SevGuestProvider::new(settings.vmpl);
            if let Some(path) = &settings.vcek_file {
                let vcek = std::fs::read(path).map_err(|source| AttestationError::VcekFile {
                    path: path.clone(),
                    source,
                })?;
                provider = provider.with_fallback_vcek(vcek);
            }
            ConfiguredProvider::SevGuest(provider)
        }
    };
    Ok(Arc::new(provider))
}

/// Requests one report and refuses unless its HOST_DATA is `launch`'s: the
/// attested report must name exactly the policies, model and settings in
/// force.
///
/// # Errors
/// No report, or [`AttestationError::LaunchMismatch`] naming both values.
pub fn check_boot_report(
    provider: &dyn EvidenceProvider,
    launch: &LaunchDigests,
) -> Result<(), AttestationError> {
    let evidence = provider.evidence(&BOOT_REPORT_DATA)?;
    let reported = evidence.report.host_data();
    let loaded = HostData(launch.host_data);
    if reported != loaded {
        return Err(AttestationError::LaunchMismatch { reported, loaded });
    }
    Ok(())
}
