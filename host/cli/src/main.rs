//! `cloister-host`: the CVM host's command line. It chooses the inference
//! engine from its `[inference]` table, builds it, and hands it with the
//! host configuration to the `cloister-host` library, which assembles the
//! rest.

mod config;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use cloister_api::FeatureRequest;
use cloister_host::config::ProviderKind;
use cloister_host::inspect::{ComponentFile, import_uses, read_component};
use cloister_host::logfilter::{AllowListLayer, JsonLinesSink, LogFilter, install_panic_hook};
use cloister_host::{
    Host, HostConfig, LaunchDigests, PolicySet, component_interfaces, host_binary_digest,
    load_runtime,
};
use cloister_inference::InferenceBackend;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::config::Config;

#[derive(Parser)]
#[command(
    version,
    about = "Cloister host: runs feature components under wasmtime inside the confidential VM"
)]
struct Cli {
    /// Host configuration file; built-in defaults when absent.
    #[arg(long, short, global = true, env = "CLOISTER_HOST_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one request from a JSON file with the configured engine and print the response.
    Run {
        /// A feature request, e.g. {"feature": "summarise", "input": {"messages": [...]}}.
        #[arg(long)]
        input: PathBuf,
    },
    /// Show what each plugin may do and whether its component matches its manifest.
    Inspect,
    /// Print, as JSON, the digests naming this launch (measurement, HOST_DATA,
    /// host binary, plugins, policy files) for the release ledger.
    Measure,
    /// Serve RA-TLS sessions (POST /session), /healthz and /metrics on `[serve] listen`.
    Serve,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let policies = config.host.policies().context("loading policies")?;
    match cli.command {
        Command::Run { input } => run(&config, &policies, &input),
        Command::Inspect => inspect(&config.host, &policies),
        Command::Measure => measure(&config, &policies),
        Command::Serve => serve(&config, &policies),
    }
}

/// Routes the host's own `tracing` events through the allow-list of
/// `policies`, panics included (a panic logs `host-panicked` and nothing of
/// its message).
fn install_log_filter(policies: &PolicySet) -> Result<Arc<LogFilter>> {
    let filter = HostConfig::log_filter(policies, Arc::new(JsonLinesSink));
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(AllowListLayer::new(filter.clone())),
    )?;
    install_panic_hook();
    Ok(filter)
}

/// Warns loudly about a simulated engine and logs the start.
fn announce(plugins: usize, backend: &dyn InferenceBackend) {
    if backend.is_simulated() {
        // The deterministic backend replays prompt text; no model is running.
        tracing::warn!(event = "simulation", component = "inference");
    }
    tracing::info!(
        event = "host-started",
        plugins = plugins as u64,
        backend = backend.name(),
        simulated = backend.is_simulated(),
    );
}

fn measure(config: &Config, policies: &PolicySet) -> Result<()> {
    let engine = config
        .identity()
        .context("reading the inference engine's model")?;
    let digests = LaunchDigests::compute(&config.host, policies, host_binary_digest()?, &engine)?;
    println!("{}", serde_json::to_string_pretty(&digests)?);
    Ok(())
}

fn serve(config: &Config, policies: &PolicySet) -> Result<()> {
    let filter = install_log_filter(policies)?;
    let running = config
        .engine(policies)
        .context("starting the inference engine")?;
    let engine = &running.backend;
    let host = Host::boot(
        &config.host,
        policies,
        engine.clone(),
        filter,
        host_binary_digest()?,
    )?;
    if host.health().attestation_provider == ProviderKind::Simulated {
        // /healthz carries the full warning; the log names the part.
        tracing::warn!(event = "simulation", component = "attestation");
    }
    announce(host.launch().plugins.len(), engine.as_ref());
    let listen = config.host.serve.listen;
    let tls = config.tls.server().context("[tls]")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = cloister_tls::Listener::bind(listen, tls, "host")
            .await
            .with_context(|| format!("binding {listen}"))?;
        tracing::info!(event = "host-listening", address = %listen);
        host.serve(listener, shutdown_signal())
            .await
            .context("serving")
    })
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(event = "signal-unavailable", signal = "ctrl-c", %error);
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(event = "signal-unavailable", signal = "SIGTERM", %error);
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!(event = "host-stopping");
}

fn run(config: &Config, policies: &PolicySet, input: &PathBuf) -> Result<()> {
    let text =
        std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let request: FeatureRequest =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", input.display()))?;
    let filter = install_log_filter(policies)?;
    let running = config
        .engine(policies)
        .context("starting the inference engine")?;
    let engine = &running.backend;
    let runtime = load_runtime(&config.host, policies, engine.clone(), filter)?;
    announce(runtime.manifests().count(), engine.as_ref());
    let response = runtime.handle(&request)?;
    println!("{}", serde_json::to_string_pretty(&response)?);
    Ok(())
}

fn inspect(config: &HostConfig, policies: &PolicySet) -> Result<()> {
    let plugin_dir = config.plugin_dir()?;
    for manifest in policies.manifests() {
        let (file, bytes) = read_component(manifest, &plugin_dir);
        let status = match &file {
            ComponentFile::Matches => "matches manifest digest".to_owned(),
            ComponentFile::DigestMismatch { actual } => {
                format!("REFUSED: digest mismatch, file is {actual}")
            }
            ComponentFile::Missing { reason } => format!("MISSING: {reason}"),
        };
        println!("plugin {} {}", manifest.name, manifest.version);
        println!("  component   {} ({status})", manifest.component);
        println!("  digest      {}", manifest.digest);
        println!(
            "  grants      {}",
            manifest
                .imports
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(bytes) = &bytes {
            let (imports, exports) = component_interfaces(bytes)?;
            for import in import_uses(manifest, imports) {
                let verdict = if import.allowed {
                    "granted"
                } else {
                    "REFUSED: not granted"
                };
                println!("  uses        {} ({verdict})", import.name);
            }
            println!("  exports     {}", exports.join(", "));
        }
        let wasi = &manifest.grants.wasi;
        println!(
            "  wasi        {}",
            if wasi.is_empty() {
                "none".to_owned()
            } else {
                format!(
                    "empty context, tolerating {}",
                    wasi.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        );
        let l = &manifest.limits;
        println!(
            "  limits      memory {} B, tables {}, time {} ms, output {} B",
            l.memory_bytes, l.table_elements, l.time_ms, l.max_output_bytes
        );
        if let Some(g) = &manifest.grants.inference {
            println!(
                "  inference   models {:?}; tokens {}/call {}/request; {} calls; prompt {} B",
                g.models,
                g.max_tokens_per_call,
                g.max_tokens_per_request,
                g.max_calls_per_request,
                g.max_prompt_bytes
            );
        }
    }
    Ok(())
}
