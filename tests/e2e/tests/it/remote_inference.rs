//! A feature host generating on a separate inference host over mutual
//! RA-TLS (`cloister-inference-remote`): each side finds the other's
//! release in a real ledger before any prompt crosses, tokens stream back,
//! concurrent generations are batched on the far side; and every way one
//! side's evidence can be refused (not logged, made for another nonce,
//! relayed from another session) leaves the far engine without a prompt.
//!
//! Both CVMs are SIMULATED on the public development platform; each
//! verifier accepts that only because its policy sets `allow_simulated`.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cloister_api::Summary;
use cloister_attestation::{
    DEVELOPMENT_TCB, Evidence, EvidenceProvider, LaunchFacts, Nonce, Policy, ProductLine,
    ProviderError, SimulatedLaunch, SimulatedPlatform, SimulatedProvider, TlsExporter,
    TrustAnchors, Verifier,
};
use cloister_client::ledger::LedgerTrust;
use cloister_host::logfilter::MemorySink;
use cloister_host::{HostConfig, LaunchDigests, load_runtime};
use cloister_inference::{
    ChatMessage, DeterministicBackend, EmbedRequest, EngineIdentity, GenerateRequest, Generation,
    InferenceBackend, InferenceError, ModelInfo, Prompt, Role, SamplingParams,
};
use cloister_inference_candle::{CandleBackend, CandleConfig};
use cloister_inference_remote::{InferenceService, RemoteBackend, RemoteConfig, routes};
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::entry::{Release, SignedEntry, Subject};
use cloister_ratls::{CallerAttester, SessionAttester, SessionConfig, SessionTable, SystemClock};
use cloister_test_support::serve_app;
use cloister_wire::{HostData, Measurement};

use crate::host_common::{HOST_BINARY, config, policies, repo_root};
use crate::ledger::{LOG_KEY_SEED, TestLedger, entry, now, state_path};

/// The inference host's launch: its image, and the digests its HOST_DATA binds.
const INFERENCE_IMAGE: Measurement = Measurement([0x1f; 48]);
const INFERENCE_POLICIES: [u8; 32] = [0x10; 32];
const INFERENCE_MODEL: [u8; 32] = [0x11; 32];
const INFERENCE_SETTINGS: [u8; 32] = [0x12; 32];
/// A build nobody released.
const UNRELEASED_IMAGE: Measurement = Measurement([0x66; 48]);

/// The model the shipped manifests ask for.
const MODEL: &str = CandleConfig::DEFAULT_MODEL_NAME;

fn platform() -> SimulatedPlatform {
    crate::development::development_platform(DEVELOPMENT_TCB)
}

/// The inference host's CVM launched from `image`.
fn inference_cvm(image: Measurement) -> Arc<SimulatedProvider> {
    let host_data = HostData::of_launch(
        &INFERENCE_POLICIES,
        Some(&INFERENCE_MODEL),
        &INFERENCE_SETTINGS,
    );
    Arc::new(SimulatedProvider::new(
        platform(),
        SimulatedLaunch::new(image, host_data),
    ))
}

/// A logged, reviewed release of `launch` in `series`.
fn release(
    series: &str,
    launch: LaunchFacts,
    digests: ([u8; 32], Option<[u8; 32]>, [u8; 32]),
) -> SignedEntry {
    let (policy_set, model, host_config) = digests;
    let subject = Subject::Release(Release {
        series: series.into(),
        sequence: 1,
        published_at: now() - 3600,
        overlap_secs: 3600,
        measurement: launch.measurement,
        snp_policy: launch.guest_policy,
        platform_info: launch.platform_info,
        host_data: launch.host_data,
        policy_set: HexBytes(policy_set),
        model: model.map(HexBytes),
        host_config: HexBytes(host_config),
        plugins: Vec::new(),
        build: None,
    });
    entry(subject, &[1, 2])
}

fn inference_release() -> SignedEntry {
    let launch = SimulatedLaunch::new(
        INFERENCE_IMAGE,
        HostData::of_launch(
            &INFERENCE_POLICIES,
            Some(&INFERENCE_MODEL),
            &INFERENCE_SETTINGS,
        ),
    );
    release(
        "inference",
        launch.facts(),
        (
            INFERENCE_POLICIES,
            Some(INFERENCE_MODEL),
            INFERENCE_SETTINGS,
        ),
    )
}

