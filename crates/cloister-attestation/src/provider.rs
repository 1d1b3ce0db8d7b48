//! Evidence providers: where a CVM gets signed reports from.
//!
//! [`SevGuestProvider`] asks the AMD secure processor through
//! `/dev/sev-guest` (Linux SEV-SNP guests only). [`SimulatedProvider`] asks
//! a [`SimulatedPlatform`] and is for development and CI only; callers must
//! announce it (see [`EvidenceProvider::is_simulated`] and
//! [`SIMULATION_WARNING`]).

use sev::firmware::host::{CertTableEntry, CertType};

use crate::cert_table::{CertKind, CertTable};
use crate::evidence::{Evidence, EvidenceError};
use crate::report::RawReport;
use crate::simulated::{SimulatedLaunch, SimulatedPlatform, SimulationError};

/// The line every binary prints at start-up and in its health output when it
/// runs on a simulated provider.
pub const SIMULATION_WARNING: &str = "SIMULATED ATTESTATION: reports are signed by a locally generated key, not by AMD hardware; no confidentiality guarantee";

/// Why no evidence could be produced.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// `/dev/sev-guest` could not be opened (not an SEV-SNP guest?).
    #[error("cannot open /dev/sev-guest: {0}")]
    Device(std::io::Error),
    /// The secure processor refused the request.
    #[error("SNP extended report request failed: {0}")]
    Firmware(String),
    /// The firmware returned something that is not valid evidence.
    #[error("firmware returned invalid evidence: {0}")]
    Invalid(#[from] EvidenceError),
    /// Neither the platform nor the configuration supplied a VCEK/VLEK.
    #[error("no VCEK or VLEK: the host supplied no certificates and none is configured")]
    NoEndorsementKey,
    /// The simulated platform failed.
    #[error(transparent)]
    Simulation(#[from] SimulationError),
}

/// A source of signed attestation evidence.
pub trait EvidenceProvider: Send + Sync {
    /// Evidence whose REPORT_DATA is `report_data`.
    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence, ProviderError>;

    /// True if the evidence is simulated and proves nothing about hardware.
    fn is_simulated(&self) -> bool;
}

/// The real provider: an extended report from the AMD secure processor.
#[derive(Debug, Clone, Default)]
pub struct SevGuestProvider {
    vmpl: u32,
    fallback_vcek: Option<Vec<u8>>,
}

impl SevGuestProvider {
    /// Requests reports at `vmpl` (0 unless running under an SVSM).
    pub fn new(vmpl: u32) -> Self {
        Self {
            vmpl,
            fallback_vcek: None,
        }
    }

    /// A VCEK (DER, e.g. fetched from AMD's KDS at provisioning) to send
    /// when the hypervisor supplies no certificate table.
    pub fn with_fallback_vcek(mut self, vcek_der: Vec<u8>) -> Self {
        self.fallback_vcek = Some(vcek_der);
        self
    }
}

impl EvidenceProvider for SevGuestProvider {
    #[cfg(target_os = "linux")]
    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence, ProviderError> {
        let mut firmware = sev::firmware::guest::Firmware::open().map_err(ProviderError::Device)?;
        let (report, certificates) = firmware
            .get_ext_report(None, Some(*report_data), Some(self.vmpl))
            .map_err(|e| ProviderError::Firmware(e.to_string()))?;
        evidence_from_ext_report(
            &report,
            certificates.unwrap_or_default(),
            self.fallback_vcek.as_deref(),
        )
    }

    #[cfg(not(target_os = "linux"))]
    fn evidence(&self, _report_data: &[u8; 64]) -> Result<Evidence, ProviderError> {
        Err(ProviderError::Device(
            std::io::ErrorKind::Unsupported.into(),
        ))
    }

    fn is_simulated(&self) -> bool {
        false
    }
}

/// Assembles evidence from what `SNP_GET_EXT_REPORT` returns: the report
/// bytes and the parsed certificate table (possibly empty, in which case
/// `fallback_vcek` is used).
pub fn evidence_from_ext_report(
    report: &[u8],
    entries: Vec<CertTableEntry>,
    fallback_vcek: Option<&[u8]>,
) -> Result<Evidence, ProviderError> {
    let report = RawReport::from_bytes(report).map_err(EvidenceError::from)?;
    let mut certificates = CertTable::new();
    for entry in entries {
        let kind = match &entry.cert_type {
            CertType::Empty => continue,
            CertType::ARK => CertKind::Ark,
            CertType::ASK => CertKind::Ask,
            CertType::VCEK => CertKind::Vcek,
            CertType::VLEK => CertKind::Vlek,
            CertType::CRL => CertKind::Crl,
            CertType::OTHER(guid) => CertKind::Other(*guid.as_bytes()),
        };
        certificates.insert(kind, entry.data);
    }
    let evidence = Evidence {
        report,
        certificates,
    };
    if evidence.endorsement_key().is_some() {
        return Ok(evidence);
    }
    let vcek = fallback_vcek.ok_or(ProviderError::NoEndorsementKey)?;
    let mut evidence = evidence;
    evidence.certificates.insert(CertKind::Vcek, vcek.to_vec());
    Ok(evidence)
}

/// The SIMULATED provider: reports signed by a [`SimulatedPlatform`].
#[derive(Debug)]
pub struct SimulatedProvider {
    platform: SimulatedPlatform,
    launch: SimulatedLaunch,
}

impl SimulatedProvider {
    /// A simulated CVM launched with `launch` on `platform`.
    pub fn new(platform: SimulatedPlatform, launch: SimulatedLaunch) -> Self {
        Self { platform, launch }
    }

    /// The platform, e.g. to pin its root in a development verifier.
    pub fn platform(&self) -> &SimulatedPlatform {
        &self.platform
    }
}

impl EvidenceProvider for SimulatedProvider {
    fn evidence(&self, report_data: &[u8; 64]) -> Result<Evidence, ProviderError> {
        Ok(self.platform.evidence(&self.launch, report_data)?)
    }

    fn is_simulated(&self) -> bool {
        true
    }
}
