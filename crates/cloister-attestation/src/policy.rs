//! The verification policy: which reports are good enough to trust with data.
//!
//! Loaded from TOML (see `examples/policy.toml`; reviewed copies live in
//! `policies/`). Some rules are not configurable because no Cloister
//! deployment may relax them: a guest whose SNP policy allows debugging or a
//! migration agent is always refused, since either lets the host read guest
//! memory.
//!
//! Which measurements and HOST_DATA values are acceptable is asked of a
//! [`MeasurementAuthority`]: the [`AllowList`] of a pinned file, or the
//! client's verified view of the transparency ledger
//! (`cloister_client::ledger::LedgerTrust`).

use std::collections::BTreeSet;

use cloister_wire::{HostData, Measurement};
use serde::Deserialize;

use crate::endorsement::Tcb;

/// Oldest report format this crate understands (SNP ABI 1.51).
pub const OLDEST_REPORT_VERSION: u32 = 2;
/// Newest report format this crate understands.
pub const NEWEST_REPORT_VERSION: u32 = 5;

/// Why a policy file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The TOML does not match the policy schema.
    #[error("policy file: {0}")]
    Toml(#[from] toml::de::Error),
    /// A digest in the allow-list is not hex of the right length.
    #[error("policy {field}: {value:?} is not {bytes} bytes of hex")]
    BadDigest {
        /// Which list.
        field: &'static str,
        /// The offending entry.
        value: String,
        /// The required length.
        bytes: usize,
    },
    /// The report version range is empty or outside what this crate reads.
    #[error(
        "policy report versions {min}..={max} are not within {OLDEST_REPORT_VERSION}..={NEWEST_REPORT_VERSION}"
    )]
    BadVersionRange {
        /// Configured minimum.
        min: u32,
        /// Configured maximum.
        max: u32,
    },
    /// No VMPL is allowed, so nothing could ever verify.
    #[error("policy allows no VMPL")]
    NoVmpl,
}

/// The policy as written in TOML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    allow_simulated: bool,
    #[serde(default = "default_min_version")]
    min_report_version: u32,
    #[serde(default = "default_max_version")]
    max_report_version: u32,
    #[serde(default = "default_vmpls")]
    allowed_vmpls: Vec<u32>,
    minimum_tcb: Tcb,
    accepted: AcceptedFile,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptedFile {
    measurements: Vec<String>,
    host_data: Vec<String>,
}

fn default_min_version() -> u32 {
    OLDEST_REPORT_VERSION
}
fn default_max_version() -> u32 {
    NEWEST_REPORT_VERSION
}
fn default_vmpls() -> Vec<u32> {
    vec![0]
}

/// A checked verification policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Accept evidence anchored at a simulated root. Never in production.
    pub allow_simulated: bool,
    /// Report versions accepted, inclusive.
    pub report_versions: std::ops::RangeInclusive<u32>,
    /// VMPLs the report may come from (0 is the most privileged).
    pub allowed_vmpls: BTreeSet<u32>,
    /// Each component of REPORTED_TCB must be at least this.
    pub minimum_tcb: Tcb,
    /// The measurements and HOST_DATA values listed in the file.
    pub accepted: AllowList,
}

impl Policy {
    /// Parses and checks a TOML policy.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = toml::from_str(text)?;
        let (min, max) = (file.min_report_version, file.max_report_version);
        if min < OLDEST_REPORT_VERSION || max > NEWEST_REPORT_VERSION || min > max {
            return Err(PolicyError::BadVersionRange { min, max });
        }
        if file.allowed_vmpls.is_empty() {
            return Err(PolicyError::NoVmpl);
        }
        Ok(Self {
            allow_simulated: file.allow_simulated,
            report_versions: min..=max,
            allowed_vmpls: file.allowed_vmpls.into_iter().collect(),
            minimum_tcb: file.minimum_tcb,
            accepted: AllowList {
                measurements: parse_digests(&file.accepted.measurements, "accepted.measurements")?
                    .into_iter()
                    .map(Measurement)
                    .collect(),
                host_data: parse_digests(&file.accepted.host_data, "accepted.host_data")?
                    .into_iter()
                    .map(HostData)
                    .collect(),
            },
        })
    }
}

