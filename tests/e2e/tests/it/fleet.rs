//! Many hosts behind one gateway, every party its own process: three
//! `cloister-host serve` processes (the real plugins and policies, the
//! deterministic inference backend, SIMULATED attestation on the public
//! development platform), one `cloister-gateway` probing them, one
//! `cloister-relay`. Sessions spread over the three hosts; one host is
//! killed; the clients of its sessions each open exactly one new session
//! and are served; new sessions go to the other two; the operator removes
//! the dead host with a SIGHUP. Every wait is bounded.
//!
//! Like `surface.rs`, this needs the binaries beside the test binary
//! (`cargo build --bins`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cloister_api::Summary;
use cloister_attestation::{AllowList, Verifier};
use cloister_client::{
    Client, ClientConfig, OhttpTransport, RecoveringSession, TOKENS_PER_SESSION, TokenSource,
    UncheckedKeys,
};
use cloister_host::launch::LaunchDigests;

use crate::common::get_text as get;
use crate::development::verifier;
use crate::host::team_lunch;
use crate::surface::{
    Listener, Party, free_addr, loopback_http, plugin_dir, repo_root, shared_host_tables,
};

/// The whole test, parties' boot included, ends within this.
const WHOLE_TEST: Duration = Duration::from_secs(900);
/// One feature request (one new session at most) ends within this.
const ONE_REQUEST: Duration = Duration::from_secs(60);
/// Sessions held open across the kill, at least.
const SESSIONS: usize = 12;
/// Most sessions opened until each host holds one: new sessions go to
/// hosts by rendezvous hashing of random ids, so twelve leave a host empty
/// about once in 40 runs; this many, about once in 10^8.
const MAX_SESSIONS: usize = 48;

/// Hands out placeholder tokens (the gateway does not require any here)
/// and counts them: one per OHTTP request.
#[derive(Default)]
struct CountingTokens(AtomicUsize);

impl TokenSource for CountingTokens {
    fn next_token(&self) -> Option<String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Some("placeholder".into())
    }
}

fn listening(addr: std::net::SocketAddr) -> Vec<Listener> {
    vec![Listener {
        addr,
        routes: Vec::new(),
    }]
}

/// A host process serving on `addr`, its files in `dir`.
fn spawn_host(dir: &Path, addr: std::net::SocketAddr) -> Party {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
    let config = format!(
        "plugin-dir = {:?}\npolicy-dir = {:?}\n\n[inference]\nbackend = \"deterministic\"\n\n\
         [serve]\nlisten = \"{addr}\"\nidle-timeout-secs = 600\n\n{}",
        plugin_dir(),
        repo_root().join("policies"),
        shared_host_tables(),
    );
    Party::spawn("cloister-host", dir, &["serve"], &config, listening(addr))
}

fn gateway_config(listen: std::net::SocketAddr, hosts: &[std::net::SocketAddr]) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("\"http://{h}\"")).collect();
    format!(
        "listen = \"{listen}\"\n\n[keys]\nfile = \"gateway-keys.json\"\n\n\
         [tokens]\nrequire = false\n\n\
         [router]\nhosts = [{}]\ntimeout_secs = 30\nconnect_timeout_ms = 1000\n\n\
         [router.health]\nevery_ms = 200\ntimeout_ms = 1000\nunhealthy_after = 2\nhealthy_after = 2\n",
        hosts.join(", ")
    )
}

/// The value of the unlabelled metric `name` in `text`.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

/// RA-TLS sessions each host has opened so far.
async fn opened(hosts: &[std::net::SocketAddr]) -> Vec<u64> {
    let mut counts = Vec::new();
    for host in hosts {
        let text = get(&format!("http://{host}/metrics")).await;
        counts.push(metric(&text, "cloister_host_sessions_opened_total"));
    }
    counts
}

async fn bounded<T>(what: &str, limit: Duration, work: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| panic!("{what} did not end within {limit:?}"))
}

/// Polls `check` until it holds, for at most 30 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_move_off_a_killed_host() {
    bounded("the test", WHOLE_TEST, run()).await;
}

