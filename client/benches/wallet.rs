//! What persisting the wallet costs: handing out one token (lock, read,
//! remove, write-then-rename with fsync of file and directory) with 64
//! tokens held, and depositing a batch of 20.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use cloister_client::tokens::{IssuedToken, IssuerSettings, TokenWallet};
use cloister_privacypass::{IssuerSecretKey, issue, request_token};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn tokens(count: usize) -> Vec<IssuedToken> {
    let secret = IssuerSecretKey::generate().unwrap_or_else(|e| panic!("issuer key: {e}"));
    let challenge = IssuerSettings::default()
        .challenge()
        .unwrap_or_else(|e| panic!("challenge: {e}"));
    (0..count)
        .map(|_| {
            let (request, pending) = request_token(secret.public_key(), &challenge)
                .unwrap_or_else(|e| panic!("blind: {e}"));
            let response = issue(std::slice::from_ref(&secret), &request)
                .unwrap_or_else(|e| panic!("issue: {e}"));
            let token = pending
                .finalize(&response)
                .unwrap_or_else(|e| panic!("finalize: {e}"));
            IssuedToken {
                token,
                expires_at: u64::MAX,
            }
        })
        .collect()
}

fn wallet(c: &mut Criterion) {
    let held = tokens(64);
    let challenge = IssuerSettings::default()
        .challenge()
        .unwrap_or_else(|e| panic!("challenge: {e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let wallet =
        TokenWallet::open(dir.path(), &challenge).unwrap_or_else(|e| panic!("wallet: {e}"));
    wallet
        .deposit(&held)
        .unwrap_or_else(|e| panic!("deposit: {e}"));
    c.bench_function("wallet: take one token, persisted (64 held)", |b| {
        b.iter_batched(
            || {
                wallet
                    .deposit(&held[..1])
                    .unwrap_or_else(|e| panic!("deposit: {e}"))
            },
            |()| wallet.take().unwrap_or_else(|e| panic!("take: {e}")),
            BatchSize::PerIteration,
        );
    });
    c.bench_function("wallet: deposit a batch of 20, persisted", |b| {
        b.iter_batched(
            || {
                let fresh = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
                let wallet = TokenWallet::open(fresh.path(), &challenge)
                    .unwrap_or_else(|e| panic!("wallet: {e}"));
                (fresh, wallet)
            },
            |(_fresh, wallet)| {
                wallet
                    .deposit(&held[..20])
                    .unwrap_or_else(|e| panic!("deposit: {e}"))
            },
            BatchSize::PerIteration,
        );
    });
}

criterion_group!(benches, wallet);
criterion_main!(benches);
