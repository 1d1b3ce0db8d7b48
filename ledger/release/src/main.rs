//! `cloister-release`: log what this tree releases in the transparency ledger.
//!
//! `submit` signs this tree's release (plugins, policies, CVM measurement,
//! OHTTP key configurations) with the reviewer keys given and logs it;
//! `submit --dry-run` prints the entries instead. `revoke` withdraws a
//! logged release. `review` writes the reviewer's page of every plugin.
//! `demo-reviewers` makes the DEMO-ONLY reviewer keys and ledger
//! configuration `cargo xtask demo` uses.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use cloister_ledger::keys;
use cloister_ledger_verify::entry::{
    EntryBody, KeyWindow, Measurement, Provenance, PublicKeyBytes, Subject,
};
use cloister_ledger_verify::remote::LedgerClient;
use cloister_release::entries::{
    ReleaseInputs, ReleaseTerms, is_simulated, issuer_key_windows, release_entries,
};
use cloister_release::{demo, review, sources, submit};
use cloister_tls::Trust;
use tracing_subscriber::EnvFilter;

/// Log a Cloister release in the transparency ledger.
#[derive(Parser)]
#[command(name = "cloister-release", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign this tree's release with reviewer keys and log it in the ledger
    /// (plugins, policies, CVM launch, OHTTP and issuer keys).
    Submit(Box<SubmitArgs>),
    /// Withdraw a logged release at once (signed by reviewer keys, admitted
    /// k of n like any entry): clients refuse hosts running it from their next sync.
    Revoke(RevokeArgs),
    /// Write the reviewer's page of every plugin (its WIT, budgets and
    /// limits, log events, WASI, digest and whether the ledger holds it) and
    /// of the capability interfaces, and print one line per plugin.
    Review(ReviewArgs),
    /// DEMO ONLY: make throwaway reviewer keys, a reviewer policy and a ledger configuration.
    DemoReviewers {
        /// Where to put the demo keys, reviewer policy and ledger configuration.
        #[arg(long, default_value = "target/demo")]
        dir: PathBuf,
        /// Print what was made as JSON (for scripts).
        #[arg(long)]
        json: bool,
    },
}

