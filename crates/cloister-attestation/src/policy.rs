//! The verification policy: which reports are good enough to trust with data.
//!
//! Loaded from TOML (see `examples/policy.toml`; reviewed copies live in
//! `policies/`). Some rules are not configurable because no Cloister
//! deployment may relax them: a guest whose SNP policy allows debugging or a
//! migration agent is always refused, since either lets the host read guest
//! memory.
//!
//! The minimum TCB is set per product line ([`ProductLine`]): Milan, Genoa
//! and Turin number their firmware differently, so one set of numbers cannot
//! serve all three, and a line without a minimum is refused.
//!
//! Which launches are acceptable is asked of a [`MeasurementAuthority`]: the
//! [`AllowList`] of a pinned file, or the client's verified view of the
//! transparency ledger (`cloister_client::ledger::LedgerTrust`). A launch is
//! the four values a release names together ([`LaunchFacts`]): measurement,
//! HOST_DATA, SNP guest policy and platform info. The launch digest does not
//! cover the guest policy, so an operator could otherwise start a released
//! image under weaker settings (SMT allowed, for example).

use std::collections::{BTreeMap, BTreeSet};

use cloister_wire::{HostData, Measurement};
use serde::{Deserialize, Serialize};

use crate::endorsement::Tcb;
use crate::roots::ProductLine;

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
    /// No product line has a minimum TCB, so nothing could ever verify.
    #[error("policy sets no minimum TCB for any product line")]
    NoProductLine,
    /// A minimum TCB does not have its product line's components.
    #[error("minimum TCB for {line:?}: {reason}")]
    TcbLayout {
        /// The product line.
        line: ProductLine,
        /// What is wrong.
        reason: &'static str,
    },
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
    minimum_tcb: BTreeMap<ProductLine, Tcb>,
    accepted: AcceptedFile,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptedFile {
    launches: Vec<LaunchFacts>,
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
    /// Per product line, each component of REPORTED_TCB must be at least
    /// this; reports from a line not listed are refused.
    pub minimum_tcb: BTreeMap<ProductLine, Tcb>,
    /// The launches listed in the file.
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
        check_tcb_layouts(&file.minimum_tcb)?;
        Ok(Self {
            allow_simulated: file.allow_simulated,
            report_versions: min..=max,
            allowed_vmpls: file.allowed_vmpls.into_iter().collect(),
            minimum_tcb: file.minimum_tcb,
            accepted: AllowList {
                launches: file.accepted.launches.into_iter().collect(),
            },
        })
    }
}

/// Each line's minimum has exactly its line's components: an FMC level on
/// Turin, none before (a Milan minimum with `fmc` would be a Turin one
/// filed under the wrong line).
fn check_tcb_layouts(minimums: &BTreeMap<ProductLine, Tcb>) -> Result<(), PolicyError> {
    if minimums.is_empty() {
        return Err(PolicyError::NoProductLine);
    }
    for (&line, tcb) in minimums {
        match (line.has_fmc(), tcb.fmc.is_some()) {
            (true, false) => {
                return Err(PolicyError::TcbLayout {
                    line,
                    reason: "this line reports an FMC level: set `fmc`",
                });
            }
            (false, true) => {
                return Err(PolicyError::TcbLayout {
                    line,
                    reason: "this line has no FMC level: remove `fmc`",
                });
            }
            _ => {}
        }
    }
    Ok(())
}

/// What a report says about the launch it comes from: the four values a
/// release names together, none of which may be mixed with another
/// release's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchFacts {
    /// The launch measurement (the VM image).
    pub measurement: Measurement,
    /// HOST_DATA: policies, model and settings
    /// ([`HostData::of_launch`](cloister_wire::HostData::of_launch)).
    pub host_data: HostData,
    /// The SNP guest policy the VM was launched under (the report's POLICY).
    pub guest_policy: u64,
    /// The platform's configuration (the report's PLATFORM_INFO: SMT, TSME,
    /// ciphertext hiding, ...).
    pub platform_info: u64,
}

impl LaunchFacts {
    /// Accepts `self` only if one of `released` names all four of its values,
    /// and otherwise says which value no release with the same measurement
    /// (and HOST_DATA, and guest policy) has.
    ///
    /// # Errors
    /// The first value that no matching release names.
    pub fn check_released<'a>(
        &self,
        released: impl IntoIterator<Item = &'a LaunchFacts>,
    ) -> Result<(), AuthorityRejection> {
        let mut candidates: Vec<&LaunchFacts> = released
            .into_iter()
            .filter(|launch| launch.measurement == self.measurement)
            .collect();
        if candidates.is_empty() {
            return Err(AuthorityRejection::Measurement(self.measurement));
        }
        candidates.retain(|launch| launch.host_data == self.host_data);
        if candidates.is_empty() {
            return Err(AuthorityRejection::HostData(self.host_data));
        }
        candidates.retain(|launch| launch.guest_policy == self.guest_policy);
        if candidates.is_empty() {
            return Err(AuthorityRejection::GuestPolicy(self.guest_policy));
        }
        if !candidates
            .iter()
            .any(|launch| launch.platform_info == self.platform_info)
        {
            return Err(AuthorityRejection::PlatformInfo(self.platform_info));
        }
        Ok(())
    }
}