fn feature_release(launch: &LaunchDigests) -> SignedEntry {
    let facts = launch
        .launch_facts()
        .unwrap_or_else(|| panic!("a simulated launch names all four values"));
    release(
        "feature",
        facts,
        (launch.policy_set, launch.model, launch.host_config),
    )
}

/// A verifier of simulated CVMs whose releases `ledger` finds.
fn ledger_verifier(ledger: LedgerTrust) -> Verifier<LedgerTrust> {
    let policy = Policy {
        allow_simulated: true,
        report_versions: 2..=5,
        allowed_vmpls: [0].into(),
        minimum_tcb: [(ProductLine::Milan, DEVELOPMENT_TCB)].into(),
        accepted: cloister_attestation::AllowList::default(),
    };
    let anchors = crate::development::development_root()
        .pin_in(TrustAnchors::amd())
        .unwrap_or_else(|e| panic!("simulated root: {e}"));
    Verifier::new(anchors, policy, ledger)
}

/// A view of `ledger` synced now, its state in `dir`.
async fn view(ledger: &TestLedger, dir: &tempfile::TempDir, name: &str) -> LedgerTrust {
    let config = crate::ledger::config(&ledger.url, &state_path(dir).with_file_name(name));
    let trust = LedgerTrust::open(config).unwrap_or_else(|e| panic!("ledger view: {e}"));
    trust.sync().await.unwrap_or_else(|e| panic!("sync: {e}"));
    trust
}

/// An engine that counts the prompts it receives and the most it held at once.
struct Counted {
    inner: Arc<dyn InferenceBackend>,
    prompts: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// Time each generation holds its prompt (so that concurrent ones overlap).
    hold: Duration,
    /// Time between two tokens.
    pace: Duration,
}

impl Counted {
    fn new(inner: Arc<dyn InferenceBackend>, hold: Duration) -> Arc<Self> {
        Self::paced(inner, hold, Duration::ZERO)
    }

    fn paced(inner: Arc<dyn InferenceBackend>, hold: Duration, pace: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner,
            prompts: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
            hold,
            pace,
        })
    }

    fn prompts(&self) -> usize {
        self.prompts.load(Ordering::SeqCst)
    }
}

impl InferenceBackend for Counted {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn is_simulated(&self) -> bool {
        self.inner.is_simulated()
    }

    fn models(&self) -> Vec<ModelInfo> {
        self.inner.models()
    }

    fn identity(&self) -> EngineIdentity {
        self.inner.identity()
    }

    fn generate(
        &self,
        request: &GenerateRequest,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, InferenceError> {
        self.prompts.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(self.hold);
        let generation = self.inner.generate(request, &mut |piece| {
            std::thread::sleep(self.pace);
            on_token(piece)
        });
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        generation
    }
}

/// An inference host on loopback: `attester` answers for its CVM, `engine`
/// generates, and callers are verified against `callers`.
struct InferenceHost {
    url: String,
    table: Arc<SessionTable>,
}

impl InferenceHost {
    async fn start(
        attester: Arc<dyn SessionAttester>,
        engine: Arc<dyn InferenceBackend>,
        callers: Verifier<LedgerTrust>,
    ) -> Self {
        let service = Arc::new(InferenceService::new(engine, 512));
        let table = SessionTable::for_payloads(
            &SessionConfig::default(),
            attester,
            service,
            Arc::new(SystemClock),
        )
        .unwrap_or_else(|e| panic!("table: {e}"))
        .require_caller_attestation(Arc::new(callers));
        let table = Arc::new(table);
        let addr = serve_app(routes(Arc::clone(&table))).await;
        Self {
            url: format!("http://{addr}"),
            table,
        }
    }
}

/// The feature host's configuration, its launch on a remote backend, and
/// its own evidence provider (the one `Host::boot` builds for that launch).
fn feature_host(remote: &RemoteConfig) -> (HostConfig, LaunchDigests, Arc<dyn CallerAttester>) {
    let config = config(&repo_root().join("policies"));
    let launch =
        LaunchDigests::compute(&config, &policies(&config), HOST_BINARY, &remote.identity())
            .unwrap_or_else(|e| panic!("measure: {e}"));
    let provider = cloister_host::serve::provider(&config.attestation, &launch)
        .unwrap_or_else(|e| panic!("provider: {e}"));
    (config, launch, provider)
}

fn remote_config(url: &str) -> RemoteConfig {
    RemoteConfig {
        url: url.to_owned(),
        model: MODEL.into(),
        timeout_secs: 60,
        ..RemoteConfig::default()
    }
}

/// Both sides of one deployment: a ledger naming both releases, a view of
/// it for each side.
struct Deployment {
    ledger: TestLedger,
    dir: tempfile::TempDir,
    config: HostConfig,
    attester: Arc<dyn CallerAttester>,
    remote: RemoteConfig,
}

impl Deployment {
    /// A ledger holding `released`'s releases: `(inference, feature)`.
    async fn new(released: (bool, bool)) -> Self {
        // The URL is fixed before the inference host listens; it is not in
        // the launch digests, which leave addresses out.
        let remote = remote_config("http://127.0.0.1:9");
        let (config, launch, attester) = feature_host(&remote);
        let mut entries = Vec::new();
        if released.0 {
            entries.push(inference_release());
        }
        if released.1 {
            entries.push(feature_release(&launch));
        }
        let ledger = TestLedger::start(LOG_KEY_SEED, &entries).await;
        Self {
            ledger,
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
            config,
            attester,
            remote,
        }
    }

