//! Speed of the candle engine on the shipped model: prompt processing,
//! generation, time to first token, aggregate throughput of 8 concurrent
//! streams, and embedding throughput. Run with `RAYON_NUM_THREADS=1` and `threads = 1` (set here) to
//! compare with llama.cpp on one thread; see inference/README.md.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cloister_inference::{
    ChatMessage, EmbedRequest, GenerateRequest, InferenceBackend, Prompt, Role, SamplingParams,
};
use cloister_inference_candle::{CandleBackend, CandleConfig, WeightFormat};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

const CONVERSATION: &str = "Alice: Are we still on for the design review tomorrow at 10?\n\
Bob: Yes, but the projector in room 4 is broken, so let's use room 7.\n\
Alice: Fine. Can you bring the printed mock-ups and the budget sheet?\n\
Bob: Sure. Carol said she might be late because of the dentist.\n\
Alice: Then we start with the budget and do the mock-ups when she arrives.\n\
Bob: Good plan. I'll also invite Dan from finance for the first half hour.\n\
Alice: Perfect, and remind everyone to read the spec before the meeting.";

fn backend(weights: WeightFormat) -> Arc<CandleBackend> {
    let model_dir = std::env::var_os("CLOISTER_MODEL_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/models"),
        PathBuf::from,
    );
    let config = CandleConfig {
        model_dir,
        threads: 1,
        weights,
        ..CandleConfig::default()
    };
    match CandleBackend::load(&config) {
        Ok(backend) => Arc::new(backend),
        Err(e) => panic!("{e} (run inference/fetch-model.sh)"),
    }
}

fn summarise(max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        model: CandleConfig::DEFAULT_MODEL_NAME.into(),
        prompt: Prompt::Chat(vec![
            ChatMessage {
                role: Role::System,
                content: "Summarise the conversation in two sentences.".into(),
            },
            ChatMessage {
                role: Role::User,
                content: CONVERSATION.into(),
            },
        ]),
        params: SamplingParams {
            max_tokens,
            ..SamplingParams::default()
        },
        deadline: None,
    }
}

/// A short prompt, so that the eight prompts take little of the measurement.
fn story(max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        model: CandleConfig::DEFAULT_MODEL_NAME.into(),
        prompt: Prompt::Chat(vec![ChatMessage {
            role: Role::User,
            content: "Write a long story about a robot who learns to paint.".into(),
        }]),
        params: SamplingParams {
            max_tokens,
            ..SamplingParams::default()
        },
        deadline: None,
    }
}

/// The process's peak resident memory so far (VmHWM), for the README table.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Runs `request`, returning (time to first token, time after it, tokens after it).
fn timed(backend: &CandleBackend, request: &GenerateRequest) -> (Duration, Duration, u64) {
    let start = Instant::now();
    let mut first = None;
    let generation = backend
        .generate(request, &mut |_| {
            first.get_or_insert_with(Instant::now);
            ControlFlow::Continue(())
        })
        .expect("generation");
    let end = Instant::now();
    let first = first.unwrap_or(end);
    (
        first - start,
        end - first,
        u64::from(generation.usage.generated_tokens.saturating_sub(1)),
    )
}

/// Runs `request`, returning the instant each piece of text arrived.
fn stamped(backend: &CandleBackend, request: &GenerateRequest) -> Vec<Instant> {
    let mut stamps = Vec::new();
    backend
        .generate(request, &mut |_| {
            stamps.push(Instant::now());
            ControlFlow::Continue(())
        })
        .expect("generation");
    stamps
}

/// The packed kernels against candle's quantized matmul on the model's own
/// matrix shapes, for one row (single-stream decoding) and a decode batch of
/// 8 rows: the part of a step that the kernels change, without the rest of
/// the engine. Candle has only scalar code for Q4_1 and is left out there.
fn matmul_kernels(c: &mut Criterion) {
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};
    use cloister_inference_candle::qgemm::{BlockFormat, PackedMatrix, Q8Rows};

    // As in the engine, the calling thread is one of the pool's threads, so
    // a product never waits for another thread to wake up.
    let _pool = rayon::ThreadPoolBuilder::new()
        .use_current_thread()
        .build()
        .expect("thread pool");
    for rows in [1, 8] {
        let mut group = c.benchmark_group(format!("matmul-{rows}-rows"));
        group.sample_size(20).warm_up_time(Duration::from_secs(1));
        // (out, in): attention q/o, ffn gate/up, ffn down, tied output.
        for (n, k) in [(576, 576), (1536, 576), (576, 1536), (49152, 576)] {
            let values = |len: usize| (0..len).map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0);
            let w = Tensor::from_iter(values(n * k), &Device::Cpu)
                .and_then(|t| t.reshape((n, k)))
                .expect("weights");
            let xs: Vec<f32> = values(rows * k).collect();
            let x = Tensor::from_slice(&xs, (rows, k), &Device::Cpu).expect("activations");
            group.throughput(Throughput::Elements((rows * n * k) as u64));
            for (dtype, format) in [
                (GgmlDType::Q8_0, BlockFormat::Q8_0),
                (GgmlDType::Q4_1, BlockFormat::Q4_1),
            ] {
                let weights = Arc::new(QTensor::quantize(&w, dtype).expect("quantize"));
                if dtype == GgmlDType::Q8_0 {
                    let candle = QMatMul::from_arc(Arc::clone(&weights)).expect("qmatmul");
                    group.bench_function(format!("candle-q8_0-{n}x{k}"), |b| {
                        b.iter(|| candle.forward(&x).expect("candle"));
                    });
                }
                let data = weights.data().expect("data");
                let matrix = PackedMatrix::pack(&data, n, k, format).expect("matrix");
                group.bench_function(format!("packed-{format:?}-{n}x{k}").to_lowercase(), |b| {
                    b.iter(|| {
                        matrix
                            .matmul(&Q8Rows::quantize(&xs, k).expect("rows"))
                            .expect("mm")
                    });
                });
            }
        }
        group.finish();
    }
}