async fn run() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let http = loopback_http();
    let hosts: Vec<_> = (0..3).map(|_| free_addr()).collect();
    // The first host fills the simulated platform's cache; the others read it.
    let mut parties = vec![spawn_host(&dir.path().join("host-0"), hosts[0])];
    parties[0].ready(&http).await;
    for (i, addr) in hosts.iter().enumerate().skip(1) {
        parties.push(spawn_host(&dir.path().join(format!("host-{i}")), *addr));
    }
    for party in &mut parties {
        party.ready(&http).await;
    }
    let (gateway_addr, relay_addr) = (free_addr(), free_addr());
    let gateway_dir = dir.path().join("gateway");
    std::fs::create_dir_all(&gateway_dir).unwrap_or_else(|e| panic!("{e}"));
    let mut gateway = Party::spawn(
        "cloister-gateway",
        &gateway_dir,
        &[],
        &gateway_config(gateway_addr, &hosts),
        listening(gateway_addr),
    );
    gateway.ready(&http).await;
    let mut relay = Party::spawn(
        "cloister-relay",
        dir.path(),
        &[],
        &format!(
            "listen = \"{relay_addr}\"\ngateway_url = \"http://{gateway_addr}/gateway\"\n\
             key_config_url = \"http://{gateway_addr}/.well-known/ohttp-gateway\"\n"
        ),
        listening(relay_addr),
    );
    relay.ready(&http).await;
    let key_list = format!("http://{relay_addr}/.well-known/ohttp-gateway");
    eventually("the relay holds the gateway's keys", async || {
        http.get(&key_list)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;

    // Every host attests to the same launch: one binary, one configuration.
    let mut launches = Vec::new();
    for host in &hosts {
        let health: serde_json::Value =
            serde_json::from_str(&get(&format!("http://{host}/healthz")).await)
                .unwrap_or_else(|e| panic!("{e}"));
        let launch: LaunchDigests = serde_json::from_value(health["launch"].clone())
            .unwrap_or_else(|e| panic!("launch digests: {e}"));
        launches.push(launch);
    }
    assert!(launches.windows(2).all(|w| w[0] == w[1]), "{launches:?}");
    let verifier: Verifier<AllowList> = verifier(&launches[0]);

    let tokens = Arc::new(CountingTokens::default());
    let client = Client::new(
        ClientConfig {
            relay_url: format!("http://{relay_addr}/relay"),
            key_config_url: key_list.clone(),
            timeout: Duration::from_secs(45),
            tls: cloister_client::Outbound::insecure_demo(),
            ..ClientConfig::default()
        },
        UncheckedKeys,
    )
    .unwrap_or_else(|e| panic!("client: {e}"));
    let transport = OhttpTransport::new(Arc::new(client), "cloister.invalid")
        .with_tokens(Arc::clone(&tokens) as Arc<dyn TokenSource>);

    let summarise = team_lunch();

    // Sessions spread over all three hosts.
    let recoveries = Arc::new(AtomicUsize::new(0));
    let mut sessions = Vec::new();
    let mut before = Vec::new();
    while sessions.len() < SESSIONS || (before.contains(&0) && sessions.len() < MAX_SESSIONS) {
        let counted = Arc::clone(&recoveries);
        let session = bounded(
            "opening a session",
            ONE_REQUEST,
            RecoveringSession::establish(transport.fresh(), &verifier),
        )
        .await
        .unwrap_or_else(|e| panic!("session: {e}"))
        .on_recovery(move |recovery| {
            assert!(
                recovery
                    .to_string()
                    .contains("opening a new session (costs 3 tokens)")
            );
            counted.fetch_add(1, Ordering::SeqCst);
        });
        sessions.push(session);
        before = opened(&hosts).await;
    }
    assert_eq!(before.iter().sum::<u64>(), sessions.len() as u64);
    assert!(
        before.iter().all(|n| *n > 0),
        "sessions spread over all three: {before:?}"
    );

    // The host holding the most sessions is killed.
    let victim = (0..3).max_by_key(|i| before[*i]).unwrap_or(0);
    let lost = before[victim];
    let survivors: Vec<_> = (0..3).filter(|i| *i != victim).map(|i| hosts[i]).collect();
    parties[victim]
        .child
        .kill()
        .unwrap_or_else(|e| panic!("kill: {e}"));
    parties[victim]
        .child
        .wait()
        .unwrap_or_else(|e| panic!("wait: {e}"));

    // Every held session is served: those on the killed host after exactly
    // one new session each (one token for the refused request, then a
    // whole session), the others on their own host.
    for (i, session) in sessions.iter_mut().enumerate() {
        let spent = tokens.0.load(Ordering::SeqCst);
        let answer = bounded(
            "a request on a held session",
            ONE_REQUEST,
            session.request(&summarise),
        )
        .await
        .unwrap_or_else(|e| panic!("session {i}: {e}"));
        assert!(
            matches!(answer.decode::<Summary>(), Ok(Summary { .. })),
            "{answer:?}"
        );
        let cost = tokens.0.load(Ordering::SeqCst) - spent;
        match session.sessions_opened() {
            1 => assert_eq!(cost, 1, "session {i} stayed on its host"),
            2 => assert_eq!(cost, 1 + TOKENS_PER_SESSION, "session {i} recovered once"),
            n => panic!("session {i} opened {n} sessions"),
        }
    }
    let recovered = sessions.iter().filter(|s| s.sessions_opened() == 2).count();
    assert_eq!(
        recovered as u64, lost,
        "exactly the killed host's sessions recovered"
    );
    assert_eq!(
        recoveries.load(Ordering::SeqCst),
        recovered,
        "each said so once"
    );

    // New sessions go to the other two hosts, first time.
    let survivors_before = opened(&survivors).await;
    for i in 0..6 {
        let mut session = bounded(
            "opening a new session",
            ONE_REQUEST,
            RecoveringSession::establish(transport.fresh(), &verifier),
        )
        .await
        .unwrap_or_else(|e| panic!("new session {i}: {e}"));
        bounded(
            "a new session's request",
            ONE_REQUEST,
            session.request(&summarise),
        )
        .await
        .unwrap_or_else(|e| panic!("new session {i}: {e}"));
        assert_eq!(
            session.sessions_opened(),
            1,
            "new session {i} needed no recovery"
        );
    }
    let survivors_after = opened(&survivors).await;
    assert_eq!(
        survivors_after.iter().sum::<u64>() - survivors_before.iter().sum::<u64>(),
        6
    );

    // The gateway counted the lost sessions and took the host out.
    let gateway_metrics = format!("http://{gateway_addr}/metrics");
    let text = get(&gateway_metrics).await;
    assert!(
        text.contains(&format!(
            "cloister_gateway_errors_total{{kind=\"session_host_gone\"}} {lost}\n"
        )),
        "{text}"
    );
    let dead = format!(
        "cloister_gateway_host_healthy{{host=\"http://{}\"}} 0",
        hosts[victim]
    );
    eventually("the gateway sees the host down", async || {
        get(&gateway_metrics).await.contains(&dead)
    })
    .await;

    // The operator removes the dead host: SIGHUP reloads the list.
    std::fs::write(
        gateway_dir.join("cloister-gateway.toml"),
        gateway_config(gateway_addr, &survivors),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let signalled = std::process::Command::new("kill")
        .args(["-HUP", &gateway.child.id().to_string()])
        .status()
        .unwrap_or_else(|e| panic!("kill -HUP: {e}"));
    assert!(signalled.success());
    eventually("the reload drops the dead host", async || {
        let text = get(&gateway_metrics).await;
        !text.contains(&hosts[victim].to_string())
            && text.contains("cloister_gateway_hosts_healthy 2\n")
    })
    .await;
    let mut session = RecoveringSession::establish(transport.fresh(), &verifier)
        .await
        .unwrap_or_else(|e| panic!("after the reload: {e}"));
    session
        .request(&team_lunch())
        .await
        .unwrap_or_else(|e| panic!("after the reload: {e}"));
}
