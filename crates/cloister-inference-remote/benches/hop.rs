//! What the remote hop costs: one generation on the deterministic backend
//! in process, against the same backend behind an inference host on
//! loopback, reached over a pooled mutual RA-TLS session (HTTP, TLS 1.3,
//! padded frames, one `Partial` frame per token). The deterministic backend
//! costs next to nothing, so the difference is the hop: per request (1
//! token) and per token (the slope from 1 to 64 tokens).

#![allow(missing_docs)]

use std::ops::ControlFlow;
use std::sync::Arc;

use cloister_attestation::{
    AllowList, DEVELOPMENT_SEED, DEVELOPMENT_TCB, Policy, ProductLine, SimulatedLaunch,
    SimulatedPlatform, SimulatedProvider, SimulatedRoot, TrustAnchors, Verifier,
};
use cloister_inference::{
    DeterministicBackend, GenerateRequest, InferenceBackend, Prompt, SamplingParams,
};
use cloister_inference_remote::{InferenceService, RemoteBackend, RemoteConfig, routes};
use cloister_ratls::{SessionConfig, SessionTable, SystemClock};
use cloister_wire::{HostData, Measurement};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

fn launch(byte: u8) -> SimulatedLaunch {
    SimulatedLaunch::new(Measurement([byte; 48]), HostData([byte; 32]))
}

fn verifier(accepted: &SimulatedLaunch) -> Verifier<AllowList> {
    let allow = AllowList {
        launches: [accepted.facts()].into(),
    };
    let policy = Policy {
        allow_simulated: true,
        report_versions: 2..=5,
        allowed_vmpls: [0].into(),
        minimum_tcb: [(ProductLine::Milan, DEVELOPMENT_TCB)].into(),
        accepted: allow.clone(),
    };
    let anchors = SimulatedRoot::from_seed(DEVELOPMENT_SEED)
        .and_then(|root| root.pin_in(TrustAnchors::amd()))
        .unwrap_or_else(|e| panic!("{e}"));
    Verifier::new(anchors, policy, allow)
}

fn request(tokens: u32) -> GenerateRequest {
    let words: Vec<String> = (0..tokens).map(|i| format!("word{i}")).collect();
    GenerateRequest {
        model: DeterministicBackend::MODEL.into(),
        prompt: Prompt::Text(words.join(" ")),
        params: SamplingParams {
            max_tokens: tokens,
            ..SamplingParams::default()
        },
        deadline: None,
    }
}

fn hop(c: &mut Criterion) {
    let dir = std::env::temp_dir().join("cloister-simulated");
    let (platform, _) = SimulatedPlatform::cached(DEVELOPMENT_SEED, DEVELOPMENT_TCB, &dir)
        .unwrap_or_else(|e| panic!("{e}"));
    let (feature, inference) = (launch(0xfe), launch(0x1f));
    let engine: Arc<dyn InferenceBackend> = Arc::new(DeterministicBackend::new());

    let table = SessionTable::for_payloads(
        &SessionConfig::default(),
        Arc::new(SimulatedProvider::new(platform.clone(), inference.clone())),
        Arc::new(InferenceService::new(Arc::clone(&engine), 4096)),
        Arc::new(SystemClock),
    )
    .unwrap_or_else(|e| panic!("{e}"))
    .require_caller_attestation(Arc::new(verifier(&feature)));
    let server = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    server.spawn(async move { axum::serve(listener, routes(Arc::new(table))).await });

    let remote = RemoteBackend::new(
        RemoteConfig {
            url: format!("http://{addr}"),
            model: DeterministicBackend::MODEL.into(),
            max_sessions: 1,
            ..RemoteConfig::default()
        },
        verifier(&inference),
        Arc::new(SimulatedProvider::new(platform, feature)),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    remote.connect().unwrap_or_else(|e| panic!("{e}"));

    let mut group = c.benchmark_group("generate");
    for tokens in [1u32, 64] {
        let request = request(tokens);
        for (name, backend) in [
            ("in_process", engine.as_ref()),
            ("remote_hop", &remote as &dyn InferenceBackend),
        ] {
            group.bench_with_input(BenchmarkId::new(name, tokens), &request, |b, request| {
                b.iter(|| {
                    backend
                        .generate(request, &mut |_| ControlFlow::Continue(()))
                        .unwrap_or_else(|e| panic!("{e}"))
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, hop);
criterion_main!(benches);