    async fn inference_host(
        &self,
        attester: Arc<dyn SessionAttester>,
        engine: Arc<dyn InferenceBackend>,
    ) -> InferenceHost {
        let view = view(&self.ledger, &self.dir, "inference-view.json").await;
        InferenceHost::start(attester, engine, ledger_verifier(view)).await
    }

    /// The feature host's backend for `far`, proving itself with `attester`.
    async fn backend(
        &self,
        far: &InferenceHost,
        attester: Arc<dyn CallerAttester>,
    ) -> RemoteBackend<LedgerTrust> {
        let view = view(&self.ledger, &self.dir, "feature-view.json").await;
        let remote = RemoteConfig {
            url: far.url.clone(),
            ..self.remote.clone()
        };
        RemoteBackend::new(remote, ledger_verifier(view), attester)
            .unwrap_or_else(|e| panic!("remote backend: {e}"))
    }
}

fn prompt(text: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest {
        model: MODEL.into(),
        prompt: Prompt::Chat(vec![ChatMessage {
            role: Role::User,
            content: text.into(),
        }]),
        params: SamplingParams {
            max_tokens,
            ..SamplingParams::default()
        },
        deadline: None,
    }
}

/// Generates on `backend` from a blocking thread, as the host's capability does.
fn generate(
    backend: &Arc<RemoteBackend<LedgerTrust>>,
    request: GenerateRequest,
) -> impl Future<Output = Result<Generation, InferenceError>> + Send + 'static {
    let backend = Arc::clone(backend);
    async move {
        tokio::task::spawn_blocking(move || {
            backend.generate(&request, &mut |_| ControlFlow::Continue(()))
        })
        .await
        .unwrap_or_else(|e| panic!("generation thread: {e}"))
    }
}

fn deterministic() -> Arc<Counted> {
    Counted::new(
        Arc::new(DeterministicBackend::serving(MODEL.to_owned())),
        Duration::ZERO,
    )
}

