//! The whole request path on loopback, in process: issuer, relay, gateway
//! redeeming Privacy Pass tokens, and a SIMULATED host behind it (the
//! development platform, so the simulation policy applies). The client
//! spends wallet tokens, verifies the host and refuses untrusted ones. And
//! the command waits longer than the relay in front of the gateway.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cloister_api::{
    BudgetKind, FeatureError, FeatureRequest, FeatureResponse, Message, RequestError,
    SuggestRequest, Suggestions, SummariseRequest, Tone,
};
use cloister_attestation::{SimulatedLaunch, SimulatedPlatform, SimulatedProvider, Tcb};
use cloister_gateway::{GatewayConfig, PrivacyPassRedeemer};
use cloister_privacypass::{Redeemer, TrustedKey};
use cloister_ratls::{FeatureService, SessionConfig, SessionTable, routes};
use cloister_relay::RelayConfig;
use cloister_test_support::{Loopback, forward_to, serve_app};
use cloister_wire::{HostData, Measurement};

use cloister_cli::config::{
    AttestationSettings, Authority, Config, NetworkSettings, TokenSettings, TrustSettings,
};
use cloister_cli::session;

use crate::common as issuer_fixture;

const RELEASED: [u8; 48] = [0x52; 48];
const HOST_DATA: [u8; 32] = [0x48; 32];
/// The development platform's TCB (also the simulation policy's minimum).
const TCB: Tcb = Tcb {
    fmc: None,
    bootloader: 3,
    tee: 0,
    snp: 8,
    microcode: 115,
};

#[derive(Default)]
struct Echo {
    calls: AtomicUsize,
}

/// What the host answers every summarise request with.
const OVER_BUDGET: RequestError = RequestError::Feature(FeatureError::BudgetExceeded {
    budget: BudgetKind::TokensPerRequest,
    limit: 256,
    used: 300,
});

impl FeatureService for Echo {
    fn handle(&self, request: FeatureRequest) -> Result<FeatureResponse, RequestError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match request.decode::<SuggestRequest>() {
            Ok(suggest) => Ok(FeatureResponse::of(&Suggestions(vec![
                suggest.draft.to_uppercase(),
            ]))),
            Err(_) => Err(OVER_BUDGET),
        }
    }
}

/// The simulated development platform, derived from the configured seed
/// exactly as the client derives the root it pins.
fn platform() -> &'static SimulatedPlatform {
    static PLATFORM: OnceLock<SimulatedPlatform> = OnceLock::new();
    PLATFORM.get_or_init(|| {
        let seed =
            hex::decode(AttestationSettings::default().simulated_platform_seed).unwrap_or_default();
        let seed = <[u8; 32]>::try_from(seed).unwrap_or_else(|_| panic!("development seed"));
        SimulatedPlatform::cached(seed, TCB, &crate::development::simulated_cache_dir())
            .unwrap_or_else(|e| panic!("platform: {e}"))
            .0
    })
}

/// Every party on loopback, and a client configuration pointing at them.
struct Stack {
    config: Config,
    feature: Arc<Echo>,
    issuer: issuer_fixture::Issuer,
    key_config_digest: String,
    servers: Loopback,
    /// OHTTP exchanges that reached the host.
    exchanges: Arc<AtomicUsize>,
    _state: tempfile::TempDir,
}

/// How the host behind the stack answers.
#[derive(Clone, Copy)]
enum HostBehaviour {
    /// As the session table does.
    Honest,
    /// Honestly for this many exchanges, then with no records at all, as if
    /// every later step needed another round trip.
    KeepsAskingAfter(usize),
}