/// Why a [`MeasurementAuthority`] refused a report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityRejection {
    /// The launch measurement is not accepted.
    #[error("measurement {0} is not accepted")]
    Measurement(Measurement),
    /// No release of this measurement names this HOST_DATA.
    #[error("host data {0} is not accepted with this measurement")]
    HostData(HostData),
    /// No release of this image and HOST_DATA names this SNP guest policy.
    #[error("SNP guest policy {0:#x} is not the released one")]
    GuestPolicy(u64),
    /// No release of this launch names this platform configuration.
    #[error("platform info {0:#x} is not the released one")]
    PlatformInfo(u64),
    /// The launch is that of a release reviewers revoked.
    #[error("release {release} was revoked: {reason}")]
    Revoked {
        /// The release's series and sequence number.
        release: String,
        /// The reviewers' stated reason.
        reason: String,
    },
    /// The launch is that of a release that is not current (superseded past
    /// its overlap window, or not yet published).
    #[error("release {release} is not current: {why}")]
    NotCurrent {
        /// The release's series and sequence number.
        release: String,
        /// Superseded by which release since when, or published when.
        why: String,
    },
    /// The authority could not decide (e.g. the ledger is unreachable);
    /// treated as a refusal.
    #[error("measurement authority unavailable: {0}")]
    Unavailable(String),
}

/// Decides whether a launch is released software, run as released.
///
/// Implemented by the policy's [`AllowList`] and by the client's view of
/// the ledger, which checks inclusion proofs. Implementations must fail
/// closed.
pub trait MeasurementAuthority {
    /// Accepts or refuses one launch.
    fn check(&self, launch: &LaunchFacts) -> Result<(), AuthorityRejection>;
}

/// A fixed allow-list of launches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    /// Accepted launches, each with all four values.
    pub launches: BTreeSet<LaunchFacts>,
}

impl MeasurementAuthority for AllowList {
    fn check(&self, launch: &LaunchFacts) -> Result<(), AuthorityRejection> {
        launch.check_released(&self.launches)
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
        assert_eq!(policy.accepted.launches.len(), 1);
        assert!(policy.allowed_vmpls.contains(&0));
        assert_eq!(
            policy.minimum_tcb.keys().copied().collect::<Vec<_>>(),
            [ProductLine::Milan, ProductLine::Genoa, ProductLine::Turin]
        );
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
            Err(PolicyError::Toml(_))
        ));
        let unknown_line = EXAMPLE.replace("[minimum_tcb.genoa]", "[minimum_tcb.venice]");
        assert!(matches!(
            Policy::from_toml(&unknown_line),
            Err(PolicyError::Toml(_))
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
    fn each_line_minimum_has_its_lines_components() {
        let turin_without_fmc = EXAMPLE.replace("fmc = 1\n", "");
        assert!(matches!(
            Policy::from_toml(&turin_without_fmc),
            Err(PolicyError::TcbLayout {
                line: ProductLine::Turin,
                ..
            })
        ));
        let milan_with_fmc =
            EXAMPLE.replace("[minimum_tcb.milan]\n", "[minimum_tcb.milan]\nfmc = 1\n");
        assert!(matches!(
            Policy::from_toml(&milan_with_fmc),
            Err(PolicyError::TcbLayout {
                line: ProductLine::Milan,
                ..
            })
        ));
        let no_line = "minimum_tcb = {}\n[accepted]\nlaunches = []\n";
        assert!(matches!(
            Policy::from_toml(no_line),
            Err(PolicyError::NoProductLine)
        ));
    }

    #[test]
    fn the_allow_list_refuses_any_value_not_released_with_the_others() {
        let released = LaunchFacts {
            measurement: Measurement([1; 48]),
            host_data: HostData([2; 32]),
            guest_policy: 0x3_0000,
            platform_info: 1,
        };
        let other_release = LaunchFacts {
            measurement: Measurement([8; 48]),
            host_data: HostData([9; 32]),
            guest_policy: 0x1_0000,
            platform_info: 3,
        };
        let list = AllowList {
            launches: [released, other_release].into(),
        };
        assert_eq!(list.check(&released), Ok(()));
        let with = |change: fn(&mut LaunchFacts)| {
            let mut launch = released;
            change(&mut launch);
            list.check(&launch)
        };
        assert_eq!(
            with(|l| l.measurement = Measurement([7; 48])),
            Err(AuthorityRejection::Measurement(Measurement([7; 48])))
        );
        // Each value below is released, but with another image.
        assert_eq!(
            with(|l| l.host_data = HostData([9; 32])),
            Err(AuthorityRejection::HostData(HostData([9; 32])))
        );
        assert_eq!(
            with(|l| l.guest_policy = 0x1_0000),
            Err(AuthorityRejection::GuestPolicy(0x1_0000))
        );
        assert_eq!(
            with(|l| l.platform_info = 3),
            Err(AuthorityRejection::PlatformInfo(3))
        );
    }
}
