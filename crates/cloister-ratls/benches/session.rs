#![allow(missing_docs)] // criterion_group! generates an undocumented function.

//! Cost of an RA-TLS session on the in-memory transport (no network):
//! establishing it (TLS 1.3 handshake, SIMULATED evidence, full
//! verification), establishing a mutual one (the caller attests too), and
//! one feature request inside an established session.

use std::hint::black_box;
use std::sync::Arc;

use cloister_api::{
    FeatureError, FeatureRequest, FeatureResponse, RequestError, SuggestRequest, Suggestions, Tone,
};
use cloister_ratls::{
    ClientSession, FeatureService, InMemoryTransport, SessionConfig, SessionTable,
};
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../tests/it/common/mod.rs"]
mod common;

/// The calling CVM's measurement in the mutual benchmark.
const CALLER: [u8; 48] = [0x43; 48];

struct Echo;

impl FeatureService for Echo {
    fn handle(&self, request: FeatureRequest) -> Result<FeatureResponse, RequestError> {
        match request.decode::<SuggestRequest>() {
            Ok(suggest) => Ok(FeatureResponse::of(&Suggestions(vec![suggest.draft]))),
            Err(error) => Err(RequestError::Feature(FeatureError::InvalidInput {
                reason: error.to_string(),
            })),
        }
    }
}

fn sessions(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let config = SessionConfig {
        idle_timeout_secs: 600,
        max_sessions: 1 << 20,
    };
    let table = Arc::new(
        SessionTable::new(&config, common::provider(common::RELEASED), Arc::new(Echo))
            .unwrap_or_else(|e| panic!("table: {e}")),
    );
    let verifier = common::verifier(true);
    let establish = || async {
        ClientSession::establish(InMemoryTransport::new(Arc::clone(&table)), &verifier)
            .await
            .unwrap_or_else(|e| panic!("establish: {e}"))
    };

    c.bench_function("establish: handshake + evidence + verification", |b| {
        b.iter(|| black_box(runtime.block_on(establish())));
    });

    let mutual_table = Arc::new(
        SessionTable::new(&config, common::provider(common::RELEASED), Arc::new(Echo))
            .unwrap_or_else(|e| panic!("table: {e}"))
            .require_caller_attestation(Arc::new(common::verifier_accepting(true, CALLER))),
    );
    let caller = common::provider(CALLER);
    c.bench_function("establish mutual: both sides attest and verify", |b| {
        b.iter(|| {
            let transport = InMemoryTransport::new(Arc::clone(&mutual_table));
            black_box(
                runtime
                    .block_on(ClientSession::establish_mutual(
                        transport, &verifier, &*caller,
                    ))
                    .unwrap_or_else(|e| panic!("establish_mutual: {e}")),
            )
        });
    });

    let mut session = runtime.block_on(establish());
    let request = FeatureRequest::of(&SuggestRequest {
        draft: "a draft of about sixty bytes, a typical short chat message".into(),
        context: vec![],
        tone: Tone::Neutral,
        count: 1,
    });
    c.bench_function("request round trip in an attested session", |b| {
        b.iter(|| {
            black_box(
                runtime
                    .block_on(session.request(&request))
                    .unwrap_or_else(|e| panic!("request: {e}")),
            )
        });
    });
}

criterion_group!(benches, sessions);
criterion_main!(benches);