/// The host's `POST /session`: `table`'s answer, or none once `behaviour`
/// says so; counts the exchanges in `exchanges`.
fn host_app(
    table: SessionTable,
    behaviour: HostBehaviour,
    exchanges: Arc<AtomicUsize>,
) -> axum::Router {
    let table = Arc::new(table);
    let HostBehaviour::KeepsAskingAfter(honest) = behaviour else {
        let counted = Arc::clone(&exchanges);
        return routes(table).layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                counted.fetch_add(1, Ordering::SeqCst);
                next.run(request)
            },
        ));
    };
    axum::Router::new().route(
        cloister_ratls::SESSION_PATH,
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let table = Arc::clone(&table);
                let sent = exchanges.fetch_add(1, Ordering::SeqCst);
                async move {
                    let records = if sent < honest {
                        let session = headers
                            .get(cloister_wire::header::SESSION)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        tokio::task::spawn_blocking(move || table.exchange(&session, &body))
                            .await
                            .unwrap_or_else(|e| panic!("exchange: {e}"))
                            .unwrap_or_else(|e| panic!("session: {e}"))
                    } else {
                        Vec::new()
                    };
                    (
                        [("content-type", cloister_wire::media::RATLS_RECORDS)],
                        records,
                    )
                }
            },
        ),
    )
}

impl Stack {
    /// A host launched with `measurement` behind a token-redeeming gateway.
    async fn start(measurement: [u8; 48]) -> Self {
        Self::start_with(measurement, &RelayConfig::default(), HostBehaviour::Honest).await
    }

    /// As [`Stack::start`], with this relay configuration and host behaviour.
    async fn start_with(
        measurement: [u8; 48],
        relay: &RelayConfig,
        behaviour: HostBehaviour,
    ) -> Self {
        let issuer = issuer_fixture::Issuer::start(100).await;
        let feature = Arc::new(Echo::default());
        let provider = Arc::new(SimulatedProvider::new(
            platform().clone(),
            SimulatedLaunch::new(Measurement(measurement), HostData(HOST_DATA)),
        ));
        let table = SessionTable::new(
            &SessionConfig::default(),
            provider,
            Arc::clone(&feature) as Arc<dyn FeatureService>,
        )
        .unwrap_or_else(|e| panic!("table: {e}"));
        let exchanges = Arc::new(AtomicUsize::new(0));
        let host = serve_app(host_app(table, behaviour, Arc::clone(&exchanges))).await;

        let directory = issuer
            .client()
            .directory()
            .await
            .unwrap_or_else(|e| panic!("directory: {e}"));
        let trusted = TrustedKey::from_directory(&directory, issuer.settings().key_lifetime_secs)
            .unwrap_or_else(|e| panic!("trusted keys: {e}"));
        let challenge = issuer
            .settings()
            .challenge()
            .unwrap_or_else(|e| panic!("challenge: {e}"));
        let spent = cloister_state_store::StateStore::in_memory()
            .unwrap_or_else(|e| panic!("state store: {e}"))
            .once_set("spent", 1000);
        let redeemer =
            PrivacyPassRedeemer::new(Arc::new(Redeemer::new(trusted, &[challenge], spent)));
        let servers =
            Loopback::start_with(&GatewayConfig::default(), relay, redeemer, forward_to(host))
                .await;
        let key_config_digest = hex::encode(servers.key_config_digest());

        let state = tempfile::tempdir().unwrap_or_else(|e| panic!("state: {e}"));
        crate::chain::with_simulated_root(&state.path().join("state"));
        let config = Config {
            // The pinned allow-list and the simulated platform.
            demo: true,
            state_dir: state.path().join("state"),
            account_file: state.path().join("account.toml"),
            network: NetworkSettings {
                relay_url: servers.relay_url.clone(),
                key_config_url: servers.key_config_url.clone(),
                ..NetworkSettings::default()
            },
            tokens: TokenSettings {
                issuer_url: issuer.url.clone(),
                batch: 5,
                low_water: 4,
                ..TokenSettings::default()
            },
            attestation: AttestationSettings {
                policy_file: policy("attestation-simulated.toml"),
                ..AttestationSettings::default()
            },
            trust: TrustSettings {
                authority: Authority::Pinned,
                pinned_file: state.path().join("pinned.toml"),
                ..TrustSettings::default()
            },
            // Loopback parties serve plain HTTP.
            tls: cloister_cli::config::TlsSettings {
                insecure_plain_http: true,
                ..Default::default()
            },
            ..Config::default()
        };
        issuer
            .account
            .save_new(&config.account_file)
            .unwrap_or_else(|e| panic!("account: {e}"));
        let stack = Self {
            config,
            feature,
            issuer,
            key_config_digest,
            servers,
            exchanges,
            _state: state,
        };
        stack.pin(&[RELEASED], true);
        stack
    }

