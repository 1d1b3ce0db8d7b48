//! Verification of genuine AMD evidence: the recorded Milan report and the
//! Milan and Turin chains from `testdata/sev-snp`.

use crate::common;

use cloister_attestation::{
    CertKind, Evidence, Policy, ProductLine, RootKind, TrustAnchors, Verifier, VerifyError,
    evidence_from_ext_report,
};
use common::{milan_certificates, milan_report, pem_as_der, testdata};
use sev::firmware::host::{CertTableEntry, CertType};

const EXAMPLE_POLICY: &str = include_str!("../../examples/policy.toml");

fn verifier(anchors: TrustAnchors) -> Verifier<cloister_attestation::AllowList> {
    let policy = Policy::from_toml(EXAMPLE_POLICY).unwrap_or_else(|e| panic!("{e}"));
    let authority = policy.accepted.clone();
    Verifier::new(anchors, policy, authority)
}

fn milan_evidence() -> Evidence {
    Evidence {
        report: cloister_attestation::RawReport::from_bytes(&milan_report())
            .unwrap_or_else(|e| panic!("{e}")),
        certificates: milan_certificates(),
    }
}

fn with_report(mut report: Vec<u8>, edit: impl FnOnce(&mut Vec<u8>)) -> Evidence {
    edit(&mut report);
    Evidence {
        report: cloister_attestation::RawReport::from_bytes(&report)
            .unwrap_or_else(|e| panic!("{e}")),
        certificates: milan_certificates(),
    }
}

fn with_certificate(kind: CertKind, edit: impl FnOnce(&mut Vec<u8>)) -> Evidence {
    let mut evidence = milan_evidence();
    let mut der = evidence
        .certificates
        .get(kind)
        .unwrap_or_else(|| panic!("{kind:?} missing"))
        .to_vec();
    edit(&mut der);
    evidence.certificates.insert(kind, der);
    evidence
}

#[test]
fn the_milan_chain_and_report_verify_and_meet_the_example_policy() {
    let verifier = verifier(TrustAnchors::amd());
    let verified = verifier
        .verify_platform(&milan_evidence())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verified.root, RootKind::Amd(ProductLine::Milan));
    assert!(hex::encode(verified.measurement).starts_with("7a1e5c266c0108dbc9bb94fa"));
    assert!(hex::encode(verified.report_data).starts_with("d447b55d197491bfe15cf298"));
    assert_eq!(verified.report.version, 2);
    verifier
        .check_policy(&verified)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_vcek_alone_chains_to_the_pinned_milan_root() {
    let mut evidence = milan_evidence();
    let mut vcek_only = cloister_attestation::CertTable::new();
    vcek_only.insert(
        CertKind::Vcek,
        evidence
            .certificates
            .get(CertKind::Vcek)
            .unwrap_or_default()
            .to_vec(),
    );
    evidence.certificates = vcek_only;
    let verified = verifier(TrustAnchors::amd())
        .verify_platform(&evidence)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(verified.root, RootKind::Amd(ProductLine::Milan));
}

