//! Faults of the deployed chain ([`crate::chain`], every party its own
//! process, the deterministic inference backend), each met by the `cloister`
//! command with a clear error within a bounded time, or with recovery:
//! the relay down; the gateway restarted with new keys; the ledger
//! unreachable (the client fails closed and says why); a plugin tampered
//! with on the host (the client refuses its launch); a slow host (the
//! timeouts nest, the innermost one ends the wait).
//!
//! A host killed mid-session, whose clients each recover with exactly one
//! new session: `fleet.rs`.

use std::time::{Duration, Instant};

use crate::chain::{Chain, Engine, Options};
use crate::common::get_text as get;

/// A summarise request, which the deterministic backend answers at once.
fn request_file() -> String {
    crate::surface::repo_root()
        .join("plugins/summarise/testdata/team-lunch.json")
        .display()
        .to_string()
}

/// `cloister summarise`, which must be answered; how long it took.
async fn served(chain: &Chain, file: &str) -> Duration {
    let started = Instant::now();
    let output = chain.cloister(&["summarise", file]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("AI answer by `summarise`"), "{stdout}");
    started.elapsed()
}

/// `cloister summarise`, which must fail; its stderr, and how long it took.
async fn refused(chain: &Chain, file: &str) -> (String, Duration) {
    let started = Instant::now();
    let output = chain.try_cloister(&["summarise", file]).await;
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!("refused after {took:?}:\n{stderr}");
    assert!(
        !output.status.success(),
        "served: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    (stderr, took)
}

/// The wallet's usable tokens.
async fn usable_tokens(chain: &Chain) -> u64 {
    let output = chain.cloister(&["--json", "tokens", "status"]).await;
    let status: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}"));
    status["usable"]
        .as_u64()
        .unwrap_or_else(|| panic!("{status}"))
}

/// The `application/ohttp-keys` list served at `url`.
async fn key_list(url: &str) -> Vec<u8> {
    let answer = crate::surface::loopback_http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    answer
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .to_vec()
}

