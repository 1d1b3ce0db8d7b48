//! `cloister-load`: drives feature requests through a running chain on
//! loopback, as `cloister` would send them, and audits what the parties
//! kept afterwards (see the library's documentation for the report).
//!
//! `run` reads the client's configuration (`cloister.toml`), syncs the
//! ledger, gives each of its concurrent workers a wallet filled from the
//! issuer, and has every worker send requests on attested sessions until
//! the count is reached or the duration cap passes. `audit` is run once the
//! gateway is stopped: it counts the gateway's spent-token store.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use cloister_api::FeatureRequest;
use cloister_attestation::Verifier;
use cloister_cli::config::Config;
use cloister_cli::session::{fetch_tokens, unix_now};
use cloister_cli::{Released, ReleasedKeys, Trust};
use cloister_client::tokens::{IssuerKeyCheck, TokenWallet};
use cloister_client::{Client, OhttpTransport, TOKENS_PER_SESSION, TokenSource};
use cloister_load::{
    BOUNDS, DEADLINE_KIND, GatewayFigures, Latency, LedgerAudit, MEMORY_MILESTONES, PartyMemory,
    ReplayProbe, Report, TOKENS_TO_OPEN_A_SESSION, TokenAccount, check_loopback, error_kind,
    gateway_counts, generated_tokens, memory, output_words,
};
use cloister_ratls::{ClientError, ClientSession, TransportError};
use cloister_state_store::{StateConfig, StateStore};
use sha2::{Digest as _, Sha256};

#[derive(Parser)]
#[command(about = "Cloister's bounded load generator (loopback only)", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drive requests through the chain; print the report and write it as JSON.
    Run(RunArgs),
    /// After a run, with the gateway stopped: count its spent-token store,
    /// add the faults injected and the tokens the host generated, print the
    /// report and judge it (exit status 1 if anything is wrong).
    Audit(AuditArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The client's configuration; its relay, issuer and ledger must be on loopback.
    #[arg(long)]
    config: PathBuf,
    /// A feature request file (`{"feature": ..., "input": ...}`).
    #[arg(long)]
    request: PathBuf,
    /// Requests to send.
    #[arg(long, default_value_t = 1000)]
    requests: u64,
    /// Requests in flight at once (one worker each).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Requests a worker sends on one attested session before opening a new one.
    #[arg(long, default_value_t = 100)]
    session_requests: u64,
    /// No request starts after this many seconds.
    #[arg(long, default_value_t = 900)]
    max_duration_secs: u64,
    /// Longest one request may take, a session's opening included
    /// (default: the client's timeout and 15 s).
    #[arg(long)]
    deadline_secs: Option<u64>,
    /// A file of `name pid` lines: the parties whose memory is sampled
    /// (read again at every sample, so a restarted party is followed).
    #[arg(long)]
    pids: Option<PathBuf>,
    /// The gateway's `/metrics` URL: its redemptions and double-spend refusals.
    #[arg(long)]
    gateway_metrics: Option<String>,
    /// Spent tokens sent again after the run, each in a new session (at most 3).
    #[arg(long, default_value_t = 2)]
    replays: u64,
    /// Also write the report here, as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Print a `progress N` line every 1 % of the requests.
    #[arg(long)]
    progress: bool,
    /// Faults will be injected: failed requests do not fail the run (hung ones still do).
    #[arg(long)]
    faults_expected: bool,
    /// Reach the loopback parties over plain HTTP (the end-to-end tests' chain).
    #[arg(long)]
    insecure_plain_http: bool,
}

#[derive(Args)]
struct AuditArgs {
    /// The run's JSON report; rewritten with what the audit adds.
    #[arg(long)]
    report: PathBuf,
    /// The stopped gateway's state file (redb): its spent-token store.
    #[arg(long)]
    gateway_state: Option<PathBuf>,
    /// The host's log: the tokens its model generated.
    #[arg(long)]
    host_log: Option<PathBuf>,
    /// A fault injected during the run (repeatable). Without any, every
    /// request must have been answered.
    #[arg(long = "fault")]
    faults: Vec<String>,
}

