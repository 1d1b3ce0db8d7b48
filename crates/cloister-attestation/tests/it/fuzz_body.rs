//! Runs the fuzz target's body over deterministic random and mutated inputs,
//! so that CI exercises the parsers without nightly or libFuzzer.

use crate::common;
use crate::fuzz_seeds::run_on_seeds;

use cloister_attestation::{CertKind, CertTable, Evidence, RawReport, parse_untrusted};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

const ROUNDS: usize = 3000;

fn genuine_evidence() -> Vec<u8> {
    let report = RawReport::from_bytes(&common::milan_report()).unwrap_or_else(|e| panic!("{e}"));
    Evidence {
        report,
        certificates: common::milan_certificates(),
    }
    .encode()
}

fn random_bytes(rng: &mut ChaCha20Rng, max_len: usize) -> Vec<u8> {
    let len = usize::try_from(rng.next_u32()).unwrap_or_default() % max_len;
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// Flips, overwrites, truncates or extends `input` at random.
fn mutate(rng: &mut ChaCha20Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let pick = |rng: &mut ChaCha20Rng, n: usize| {
        usize::try_from(rng.next_u32()).unwrap_or_default() % n.max(1)
    };
    for _ in 0..=pick(rng, 4) {
        match pick(rng, 4) {
            0 if !out.is_empty() => {
                let i = pick(rng, out.len());
                out[i] ^= 1 << pick(rng, 8);
            }
            1 if !out.is_empty() => {
                let i = pick(rng, out.len());
                out[i] = rng.next_u32().to_le_bytes()[0];
            }
            2 => out.truncate(pick(rng, out.len() + 1)),
            _ => out.extend(random_bytes(rng, 64)),
        }
    }
    out
}

/// Anything that decodes must survive an encode/decode round trip unchanged.
fn check_round_trip(input: &[u8]) {
    parse_untrusted(input);
    if let Ok(evidence) = Evidence::decode(input) {
        assert_eq!(Evidence::decode(&evidence.encode()).as_ref(), Ok(&evidence));
    }
    if let Ok(table) = CertTable::parse(input) {
        assert_eq!(CertTable::parse(&table.encode()).as_ref(), Ok(&table));
    }
}

#[test]
fn random_inputs_never_panic_the_parsers() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5eed);
    for _ in 0..ROUNDS {
        check_round_trip(&random_bytes(&mut rng, 4096));
    }
}

#[test]
fn mutated_genuine_evidence_never_panics_the_parsers() {
    let mut rng = ChaCha20Rng::seed_from_u64(0xc1057e2);
    let genuine = genuine_evidence();
    assert!(
        Evidence::decode(&genuine).is_ok(),
        "the seed input must be valid"
    );
    let mut table = CertTable::new();
    table.insert(CertKind::Vcek, common::testdata("sev-snp/milan/vcek.der"));
    let table = table.encode();
    for _ in 0..ROUNDS {
        check_round_trip(&mutate(&mut rng, &genuine));
        check_round_trip(&mutate(&mut rng, &table));
        check_round_trip(&mutate(&mut rng, &common::milan_report()));
    }
}

#[test]
fn the_snp_evidence_seed_corpus_passes_the_fuzz_body() {
    run_on_seeds("snp_evidence", parse_untrusted);
    // The seeds include the genuine Milan evidence (report and VCEK).
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus/snp_evidence/milan_evidence");
    let seed = std::fs::read(seeds).expect("seed");
    assert!(Evidence::decode(&seed).is_ok_and(|e| e.endorsement_key().is_some()));
}