fn bench(c: &mut Criterion) {
    // The default first, so that its peak RSS is not the other format's.
    for (label, weights) in [
        ("as_stored", WeightFormat::AsStored),
        ("q8_0", WeightFormat::Q8_0),
    ] {
        let backend = backend(weights);
        eprintln!("{label}: peak RSS after loading: {}", peak_rss());
        let prompt_tokens = {
            let Prompt::Chat(messages) = &summarise(1).prompt else {
                unreachable!()
            };
            backend.codec().encode_chat(messages).expect("encode").len() as u64
        };
        let mut group = c.benchmark_group(format!("candle-1-thread-{label}"));
        // Each iteration takes seconds: flat sampling keeps the run to minutes.
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1));

        group.throughput(Throughput::Elements(prompt_tokens));
        group.bench_function("prompt_processing_and_first_token", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| timed(&backend, &summarise(1)).0).sum());
        });

        const GENERATED: u32 = 64;
        group.throughput(Throughput::Elements(u64::from(GENERATED - 1)));
        group.bench_function("generation_after_first_token", |b| {
            b.iter_custom(|iters| {
                let mut request = summarise(GENERATED);
                // Never stop early: the same number of tokens every time.
                request.params.stop.clear();
                (0..iters)
                    .map(|_| {
                        let (_, rest, tokens) = timed(&backend, &request);
                        // Normalise to GENERATED - 1 tokens should the model end early.
                        rest.mul_f64((GENERATED - 1) as f64 / tokens.max(1) as f64)
                    })
                    .sum()
            });
        });

        if weights != WeightFormat::default() {
            group.finish();
            continue;
        }
        const STREAMS: usize = 8;
        const PER_STREAM: u32 = 48;
        // Decode throughput while all eight streams are decoding together:
        // tokens stamped between the last stream's first token and the first
        // stream's end, over that window (prompt processing excluded, as in
        // the single-stream figure).
        let window_tokens = (STREAMS as u64) * u64::from(PER_STREAM / 2);
        group.throughput(Throughput::Elements(window_tokens));
        group.bench_function("8_concurrent_streams_aggregate_generation", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let streams: Vec<Vec<Instant>> = (0..STREAMS)
                            .map(|_| {
                                let backend = Arc::clone(&backend);
                                std::thread::spawn(move || stamped(&backend, &story(PER_STREAM)))
                            })
                            .collect::<Vec<_>>()
                            .into_iter()
                            .map(|t| t.join().expect("stream"))
                            .collect();
                        let from = streams.iter().filter_map(|s| s.first()).max().copied();
                        let to = streams.iter().filter_map(|s| s.last()).min().copied();
                        let (Some(from), Some(to)) = (from, to) else {
                            return Duration::ZERO;
                        };
                        let tokens = streams
                            .iter()
                            .flatten()
                            .filter(|&&t| t > from && t <= to)
                            .count()
                            .max(1);
                        // Time the window rate needs for `window_tokens` tokens.
                        (to - from).mul_f64(window_tokens as f64 / tokens as f64)
                    })
                    .sum()
            });
        });
        group.finish();
        eprintln!(
            "{label}: peak RSS after 8 concurrent streams: {}",
            peak_rss()
        );
        eprintln!("{label}: {:?}", backend.stats());
    }
}

/// Embedding throughput: the conversation's seven messages, four times
/// over, in one `embed` call (texts per second).
fn embed_throughput(c: &mut Criterion) {
    let backend = backend(WeightFormat::default());
    let request = EmbedRequest {
        model: CandleConfig::DEFAULT_MODEL_NAME.into(),
        texts: CONVERSATION
            .lines()
            .cycle()
            .take(28)
            .map(str::to_owned)
            .collect(),
        deadline: None,
    };
    let mut group = c.benchmark_group("candle-1-thread-embed");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(request.texts.len() as u64));
    group.bench_function("28_messages_in_one_call", |b| {
        b.iter(|| backend.embed(&request).expect("embed"));
    });
    group.finish();
    eprintln!("embed: {:?}", backend.stats());
}

criterion_group!(benches, matmul_kernels, bench, embed_throughput);
criterion_main!(benches);
