#![allow(missing_docs)] // criterion_group! generates an undocumented function.

//! Verification cost: genuine Milan evidence (chain, signature, policy) and
//! the full simulated flow including nonce redemption and binding.

#[path = "../tests/it/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use cloister_attestation::{
    Evidence, NonceTracker, RawReport, TlsExporter, TrustAnchors, Verifier, report_data,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn genuine(c: &mut Criterion) {
    let report = RawReport::from_bytes(&common::milan_report()).unwrap_or_else(|e| panic!("{e}"));
    let evidence = Evidence {
        report,
        certificates: common::milan_certificates(),
    };
    let wire = evidence.encode();
    let policy = cloister_attestation::Policy::from_toml(include_str!("../examples/policy.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let verifier = Verifier::new(TrustAnchors::amd(), policy.clone(), policy.accepted);
    c.bench_function("decode genuine Milan evidence", |b| {
        b.iter(|| Evidence::decode(&wire))
    });
    c.bench_function(
        "verify genuine Milan evidence (chain + signature + policy)",
        |b| {
            b.iter(|| {
                let verified = verifier
                    .verify_platform(&evidence)
                    .unwrap_or_else(|e| panic!("{e}"));
                verifier
                    .check_policy(&verified)
                    .unwrap_or_else(|e| panic!("{e}"));
            })
        },
    );
}

fn simulated(c: &mut Criterion) {
    let platform = &common::simulation().platform;
    let policy = common::dev_policy();
    let verifier = Verifier::new(common::dev_anchors(), policy.clone(), policy.accepted);
    let exporter = TlsExporter([7; 32]);
    let mut tracker = NonceTracker::new(Duration::from_secs(30));
    c.bench_function(
        "simulated: issue nonce, sign report, verify bound evidence",
        |b| {
            b.iter(|| {
                let now = Instant::now();
                let nonce = tracker.issue(now);
                let evidence = platform
                    .evidence(&common::launch(), &report_data(&exporter, &nonce))
                    .unwrap_or_else(|e| panic!("{e}"));
                verifier
                    .verify(&evidence.encode(), &exporter, &nonce, &mut tracker, now)
                    .unwrap_or_else(|e| panic!("{e}"))
            })
        },
    );
}

criterion_group!(benches, genuine, simulated);
criterion_main!(benches);
