//! Issuance and redemption rates for token type 0x0002 (RSA-2048).
//!
//! Run: `cargo bench -p cloister-privacypass --bench rates`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use cloister_privacypass::header::format_authorization;
use cloister_privacypass::{
    IssuerSecretKey, Redeemer, TokenChallenge, TrustedKey, issue, request_token,
};
use criterion::{Criterion, criterion_group, criterion_main};

const POOL: usize = 256;

fn rates(c: &mut Criterion) {
    let secret = IssuerSecretKey::generate().expect("keygen");
    let keys = [secret.clone()];
    let public = secret.public_key().clone();
    let challenge =
        TokenChallenge::new("issuer.example", None, &["gateway.example"]).expect("challenge");
    let (request, _) = request_token(&public, &challenge).expect("blind");

    c.bench_function("issuer: blind-sign one token request", |b| {
        b.iter(|| issue(&keys, &request).expect("issue"))
    });

    c.bench_function("client: blind one token request", |b| {
        b.iter(|| request_token(&public, &challenge).expect("blind"))
    });

    c.bench_function("client: finalize one token response", |b| {
        b.iter_batched(
            || {
                let (fresh, pending) = request_token(&public, &challenge).expect("blind");
                (pending, issue(&keys, &fresh).expect("issue"))
            },
            |(pending, response)| pending.finalize(&response).expect("finalize"),
            criterion::BatchSize::SmallInput,
        )
    });

    // Redemption spends each token once, so time redeeming a pool of
    // distinct tokens, with a fresh redeemer each time the pool is used up.
    let headers: Vec<String> = (0..POOL)
        .map(|_| {
            let (request, pending) = request_token(&public, &challenge).expect("blind");
            format_authorization(
                &pending
                    .finalize(&issue(&keys, &request).expect("issue"))
                    .expect("finalize"),
            )
        })
        .collect();
    let trusted = TrustedKey {
        key: public.clone(),
        not_before: 0,
        not_after: u64::MAX,
    };
    // Spends go through the in-memory state store, on the runtime the gateway runs.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    c.bench_function("gateway: redeem one token (parse, verify, spend)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                let spent = cloister_state_store::StateStore::in_memory()
                    .expect("store")
                    .once_set("spent", POOL as u64);
                let redeemer = Redeemer::new(
                    vec![trusted.clone()],
                    std::slice::from_ref(&challenge),
                    spent,
                );
                let batch = left.min(POOL);
                let start = Instant::now();
                for header in &headers[..batch] {
                    runtime
                        .block_on(redeemer.redeem_at(header, 1))
                        .expect("redeem");
                }
                total += start.elapsed();
                left -= batch;
            }
            total
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(5));
    targets = rates
}
criterion_main!(benches);
