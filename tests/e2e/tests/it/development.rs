//! The client side of a development launch: what `tests/it/host.rs` and
//! `benches/first_request.rs` verify an in-process host with.

use std::path::PathBuf;

use cloister_attestation::{
    AllowList, DEVELOPMENT_SEED, DEVELOPMENT_TCB, Policy, ProductLine, SimulatedPlatform,
    SimulatedRoot, Tcb, TrustAnchors, Verifier,
};
use cloister_host::launch::LaunchDigests;

/// Where test hosts and clients keep the simulated development platform
/// and root, so that each is derived once per machine (two RSA-4096 key
/// generations, seconds) rather than once per test.
pub fn simulated_cache_dir() -> PathBuf {
    std::env::temp_dir().join("cloister-simulated")
}

/// The root derived from the public development seed, from the shared cache.
pub fn development_root() -> SimulatedRoot {
    SimulatedRoot::cached(DEVELOPMENT_SEED, &simulated_cache_dir())
        .unwrap_or_else(|e| panic!("simulated root: {e}"))
        .0
}

/// The platform of the public development seed at `tcb`, from the shared cache.
pub fn development_platform(tcb: Tcb) -> SimulatedPlatform {
    SimulatedPlatform::cached(DEVELOPMENT_SEED, tcb, &simulated_cache_dir())
        .unwrap_or_else(|e| panic!("simulated platform: {e}"))
        .0
}

/// A development client's verifier: the AMD roots plus the simulated root
/// derived from the public development seed, accepting exactly `launch`.
pub fn verifier(launch: &LaunchDigests) -> Verifier<AllowList> {
    let released = launch
        .launch_facts()
        .unwrap_or_else(|| panic!("a simulated launch names all four values"));
    let accepted = AllowList {
        launches: [released].into(),
    };
    let policy = Policy {
        allow_simulated: true,
        report_versions: 2..=5,
        allowed_vmpls: [0].into(),
        minimum_tcb: [(ProductLine::Milan, DEVELOPMENT_TCB)].into(),
        accepted: accepted.clone(),
    };
    let anchors = development_root()
        .pin_in(TrustAnchors::amd())
        .unwrap_or_else(|e| panic!("simulated root: {e}"));
    Verifier::new(anchors, policy, accepted)
}
