//! The minimum TCB is per product line: Milan, Genoa and Turin number their
//! firmware differently, so each line is checked against its own minimum,
//! a line without one is refused, and evidence that names two lines is
//! refused.

use cloister_attestation::{
    Evidence, Policy, ProductLine, RawReport, SimulatedPlatform, Tcb, TrustAnchors, Verifier,
    VerifyError,
};

use crate::common::{
    SIM_TCB, dev_anchors, launch, milan_certificates, milan_report, policy_with, simulation,
};

/// Offset of CPUID_MOD_ID in a version 3 report.
const CPUID_MODEL_OFFSET: usize = 0x189;

const GENOA_TCB: Tcb = Tcb {
    fmc: None,
    bootloader: 9,
    tee: 0,
    snp: 23,
    microcode: 72,
};

const TURIN_TCB: Tcb = Tcb {
    fmc: Some(2),
    bootloader: 1,
    tee: 1,
    snp: 4,
    microcode: 30,
};

/// A development policy with these `[minimum_tcb.LINE]` tables, accepting
/// the common test launch.
fn policy(minimums: &str) -> Policy {
    policy_with(true, minimums)
}

fn tables(line: &str, tcb: Tcb) -> String {
    let fmc = tcb
        .fmc
        .map(|fmc| format!("fmc = {fmc}\n"))
        .unwrap_or_default();
    format!(
        "[minimum_tcb.{line}]\n{fmc}bootloader = {}\ntee = {}\nsnp = {}\nmicrocode = {}\n",
        tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode
    )
}

fn on_line(line: ProductLine, tcb: Tcb) -> SimulatedPlatform {
    simulation()
        .platform
        .on_product_line(line, tcb)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The product line of `platform`'s evidence for the test launch, if
/// `policy` accepts it.
fn verify(platform: &SimulatedPlatform, policy: Policy) -> Result<ProductLine, VerifyError> {
    let evidence = platform
        .evidence(&launch(), &[7; 64])
        .unwrap_or_else(|e| panic!("{e}"));
    verify_evidence(&evidence, policy)
}

/// The product line of `evidence` (bound to `[7; 64]`), if `policy` accepts it.
fn verify_evidence(evidence: &Evidence, policy: Policy) -> Result<ProductLine, VerifyError> {
    let authority = policy.accepted.clone();
    Verifier::new(dev_anchors(), policy, authority)
        .verify_bound(evidence, &[7; 64])
        .map(|verified| verified.product_line)
}

#[test]
fn a_milan_report_is_held_to_the_milan_minimum() {
    let evidence = Evidence {
        report: RawReport::from_bytes(&milan_report()).unwrap_or_else(|e| panic!("{e}")),
        certificates: milan_certificates(),
    };
    let genuine = |minimums: &str| {
        let mut policy = policy(minimums);
        policy.allow_simulated = false;
        let authority = crate::common::allow_list(&policy);
        let verifier = Verifier::new(TrustAnchors::amd(), policy, authority);
        let verified = verifier
            .verify_platform(&evidence)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(verified.product_line, ProductLine::Milan);
        verifier.check_policy(&verified)
    };
    let at_minimum = genuine(&tables("milan", SIM_TCB));
    // The authority refuses the recorded launch (it is not the test launch):
    // the TCB check passed before it.
    assert!(
        matches!(at_minimum, Err(VerifyError::MeasurementNotAccepted(_))),
        "{at_minimum:?}"
    );
    let newer_snp = genuine(&tables("milan", Tcb { snp: 9, ..SIM_TCB }));
    assert_eq!(
        newer_snp,
        Err(VerifyError::TcbTooOld {
            component: "snp",
            reported: 8,
            minimum: 9
        })
    );
    let only_genoa = genuine(&tables("genoa", GENOA_TCB));
    assert_eq!(
        only_genoa,
        Err(VerifyError::ProductLineNotAllowed(ProductLine::Milan))
    );
}

#[test]
fn a_genoa_report_is_held_to_the_genoa_minimum() {
    let genoa = on_line(ProductLine::Genoa, GENOA_TCB);
    assert_eq!(
        verify(&genoa, policy(&tables("genoa", GENOA_TCB))),
        Ok(ProductLine::Genoa)
    );
    let newer_microcode = Tcb {
        microcode: 73,
        ..GENOA_TCB
    };
    assert_eq!(
        verify(&genoa, policy(&tables("genoa", newer_microcode))),
        Err(VerifyError::TcbTooOld {
            component: "microcode",
            reported: 72,
            minimum: 73
        })
    );
    // Genoa's numbers pass Milan's minimum, but they are not Milan's
    // numbers: a policy without a Genoa minimum refuses Genoa.
    assert_eq!(
        verify(&genoa, policy(&tables("milan", SIM_TCB))),
        Err(VerifyError::ProductLineNotAllowed(ProductLine::Genoa))
    );
}

#[test]
fn a_turin_report_is_held_to_the_turin_minimum_including_fmc() {
    let turin = on_line(ProductLine::Turin, TURIN_TCB);
    assert_eq!(
        verify(&turin, policy(&tables("turin", TURIN_TCB))),
        Ok(ProductLine::Turin)
    );
    let newer_fmc = Tcb {
        fmc: Some(3),
        ..TURIN_TCB
    };
    assert_eq!(
        verify(&turin, policy(&tables("turin", newer_fmc))),
        Err(VerifyError::TcbTooOld {
            component: "fmc",
            reported: 2,
            minimum: 3
        })
    );
    let both = format!("{}{}", tables("milan", SIM_TCB), tables("genoa", GENOA_TCB));
    assert_eq!(
        verify(&turin, policy(&both)),
        Err(VerifyError::ProductLineNotAllowed(ProductLine::Turin))
    );
}

#[test]
fn evidence_naming_two_product_lines_is_refused() {
    let genoa = on_line(ProductLine::Genoa, GENOA_TCB);
    let mut evidence = genoa
        .evidence(&launch(), &[7; 64])
        .unwrap_or_else(|e| panic!("{e}"));
    // A Genoa VCEK signing a report whose CPUID says Milan.
    let mut bytes = evidence.report.as_bytes().to_vec();
    bytes[CPUID_MODEL_OFFSET] = 0x01;
    let mut report = RawReport::from_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"));
    genoa.sign(&mut report);
    evidence.report = report;
    let both = format!("{}{}", tables("milan", SIM_TCB), tables("genoa", GENOA_TCB));
    let result = verify_evidence(&evidence, policy(&both));
    assert!(
        matches!(
            result,
            Err(VerifyError::ProductLineMismatch(
                ProductLine::Genoa,
                ProductLine::Milan
            ))
        ),
        "{result:?}"
    );
}