#[test]
fn the_real_provider_assembles_verifiable_evidence_from_a_recorded_ext_report() {
    let entries = vec![
        CertTableEntry::new(CertType::VCEK, testdata("sev-snp/milan/vcek.der")),
        CertTableEntry::new(CertType::ASK, pem_as_der("sev-snp/milan/ask.pem")),
        CertTableEntry::new(CertType::ARK, pem_as_der("sev-snp/milan/ark.pem")),
    ];
    let evidence =
        evidence_from_ext_report(&milan_report(), entries, None).unwrap_or_else(|e| panic!("{e}"));
    let decoded = Evidence::decode(&evidence.encode()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(decoded, evidence);
    verifier(TrustAnchors::amd())
        .verify_platform(&decoded)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_real_provider_uses_the_fallback_vcek_only_when_the_host_supplies_none() {
    let vcek = testdata("sev-snp/milan/vcek.der");
    let evidence = evidence_from_ext_report(&milan_report(), Vec::new(), Some(&vcek))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        evidence.certificates.get(CertKind::Vcek),
        Some(vcek.as_slice())
    );
    verifier(TrustAnchors::amd())
        .verify_platform(&evidence)
        .unwrap_or_else(|e| panic!("{e}"));
    let none = evidence_from_ext_report(&milan_report(), Vec::new(), None);
    assert!(
        matches!(
            none,
            Err(cloister_attestation::ProviderError::NoEndorsementKey)
        ),
        "{none:?}"
    );
}

#[test]
fn byte_21_of_the_report_flipped_breaks_the_signature() {
    let evidence = with_report(milan_report(), |r| r[21] ^= 0x01);
    let err = verifier(TrustAnchors::amd()).verify_platform(&evidence);
    assert_eq!(err.err(), Some(VerifyError::ReportSignatureInvalid));
}

#[test]
fn a_flipped_bit_anywhere_in_the_report_is_refused() {
    let verifier = verifier(TrustAnchors::amd());
    let report = milan_report();
    for index in 0..report.len() {
        let evidence = with_report(report.clone(), |r| r[index] ^= 1 << (index % 8));
        assert!(
            verifier.verify_platform(&evidence).is_err(),
            "flipping byte {index:#x} went unnoticed"
        );
    }
}

#[test]
fn a_flipped_bit_in_the_signature_is_refused() {
    for offset in [0x2A0, 0x2A0 + 47, 0x2E8 + 10, 0x2A0 + 60, 0x400] {
        let evidence = with_report(milan_report(), |r| r[offset] ^= 0x80);
        let err = verifier(TrustAnchors::amd()).verify_platform(&evidence);
        assert_eq!(
            err.err(),
            Some(VerifyError::ReportSignatureInvalid),
            "offset {offset:#x}"
        );
    }
}

#[test]
fn byte_40_of_the_vcek_flipped_breaks_the_chain() {
    let evidence = with_certificate(CertKind::Vcek, |der| der[40] ^= 0x01);
    let err = verifier(TrustAnchors::amd()).verify_platform(&evidence);
    assert!(matches!(err, Err(VerifyError::ChainInvalid(_))), "{err:?}");
}

#[test]
fn a_flipped_bit_in_the_ask_breaks_the_chain() {
    let ask = pem_as_der("sev-snp/milan/ask.pem");
    // Inside the signed public key, and inside the signature itself.
    let key_byte = find(&ask, &[0x02, 0x82, 0x02, 0x01, 0x00]) + 40;
    for position in [key_byte, ask.len() - 100, ask.len() - 1] {
        let evidence = with_certificate(CertKind::Ask, |der| der[position] ^= 0x04);
        let err = verifier(TrustAnchors::amd()).verify_platform(&evidence);
        assert!(
            matches!(err, Err(VerifyError::ChainInvalid(_))),
            "ASK byte {position}: {err:?}"
        );
    }
}

/// Offset of `needle` (here: the DER header of a 4096-bit RSA modulus).
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{needle:02x?} not found"))
}

#[test]
fn a_wrong_generation_ark_is_refused() {
    // The Turin ARK is genuine and pinned, but it did not sign Milan's ASK.
    let mut evidence = milan_evidence();
    evidence
        .certificates
        .insert(CertKind::Ark, pem_as_der("sev-snp/turin/ark.pem"));
    let err = verifier(TrustAnchors::amd()).verify_platform(&evidence);
    assert!(matches!(err, Err(VerifyError::ChainInvalid(_))), "{err:?}");
}

#[test]
fn a_verifier_pinning_only_turin_refuses_milan_evidence() {
    let anchors = TrustAnchors::default().with_amd(ProductLine::Turin);
    let err = verifier(anchors.clone()).verify_platform(&milan_evidence());
    assert_eq!(err.err(), Some(VerifyError::UntrustedRoot));
    let mut vcek_only = milan_evidence();
    vcek_only.certificates = cloister_attestation::CertTable::new();
    vcek_only
        .certificates
        .insert(CertKind::Vcek, testdata("sev-snp/milan/vcek.der"));
    assert_eq!(
        verifier(anchors).verify_platform(&vcek_only).err(),
        Some(VerifyError::UntrustedRoot)
    );
}

