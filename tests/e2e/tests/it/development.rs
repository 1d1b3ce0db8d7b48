//! The client side of a development launch: what `tests/it/host.rs` and
//! `benches/first_request.rs` verify an in-process host with.

use cloister_attestation::{
    AllowList, DEVELOPMENT_SEED, DEVELOPMENT_TCB, Policy, ProductLine, SimulatedRoot, TrustAnchors,
    Verifier,
};
use cloister_host::launch::LaunchDigests;

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
    let anchors = SimulatedRoot::from_seed(DEVELOPMENT_SEED)
        .and_then(|root| root.pin_in(TrustAnchors::amd()))
        .unwrap_or_else(|e| panic!("simulated root: {e}"));
    Verifier::new(anchors, policy, accepted)
}
