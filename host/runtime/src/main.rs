//! `cloister-host`: the CVM host's command line.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use cloister_api::FeatureRequest;
use cloister_host::logfilter::{AllowListLayer, JsonLinesSink};
use cloister_host::{Digest, HostConfig, PolicySet, component_interfaces};
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Parser)]
#[command(version, about = "Cloister host: runs feature components under wasmtime inside the confidential VM")]
struct Cli {
    /// Host configuration file; built-in defaults when absent.
    #[arg(long, short, env = "CLOISTER_HOST_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one request from a JSON file with the configured engine and print the response.
    Run {
        /// A feature request, e.g. {"feature": "summarise", "messages": [...]}.
        #[arg(long)]
        input: PathBuf,
    },
    /// Show what each plugin may do and whether its component matches its manifest.
    Inspect,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => HostConfig::load(path)?,
        None => HostConfig::default(),
    };
    let policies = config.policies().context("loading policies")?;
    match cli.command {
        Command::Run { input } => run(&config, &policies, &input),
        Command::Inspect => inspect(&config, &policies),
    }
}

fn run(config: &HostConfig, policies: &PolicySet, input: &PathBuf) -> Result<()> {
    let text = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let request: FeatureRequest = serde_json::from_str(&text).with_context(|| format!("parsing {}", input.display()))?;
    let filter = HostConfig::log_filter(policies, Arc::new(JsonLinesSink));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(AllowListLayer::new(filter.clone())))?;
    let runtime = config.start(policies, filter)?;
    let backend = runtime.capabilities().inference.backend().clone();
    if backend.is_simulated() {
        eprintln!(
            "*** SIMULATED INFERENCE: the `{}` backend replays prompt text; no model is running ***",
            backend.name()
        );
    }
    tracing::info!(
        event = "host-started",
        plugins = runtime.manifests().count() as u64,
        backend = backend.name(),
        simulated = backend.is_simulated(),
    );
    let response = runtime.handle(request)?;
    println!("{}", serde_json::to_string_pretty(&response)?);
    Ok(())
}

fn inspect(config: &HostConfig, policies: &PolicySet) -> Result<()> {
    let plugin_dir = HostConfig::open_dir(&config.plugin_dir)?;
    for manifest in policies.manifests() {
        let bytes = plugin_dir.read(&manifest.component);
        let status = match &bytes {
            Ok(bytes) if Digest::of(bytes) == manifest.digest => "matches manifest digest".to_owned(),
            Ok(bytes) => format!("REFUSED: digest mismatch, file is {}", Digest::of(bytes)),
            Err(e) => format!("MISSING: {e}"),
        };
        println!("plugin {} {}", manifest.name, manifest.version);
        println!("  component   {} ({status})", manifest.component);
        println!("  digest      {}", manifest.digest);
        println!("  grants      {}", manifest.imports.iter().cloned().collect::<Vec<_>>().join(", "));
        if let Ok(bytes) = &bytes {
            let (imports, exports) = component_interfaces(bytes)?;
            for import in imports {
                let verdict = if manifest.allows_import(&import) { "granted" } else { "REFUSED: not granted" };
                println!("  uses        {import} ({verdict})");
            }
            println!("  exports     {}", exports.join(", "));
        }
        println!("  wasi        {}", if manifest.wasi { "empty context" } else { "none" });
        let l = &manifest.limits;
        println!(
            "  limits      memory {} B, tables {}, time {} ms, output {} B",
            l.memory_bytes, l.table_elements, l.time_ms, l.max_output_bytes
        );
        if let Some(g) = &manifest.inference {
            println!(
                "  inference   models {:?}; tokens {}/call {}/request; {} calls; prompt {} B",
                g.models, g.max_tokens_per_call, g.max_tokens_per_request, g.max_calls_per_request, g.max_prompt_bytes
            );
        }
    }
    Ok(())
}