#[test]
fn the_turin_chain_anchors_at_the_pinned_turin_root() {
    let cert = |path: &str, der: Vec<u8>| {
        sev::certs::snp::Certificate::from_der(&der).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let ark = cert("ark", pem_as_der("sev-snp/turin/ark.pem"));
    let ask = cert("ask", pem_as_der("sev-snp/turin/ask.pem"));
    let vcek = cert("vcek", testdata("sev-snp/turin/vcek.der"));
    let anchors = TrustAnchors::amd();
    assert_eq!(
        anchors.anchor(Some(&ark), Some(&ask), &vcek),
        Ok(RootKind::Amd(ProductLine::Turin))
    );
    assert_eq!(
        anchors.anchor(None, None, &vcek),
        Ok(RootKind::Amd(ProductLine::Turin))
    );
    // Milan's chain does not certify the Turin VCEK.
    let milan_ark = cert("milan ark", pem_as_der("sev-snp/milan/ark.pem"));
    assert!(anchors.anchor(Some(&milan_ark), None, &vcek).is_err());
}

#[test]
fn a_report_paired_with_another_chips_vcek_is_refused() {
    let mut evidence = milan_evidence();
    evidence.certificates = cloister_attestation::CertTable::new();
    evidence
        .certificates
        .insert(CertKind::Vcek, testdata("sev-snp/turin/vcek.der"));
    assert!(
        verifier(TrustAnchors::amd())
            .verify_platform(&evidence)
            .is_err()
    );
}

#[test]
fn genuine_evidence_below_the_minimum_tcb_is_refused() {
    let strict = EXAMPLE_POLICY.replace("microcode = 115", "microcode = 200");
    let policy = Policy::from_toml(&strict).unwrap_or_else(|e| panic!("{e}"));
    let authority = policy.accepted.clone();
    let verifier = Verifier::new(TrustAnchors::amd(), policy, authority);
    let verified = verifier
        .verify_platform(&milan_evidence())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        verifier.check_policy(&verified),
        Err(VerifyError::TcbTooOld {
            component: "microcode",
            reported: 115,
            minimum: 200
        })
    );
}

#[test]
fn the_vcek_extensions_name_tcb_chip_and_product() {
    use cloister_attestation::{EndorsementFacts, Tcb};
    use x509_cert::der::Decode;
    let facts = |path: &str| {
        let cert = x509_cert::Certificate::from_der(&testdata(path))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        EndorsementFacts::from_certificate(&cert).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let milan = facts("sev-snp/milan/vcek.der");
    assert_eq!(
        milan.tcb,
        Tcb {
            fmc: None,
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115
        }
    );
    assert_eq!(milan.product_name.as_deref(), Some("Milan-B0"));
    let report = milan_evidence()
        .report
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(milan.matches_chip(&report.chip_id));
    let turin = facts("sev-snp/turin/vcek.der");
    assert_eq!(turin.tcb.fmc, Some(0));
    assert_eq!(turin.product_name.as_deref(), Some("Turin"));
    assert_eq!(turin.hw_id.as_ref().map(Vec::len), Some(8));
    assert!(!turin.matches_chip(&report.chip_id));
}

#[test]
fn the_real_provider_fails_closed_without_an_sev_guest_device() {
    use cloister_attestation::{EvidenceProvider, ProviderError, SevGuestProvider};
    if std::path::Path::new("/dev/sev-guest").exists() {
        return; // A real SEV-SNP guest: nothing to show here.
    }
    let provider = SevGuestProvider::new(0);
    assert!(!provider.is_simulated());
    let result = provider.evidence(&[0; 64]);
    assert!(
        matches!(result, Err(ProviderError::Device(_))),
        "{result:?}"
    );
}