/// How many `POST /gateway` requests the gateway has received.
fn gateway_requests(chain: &Chain) -> usize {
    chain
        .gateway_tap
        .recorded()
        .iter()
        .map(|bytes| bytes.windows(14).filter(|w| w == b"POST /gateway ").count())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_is_down_is_a_clear_error_and_nothing_hangs() {
    let mut chain = Chain::start(Options::new(Engine::Deterministic)).await;
    let file = request_file();
    served(&chain, &file).await;
    chain.kill("relay");
    let before = gateway_requests(&chain);
    let (stderr, took) = refused(&chain, &file).await;
    let relay = chain.relay_tap.addr;
    assert!(
        stderr.contains(&format!(
            "transport failed: transport: error sending request for url (http://{relay}/relay)"
        )) && stderr.contains("Connection refused"),
        "the error names the relay and why: {stderr}"
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert_eq!(
        gateway_requests(&chain),
        before,
        "nothing reached the gateway"
    );

    chain.restart("relay").await;
    served(&chain, &file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restarted_with_a_key_rotation_is_found_again_by_the_client() {
    let mut options = Options::new(Engine::Deterministic);
    // The relay's copy of the key list follows the gateway within a second.
    options.relay = "key_refresh_secs = 1\n".into();
    let mut chain = Chain::start(options).await;
    let file = request_file();
    served(&chain, &file).await;
    let cached = chain.dir.path().join("client/state/ohttp-keys.json");
    let old = std::fs::read(&cached).unwrap_or_else(|e| panic!("{e}"));

    // While the gateway is down, its operator rotates its keys, the old
    // key forgotten at once (no overlap). The gateway restarts on the new
    // key, logging it in the ledger before serving it.
    chain.kill("gateway");
    let mut settings = cloister_gateway::GatewayConfig::default().keys;
    settings.overlap_secs = 0;
    let key_file = chain.dir.path().join("gateway/keys.json");
    let now = cloister_wire::unix_now();
    let (mut ring, _) = cloister_ohttp_keys::KeyRing::load_or_generate(
        &key_file,
        settings.policy(),
        &settings.aeads,
        now,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    ring.rotate(now).unwrap_or_else(|e| panic!("{e}"));
    ring.maintain(now).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ring.key_ids().len(), 1, "the old key is gone");
    ring.save(&key_file).unwrap_or_else(|e| panic!("{e}"));
    chain.restart("gateway").await;
    let old_id = serde_json::from_slice::<serde_json::Value>(&old)
        .ok()
        .and_then(|cached| cached["config"][0].as_u64())
        .unwrap_or_else(|| panic!("no key id in the saved configuration"));
    let gateway = format!("http://{}/.well-known/ohttp-gateway", chain.gateway_addr);
    let relay = format!("http://{}/.well-known/ohttp-gateway", chain.relay_tap.addr);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = key_list(&gateway).await;
        let ids: Vec<u64> = cloister_ohttp_keys::split_key_list(&list)
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|config| u64::from(config[0]))
            .collect();
        if !ids.contains(&old_id) && key_list(&relay).await == list {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the relay did not follow the gateway's keys {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The client, holding the old configuration whose key is gone, is told
    // the key is unknown, fetches the new one, finds it in the ledger and
    // is served.
    served(&chain, &file).await;
    assert_ne!(
        std::fs::read(&cached).unwrap_or_default(),
        old,
        "keys refetched"
    );
    let metrics = get(&format!("http://{}/metrics", chain.gateway_addr)).await;
    let unknown_key = metrics.lines().find_map(|line| {
        line.strip_prefix("cloister_gateway_errors_total{kind=\"unknown_key_id\"} ")?
            .parse::<u64>()
            .ok()
    });
    assert!(unknown_key >= Some(1), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_ledger_fails_closed_and_says_why() {
    let mut chain = Chain::start(Options::new(Engine::Deterministic)).await;
    let file = request_file();
    // A client that has no view of the ledger yet (a new device).
    std::fs::remove_file(chain.dir.path().join("client/state/ledger.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    chain.kill("ledger");
    let tokens = usable_tokens(&chain).await;
    let before = gateway_requests(&chain);
    let (stderr, took) = refused(&chain, &file).await;
    assert!(
        stderr.contains("no verified view of the ledger: nothing can be trusted")
            && stderr.contains(&format!(
                "ledger http://{}/checkpoint: error sending request",
                chain.ledger_tap.addr
            ))
            && stderr.contains("Connection refused"),
        "the error says why, naming the ledger: {stderr}"
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert_eq!(gateway_requests(&chain), before, "nothing was sent");
    assert_eq!(usable_tokens(&chain).await, tokens, "no token spent");

    chain.restart("ledger").await;
    served(&chain, &file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_plugin_on_the_host_is_refused_by_the_client() {
    let mut options = Options::new(Engine::Deterministic);
    options.own_host_files = true;
    let mut chain = Chain::start(options).await;
    let file = request_file();
    served(&chain, &file).await;

    // The operator changes the summarise component and writes its new digest
    // into the manifest, so that the host loads it: the launch is no longer
    // the released one.
    chain.kill("host");
    let host = chain.dir.path().join("host");
    let component = host.join("plugins/summarise.wasm");
    let mut bytes = std::fs::read(&component).unwrap_or_else(|e| panic!("{e}"));
    let released = cloister_host::Digest::of(&bytes).to_string();
    // A custom section (id 0, size 10, name "tampered", one byte).
    bytes.extend_from_slice(b"\x00\x0a\x08tampered!");
    let tampered = cloister_host::Digest::of(&bytes).to_string();
    std::fs::write(&component, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let manifest = host.join("policies/plugins/summarise.toml");
    let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains(&released), "{text}");
    std::fs::write(&manifest, text.replace(&released, &tampered)).unwrap_or_else(|e| panic!("{e}"));
    chain.restart("host").await;

    let tokens = usable_tokens(&chain).await;
    let (stderr, took) = refused(&chain, &file).await;
    assert!(
        stderr.contains("the host is not trusted: nothing was sent to it")
            && stderr.contains("measurement not accepted"),
        "the client refuses the launch: {stderr}"
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
    // The handshake and the attestation were paid for; the request never left.
    assert!(usable_tokens(&chain).await >= tokens - 2);
}

#[test]
fn timeouts_nest_from_the_host_to_the_client() {
    let policies = cloister_host::HostConfig {
        policy_dir: crate::surface::repo_root().join("policies"),
        ..cloister_host::HostConfig::default()
    }
    .policies()
    .unwrap_or_else(|e| panic!("{e}"));
    let host = policies
        .manifests()
        .iter()
        .map(|manifest| Duration::from_millis(manifest.limits.time_ms))
        .max()
        .unwrap_or_else(|| panic!("no plugin"));
    let gateway = Duration::from_secs(
        cloister_gateway::GatewayConfig::default()
            .router
            .timeout_secs,
    );
    let relay = Duration::from_millis(cloister_relay::RelayConfig::default().timeout_ms);
    let client = cloister_cli::config::Config::default()
        .client()
        .unwrap_or_else(|e| panic!("{e}"))
        .timeout;
    assert!(
        host < gateway && gateway < relay && relay < client,
        "host {host:?} < gateway {gateway:?} < relay {relay:?} < client {client:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_host_ends_at_the_gateways_deadline_within_the_clients() {
    // The defaults' nesting, scaled down: gateway 3 s, relay 6 s, client 12 s.
    let mut options = Options::new(Engine::Deterministic);
    options.router = "timeout_secs = 3\n".into();
    options.relay = "timeout_ms = 6000\n".into();
    options.client = "timeout_secs = 12\n".into();
    let chain = Chain::start(options).await;
    let file = request_file();
    // The command's own work (start-up, ledger sync) and the six phases.
    let usual = served(&chain, &file).await;

    // Every answer of the host now takes longer than the gateway waits.
    chain.host_tap.delay_answers(Duration::from_secs(20));
    let tokens = usable_tokens(&chain).await;
    let (stderr, took) = refused(&chain, &file).await;
    assert!(
        stderr.contains("host answered 504: {\"title\":\"host unavailable\""),
        "the gateway's deadline: {stderr}"
    );
    assert!(
        took >= Duration::from_secs(3),
        "the gateway waited: {took:?}"
    );
    assert!(
        took < usual + Duration::from_secs(12),
        "the client's own deadline did not have to end it: {took:?}"
    );
    assert!(usable_tokens(&chain).await < tokens);

    // A host slower than usual but within the deadline is served.
    chain.host_tap.delay_answers(Duration::from_millis(500));
    served(&chain, &file).await;
}
