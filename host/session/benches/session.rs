#![allow(missing_docs)] // criterion_group! generates an undocumented function.

//! Cost of an RA-TLS session on the in-memory transport (no network):
//! establishing it (TLS 1.3 handshake, SIMULATED evidence, full
//! verification) and one feature request inside an established session.

use std::hint::black_box;
use std::sync::Arc;

use cloister_api::{FeatureRequest, FeatureResponse, SuggestRequest, Tone};
use cloister_ratls::{ClientSession, FeatureService, InMemoryTransport, SessionConfig, SessionTable};
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../tests/common/mod.rs"]
mod common;

struct Echo;

impl FeatureService for Echo {
    fn handle(&self, request: FeatureRequest) -> Result<FeatureResponse, String> {
        match request {
            FeatureRequest::Suggest(suggest) => Ok(FeatureResponse::Suggestions {
                items: vec![suggest.draft],
            }),
            FeatureRequest::Summarise(_) => Err("unsupported".into()),
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

    let mut session = runtime.block_on(establish());
    let request = FeatureRequest::Suggest(SuggestRequest {
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