    /// Writes the pinned allow-list: a launch of each of `measurements` with
    /// the host's HOST_DATA, guest policy and platform info, and the
    /// gateway's key configuration if `key`.
    fn pin(&self, measurements: &[[u8; 48]], key: bool) {
        let keys = if key {
            format!("{:?}", self.key_config_digest)
        } else {
            String::new()
        };
        let mut text = format!("key_configs = [{keys}]\n");
        for measurement in measurements {
            text.push_str(&format!(
                "[[launches]]\nmeasurement = \"{}\"\nhost_data = \"{}\"\n\
                 guest_policy = {}\nplatform_info = {}\n",
                hex::encode(measurement),
                hex::encode(HOST_DATA),
                SimulatedLaunch::DEFAULT_GUEST_POLICY,
                SimulatedLaunch::DEFAULT_PLATFORM_INFO,
            ));
        }
        std::fs::write(&self.config.trust.pinned_file, text)
            .unwrap_or_else(|e| panic!("pinned file: {e}"));
    }

    fn wallet_tokens(&self) -> usize {
        let wallet = session::open_wallet(&self.config).unwrap_or_else(|e| panic!("wallet: {e}"));
        wallet
            .status(session::unix_now())
            .map(|s| s.usable)
            .unwrap_or_else(|e| panic!("status: {e}"))
    }
}

fn policy(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../policies")
        .join(name)
}

fn suggest(draft: &str) -> FeatureRequest {
    FeatureRequest::of(&SuggestRequest {
        draft: draft.into(),
        context: vec![],
        tone: Tone::Neutral,
        count: 1,
    })
}

#[tokio::test]
async fn a_request_runs_on_the_attested_host_paying_one_token_per_ohttp_request() {
    let stack = Stack::start(RELEASED).await;
    assert_eq!(stack.wallet_tokens(), 0);
    let outcome = session::run(&stack.config, &suggest("ship it"))
        .await
        .unwrap_or_else(|e| panic!("run: {e:#}"));
    assert_eq!(
        outcome.response,
        FeatureResponse::of(&Suggestions(vec!["SHIP IT".into()]))
    );
    assert_eq!(outcome.attestation.measurement, hex::encode(RELEASED));
    assert_eq!(outcome.attestation.host_data, hex::encode(HOST_DATA));
    assert!(outcome.attestation.simulated);
    // The empty wallet was refilled with a batch of 5, then each OHTTP
    // request of the session (handshake, attestation, request) took one.
    assert_eq!(outcome.tokens_spent, session::TOKENS_PER_SESSION);
    assert_eq!(
        stack.exchanges.load(Ordering::SeqCst),
        outcome.tokens_spent,
        "one token per exchange"
    );
    assert_eq!(outcome.tokens_left, 5 - outcome.tokens_spent);
    assert_eq!(stack.wallet_tokens(), outcome.tokens_left);
    assert_eq!(stack.feature.calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        outcome.label,
        session::AnswerLabel {
            feature: "suggest".into(),
            host: "a SIMULATED host (no hardware guarantee)".into(),
            release: "pinned allow-list (demo: no ledger release)".into(),
        }
    );
}