/// The shipped model, one engine thread.
fn candle() -> Arc<dyn InferenceBackend> {
    let model_dir = std::env::var_os("CLOISTER_MODEL_DIR")
        .map_or_else(|| repo_root().join("target/models"), Into::into);
    let config = CandleConfig {
        model_dir,
        threads: 1,
        ..CandleConfig::default()
    };
    Arc::new(
        CandleBackend::load(&config)
            .unwrap_or_else(|e| panic!("model (run inference/fetch-model.sh): {e}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summarise_through_a_remote_inference_host() {
    let deployment = Deployment::new((true, true)).await;
    let engine = Counted::new(tokio::task::block_in_place(candle), Duration::ZERO);
    let far = deployment
        .inference_host(inference_cvm(INFERENCE_IMAGE), engine.clone())
        .await;
    let backend = deployment
        .backend(&far, Arc::clone(&deployment.attester))
        .await;
    assert_eq!(backend.identity(), deployment.remote.identity());
    let config = deployment.config.clone();
    let response = tokio::task::spawn_blocking(move || {
        let policies = policies(&config);
        let filter = HostConfig::log_filter(&policies, Arc::new(MemorySink::default()));
        let runtime = load_runtime(&config, &policies, Arc::new(backend), filter)
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let path = repo_root().join("plugins/summarise/testdata/team-lunch.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        runtime
            .handle(&serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("summarise: {e}"))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(response.decode::<Summary>(), Ok(Summary { text, messages_covered: 6 }) if !text.trim().is_empty()),
        "{response:?}"
    );
    assert!(
        engine.prompts() >= 1,
        "the summary came from the far engine"
    );
    let stats = far.table.stats();
    assert_eq!(stats.callers_attested, 1, "{stats:?}");
    assert_eq!(stats.requests as usize, engine.prompts(), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_cross_the_hop_bit_for_bit() {
    let deployment = Deployment::new((true, true)).await;
    let engine = tokio::task::block_in_place(candle);
    let far = deployment
        .inference_host(inference_cvm(INFERENCE_IMAGE), Arc::clone(&engine))
        .await;
    let backend = deployment
        .backend(&far, Arc::clone(&deployment.attester))
        .await;
    let request = EmbedRequest {
        model: MODEL.into(),
        texts: vec![
            "Lunch moves to Friday at 12:45.".into(),
            "Chen is free after 12:30.".into(),
        ],
        deadline: Some(Instant::now() + Duration::from_secs(60)),
    };
    let local = tokio::task::block_in_place(|| engine.embed(&request)).expect("local embed");
    let remote = tokio::task::spawn_blocking(move || backend.embed(&request))
        .await
        .unwrap_or_else(|e| panic!("embed thread: {e}"))
        .expect("remote embed");
    assert_eq!(remote.len(), 2);
    assert_eq!(remote, local, "the far engine's vectors, unchanged");
    assert_eq!(far.table.stats().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_stream_across_the_hop_and_concurrent_generations_meet_at_the_far_engine() {
    let deployment = Deployment::new((true, true)).await;
    let engine = Counted::paced(
        Arc::new(DeterministicBackend::serving(MODEL.to_owned())),
        Duration::from_millis(300),
        Duration::from_millis(100),
    );
    let far = deployment
        .inference_host(inference_cvm(INFERENCE_IMAGE), engine.clone())
        .await;
    let backend = Arc::new(
        deployment
            .backend(&far, Arc::clone(&deployment.attester))
            .await,
    );

    let requests = (0..4).map(|i| generate(&backend, prompt(&format!("call {i} of four"), 8)));
    for generation in futures_join(requests).await {
        let generation = generation.unwrap_or_else(|e| panic!("generate: {e}"));
        assert!(generation.text.starts_with("call"), "{generation:?}");
    }
    assert_eq!(engine.prompts(), 4);
    assert!(
        engine.most_in_flight.load(Ordering::SeqCst) >= 2,
        "generations over the hop reached the engine one at a time"
    );

    // Each piece reaches the caller as the far engine decodes it, 100 ms
    // apart, not all at once when the generation ends.
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&arrivals);
    let streaming = Arc::clone(&backend);
    let started = Instant::now();
    let generation = tokio::task::spawn_blocking(move || {
        streaming.generate(&prompt("one two three four five six", 6), &mut |piece| {
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((piece.to_owned(), started.elapsed()));
            ControlFlow::Continue(())
        })
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or_else(|e| panic!("generate: {e}"));
    let arrivals = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
    let streamed: String = arrivals.iter().map(|(piece, _)| piece.as_str()).collect();
    assert_eq!(streamed, generation.text);
    assert_eq!(arrivals.len(), 6);
    let spread = arrivals[5].1 - arrivals[0].1;
    assert!(
        spread >= Duration::from_millis(400),
        "the pieces arrived together ({spread:?} apart): not streamed"
    );
}

/// Runs the futures together and returns their outputs in order.
async fn futures_join<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap_or_else(|e| panic!("{e}")));
    }
    outputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gone_inference_host_is_a_clear_error() {
    let deployment = Deployment::new((true, true)).await;
    let (listener, addr) = cloister_test_support::bind_loopback().await;
    drop(listener);
    let view = view(&deployment.ledger, &deployment.dir, "feature-view.json").await;
    let remote = RemoteConfig {
        url: format!("http://{addr}"),
        timeout_secs: 5,
        ..deployment.remote.clone()
    };
    let backend = Arc::new(
        RemoteBackend::new(
            remote,
            ledger_verifier(view),
            Arc::clone(&deployment.attester),
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    let started = Instant::now();
    let error = generate(&backend, prompt("hello", 4))
        .await
        .expect_err("nobody listens");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        error.to_string().contains(&format!(
            "the inference host at http://{addr} is unreachable"
        )),
        "{error}"
    );
}

/// Evidence of a genuine CVM for this session, but signed over another
/// nonce than the one asked.
struct OtherNonce<P>(Arc<P>);

const OTHER_NONCE: [u8; 32] = [0x0e; 32];

impl<P: EvidenceProvider + Send + Sync> SessionAttester for OtherNonce<P> {
    fn attest(&self, exporter: &TlsExporter, _: &Nonce) -> Result<Evidence, ProviderError> {
        SessionAttester::attest(&*self.0, exporter, &Nonce::from_bytes(OTHER_NONCE))
    }
}

impl<P: EvidenceProvider + Send + Sync> CallerAttester for OtherNonce<P> {
    fn attest_caller(&self, exporter: &TlsExporter, _: &Nonce) -> Result<Evidence, ProviderError> {
        CallerAttester::attest_caller(&*self.0, exporter, &Nonce::from_bytes(OTHER_NONCE))
    }
}

/// Replays, in every session after the first, the evidence it produced in
/// the first (a relay between a genuine CVM and its peer).
struct Relaying<P> {
    genuine: P,
    recorded: Mutex<Option<Evidence>>,
}

impl<P> Relaying<P> {
    fn new(genuine: P) -> Self {
        Self {
            genuine,
            recorded: Mutex::new(None),
        }
    }

    fn relay(
        &self,
        fresh: impl FnOnce() -> Result<Evidence, ProviderError>,
    ) -> Result<Evidence, ProviderError> {
        let mut recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = recorded.as_ref() {
            return Ok(old.clone());
        }
        let evidence = fresh()?;
        *recorded = Some(evidence.clone());
        Ok(evidence)
    }
}

impl SessionAttester for Relaying<Arc<SimulatedProvider>> {
    fn attest(&self, exporter: &TlsExporter, nonce: &Nonce) -> Result<Evidence, ProviderError> {
        self.relay(|| SessionAttester::attest(&*self.genuine, exporter, nonce))
    }
}

impl CallerAttester for Relaying<Arc<dyn CallerAttester>> {
    fn attest_caller(
        &self,
        exporter: &TlsExporter,
        nonce: &Nonce,
    ) -> Result<Evidence, ProviderError> {
        self.relay(|| self.genuine.attest_caller(exporter, nonce))
    }
}

/// Who attests how in one refusal test.
struct Attempt {
    /// Releases in the ledger: `(inference host, feature host)`.
    released: (bool, bool),
    /// The inference host's CVM.
    far: Arc<dyn SessionAttester>,
    /// The feature host's evidence; `None`: its genuine provider.
    near: Option<Arc<dyn CallerAttester>>,
    /// Generations that succeed first, each on a fresh backend (a relay
    /// records its evidence in the first).
    before: usize,
}

impl Attempt {
    fn far(far: Arc<dyn SessionAttester>) -> Self {
        Self {
            released: (true, true),
            far,
            near: None,
            before: 0,
        }
    }

    /// A fresh backend's generation fails, naming the refusal, and neither
    /// the far session table nor its engine saw its prompt. Returns the
    /// error and the callers the far host refused.
    async fn refused(self) -> (String, u64) {
        let deployment = Deployment::new(self.released).await;
        let engine = deterministic();
        let far = deployment.inference_host(self.far, engine.clone()).await;
        let near = self
            .near
            .unwrap_or_else(|| Arc::clone(&deployment.attester));
        for _ in 0..self.before {
            let backend = Arc::new(deployment.backend(&far, Arc::clone(&near)).await);
            generate(&backend, prompt("an earlier prompt", 2))
                .await
                .unwrap_or_else(|e| panic!("earlier session: {e}"));
        }
        assert_eq!(engine.prompts(), self.before);
        let backend = Arc::new(deployment.backend(&far, near).await);
        let error = generate(&backend, prompt("the secret prompt", 4))
            .await
            .expect_err("refused")
            .to_string();
        assert_eq!(
            engine.prompts(),
            self.before,
            "a prompt reached the engine: {error}"
        );
        let stats = far.table.stats();
        assert_eq!(stats.requests as usize, self.before, "{error}");
        (error, stats.callers_refused)
    }
}

/// The inference host's evidence was refused: the feature host sent nothing
/// but the handshake and its nonce, not even its own evidence.
fn assert_far_refused((error, callers_refused): (String, u64), why: &str) {
    assert!(
        error.contains("no prompt sent to the inference host"),
        "{error}"
    );
    assert!(error.contains(why), "{error}");
    assert_eq!(callers_refused, 0);
}

/// The feature host's evidence was refused by the inference host.
fn assert_near_refused((error, callers_refused): (String, u64)) {
    assert!(
        error.contains("host refused this caller's evidence"),
        "{error}"
    );
    assert_eq!(callers_refused, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inference_host_not_in_the_ledger_gets_no_prompt() {
    let outcome = Attempt::far(inference_cvm(UNRELEASED_IMAGE))
        .refused()
        .await;
    assert_far_refused(outcome, "measurement not accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inference_host_answering_another_nonce_gets_no_prompt() {
    let far = Arc::new(OtherNonce(inference_cvm(INFERENCE_IMAGE)));
    assert_far_refused(Attempt::far(far).refused().await, "REPORT_DATA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inference_host_relaying_evidence_of_another_session_gets_no_prompt() {
    let attempt = Attempt {
        before: 1,
        ..Attempt::far(Arc::new(Relaying::new(inference_cvm(INFERENCE_IMAGE))))
    };
    assert_far_refused(attempt.refused().await, "REPORT_DATA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feature_host_not_in_the_ledger_sends_no_prompt() {
    let attempt = Attempt {
        released: (true, false),
        ..Attempt::far(inference_cvm(INFERENCE_IMAGE))
    };
    assert_near_refused(attempt.refused().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feature_host_answering_another_nonce_sends_no_prompt() {
    let (config, launch, _) = feature_host(&remote_config("http://127.0.0.1:9"));
    let genuine = cloister_host::serve::provider(&config.attestation, &launch)
        .unwrap_or_else(|e| panic!("{e}"));
    let attempt = Attempt {
        near: Some(Arc::new(OtherNonce(genuine))),
        ..Attempt::far(inference_cvm(INFERENCE_IMAGE))
    };
    assert_near_refused(attempt.refused().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feature_host_relaying_evidence_of_another_session_sends_no_prompt() {
    let (_, _, genuine) = feature_host(&remote_config("http://127.0.0.1:9"));
    let attempt = Attempt {
        near: Some(Arc::new(Relaying::new(genuine))),
        before: 1,
        ..Attempt::far(inference_cvm(INFERENCE_IMAGE))
    };
    assert_near_refused(attempt.refused().await);
}

/// The two real binaries as processes, judging each other by a real
/// `cloister-ledger` process: `cloister-inference-host serve` (the
/// deterministic engine) and the feature host's `cloister-host run` with
/// `backend = "remote"`, each with a `[ledger]` section, both on SIMULATED
/// CVMs with `policies/attestation-simulated.toml` as platform rules and no
/// allow-list. The binaries must be built beside the test binary
/// (`cargo build --bins`), as for `surface.rs`.
mod binaries {
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Output};

    use cloister_api::FeatureResponse;
    use cloister_attestation::SimulatedLaunch;
    use cloister_host::LaunchDigests;
    use cloister_ledger_verify::HexBytes;
    use cloister_ledger_verify::entry::SignedEntry;
    use cloister_wire::HostData;
    use serde_json::Value;

    use super::{INFERENCE_IMAGE, feature_release, release};
    use crate::ledger::{LOG_KEY_SEED, key};
    use crate::surface::{
        Listener, Party, binary, free_addr, loopback_http, plugin_dir, repo_root,
    };

    /// A ledger, an inference host and a feature host's configuration.
    struct Deployment {
        dir: tempfile::TempDir,
        _ledger: Party,
        far: Party,
        far_addr: SocketAddr,
        feature_config: PathBuf,
    }

    fn listening(addr: SocketAddr) -> Vec<Listener> {
        vec![Listener {
            addr,
            routes: Vec::new(),
        }]
    }

    /// The `[ledger]` section both parties share.
    fn ledger_section(ledger: SocketAddr, state_dir: &str) -> String {
        let log_key = HexBytes(key(LOG_KEY_SEED).verifying_key().to_bytes());
        format!(
            "[ledger]\nurl = \"http://{ledger}\"\nlog-key = \"{log_key}\"\n\
             state-dir = \"{state_dir}\"\ntimeout-secs = 10\n"
        )
    }

    fn simulated_policy() -> PathBuf {
        repo_root().join("policies/attestation-simulated.toml")
    }

    /// Runs `name` with `args` and `--config config` in `dir`.
    fn run(name: &str, dir: &Path, config: &Path, args: &[&str]) -> Output {
        Command::new(binary(name))
            .args(args)
            .arg("--config")
            .arg(config)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn stdout_json(name: &str, output: &Output) -> Value {
        assert!(
            output.status.success(),
            "{name}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// The inference host's release, from what its `measure` prints.
    fn inference_release(measured: &Value) -> SignedEntry {
        let part = |name: &str| -> Option<[u8; 32]> {
            measured[name].as_str().map(|hex| {
                hex.parse::<HexBytes<32>>()
                    .unwrap_or_else(|e| panic!("{name}: {e}"))
                    .0
            })
        };
        let (policy_set, model, host_config) = (
            part("policy_set").unwrap_or_else(|| panic!("{measured}")),
            part("model"),
            part("host_config").unwrap_or_else(|| panic!("{measured}")),
        );
        let host_data = HostData::of_launch(&policy_set, model.as_ref(), &host_config);
        assert_eq!(
            Some(host_data.to_string().as_str()),
            measured["host_data"].as_str()
        );
        let facts = SimulatedLaunch::new(INFERENCE_IMAGE, host_data).facts();
        release("inference", facts, (policy_set, model, host_config))
    }

    async fn append(ledger: SocketAddr, entry: &SignedEntry) {
        let response = loopback_http()
            .post(format!("http://{ledger}/v1/entries"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(entry).unwrap_or_else(|e| panic!("{e}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("ledger: {e}"));
        assert!(response.status().is_success(), "{}", response.status());
    }

    impl Deployment {
        /// Both parties measured, the releases of `released` (`(inference,
        /// feature)`) appended to a fresh ledger process, then the inference
        /// host started.
        async fn start(released: (bool, bool)) -> Self {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let [ledger, far_addr] = std::array::from_fn(|_| free_addr());
            let http = loopback_http();
            std::fs::write(
                dir.path().join("ledger.key"),
                format!("{}\n", HexBytes([LOG_KEY_SEED; 32])),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let reviewers: String = (1..=3u8)
                .map(|seed| {
                    format!(
                        "[[reviewer]]\nname = \"r{seed}\"\npublic_key = \"{}\"\n",
                        HexBytes(key(seed).verifying_key().to_bytes())
                    )
                })
                .collect();
            std::fs::write(
                dir.path().join("reviewers.toml"),
                format!("threshold = 2\n{reviewers}"),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let mut ledger_party = Party::spawn(
                "cloister-ledger",
                dir.path(),
                &["serve"],
                &format!(
                    "listen = \"{ledger}\"\ndatabase = \"ledger.redb\"\nlog_key = \"ledger.key\"\n\
                     reviewers = \"reviewers.toml\"\n"
                ),
                listening(ledger),
            );
            ledger_party.ready(&http).await;

            let far_config = format!(
                "listen = \"{far_addr}\"\n\n[engine]\nbackend = \"deterministic\"\n\n\
                 [attestation]\nprovider = \"simulated\"\ncache-dir = {:?}\n\n\
                 [callers]\npolicy = {:?}\n\n{}",
                crate::development::simulated_cache_dir(),
                simulated_policy(),
                ledger_section(ledger, "inference-ledger"),
            );
            let feature_config = format!(
                "plugin-dir = {:?}\npolicy-dir = {:?}\n\n{}\n\
                 [inference]\nbackend = \"remote\"\nremote-policy = {:?}\n\n\
                 [inference.remote]\nurl = \"http://{far_addr}\"\ntimeout-secs = 20\n\n{}",
                plugin_dir(),
                repo_root().join("policies"),
                crate::surface::shared_host_tables(),
                simulated_policy(),
                ledger_section(ledger, "feature-ledger"),
            );
            let far_file = dir.path().join("cloister-inference-host.toml");
            let feature_file = dir.path().join("cloister-host.toml");
            std::fs::write(&far_file, &far_config).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&feature_file, &feature_config).unwrap_or_else(|e| panic!("{e}"));

            let far_measured = stdout_json(
                "cloister-inference-host measure",
                &run(
                    "cloister-inference-host",
                    dir.path(),
                    &far_file,
                    &["measure"],
                ),
            );
            let feature_measured: LaunchDigests = serde_json::from_value(stdout_json(
                "cloister-host measure",
                &run("cloister-host", dir.path(), &feature_file, &["measure"]),
            ))
            .unwrap_or_else(|e| panic!("feature host's digests: {e}"));
            if released.0 {
                append(ledger, &inference_release(&far_measured)).await;
            }
            if released.1 {
                append(ledger, &feature_release(&feature_measured)).await;
            }

            let mut far = Party::spawn(
                "cloister-inference-host",
                dir.path(),
                &["serve"],
                &far_config,
                listening(far_addr),
            );
            far.ready(&http).await;
            Self {
                dir,
                _ledger: ledger_party,
                far,
                far_addr,
                feature_config: feature_file,
            }
        }

        /// `cloister-host run` of the team-lunch summary.
        fn summarise(&self) -> Output {
            let input = repo_root().join("plugins/summarise/testdata/team-lunch.json");
            let input = input.to_str().unwrap_or_else(|| panic!("path"));
            run(
                "cloister-host",
                self.dir.path(),
                &self.feature_config,
                &["run", "--input", input],
            )
        }

        /// The inference host's `/healthz` counter `name`.
        async fn far_count(&self, name: &str) -> u64 {
            let text = loopback_http()
                .get(format!("http://{}/healthz", self.far_addr))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .unwrap_or_else(|e| panic!("{e}\n{}", self.far.log()))
                .text()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let health: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
            health[name]
                .as_u64()
                .unwrap_or_else(|| panic!("no {name} in {health}"))
        }

        /// `summarise` failed; what it said.
        fn refused(&self) -> String {
            let output = self.summarise();
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(
                !output.status.success(),
                "summarised anyway: {}",
                String::from_utf8_lossy(&output.stdout)
            );
            stderr
        }
    }

    /// The feature host's answer to a refused hop: its log filter keeps
    /// the reason inside (the inference host's counters tell which side
    /// refused), the request fails as an engine failure.
    fn assert_far_kept_its_prompt(error: &str) {
        assert!(error.contains("inference engine failure"), "{error}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn binaries_find_each_other_in_the_ledger() {
        let deployment = Deployment::start((true, true)).await;
        let output = tokio::task::block_in_place(|| deployment.summarise());
        let response: FeatureResponse =
            serde_json::from_value(stdout_json("cloister-host run", &output))
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(response.decode::<cloister_api::Summary>(), Ok(cloister_api::Summary { text, messages_covered: 6 }) if !text.trim().is_empty()),
            "{response:?}"
        );
        assert!(deployment.far_count("requests").await >= 1);
        assert!(deployment.far_count("callers_attested").await >= 1);
        assert_eq!(deployment.far_count("callers_refused").await, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_inference_host_binary_not_in_the_ledger_gets_no_prompt() {
        let deployment = Deployment::start((false, true)).await;
        let error = tokio::task::block_in_place(|| deployment.refused());
        assert_far_kept_its_prompt(&error);
        assert_eq!(deployment.far_count("requests").await, 0, "{error}");
        // Refused by the feature host before it even proved itself.
        assert_eq!(deployment.far_count("callers_attested").await, 0);
        assert_eq!(deployment.far_count("callers_refused").await, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_feature_host_binary_not_in_the_ledger_is_refused() {
        let deployment = Deployment::start((true, false)).await;
        let error = tokio::task::block_in_place(|| deployment.refused());
        assert_far_kept_its_prompt(&error);
        assert_eq!(deployment.far_count("requests").await, 0, "{error}");
        assert_eq!(deployment.far_count("callers_attested").await, 0);
        assert!(deployment.far_count("callers_refused").await >= 1);
    }
}