/// How long a worker waits after a failed request before its next one, as
/// a client would, rather than spinning on a party that is down.
const BACKOFF: Duration = Duration::from_millis(250);

/// Tokens fetched into a worker's wallet when it runs low during the run.
const REFILL: usize = 20;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Run(args) => {
            let strict = !args.faults_expected;
            let json = args.json.clone();
            let report = runtime.block_on(run(args))?;
            finish(&report, json.as_deref(), strict)
        }
        Command::Audit(args) => {
            let report = runtime.block_on(audit(&args))?;
            let strict = report.faults.is_empty();
            finish(&report, Some(&args.report), strict)
        }
    }
}

/// Prints `report` and its verdict, writes it to `json`; fails if the
/// verdict does.
fn finish(report: &Report, json: Option<&Path>, strict: bool) -> anyhow::Result<()> {
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_vec_pretty(report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    print!("{report}");
    let verdict = report.verdict(strict);
    if verdict.passed() {
        println!("PASSED");
        return Ok(());
    }
    for problem in &verdict.problems {
        println!("PROBLEM: {problem}");
    }
    bail!("{} problems", verdict.problems.len())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `/proc/loadavg`, for the report.
fn machine_load() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |e| format!("load average unknown: {e}"),
        |text| format!("load average {}", text.trim()),
    )
}

/// Every token the workers hand out, to show none goes out twice.
#[derive(Default)]
struct Tokens {
    seen: Mutex<HashSet<[u8; 32]>>,
    taken: AtomicU64,
    issued: AtomicU64,
    /// Wall time of filling the wallets, and of each refill during the run.
    issuing: Mutex<Duration>,
}

/// A worker's wallet, its tokens counted (and, for the replay probe, kept).
struct Tracked {
    wallet: TokenWallet,
    tokens: Arc<Tokens>,
    kept: Option<Arc<Mutex<Vec<String>>>>,
}

impl TokenSource for Tracked {
    fn next_token(&self) -> Option<String> {
        let token = self.wallet.next_token()?;
        self.tokens.taken.fetch_add(1, Ordering::SeqCst);
        lock(&self.tokens.seen).insert(Sha256::digest(token.as_bytes()).into());
        if let Some(kept) = &self.kept {
            lock(kept).push(token.clone());
        }
        Some(token)
    }
}

/// Hands out one given token, once.
struct Replay(Mutex<Option<String>>);

impl TokenSource for Replay {
    fn next_token(&self) -> Option<String> {
        lock(&self.0).take()
    }
}

/// What the workers record.
#[derive(Default)]
struct Outcomes {
    latencies: Vec<Duration>,
    answered: u64,
    failed: u64,
    errors: BTreeMap<String, u64>,
    examples: BTreeMap<String, String>,
    words: u64,
    sessions: u64,
    last: Option<Instant>,
}

/// Memory samples, by party, and the pid each was first seen with.
#[derive(Default)]
struct Samples {
    parties: BTreeMap<String, (u32, PartyMemory)>,
}

/// What the workers share.
struct Shared {
    config: Config,
    issuer_keys: Option<Arc<dyn IssuerKeyCheck>>,
    verifier: Verifier<Released>,
    client: Arc<Client<ReleasedKeys>>,
    request: FeatureRequest,
    requests: u64,
    session_requests: u64,
    deadline: Duration,
    stop_at: Instant,
    next: AtomicU64,
    done: AtomicU64,
    progress_every: Option<u64>,
    tokens: Arc<Tokens>,
    outcomes: Mutex<Outcomes>,
    pids: Option<PathBuf>,
    samples: Mutex<Samples>,
}

type Session = ClientSession<OhttpTransport<ReleasedKeys>>;

