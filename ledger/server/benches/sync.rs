//! What a client's ledger sync costs at one million entries (set
//! `CLOISTER_LEDGER_BENCH_ENTRIES` for another size): HTTP requests and
//! response bytes of a first sync and of an incremental sync, from the C2SP
//! tiles (what `cloister_client::ledger::LedgerTrust` does) and over the
//! per-entry API with one inclusion proof per entry.
//!
//! Run with `cargo bench -p cloister-ledger-server --bench sync`. The log is
//! built in batches of 10 000 entries (each with two reviewer signatures'
//! worth of bytes) straight into the store; the appended entry goes through
//! the API with a real reviewer signature. Counts are exact; the per-entry
//! first sync is measured on its first `CLOISTER_LEDGER_BENCH_SAMPLE`
//! entries (default 2 000) and scaled to the log, as its requests are all
//! alike. Times are wall-clock on loopback, for orientation only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use cloister_client::ledger::{LedgerTrust, LedgerTrustConfig};
use cloister_ledger::Ledger;
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::client::LogVerifier;
use cloister_ledger_verify::entry::{ReviewerSignature, SignedEntry, Subject};
use cloister_ledger_verify::remote::LedgerClient;
use cloister_ledger_verify::review::{Reviewer, ReviewerPolicy};
use ed25519_dalek::SigningKey;

const BATCH: u64 = 10_000;

/// Entry `n`: the shipped example plugin entry with a digest of its own and
/// two reviewer signatures' worth of bytes.
fn entry(n: u64) -> SignedEntry {
    let mut entry: SignedEntry =
        serde_json::from_str(include_str!("../../examples/plugin-entry.json"))
            .expect("the example entry");
    if let Subject::PluginComponent { digest, .. } = &mut entry.body.subject {
        digest.0[..8].copy_from_slice(&n.to_be_bytes());
    }
    entry.signatures = [1u8, 2]
        .map(|seed| ReviewerSignature {
            public_key: HexBytes([seed; 32]),
            signature: HexBytes([seed; 64]),
        })
        .to_vec();
    entry
}

/// Requests and response bytes served since the last [`Traffic::take`].
#[derive(Default)]
struct Traffic {
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl Traffic {
    fn take(&self) -> (u64, u64) {
        (
            self.requests.swap(0, Ordering::Relaxed),
            self.bytes.swap(0, Ordering::Relaxed),
        )
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn row(what: &str, (requests, bytes): (u64, u64), took: Duration) {
    println!(
        "| {what} | {requests} | {:.1} KiB | {took:.1?} |",
        bytes as f64 / 1024.0
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let size = env("CLOISTER_LEDGER_BENCH_ENTRIES", 1_000_000);
    let sample = env("CLOISTER_LEDGER_BENCH_SAMPLE", 2_000).min(size);
    let dir = tempfile::tempdir().expect("temp dir");
    let log_key = SigningKey::from_bytes(&[100; 32]);
    let reviewer = SigningKey::from_bytes(&[1; 32]);
    let policy = ReviewerPolicy {
        threshold: 1,
        reviewers: vec![Reviewer {
            name: "r1".into(),
            public_key: reviewer.verifying_key().to_bytes().into(),
        }],
        publishers: Vec::new(),
    };
    let ledger =
        Ledger::open(&dir.path().join("bench.redb"), log_key.clone(), policy).expect("open");
    let started = Instant::now();
    for start in (0..size).step_by(usize::try_from(BATCH).expect("fits")) {
        let batch: Vec<_> = (start..size.min(start + BATCH)).map(entry).collect();
        ledger.store().append(&batch).expect("append batch");
    }
    eprintln!("built a log of {size} entries in {:.1?}", started.elapsed());
    let traffic = Arc::new(Traffic::default());
    let counted = Arc::clone(&traffic);
    let app = cloister_ledger_server::router(ledger).layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let traffic = Arc::clone(&counted);
            async move {
                let (parts, body) = next.run(request).await.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                traffic.requests.fetch_add(1, Ordering::Relaxed);
                traffic
                    .bytes
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                Response::from_parts(parts, Body::from(bytes))
            }
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    println!("\nledger of {size} entries; one entry appended between the syncs\n");
    println!("| sync | requests | response bytes | time |");
    println!("|---|---|---|---|");

    // Tiles, as the client syncs.
    let config = LedgerTrustConfig {
        ledger_url: base.clone(),
        ..LedgerTrustConfig::new(
            HexBytes(log_key.verifying_key().to_bytes()),
            dir.path().join("client-state.json"),
        )
    };
    let client = LedgerTrust::open(config).expect("client");
    let started = Instant::now();
    let report = client.sync().await.expect("first sync");
    assert_eq!(report.new_entries, size);
    row("tiles: first sync", traffic.take(), started.elapsed());

    // Per entry, with an inclusion proof each: a sample, scaled to the log.
    let api = LedgerClient::new(&base, Duration::from_secs(60)).expect("client");
    let mut verifier =
        LogVerifier::new(&log_key.verifying_key().to_bytes(), None).expect("verifier");
    let started = Instant::now();
    api.update_tree_head(&mut verifier).await.expect("head");
    let (head_requests, head_bytes) = traffic.take();
    for index in 0..sample {
        let served = api.entry(index).await.expect("entry");
        api.verify_entry(&verifier, &served.entry)
            .await
            .expect("included");
    }
    let (requests, bytes) = traffic.take();
    let scale = size as f64 / sample.max(1) as f64;
    let took = started.elapsed().mul_f64(scale);
    row(
        &format!("per entry: first sync (scaled from {sample} entries)"),
        (
            head_requests + (requests as f64 * scale) as u64,
            head_bytes + (bytes as f64 * scale) as u64,
        ),
        took,
    );

    // One more entry, admitted through the API, then each path's incremental sync.
    let mut appended = entry(size);
    appended.signatures = vec![ReviewerSignature::sign(&reviewer, &appended.body)];
    let placed = api.submit(&appended).await.expect("admitted");
    traffic.take();
    let started = Instant::now();
    let report = client.sync().await.expect("incremental sync");
    assert_eq!(
        (report.tree_size, report.new_entries),
        (placed.index + 1, 1)
    );
    row("tiles: incremental sync", traffic.take(), started.elapsed());

    let started = Instant::now();
    api.update_tree_head(&mut verifier).await.expect("head");
    let served = api.entry(placed.index).await.expect("entry");
    api.verify_entry(&verifier, &served.entry)
        .await
        .expect("included");
    row(
        "per entry: incremental sync",
        traffic.take(),
        started.elapsed(),
    );
}