/// Options of `cloister-release submit`.
#[derive(Debug, Args)]
struct SubmitArgs {
    /// The repository root (holding `policies/`), where the host is measured.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// The ledger's base URL.
    #[arg(long, default_value = "http://127.0.0.1:7400")]
    ledger: String,
    /// CA bundle (PEM) that `https://` ledger, gateway and issuer
    /// certificates must chain to.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// A reviewer's key file (repeat once per reviewer signing this release).
    #[arg(long = "reviewer-key", value_name = "FILE")]
    reviewer_keys: Vec<PathBuf>,
    /// Print the entries as JSON instead of signing and submitting them.
    #[arg(long)]
    dry_run: bool,
    /// The host binary run as `HOST measure` (default: `cloister-host`
    /// beside this executable).
    #[arg(long, value_name = "HOST")]
    host: Option<PathBuf>,
    /// Read the host's measurement (the JSON `cloister-host measure` prints)
    /// from FILE instead of running the host.
    #[arg(long, value_name = "FILE", conflicts_with = "host")]
    measure_json: Option<PathBuf>,
    /// The gateway's RFC 9540 key endpoint, whose configurations are logged.
    #[arg(
        long,
        default_value = "http://127.0.0.1:7200/.well-known/ohttp-gateway"
    )]
    ohttp_keys: String,
    /// Read the `application/ohttp-keys` list from FILE instead of --ohttp-keys.
    #[arg(long, value_name = "FILE")]
    ohttp_keys_file: Option<PathBuf>,
    /// The Privacy Pass issuer's key directory, whose keys are logged.
    #[arg(
        long,
        default_value = "http://127.0.0.1:7300/.well-known/private-token-issuer-directory"
    )]
    issuer_directory: String,
    /// Read the issuer's directory (JSON) from FILE instead of --issuer-directory.
    #[arg(long, value_name = "FILE")]
    issuer_directory_file: Option<PathBuf>,
    /// The issuer's key lifetime (its `keys.lifetime_secs`): each issuer
    /// key is logged as usable this long from its not-before.
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    issuer_key_lifetime_secs: u64,
    /// Where the built components are (default: ROOT/target/plugins).
    #[arg(long, env = "CLOISTER_PLUGIN_DIR")]
    plugin_dir: Option<PathBuf>,
    /// The log's public key (hex): when given, each entry's inclusion is
    /// checked the way a client checks it.
    #[arg(long)]
    log_key: Option<PublicKeyBytes>,
    /// Source commit recorded as provenance (default: `git rev-parse HEAD`,
    /// with `-dirty` if the tree has uncommitted changes).
    #[arg(long)]
    source_commit: Option<String>,
    /// The launch measurement (96 hex digits) of a real SEV-SNP image, computed
    /// from the image by the VMM's tooling; replaces the host's own (simulated) one.
    #[arg(long, requires_all = ["snp_policy", "platform_info"])]
    measurement: Option<Measurement>,
    /// The expected launch of the host's guest image (`target/cvm/launch.json`
    /// of `cargo xtask cvm-image`): its measurement and SNP guest policy
    /// replace the host's own (with --platform-info).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["measurement", "snp_policy"], requires = "platform_info")]
    cvm_launch: Option<PathBuf>,
    /// The SNP guest policy that image is launched with (with --measurement).
    #[arg(long)]
    snp_policy: Option<u64>,
    /// The PLATFORM_INFO of the machines it runs on (with --measurement).
    #[arg(long)]
    platform_info: Option<u64>,
    /// Builder recorded as provenance (default: $CLOISTER_BUILDER, else user@host).
    #[arg(long, env = "CLOISTER_BUILDER")]
    builder: Option<String>,
    /// The build record of the reproducible build (`target/build-record.json`
    /// of `cargo xtask images`): its toolchains and host binary digest are
    /// logged with the release, so anyone can rebuild and compare. It must
    /// be of the release's commit and of the host that measured.
    #[arg(long, value_name = "FILE")]
    build_record: Option<PathBuf>,
    /// The deployment series this release belongs to.
    #[arg(long, default_value = "production")]
    series: String,
    /// Position in the series; a higher one supersedes lower ones (default:
    /// the publication time, which only grows).
    #[arg(long)]
    sequence: Option<u64>,
    /// When the release takes effect, in seconds since the Unix epoch (default: now).
    #[arg(long)]
    published_at: Option<u64>,
    /// How long the releases this one supersedes stay acceptable after it
    /// takes effect: the time the fleet needs to roll over.
    #[arg(long, default_value_t = 6 * 3600)]
    overlap_secs: u64,
    /// How long the logged OHTTP key configurations may be served from the
    /// release's publication.
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    key_lifetime_secs: u64,
}

/// Options of `cloister-release revoke`.
#[derive(Debug, Args)]
struct RevokeArgs {
    /// The ledger's base URL.
    #[arg(long, default_value = "http://127.0.0.1:7400")]
    ledger: String,
    /// CA bundle (PEM) that `https://` ledger, gateway and issuer
    /// certificates must chain to.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// A reviewer's key file (repeat once per reviewer signing the revocation).
    #[arg(long = "reviewer-key", value_name = "FILE")]
    reviewer_keys: Vec<PathBuf>,
    /// The log's public key (hex): when given, the entry's inclusion is checked.
    #[arg(long)]
    log_key: Option<PublicKeyBytes>,
    /// The revoked release's series.
    #[arg(long, default_value = "production")]
    series: String,
    /// The revoked release's sequence number.
    #[arg(long)]
    sequence: u64,
    /// Why: clients show it when they refuse a host.
    #[arg(long)]
    reason: String,
    /// Who revokes, recorded as provenance (default: $CLOISTER_BUILDER, else user@host).
    #[arg(long, env = "CLOISTER_BUILDER")]
    builder: Option<String>,
}