impl Shared {
    /// A transport that spends `tokens`.
    fn transport(&self, tokens: Arc<dyn TokenSource>) -> OhttpTransport<ReleasedKeys> {
        OhttpTransport::new(Arc::clone(&self.client), &self.config.network.authority)
            .with_tokens(tokens)
    }

    /// Fetches `count` tokens into `wallet`.
    async fn fetch(&self, wallet: &TokenWallet, count: usize) -> anyhow::Result<()> {
        let fetched = fetch_tokens(&self.config, wallet, count, self.issuer_keys.clone()).await?;
        self.tokens
            .issued
            .fetch_add(u64::try_from(fetched)?, Ordering::SeqCst);
        Ok(())
    }

    /// Tops `wallet` up when it cannot pay for a new session; a failure is
    /// logged (the request then fails for want of a token, and says so).
    async fn refill(&self, wallet: &TokenWallet) {
        let usable = wallet.status(unix_now()).map_or(0, |s| s.usable);
        if usable >= TOKENS_PER_SESSION {
            return;
        }
        let started = Instant::now();
        if let Err(error) = self.fetch(wallet, REFILL).await {
            tracing::warn!("refilling a wallet: {error:#}");
        }
        *lock(&self.tokens.issuing) += started.elapsed();
    }

    /// One worker: requests until the count or the duration cap is reached.
    async fn work(self: Arc<Self>, wallet: TokenWallet) {
        let source = Arc::new(Tracked {
            wallet: wallet.clone(),
            tokens: Arc::clone(&self.tokens),
            kept: None,
        });
        let transport = self.transport(source);
        let mut session: Option<(Session, u64)> = None;
        while Instant::now() < self.stop_at
            && self.next.fetch_add(1, Ordering::SeqCst) < self.requests
        {
            self.refill(&wallet).await;
            let started = Instant::now();
            let outcome = tokio::time::timeout(self.deadline, async {
                let (open, used) = match session.take() {
                    Some((open, used)) if used < self.session_requests => {
                        session.insert((open, used))
                    }
                    _ => {
                        let open = ClientSession::establish(transport.fresh(), &self.verifier)
                            .await
                            .map_err(|e| (error_kind("session", &e), e.to_string()))?;
                        lock(&self.outcomes).sessions += 1;
                        session.insert((open, 0))
                    }
                };
                *used += 1;
                open.request(&self.request)
                    .await
                    .map_err(|e| (error_kind("request", &e), e.to_string()))
            })
            .await;
            let failure = match outcome {
                Ok(Ok(answer)) => {
                    lock(&self.outcomes).words += output_words(&answer.output);
                    None
                }
                Ok(Err(failure)) => Some(failure),
                Err(_) => Some((
                    DEADLINE_KIND.to_owned(),
                    format!("no answer within {:?}", self.deadline),
                )),
            };
            let failed = failure.is_some();
            self.record(started.elapsed(), failure);
            if failed {
                // The session may be out of step with its host: start afresh.
                session = None;
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }

    /// Records one request: how long it took, and its failure's kind and message.
    fn record(&self, took: Duration, failure: Option<(String, String)>) {
        {
            let mut outcomes = lock(&self.outcomes);
            outcomes.latencies.push(took);
            outcomes.last = Some(Instant::now());
            match failure {
                None => outcomes.answered += 1,
                Some((kind, message)) => {
                    outcomes.failed += 1;
                    outcomes.examples.entry(kind.clone()).or_insert(message);
                    *outcomes.errors.entry(kind).or_default() += 1;
                }
            }
        }
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        if MEMORY_MILESTONES.contains(&done) {
            self.sample_memory(done);
        }
        if let Some(every) = self.progress_every
            && (done.is_multiple_of(every) || done == self.requests)
        {
            println!("progress {done}");
        }
    }

    /// Each party's resident memory now, recorded at `done` requests.
    fn sample_memory(&self, done: u64) {
        let Some(path) = &self.pids else {
            return;
        };
        let pids = match memory::read_pids(path) {
            Ok(pids) => pids,
            Err(error) => {
                tracing::warn!("{error}");
                return;
            }
        };
        let mut samples = lock(&self.samples);
        for (party, pid) in pids {
            let Ok(resident) = memory::resident(pid) else {
                tracing::warn!(party, pid, "no memory figures (not running?)");
                continue;
            };
            let (first_pid, figures) = samples.parties.entry(party.clone()).or_insert_with(|| {
                (
                    pid,
                    PartyMemory {
                        party,
                        ..PartyMemory::default()
                    },
                )
            });
            figures.restarted |= *first_pid != pid;
            figures.resident_kib.insert(done, resident.now_kib);
            figures.peak_kib = figures.peak_kib.max(resident.peak_kib);
        }
    }

    /// Sends up to 3 tokens again that a fresh session has just spent,
    /// each in a new session; the gateway must refuse every one.
    async fn replay_probe(
        &self,
        replays: u64,
        gateway: Option<&Metrics>,
    ) -> anyhow::Result<ReplayProbe> {
        let wallet = worker_wallet(&self.config, "replay")?;
        self.fetch(&wallet, TOKENS_PER_SESSION).await?;
        let kept = Arc::new(Mutex::new(Vec::new()));
        let source = Arc::new(Tracked {
            wallet,
            tokens: Arc::clone(&self.tokens),
            kept: Some(Arc::clone(&kept)),
        });
        let mut session = ClientSession::establish(self.transport(source).fresh(), &self.verifier)
            .await
            .context("the replay probe's own session")?;
        session
            .request(&self.request)
            .await
            .context("the replay probe's own request")?;
        let spent = lock(&kept).clone();
        let before = match gateway {
            Some(metrics) => Some(metrics.scrape().await?),
            None => None,
        };
        let mut probe = ReplayProbe::default();
        for token in spent.into_iter().take(usize::try_from(replays.min(3))?) {
            probe.sent += 1;
            let replay = Arc::new(Replay(Mutex::new(Some(token))));
            let refused = ClientSession::establish(self.transport(replay).fresh(), &self.verifier)
                .await
                .err();
            if let Some(ClientError::Transport(TransportError::Status { status: 401, .. })) =
                refused
            {
                probe.refused += 1;
            }
        }
        if let (Some(metrics), Some(before)) = (gateway, before) {
            let after = metrics.scrape().await?;
            probe.counted_as_spent = Some(after.double_spent.saturating_sub(before.double_spent));
        }
        Ok(probe)
    }
}

/// The gateway's `/metrics`.
struct Metrics {
    url: String,
    http: reqwest::Client,
}

impl Metrics {
    fn new(config: &Config, url: String) -> anyhow::Result<Self> {
        let http = config
            .outbound()?
            .http_client(&[("gateway metrics", &url)])?
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self { url, http })
    }

    async fn scrape(&self) -> anyhow::Result<GatewayFigures> {
        let text = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("scraping {}", self.url))?
            .text()
            .await?;
        Ok(gateway_counts(&text))
    }
}

