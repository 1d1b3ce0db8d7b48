//! Shared test fixtures: the recorded AMD data and simulated platforms.
#![allow(dead_code, missing_docs)]

use std::path::PathBuf;
use std::sync::OnceLock;

use cloister_attestation::{
    AllowList, CertKind, CertTable, Policy, SimulatedLaunch, SimulatedPlatform, Tcb, TrustAnchors,
};

/// A file of the repository's `testdata/` folder, or of `$CLOISTER_TESTDATA`.
pub fn testdata(relative: &str) -> Vec<u8> {
    let root = std::env::var_os("CLOISTER_TESTDATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata"),
        PathBuf::from,
    );
    let path = root.join(relative);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "test data {} is missing ({e}); set CLOISTER_TESTDATA to the shared testdata folder",
            path.display()
        )
    })
}

/// A PEM certificate from the test data, as DER.
pub fn pem_as_der(relative: &str) -> Vec<u8> {
    let cert = sev::certs::snp::Certificate::from_pem(&testdata(relative))
        .unwrap_or_else(|e| panic!("{relative}: {e}"));
    cert.to_der().unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The genuine Milan report.
pub fn milan_report() -> Vec<u8> {
    let text =
        String::from_utf8(testdata("sev-snp/milan/report.hex")).unwrap_or_else(|e| panic!("{e}"));
    hex::decode(text.trim()).unwrap_or_else(|e| panic!("report.hex: {e}"))
}

/// Milan VCEK, ASK and ARK as a certificate table.
pub fn milan_certificates() -> CertTable {
    let mut table = CertTable::new();
    table.insert(CertKind::Vcek, testdata("sev-snp/milan/vcek.der"));
    table.insert(CertKind::Ask, pem_as_der("sev-snp/milan/ask.pem"));
    table.insert(CertKind::Ark, pem_as_der("sev-snp/milan/ark.pem"));
    table
}

/// The TCB of the simulated platform (that of the recorded Milan chip).
pub const SIM_TCB: Tcb = Tcb {
    fmc: None,
    bootloader: 3,
    tee: 0,
    snp: 8,
    microcode: 115,
};

pub struct Simulation {
    /// The platform the development verifier pins.
    pub platform: SimulatedPlatform,
    /// Same chip and root, older microcode.
    pub outdated: SimulatedPlatform,
    /// A platform whose root nobody pins.
    pub stranger: SimulatedPlatform,
}

/// Generated once per test binary: RSA-4096 key generation is slow.
pub fn simulation() -> &'static Simulation {
    static SIMULATION: OnceLock<Simulation> = OnceLock::new();
    SIMULATION.get_or_init(|| {
        let platform =
            SimulatedPlatform::from_seed([1; 32], SIM_TCB).unwrap_or_else(|e| panic!("{e}"));
        let outdated = platform
            .with_tcb(Tcb {
                microcode: 100,
                ..SIM_TCB
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let stranger =
            SimulatedPlatform::from_seed([2; 32], SIM_TCB).unwrap_or_else(|e| panic!("{e}"));
        Simulation {
            platform,
            outdated,
            stranger,
        }
    })
}

/// The simulated launch every test CVM uses.
pub fn launch() -> SimulatedLaunch {
    SimulatedLaunch::new(
        cloister_wire::Measurement([0x4d; 48]),
        cloister_wire::HostData([0x48; 32]),
    )
}

/// A development policy accepting [`launch`] on a simulated platform.
pub fn dev_policy() -> Policy {
    policy_text(true)
}

/// The same policy with `allow_simulated = false`.
pub fn production_policy() -> Policy {
    policy_text(false)
}

fn policy_text(allow_simulated: bool) -> Policy {
    let minimums = "[minimum_tcb.milan]\nbootloader = 3\ntee = 0\nsnp = 8\nmicrocode = 115\n";
    policy_with(allow_simulated, minimums)
}

/// A policy with these `[minimum_tcb.LINE]` tables, accepting [`launch`].
pub fn policy_with(allow_simulated: bool, minimums: &str) -> Policy {
    let launch = launch();
    let text = format!(
        r#"
allow_simulated = {allow_simulated}
min_report_version = 2
max_report_version = 5
allowed_vmpls = [0]
{minimums}
[[accepted.launches]]
measurement = "{}"
host_data = "{}"
guest_policy = {}
platform_info = {}
"#,
        hex::encode(launch.measurement),
        hex::encode(launch.host_data),
        launch.guest_policy,
        launch.platform_info,
    );
    Policy::from_toml(&text).unwrap_or_else(|e| panic!("{e}"))
}

/// AMD roots plus the simulated platform's root.
pub fn dev_anchors() -> TrustAnchors {
    simulation()
        .platform
        .pin_in(TrustAnchors::amd())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A verifier's allow-list straight from its policy.
pub fn allow_list(policy: &Policy) -> AllowList {
    policy.accepted.clone()
}
