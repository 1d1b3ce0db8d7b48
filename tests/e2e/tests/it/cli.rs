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
    SuggestRequest, SummariseRequest, Tone,
};
use cloister_attestation::{SimulatedLaunch, SimulatedPlatform, SimulatedProvider, Tcb};
use cloister_gateway::PrivacyPassRedeemer;
use cloister_privacypass::{Redeemer, TrustedKey};
use cloister_ratls::{FeatureService, SessionConfig, SessionTable, routes};
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
        match request {
            FeatureRequest::Suggest(suggest) => Ok(FeatureResponse::Suggestions {
                items: vec![suggest.draft.to_uppercase()],
            }),
            FeatureRequest::Summarise(_) => Err(OVER_BUDGET),
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
        SimulatedPlatform::from_seed(seed, TCB).unwrap_or_else(|e| panic!("platform: {e}"))
    })
}

/// Every party on loopback, and a client configuration pointing at them.
struct Stack {
    config: Config,
    feature: Arc<Echo>,
    issuer: issuer_fixture::Issuer,
    key_config_digest: String,
    _state: tempfile::TempDir,
}

impl Stack {
    /// A host launched with `measurement` behind a token-redeeming gateway.
    async fn start(measurement: [u8; 48]) -> Self {
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
        let host = serve_app(routes(Arc::new(table))).await;

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
        let redeemer =
            PrivacyPassRedeemer::new(Arc::new(Redeemer::new(trusted, &[challenge], 1000)));
        let servers = Loopback::start(redeemer, forward_to(host)).await;
        let key_config_digest = hex::encode(servers.key_config_digest());

        let state = tempfile::tempdir().unwrap_or_else(|e| panic!("state: {e}"));
        let config = Config {
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
            let launch = SimulatedLaunch::new(Measurement(*measurement), HostData(HOST_DATA));
            text.push_str(&format!(
                "[[launches]]\nmeasurement = \"{}\"\nhost_data = \"{}\"\n\
                 guest_policy = {}\nplatform_info = {}\n",
                hex::encode(measurement),
                hex::encode(HOST_DATA),
                launch.guest_policy,
                launch.platform_info,
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
    FeatureRequest::Suggest(SuggestRequest {
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
        FeatureResponse::Suggestions {
            items: vec!["SHIP IT".into()]
        }
    );
    assert_eq!(outcome.attestation.measurement, hex::encode(RELEASED));
    assert_eq!(outcome.attestation.host_data, hex::encode(HOST_DATA));
    assert!(outcome.attestation.simulated);
    // The empty wallet was refilled with a batch of 5, then each OHTTP
    // request of the session (handshake, attestation, request) took one.
    assert!(
        outcome.tokens_spent >= session::TOKENS_PER_SESSION,
        "{}",
        outcome.tokens_spent
    );
    assert_eq!(outcome.tokens_left, 5 - outcome.tokens_spent);
    assert_eq!(stack.wallet_tokens(), outcome.tokens_left);
    assert_eq!(stack.feature.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_budget_error_reaches_the_user_typed_with_its_fields() {
    let stack = Stack::start(RELEASED).await;
    let summarise = FeatureRequest::Summarise(SummariseRequest {
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
        session::fetch_tokens(&stack.config, &wallet, 3).await.ok(),
        Some(3)
    );
    let outcome = session::run(&stack.config, &suggest("hello"))
        .await
        .unwrap_or_else(|e| panic!("run: {e:#}"));
    assert_eq!(
        outcome.response,
        FeatureResponse::Suggestions {
            items: vec!["HELLO".into()]
        }
    );
}

#[test]
fn a_feature_request_outwaits_the_relay() {
    // The relay's own work around the exchange it times.
    const RELAY_WORK: Duration = Duration::from_secs(5);
    let ours = Config::default().client().timeout;
    let relay = Duration::from_millis(cloister_relay::RelayConfig::default().timeout_ms);
    assert!(
        ours >= relay + RELAY_WORK,
        "cloister waits {ours:?} for a relay that waits {relay:?}"
    );
}