/// Where the generator keeps its wallets and views: beside the client's own state.
fn load_dir(config: &Config) -> PathBuf {
    config.state_dir.join("load")
}

/// The wallet of worker `name`, in its own directory.
fn worker_wallet(config: &Config, name: &str) -> anyhow::Result<TokenWallet> {
    let challenge = config.issuer()?.challenge()?;
    Ok(TokenWallet::open(&load_dir(config).join(name), &challenge)?)
}

async fn run(args: RunArgs) -> anyhow::Result<Report> {
    BOUNDS.check(
        args.requests,
        args.concurrency,
        Duration::from_secs(args.max_duration_secs),
    )?;
    let mut config = Config::load(Some(&args.config))?;
    config.tls.insecure_plain_http |= args.insecure_plain_http;
    for (what, url) in [
        ("the relay", &config.network.relay_url),
        ("the key configuration", &config.network.key_config_url),
        ("the issuer", &config.tokens.issuer_url),
        ("the ledger", &config.trust.ledger_url),
    ]
    .into_iter()
    .chain(
        args.gateway_metrics
            .as_ref()
            .map(|url| ("the gateway's metrics", url)),
    ) {
        check_loopback(what, url)?;
    }
    let text = std::fs::read(&args.request)
        .with_context(|| format!("reading {}", args.request.display()))?;
    let request: FeatureRequest = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a feature request", args.request.display()))?;
    let mut report = Report {
        requested: args.requests,
        concurrency: args.concurrency,
        session_requests: args.session_requests,
        feature: request.feature().to_owned(),
        deadline_secs: args
            .deadline_secs
            .unwrap_or_else(|| config.timeout_secs + 15),
        machine_load: vec![machine_load()],
        ..Report::default()
    };
    // A fresh start: no wallet or view of an earlier run is reused.
    let dir = load_dir(&config);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let trust = Trust::load(&config).await.context("syncing the ledger")?;
    let client = Arc::new(Client::new(config.client()?, trust.keys)?);
    client
        .ready()
        .await
        .context("fetching the gateway's keys")?;
    let gateway = args
        .gateway_metrics
        .map(|url| Metrics::new(&config, url))
        .transpose()?;

    // Each worker's wallet, filled for its share of the requests.
    let per_worker = args.requests.div_ceil(u64::try_from(args.concurrency)?);
    let sessions = per_worker.div_ceil(args.session_requests.max(1));
    let fill = usize::try_from(per_worker + TOKENS_TO_OPEN_A_SESSION * sessions + 1)?;
    let shared = Arc::new(Shared {
        issuer_keys: trust.issuer_keys,
        verifier: trust.verifier,
        client,
        request,
        requests: args.requests,
        session_requests: args.session_requests.max(1),
        deadline: Duration::from_secs(report.deadline_secs),
        // Set again when the workers start.
        stop_at: Instant::now(),
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        progress_every: args.progress.then(|| (args.requests / 100).max(1)),
        tokens: Arc::new(Tokens::default()),
        outcomes: Mutex::new(Outcomes::default()),
        pids: args.pids,
        samples: Mutex::new(Samples::default()),
        config,
    });
    let filling_started = Instant::now();
    let mut filling = tokio::task::JoinSet::new();
    for worker in 0..args.concurrency {
        let shared = Arc::clone(&shared);
        filling.spawn(async move {
            let wallet = worker_wallet(&shared.config, &format!("worker-{worker}"))?;
            shared.fetch(&wallet, fill).await?;
            anyhow::Ok(wallet)
        });
    }
    let mut wallets = Vec::new();
    while let Some(filled) = filling.join_next().await {
        wallets.push(filled??);
    }
    *lock(&shared.tokens.issuing) += filling_started.elapsed();
    let mut shared = Arc::into_inner(shared).context("a filling task outlived the filling")?;
    shared.stop_at = Instant::now() + Duration::from_secs(args.max_duration_secs);
    let shared = Arc::new(shared);
    shared.sample_memory(0);
    let before = match &gateway {
        Some(metrics) => Some(metrics.scrape().await?),
        None => None,
    };

    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for wallet in wallets {
        workers.spawn(Arc::clone(&shared).work(wallet));
    }
    while let Some(ended) = workers.join_next().await {
        ended?;
    }
    let done = shared.done.load(Ordering::SeqCst);
    shared.sample_memory(done);

    let after = match &gateway {
        Some(metrics) => Some(metrics.scrape().await?),
        None => None,
    };
    report.gateway = before.zip(after).map(|(before, after)| GatewayFigures {
        redeemed: after.redeemed.saturating_sub(before.redeemed),
        double_spent: after.double_spent.saturating_sub(before.double_spent),
        restarted: after.redeemed < before.redeemed
            || after.double_spent < before.double_spent
            || lock(&shared.samples)
                .parties
                .get("gateway")
                .is_some_and(|(_, m)| m.restarted),
    });
    {
        let mut outcomes = lock(&shared.outcomes);
        let wall = outcomes
            .last
            .map_or(Duration::ZERO, |last| last - started)
            .as_secs_f64();
        report.answered = outcomes.answered;
        report.failed = outcomes.failed;
        // Requests a worker claimed (each must have been recorded once).
        let claimed = shared.next.load(Ordering::SeqCst).min(args.requests);
        report.not_started = args.requests - claimed;
        report.errors = std::mem::take(&mut outcomes.errors);
        report.error_examples = std::mem::take(&mut outcomes.examples);
        report.output_words = outcomes.words;
        report.sessions_opened = outcomes.sessions;
        report.latency = Latency::of(&mut outcomes.latencies);
        report.wall_secs = wall;
        report.throughput = outcomes.answered as f64 / wall.max(f64::EPSILON);
        report.ohttp_per_sec = report.tokens_surely_spent() as f64 / wall.max(f64::EPSILON);
    }
    report.memory = lock(&shared.samples)
        .parties
        .values()
        .map(|(_, figures)| figures.clone())
        .collect();
    if args.replays > 0 {
        report.replay = Some(shared.replay_probe(args.replays, gateway.as_ref()).await?);
    }
    report.tokens = TokenAccount {
        issued: shared.tokens.issued.load(Ordering::SeqCst),
        issue_secs: lock(&shared.tokens.issuing).as_secs_f64(),
        taken: shared.tokens.taken.load(Ordering::SeqCst),
        distinct: u64::try_from(lock(&shared.tokens.seen).len())?,
    };
    report.ledger = Some(ledger_audit(&shared.config).await);
    report.machine_load.push(machine_load());
    Ok(report)
}

