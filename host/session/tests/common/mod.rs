//! Shared fixtures: one SIMULATED platform per test binary, and a verifier
//! that accepts its evidence for one released measurement and HOST_DATA.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use cloister_attestation::{
    AllowList, Policy, SimulatedLaunch, SimulatedPlatform, SimulatedProvider, Tcb, TrustAnchors,
    Verifier,
};

/// The simulated platform's TCB, also the policy minimum.
pub const TCB: Tcb = Tcb {
    fmc: None,
    bootloader: 3,
    tee: 0,
    snp: 8,
    microcode: 115,
};
/// The one launch measurement the verifier accepts.
pub const RELEASED: [u8; 48] = [0x52; 48];
/// The one HOST_DATA the verifier accepts.
pub const HOST_DATA: [u8; 32] = [0x48; 32];

/// The SIMULATED platform (generating its RSA chain is slow, so once).
pub fn platform() -> &'static SimulatedPlatform {
    static PLATFORM: OnceLock<SimulatedPlatform> = OnceLock::new();
    PLATFORM.get_or_init(|| {
        SimulatedPlatform::from_seed([0x5a; 32], TCB).unwrap_or_else(|e| panic!("platform: {e}"))
    })
}

/// A simulated host launched with `measurement` and [`HOST_DATA`].
pub fn provider(measurement: [u8; 48]) -> Arc<SimulatedProvider> {
    Arc::new(SimulatedProvider::new(
        platform().clone(),
        SimulatedLaunch::new(measurement, HOST_DATA),
    ))
}

/// A verifier pinning the AMD roots and the simulated one, accepting
/// [`RELEASED`] and [`HOST_DATA`]; simulated evidence only if
/// `allow_simulated`.
pub fn verifier(allow_simulated: bool) -> Verifier<AllowList> {
    let accepted = AllowList {
        measurements: [RELEASED].into(),
        host_data: [HOST_DATA].into(),
    };
    let policy = Policy {
        allow_simulated,
        report_versions: 2..=5,
        allowed_vmpls: [0].into(),
        minimum_tcb: TCB,
        accepted: accepted.clone(),
    };
    let anchors = platform()
        .pin_in(TrustAnchors::amd())
        .unwrap_or_else(|e| panic!("anchors: {e}"));
    Verifier::new(anchors, policy, accepted)
}