fn parse_digests<const N: usize>(
    hex_list: &[String],
    field: &'static str,
) -> Result<BTreeSet<[u8; N]>, PolicyError> {
    hex_list
        .iter()
        .map(|value| {
            hex::decode(value)
                .ok()
                .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
                .ok_or_else(|| PolicyError::BadDigest {
                    field,
                    value: value.clone(),
                    bytes: N,
                })
        })
        .collect()
}

/// Why a [`MeasurementAuthority`] refused a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityRejection {
    /// The launch measurement is not accepted.
    #[error("measurement {0} is not accepted")]
    Measurement(Measurement),
    /// The HOST_DATA (policy-set digest) is not accepted.
    #[error("host data {0} is not accepted")]
    HostData(HostData),
    /// The authority could not decide (e.g. the ledger is unreachable);
    /// treated as a refusal.
    #[error("measurement authority unavailable: {0}")]
    Unavailable(String),
}

/// Decides whether a launch measurement and HOST_DATA are released software.
///
/// Implemented by the policy's [`AllowList`] and, later, by a ledger client
/// that checks inclusion proofs. Implementations must fail closed.
pub trait MeasurementAuthority {
    /// Accepts or refuses one (measurement, HOST_DATA) pair.
    fn check(
        &self,
        measurement: &Measurement,
        host_data: &HostData,
    ) -> Result<(), AuthorityRejection>;
}

/// A fixed allow-list of measurements and HOST_DATA values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    /// Accepted launch measurements.
    pub measurements: BTreeSet<Measurement>,
    /// Accepted HOST_DATA values.
    pub host_data: BTreeSet<HostData>,
}

impl MeasurementAuthority for AllowList {
    fn check(
        &self,
        measurement: &Measurement,
        host_data: &HostData,
    ) -> Result<(), AuthorityRejection> {
        if !self.measurements.contains(measurement) {
            return Err(AuthorityRejection::Measurement(*measurement));
        }
        if !self.host_data.contains(host_data) {
            return Err(AuthorityRejection::HostData(*host_data));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../examples/policy.toml");

    #[test]
    fn the_example_policy_parses() {
        let policy = Policy::from_toml(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
        assert!(!policy.allow_simulated);
        assert_eq!(policy.accepted.measurements.len(), 1);
        assert!(policy.allowed_vmpls.contains(&0));
    }

    #[test]
    fn unknown_keys_and_bad_digests_are_rejected() {
        let unknown = format!("{EXAMPLE}\nallow_debug = true\n");
        assert!(matches!(
            Policy::from_toml(&unknown),
            Err(PolicyError::Toml(_))
        ));
        let short = EXAMPLE.replace("7a1e5c266c0108db", "7a1e");
        assert!(matches!(
            Policy::from_toml(&short),
            Err(PolicyError::BadDigest { .. })
        ));
    }

    #[test]
    fn version_range_and_vmpls_are_checked() {
        let old = EXAMPLE.replace("min_report_version = 2", "min_report_version = 1");
        assert!(matches!(
            Policy::from_toml(&old),
            Err(PolicyError::BadVersionRange { .. })
        ));
        let none = EXAMPLE.replace("allowed_vmpls = [0]", "allowed_vmpls = []");
        assert!(matches!(Policy::from_toml(&none), Err(PolicyError::NoVmpl)));
    }

    #[test]
    fn the_allow_list_refuses_unlisted_values() {
        let (m, h) = (|b| Measurement([b; 48]), |b| HostData([b; 32]));
        let list = AllowList {
            measurements: [m(1)].into(),
            host_data: [h(2)].into(),
        };
        assert_eq!(list.check(&m(1), &h(2)), Ok(()));
        assert_eq!(
            list.check(&m(9), &h(2)),
            Err(AuthorityRejection::Measurement(m(9)))
        );
        assert_eq!(
            list.check(&m(1), &h(9)),
            Err(AuthorityRejection::HostData(h(9)))
        );
    }
}