/// The ledger after the run: the run's view brought up to date (an
/// append-only extension of the head it started from), a view synced from
/// nothing, and the gateway's served key checked against that new view.
async fn ledger_audit(config: &Config) -> LedgerAudit {
    let show = |error: anyhow::Error| format!("{error:#}");
    let extends_the_run_head = Trust::load(config).await.map(drop).map_err(show);
    let mut fresh = config.clone();
    fresh.state_dir = load_dir(config).join("fresh-view");
    let (verifies_from_scratch, served_key_logged) = match Trust::load(&fresh).await {
        Ok(trust) => (Ok(()), served_key(&fresh, trust.keys).await.map_err(show)),
        Err(error) => (
            Err(show(error)),
            Err("no view to check it against".to_owned()),
        ),
    };
    LedgerAudit {
        extends_the_run_head,
        verifies_from_scratch,
        served_key_logged,
    }
}

/// Fetches the gateway's key configuration (through the relay) and checks
/// it with `keys`, a ledger view synced from nothing.
async fn served_key(config: &Config, keys: ReleasedKeys) -> anyhow::Result<()> {
    Client::new(config.client()?, keys)?.ready().await?;
    Ok(())
}

async fn audit(args: &AuditArgs) -> anyhow::Result<Report> {
    let text = std::fs::read(&args.report)
        .with_context(|| format!("reading {}", args.report.display()))?;
    let mut report: Report = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a load report", args.report.display()))?;
    if let Some(path) = &args.gateway_state {
        let store = StateStore::open(&StateConfig::redb(path))
            .await
            .with_context(|| format!("opening the gateway's store {}", path.display()))?;
        report.spent_in_store = Some(store.once_set("spent", u64::MAX).count().await?);
    }
    if let Some(path) = &args.host_log {
        let log =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        report.generated_tokens = Some(generated_tokens(&log));
    }
    report.faults.extend(args.faults.iter().cloned());
    Ok(report)
}
