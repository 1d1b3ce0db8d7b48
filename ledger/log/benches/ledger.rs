//! Append and proof generation on a log of one million entries (set
//! `CLOISTER_LEDGER_BENCH_ENTRIES` for another size).
//!
//! Run with `cargo bench -p cloister-ledger --bench ledger`. The log is built
//! once in batches of 10 000 entries per transaction; the timed appends are
//! single durable transactions, as the server performs them.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::time::Instant;

use cloister_ledger::Ledger;
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::entry::{
    EntryBody, Provenance, ReviewerSignature, SignedEntry, Subject,
};
use cloister_ledger_verify::merkle::verify_inclusion;
use cloister_ledger_verify::review::{Reviewer, ReviewerPolicy};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;

const BATCH: u64 = 10_000;

fn entry(n: u64) -> SignedEntry {
    let mut digest = [0u8; 32];
    digest[..8].copy_from_slice(&n.to_be_bytes());
    SignedEntry {
        body: EntryBody {
            subject: Subject::PluginComponent {
                name: "summarise".into(),
                version: "1.0.0".into(),
                wit_world: "cloister:feature/feature".into(),
                digest: HexBytes(digest),
            },
            provenance: Provenance {
                source_commit: "0123abcd".into(),
                builder: "bench".into(),
            },
        },
        signatures: Vec::new(),
    }
}

fn reviewer(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn bench(c: &mut Criterion) {
    let size: u64 = std::env::var("CLOISTER_LEDGER_BENCH_ENTRIES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = ReviewerPolicy {
        threshold: 2,
        reviewers: (1..=3)
            .map(|seed| Reviewer {
                name: format!("r{seed}"),
                public_key: reviewer(seed).verifying_key().to_bytes().into(),
            })
            .collect(),
        publishers: Vec::new(),
    };
    let ledger = Ledger::open(&dir.path().join("bench.redb"), reviewer(100), policy).expect("open");
    let started = Instant::now();
    for start in (0..size).step_by(usize::try_from(BATCH).expect("fits")) {
        let batch: Vec<_> = (start..size.min(start + BATCH)).map(entry).collect();
        ledger.store().append(&batch).expect("append batch");
    }
    eprintln!("built a log of {size} entries in {:.1?}", started.elapsed());

    let store = ledger.store();
    let mut group = c.benchmark_group(format!("ledger_{size}"));
    group.sample_size(30);
    let mut next = size;
    group.bench_function("append_durable", |b| {
        b.iter(|| {
            next += 1;
            store.append(&[entry(next)]).expect("append")
        })
    });
    group.bench_function("submit_2_of_3_durable", |b| {
        b.iter_batched(
            || {
                next += 1;
                let mut signed = entry(next);
                signed.signatures = [1, 2]
                    .iter()
                    .map(|&seed| ReviewerSignature::sign(&reviewer(seed), &signed.body))
                    .collect();
                signed
            },
            |signed| ledger.submit(&signed).expect("submit"),
            BatchSize::SmallInput,
        )
    });
    let mut probe = 0u64;
    group.bench_function("inclusion_proof", |b| {
        b.iter(|| {
            probe = (probe + 7919) % size;
            store
                .inclusion_proof(&entry(probe).leaf_hash(), None)
                .expect("proof")
        })
    });
    group.bench_function("consistency_proof", |b| {
        b.iter(|| {
            probe = (probe + 7919) % size;
            store.consistency_proof(probe + 1, size).expect("proof")
        })
    });
    let head = store.tree_head().expect("head").head;
    let leaf = entry(size / 3).leaf_hash();
    let proof = store
        .inclusion_proof(&leaf, Some(head.tree_size))
        .expect("proof");
    group.bench_function("verify_inclusion", |b| {
        b.iter(|| {
            verify_inclusion(
                proof.leaf_index,
                proof.tree_size,
                &leaf,
                &proof.audit_path,
                &head.root_hash,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