/// Options of `cloister-release review`.
#[derive(Debug, Args)]
struct ReviewArgs {
    /// The repository root (holding `policies/`, `wit/` and `plugins/`).
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Where to write the pages (`<plugin>.md`, `capabilities.md`, `index.md`).
    #[arg(long, default_value = "target/review")]
    out: PathBuf,
    /// Where the built components are (default: ROOT/target/plugins).
    #[arg(long, env = "CLOISTER_PLUGIN_DIR")]
    plugin_dir: Option<PathBuf>,
    /// A file with a `[ledger]` section (and `[tls]`), as the parties'
    /// configurations have: the ledger is synced and each plugin looked up
    /// in its releases. Without it the ledger is not checked.
    #[arg(long, value_name = "FILE")]
    ledger_config: Option<PathBuf>,
}

/// How long one exchange with the ledger may take.
const LEDGER_TIMEOUT: Duration = Duration::from_secs(30);

/// Trust in the CA bundle `ca` (none without one).
fn trust(ca: Option<&Path>) -> anyhow::Result<Trust> {
    Ok(ca.map_or(Ok(Trust::default()), Trust::from_ca_file)?)
}

/// `cloister-host` beside this executable (both are built into the same `target/` folder).
fn default_host() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this executable")?;
    Ok(exe.with_file_name("cloister-host"))
}

async fn run_submit(args: &SubmitArgs) -> anyhow::Result<()> {
    let root = args.root.as_path();
    let mut launch = match (&args.measure_json, &args.host) {
        (Some(path), _) => sources::read_launch(path)?,
        (None, Some(host)) => sources::measure_host(host, root)?,
        (None, None) => sources::measure_host(&default_host()?, root)?,
    };
    if let Some(path) = &args.cvm_launch {
        let cvm = sources::read_cvm_launch(path)?;
        launch.measurement = Some(*cvm.measurement.as_bytes());
        launch.snp_policy = Some(cvm.snp_policy);
        launch.platform_info = args.platform_info;
    } else if let Some(measurement) = args.measurement {
        launch.measurement = Some(*measurement.as_bytes());
        launch.snp_policy = args.snp_policy;
        launch.platform_info = args.platform_info;
    } else if is_simulated(&launch) {
        tracing::warn!("releasing a simulated CVM measurement, not one of real SEV-SNP hardware");
    }
    let ohttp_list = match &args.ohttp_keys_file {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => sources::fetch_key_list(&args.ohttp_keys, &trust(args.ca.as_deref())?).await?,
    };
    let ohttp_configs: Vec<Vec<u8>> = cloister_ohttp_keys::split_key_list(&ohttp_list)
        .map_err(cloister_release::ReleaseError::from)?
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    let issuer_directory = match &args.issuer_directory_file {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None => {
            sources::fetch_issuer_directory(&args.issuer_directory, &trust(args.ca.as_deref())?)
                .await?
        }
    };
    let issuer_keys = issuer_key_windows(&issuer_directory, args.issuer_key_lifetime_secs)?;
    let provenance = Provenance {
        source_commit: match &args.source_commit {
            Some(commit) => commit.clone(),
            None => sources::source_commit(root)?,
        },
        builder: args
            .builder
            .clone()
            .unwrap_or_else(sources::default_builder),
    };
    let build = match &args.build_record {
        Some(path) => {
            let record = sources::read_build_record(path)?;
            if record.source_commit != provenance.source_commit {
                return Err(cloister_release::ReleaseError::OtherCommit {
                    recorded: record.source_commit,
                    release: provenance.source_commit,
                }
                .into());
            }
            Some(record.toolchain)
        }
        None => None,
    };
    let plugin_dir = args
        .plugin_dir
        .clone()
        .unwrap_or_else(|| root.join("target/plugins"));
    let published_at = args.published_at.unwrap_or_else(cloister_wire::unix_now);
    let terms = ReleaseTerms {
        series: args.series.clone(),
        sequence: args.sequence.unwrap_or(published_at),
        published_at,
        overlap_secs: args.overlap_secs,
        key_window: KeyWindow {
            not_before: published_at,
            not_after: published_at.saturating_add(args.key_lifetime_secs),
        },
    };
    let bodies = release_entries(&ReleaseInputs {
        root,
        plugin_dir: &plugin_dir,
        launch: &launch,
        ohttp_configs: &ohttp_configs,
        issuer_keys: &issuer_keys,
        provenance: &provenance,
        terms: &terms,
        build: build.as_ref(),
    })?;
    if args.dry_run {
        println!("{}", serde_json::to_string_pretty(&bodies)?);
        return Ok(());
    }
    let reviewer_keys = read_reviewer_keys(&args.reviewer_keys)?;
    let ledger =
        LedgerClient::with_trust(&args.ledger, LEDGER_TIMEOUT, &trust(args.ca.as_deref())?)?;
    let summary = submit::submit(&ledger, &bodies, &reviewer_keys, args.log_key.as_ref()).await?;
    println!(
        "release {} #{} logged in {}: {} entries appended, {} already logged",
        terms.series, terms.sequence, args.ledger, summary.appended, summary.already_logged
    );
    Ok(())
}

