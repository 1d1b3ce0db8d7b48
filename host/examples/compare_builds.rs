//! Same-process A/B of two or more builds of the summarise plugin: one
//! request each (fresh pooled instance + call + drop, deterministic backend),
//! interleaved in rounds, so that the drift of a shared machine hits every
//! build alike. Separate benchmark runs on a VM differ by 20% and more; this
//! tells a 5% change apart.
//!
//! ```text
//! cargo run --release -p cloister-host --example compare_builds -- before.wasm after.wasm
//! ```
//!
//! Each build is loaded under the reviewed summarise manifest with the digest
//! replaced by its own: a measurement tool for unreviewed builds, never a way
//! to serve them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use cloister_api::{FeatureRequest, Message, SummariseRequest};
use cloister_host::capabilities::Capabilities;
use cloister_host::logfilter::{LogFilter, LogRecord, LogSink};
use cloister_host::{Digest, HostConfig, PolicySet, Runtime, RuntimeConfig};
use cloister_inference::DeterministicBackend;

/// Rounds; each runs every build [`REQUESTS_PER_ROUND`] times.
const ROUNDS: usize = 41;
const REQUESTS_PER_ROUND: u32 = 2000;

/// Discards records, so the comparison measures the filter, not a buffer.
struct Discard;

impl LogSink for Discard {
    fn write(&self, record: &LogRecord) {
        std::hint::black_box(record);
    }
}

fn main() -> Result<()> {
    let builds: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if builds.len() < 2 {
        bail!("usage: compare_builds <summarise.wasm> <summarise.wasm> [...]");
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let policies = PolicySet::load(&HostConfig::open_dir(&root.join("policies"))?)?;
    let filter = Arc::new(LogFilter::new(
        policies.allow_list().clone(),
        Arc::new(Discard),
    ));
    let capabilities = Capabilities::new(
        Arc::new(DeterministicBackend::serving("smollm2-135m-instruct")),
        filter,
    );
    let mut runtime = Runtime::new(RuntimeConfig::default(), capabilities)?;
    let manifest = policies
        .manifests()
        .iter()
        .find(|m| m.name == "summarise")
        .context("no summarise manifest")?;
    let mut names = Vec::new();
    for (index, path) in builds.iter().enumerate() {
        let component =
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut variant = manifest.clone();
        variant.name = format!("build-{index}");
        variant.digest = Digest::of(&component);
        names.push(variant.name.clone());
        runtime.load_plugin(variant, &component)?;
    }

    let request = FeatureRequest::of(&SummariseRequest {
        messages: vec![Message {
            sender: "Ann".into(),
            sent_at: 0,
            text: "Lunch moves to Friday at noon.".into(),
        }],
        max_words: 20,
    });
    for name in &names {
        for _ in 0..200 {
            runtime.run(name, &request.input)?;
        }
    }
    let mut micros: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); names.len()];
    for _ in 0..ROUNDS {
        for (name, samples) in names.iter().zip(&mut micros) {
            let started = Instant::now();
            for _ in 0..REQUESTS_PER_ROUND {
                std::hint::black_box(runtime.run(name, &request.input)?);
            }
            samples.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(REQUESTS_PER_ROUND));
        }
    }
    for (path, samples) in builds.iter().zip(&mut micros) {
        samples.sort_by(f64::total_cmp);
        let at = |fraction: f64| samples[((ROUNDS - 1) as f64 * fraction).round() as usize];
        println!(
            "{}: median {:.2} µs per request (p10 {:.2}, p90 {:.2})",
            path.display(),
            at(0.5),
            at(0.1),
            at(0.9)
        );
    }
    Ok(())
}