/// With AI features off for a chat, the client refuses on the device:
/// no token fetched or spent, no key configuration asked of the relay,
/// nothing through the gateway, nothing to the host. Back on, it runs.
#[tokio::test]
async fn a_chat_with_features_off_sends_nothing() {
    use cloister_client::chats::{ChatSettings, ChatSettingsError};
    let stack = Stack::start(RELEASED).await;
    let settings = ChatSettings::open(&stack.config.state_dir);
    settings
        .set_features("family", false)
        .unwrap_or_else(|e| panic!("off: {e}"));

    let refused = session::run_in_chat(&stack.config, Some("family"), &suggest("secret"))
        .await
        .err()
        .unwrap_or_else(|| panic!("a chat with features off was served"));
    assert!(
        matches!(
            refused.downcast_ref::<ChatSettingsError>(),
            Some(ChatSettingsError::FeaturesOff { chat }) if chat == "family"
        ),
        "{refused:#}"
    );
    assert!(format!("{refused:#}").contains("cloister chat on family"));
    assert_eq!(stack.wallet_tokens(), 0, "no token was fetched");
    assert_eq!(
        stack.servers.metrics.encapsulated_requests(),
        0,
        "nothing reached the gateway"
    );
    assert_eq!(stack.exchanges.load(Ordering::SeqCst), 0);
    assert_eq!(stack.feature.calls.load(Ordering::SeqCst), 0);
    let relay_origin = stack
        .servers
        .key_config_url
        .replace(cloister_wire::OHTTP_KEYS_PATH, "");
    let relay_metrics = issuer_fixture::get_text(&format!("{relay_origin}/metrics")).await;
    let served: Vec<&str> = relay_metrics
        .lines()
        .filter(|l| l.starts_with("cloister_relay_requests_total{") && !l.contains("/metrics"))
        .collect();
    assert!(served.is_empty(), "the relay served {served:?}");
    assert!(
        relay_metrics
            .lines()
            .any(|l| l == "cloister_relay_key_configs_served_total 0")
    );

    // Another chat, and the same chat once back on, are served.
    let other = session::run_in_chat(&stack.config, Some("work"), &suggest("ship it"))
        .await
        .unwrap_or_else(|e| panic!("another chat: {e:#}"));
    assert_eq!(other.label.feature, "suggest");
    settings
        .set_features("family", true)
        .unwrap_or_else(|e| panic!("on: {e}"));
    session::run_in_chat(&stack.config, Some("family"), &suggest("ship it"))
        .await
        .unwrap_or_else(|e| panic!("back on: {e:#}"));
    assert_eq!(stack.feature.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_budget_error_reaches_the_user_typed_with_its_fields() {
    let stack = Stack::start(RELEASED).await;
    let summarise = FeatureRequest::of(&SummariseRequest {
        messages: vec![Message {
            sender: "Ann".into(),
            sent_at: 0,
            text: "Lunch?".into(),
        }],
        max_words: 0,
    });
    let error = session::run(&stack.config, &summarise)
        .await
        .err()
        .unwrap_or_else(|| panic!("the host refuses summarise"));
    let printed = format!("{error:#}");
    match error.downcast_ref::<cloister_ratls::ClientError>() {
        Some(cloister_ratls::ClientError::Feature(typed)) => assert_eq!(*typed, OVER_BUDGET),
        other => panic!("expected the typed error, got {other:?}"),
    }
    assert!(
        printed.contains("tokens-per-request would reach 300, the limit is 256"),
        "{printed}"
    );
    assert_eq!(stack.feature.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn nothing_is_sent_to_an_unreleased_or_simulated_host_under_the_wrong_trust() {
    let stack = Stack::start(RELEASED).await;
    // The measurement is not in the pinned list.
    stack.pin(&[[0x0b; 48]], true);
    let refused = session::run(&stack.config, &suggest("secret")).await;
    assert!(refused.is_err_and(|e| format!("{e:#}").contains("measurement")));
    // The production policy refuses simulated evidence outright.
    stack.pin(&[RELEASED], true);
    let production = Config {
        attestation: AttestationSettings {
            policy_file: policy("attestation.toml"),
            ..stack.config.attestation.clone()
        },
        ..stack.config.clone()
    };
    let refused = session::run(&production, &suggest("secret")).await;
    assert!(refused.is_err_and(|e| format!("{e:#}").contains("not trusted")));
    // A gateway key configuration that is not pinned: refused before any request.
    stack.pin(&[RELEASED], false);
    let refused = session::run(&stack.config, &suggest("secret")).await;
    assert!(refused.is_err_and(|e| format!("{e:#}").contains("consistency")));
    assert_eq!(stack.feature.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn without_tokens_or_an_account_the_error_says_what_to_do() {
    let stack = Stack::start(RELEASED).await;
    std::fs::remove_file(&stack.config.account_file).unwrap_or_else(|e| panic!("{e}"));
    let refused = session::run(&stack.config, &suggest("hello")).await;
    let message = refused.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(
        message.contains("cloister account new") && message.contains("holds 0 tokens"),
        "{message}"
    );
    assert_eq!(stack.feature.calls.load(Ordering::SeqCst), 0);

    // With the account back and tokens in the wallet, the same request succeeds.
    stack
        .issuer
        .account
        .save_new(&stack.config.account_file)
        .unwrap_or_else(|e| panic!("{e}"));
    let wallet = session::open_wallet(&stack.config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        session::fetch_tokens(&stack.config, &wallet, 3, None)
            .await
            .ok(),
        Some(3)
    );
    let outcome = session::run(&stack.config, &suggest("hello"))
        .await
        .unwrap_or_else(|e| panic!("run: {e:#}"));
    assert_eq!(
        outcome.response,
        FeatureResponse::of(&Suggestions(vec!["HELLO".into()]))
    );
}

#[test]
fn a_feature_request_outwaits_the_relay() {
    // The relay's own work around the exchange it times.
    const RELAY_WORK: Duration = Duration::from_secs(5);
    let ours = Config::default().client().expect("client settings").timeout;
    let relay = Duration::from_millis(cloister_relay::RelayConfig::default().timeout_ms);
    assert!(
        ours >= relay + RELAY_WORK,
        "cloister waits {ours:?} for a relay that waits {relay:?}"
    );
}

#[tokio::test]
async fn the_clients_address_never_reaches_the_gateway() {
    // The relay's connections to the gateway leave from 127.0.0.3; the
    // client's (to the relay, and anywhere else) from 127.0.0.1.
    let relay_address = std::net::IpAddr::from([127, 0, 0, 3]);
    let relay = RelayConfig {
        outbound_address: Some(relay_address),
        ..RelayConfig::default()
    };
    let stack = Stack::start_with(RELEASED, &relay, HostBehaviour::Honest).await;
    // Two runs of the command: keys, handshake, attestation and request,
    // then the same from the key configuration saved by the first run.
    for draft in ["ship it", "ship it again"] {
        let outcome = session::run(&stack.config, &suggest(draft))
            .await
            .unwrap_or_else(|e| panic!("run: {e:#}"));
        assert_eq!(
            outcome.response,
            FeatureResponse::of(&Suggestions(vec![draft.to_uppercase()]))
        );
    }
    assert!(
        stack.config.state_dir.join("ohttp-keys.json").exists(),
        "the key configuration is kept across runs"
    );
    let peers = stack.servers.gateway_peers();
    assert!(!peers.is_empty(), "the relay reached the gateway");
    assert!(
        peers.iter().all(|peer| peer.ip() == relay_address),
        "only the relay connects to the gateway: {peers:?}"
    );
    assert_eq!(
        stack.servers.metrics.key_configs_served(),
        1,
        "the gateway served its key configuration only to the relay, once"
    );
}

#[tokio::test]
async fn a_host_that_keeps_asking_gets_one_token_per_exchange_and_the_session_stopped() {
    // Stalling at the handshake, the attestation and the request.
    for honest in 0..3 {
        let stack = Stack::start_with(
            RELEASED,
            &RelayConfig::default(),
            HostBehaviour::KeepsAskingAfter(honest),
        )
        .await;
        let wallet = session::open_wallet(&stack.config).unwrap_or_else(|e| panic!("{e}"));
        let fetched = session::fetch_tokens(&stack.config, &wallet, 10, None)
            .await
            .unwrap_or_else(|e| panic!("tokens: {e:#}"));
        assert_eq!(fetched, 10);
        let refused = session::run(&stack.config, &suggest("secret")).await;
        let message = refused.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(
            message.contains("asked for another round trip; session stopped"),
            "after {honest}: {message}"
        );
        let exchanges = stack.exchanges.load(Ordering::SeqCst);
        assert_eq!(exchanges, honest + 1, "no exchange after the stall");
        assert_eq!(
            10 - stack.wallet_tokens(),
            exchanges,
            "one token per exchange sent"
        );
        assert_eq!(stack.feature.calls.load(Ordering::SeqCst), 0);
    }
}

/// Set by [`a_trust_file_planted_in_the_working_directory_is_ignored`] for
/// the copy of this test binary it runs in another working directory.
const PLANTED_CONFIG: &str = "CLOISTER_E2E_PLANTED_CONFIG";

/// A directory holding `policies/attestation.toml`, a copy of the policy `name`.
fn with_attestation_policy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join("policies")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(policy(name), dir.path().join("policies/attestation.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    dir
}

#[tokio::test]
async fn a_trust_file_planted_in_the_working_directory_is_ignored() {
    let stack = Stack::start(RELEASED).await;
    // The configuration names its attestation policy relatively: the
    // production one, next to the configuration file.
    let config_dir = with_attestation_policy("attestation.toml");
    let c = &stack.config;
    let text = format!(
        "demo = true\nstate_dir = {:?}\naccount_file = {:?}\n\n\
         [network]\nrelay_url = {:?}\nkey_config_url = {:?}\n\n\
         [tokens]\nissuer_url = {:?}\nbatch = 5\nlow_water = 4\n\n\
         [attestation]\npolicy_file = \"policies/attestation.toml\"\n\n\
         [trust]\nauthority = \"pinned\"\npinned_file = {:?}\n\n\
         [tls]\ninsecure_plain_http = true\n",
        c.state_dir,
        c.account_file,
        c.network.relay_url,
        c.network.key_config_url,
        c.tokens.issuer_url,
        c.trust.pinned_file,
    );
    let config_file = config_dir.path().join("cloister.toml");
    std::fs::write(&config_file, text).unwrap_or_else(|e| panic!("{e}"));
    // The working directory holds a policy that accepts simulated evidence.
    let working_dir = with_attestation_policy("attestation-simulated.toml");

    // This test binary, in that working directory, runs the client.
    let mut command =
        std::process::Command::new(std::env::current_exe().unwrap_or_else(|e| panic!("{e}")));
    command
        .args([
            "--exact",
            "cli::planted_trust_file_run",
            "--ignored",
            "--nocapture",
        ])
        .current_dir(working_dir.path())
        .env(PLANTED_CONFIG, &config_file);
    let child = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("running the client: {e}"));
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(
        stdout.contains("OUTCOME refused:") && stdout.contains("not trusted"),
        "the production policy beside the configuration applies: {stdout}"
    );
    assert_eq!(stack.feature.calls.load(Ordering::SeqCst), 0);
}

/// The client run of [`a_trust_file_planted_in_the_working_directory_is_ignored`]:
/// loads the configuration named by [`PLANTED_CONFIG`] and prints the outcome.
#[tokio::test]
#[ignore = "run by a_trust_file_planted_in_the_working_directory_is_ignored"]
async fn planted_trust_file_run() {
    let Some(path) = std::env::var_os(PLANTED_CONFIG) else {
        return;
    };
    let outcome = async {
        let config = Config::load(Some(Path::new(&path)))?;
        session::run(&config, &suggest("secret")).await
    }
    .await;
    match outcome {
        Ok(outcome) => println!("OUTCOME served: {:?}", outcome.response),
        Err(error) => println!("OUTCOME refused: {error:#}"),
    }
}