async fn run_revoke(args: &RevokeArgs) -> anyhow::Result<()> {
    let body = EntryBody {
        subject: Subject::Revocation {
            series: args.series.clone(),
            sequence: args.sequence,
            reason: args.reason.clone(),
        },
        provenance: Provenance {
            source_commit: "revocation".into(),
            builder: args
                .builder
                .clone()
                .unwrap_or_else(sources::default_builder),
        },
    };
    body.validate()?;
    let reviewer_keys = read_reviewer_keys(&args.reviewer_keys)?;
    let ledger =
        LedgerClient::with_trust(&args.ledger, LEDGER_TIMEOUT, &trust(args.ca.as_deref())?)?;
    submit::submit(&ledger, &[body], &reviewer_keys, args.log_key.as_ref()).await?;
    println!(
        "release {} #{} revoked in {}",
        args.series, args.sequence, args.ledger
    );
    Ok(())
}

async fn run_review(args: &ReviewArgs) -> anyhow::Result<()> {
    let ledger = match &args.ledger_config {
        Some(path) => Some(review::open_ledger(path).await?),
        None => None,
    };
    let plugin_dir = args
        .plugin_dir
        .clone()
        .unwrap_or_else(|| args.root.join("target/plugins"));
    let review = review::review(&review::ReviewInputs {
        root: &args.root,
        plugin_dir: &plugin_dir,
        ledger: ledger.as_ref(),
    })?;
    review.write(&args.out)?;
    for plugin in &review.plugins {
        println!("{}", plugin.summary());
    }
    println!("pages: {}", args.out.join(review::INDEX_PAGE).display());
    Ok(())
}

fn read_reviewer_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<ed25519_dalek::SigningKey>> {
    paths
        .iter()
        .map(|path| {
            keys::read_key_file(path)
                .with_context(|| format!("reading reviewer key {}", path.display()))
        })
        .collect()
}

fn run_demo_reviewers(dir: &Path, json: bool) -> anyhow::Result<()> {
    let demo = demo::demo_reviewers(dir)?;
    tracing::warn!(
        "DEMO ONLY reviewer keys and ledger configuration (never use them for a real ledger)"
    );
    if json {
        println!("{}", serde_json::to_string_pretty(&demo)?);
        return Ok(());
    }
    println!("reviewer policy: {}", demo.policy_path.display());
    println!(
        "ledger:          cloister-ledger serve --config {}",
        demo.config_path.display()
    );
    let keys: Vec<String> = demo
        .reviewer_keys
        .iter()
        .map(|key| format!("--reviewer-key {}", key.display()))
        .collect();
    println!(
        "release:         cloister-release submit {}",
        keys.join(" ")
    );
    println!("log public key:  {}", demo.log_public_key);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Submit(args) => run_submit(&args).await,
        Command::Revoke(args) => run_revoke(&args).await,
        Command::Review(args) => run_review(&args).await,
        Command::DemoReviewers { dir, json } => run_demo_reviewers(&dir, json),
    }
}
