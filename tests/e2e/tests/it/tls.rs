//! TLS on every outer hop: each caller trusts only its configured CA, so a
//! network attacker presenting any other certificate (another CA's, or the
//! right CA's for another name) is refused before a byte of the request is
//! sent, and a client refuses a plain-HTTP relay unless told it is a demo.
//!
//! Each `untrusted_certificate_*` test points a caller that trusts CA A at
//! a server whose certificate comes from CA B, and checks that the caller
//! names the certificate in its error and that the server saw no request.

use std::error::Error as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bhttp::Message;
use cloister_client::ledger::{LedgerTrust, LedgerTrustConfig};
use cloister_client::tokens::{IssuerClient, IssuerSettings};
use cloister_client::{Client, ClientConfig, InnerRequest, Outbound, UncheckedKeys};
use cloister_gateway::{GatewayConfig, HttpForwardRouter, NoRedeemer, Router as _};
use cloister_ledger::Ledger;
use cloister_ledger_server::{WitnessConfig, Witnesses};
use cloister_ledger_verify::HexBytes;
use cloister_ledger_verify::cosignature::Cosigner;
use cloister_ledger_verify::review::{Reviewer, ReviewerPolicy};
use cloister_relay::RelayConfig;
use cloister_test_support::{Loopback, bind_loopback};
use cloister_tls::{DemoCa, Listener, ServerConfig, TlsSettings, Trust, error_chain};
use ed25519_dalek::SigningKey;

use crate::common::Issuer;

/// Two throwaway CAs: the one callers trust, and an attacker's.
struct Cas {
    dir: tempfile::TempDir,
    trusted: DemoCa,
    attacker: DemoCa,
}

impl Cas {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["trusted", "attacker"] {
            std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
        }
        Self {
            dir,
            trusted: DemoCa::new("trusted test CA").expect("CA"),
            attacker: DemoCa::new("attacker test CA").expect("CA"),
        }
    }

    /// `[tls]` of `party` with a loopback certificate of the trusted CA.
    fn trusted(&self, party: &str) -> TlsSettings {
        self.trusted
            .write_loopback(&self.dir.path().join("trusted"), party)
            .expect("certificate")
    }

    /// A server identity of the trusted CA for the loopback names.
    fn trusted_server(&self, party: &str) -> Arc<ServerConfig> {
        self.trusted(party)
            .server()
            .expect("server config")
            .expect("cert and key")
    }

    /// A server identity of the attacker's CA for the loopback names.
    fn attacker(&self, party: &str) -> Arc<ServerConfig> {
        self.attacker
            .write_loopback(&self.dir.path().join("attacker"), party)
            .expect("certificate")
            .server()
            .expect("server config")
            .expect("cert and key")
    }

    /// A server identity of the trusted CA, but for another name.
    fn wrong_name(&self) -> Arc<ServerConfig> {
        let (cert, key) = self.trusted.issue(&["other.example"]).expect("issue");
        let dir = self.dir.path();
        std::fs::write(dir.join("other.pem"), cert).expect("write");
        std::fs::write(dir.join("other.key"), key).expect("write");
        cloister_tls::server_config(&dir.join("other.pem"), &dir.join("other.key"))
            .expect("server config")
    }

    /// What callers trust: the trusted CA only.
    fn trust(&self) -> Trust {
        let ca = self
            .trusted
            .write_ca(&self.dir.path().join("trusted"))
            .expect("CA file");
        Trust::from_ca_file(&ca).expect("trust")
    }
}

/// A server on loopback that counts every request it is handed and
/// answers 200 "ok".
async fn counting_server(tls: Arc<ServerConfig>) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { "ok" }
    });
    (serve_https(app, tls).await, hits)
}

async fn serve_https(app: axum::Router, tls: Arc<ServerConfig>) -> SocketAddr {
    let (listener, addr) = bind_loopback().await;
    let listener = Listener::new(listener, Some(tls), "test server").expect("listener");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Checks that `error` is a refused certificate and that the server
/// (`party`) was handed no request.
fn assert_refused(error: &dyn std::error::Error, hits: &AtomicUsize, party: &str) {
    let message = error_chain(error);
    assert!(message.contains("invalid peer certificate"), "{message}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the {party} got a request");
}

/// The gateway's router to the one `host`, over HTTPS trusting `trust`.
fn router_to(host: SocketAddr, trust: &Trust) -> HttpForwardRouter {
    HttpForwardRouter::with_trust(
        vec![format!("https://{host}")],
        Duration::from_secs(10),
        4096,
        trust,
    )
    .expect("router")
}

fn inner_request() -> InnerRequest {
    InnerRequest::new("POST", "cloister.invalid", "/session").body("records")
}

fn client_config(relay: SocketAddr, tls: Outbound) -> ClientConfig {
    ClientConfig {
        relay_url: format!("https://{relay}/relay"),
        key_config_url: format!("https://{relay}{}", cloister_wire::OHTTP_KEYS_PATH),
        tls,
        ..ClientConfig::default()
    }
}

#[tokio::test]
async fn untrusted_certificate_client_to_relay() {
    let cas = Cas::new();
    let (relay, hits) = counting_server(cas.attacker("relay")).await;
    let client = Client::new(
        client_config(relay, Outbound::https(cas.trust())),
        UncheckedKeys,
    )
    .expect("client");
    let Err(error) = client.send(&inner_request()).await else {
        panic!("a relay with an untrusted certificate was used");
    };
    assert_refused(&error, &hits, "relay");
}

#[tokio::test]
async fn untrusted_certificate_relay_to_gateway() {
    let cas = Cas::new();
    let (gateway, hits) = counting_server(cas.attacker("gateway")).await;
    let relay = RelayConfig {
        gateway_url: format!("https://{gateway}/gateway"),
        key_config_url: format!("https://{gateway}{}", cloister_wire::OHTTP_KEYS_PATH),
        tls: TlsSettings {
            ca: cas.trusted("relay").ca,
            ..TlsSettings::default()
        },
        ..RelayConfig::default()
    };
    let (_app, keys) = cloister_relay::app_with_keys(relay).expect("relay");
    let error = keys.refresh().await.expect_err("refused");
    assert_refused(&error, &hits, "gateway");
}

#[tokio::test]
async fn untrusted_certificate_client_to_issuer() {
    let cas = Cas::new();
    let (issuer, hits) = counting_server(cas.attacker("issuer")).await;
    let client = IssuerClient::new(IssuerSettings {
        issuer_url: format!("https://{issuer}"),
        tls: Outbound::https(cas.trust()),
        ..IssuerSettings::default()
    })
    .expect("issuer client");
    let error = client.directory().await.expect_err("refused");
    assert_refused(&error, &hits, "issuer");
}

fn ledger_config(
    url: String,
    state: &Path,
    log_key: &SigningKey,
    tls: Outbound,
) -> LedgerTrustConfig {
    LedgerTrustConfig {
        ledger_url: url,
        timeout: Duration::from_secs(10),
        tls,
        ..LedgerTrustConfig::new(
            HexBytes(log_key.verifying_key().to_bytes()),
            state.join("ledger.json"),
        )
    }
}

#[tokio::test]
async fn untrusted_certificate_client_to_ledger() {
    let cas = Cas::new();
    let (ledger, hits) = counting_server(cas.attacker("ledger")).await;
    let state = tempfile::tempdir().expect("tempdir");
    let trust = LedgerTrust::open(ledger_config(
        format!("https://{ledger}"),
        state.path(),
        &SigningKey::from_bytes(&[7; 32]),
        Outbound::https(cas.trust()),
    ))
    .expect("open");
    let error = trust.sync().await.expect_err("refused");
    assert_refused(&error, &hits, "ledger");
}

#[tokio::test]
async fn untrusted_certificate_gateway_to_host() {
    let cas = Cas::new();
    // Another CA's certificate, and the trusted CA's for another name.
    for identity in [cas.attacker("host"), cas.wrong_name()] {
        let (host, hits) = counting_server(identity).await;
        let router = router_to(host, &cas.trust());
        let mut request = Message::request(
            b"POST".to_vec(),
            b"https".to_vec(),
            b"cloister.invalid".to_vec(),
            b"/session".to_vec(),
        );
        request.write_content(b"records");
        let Err(error) = router.route(request).await else {
            panic!("a host with an untrusted certificate was used");
        };
        assert_refused(&error, &hits, "host");
    }
}

/// A ledger whose one reviewer and log key are fixed test keys, in `dir`.
fn test_ledger(dir: &Path, log_key: &SigningKey) -> Ledger {
    let reviewer = SigningKey::from_bytes(&[8; 32]);
    let policy = ReviewerPolicy {
        threshold: 1,
        reviewers: vec![Reviewer {
            name: "r".into(),
            public_key: HexBytes(reviewer.verifying_key().to_bytes()),
        }],
        publishers: Vec::new(),
    };
    Ledger::open(&dir.join("ledger.redb"), log_key.clone(), policy).expect("ledger")
}

/// The ledger pushes its checkpoint to a witness posing with another CA's
/// certificate: the push is refused before the checkpoint is sent, and no
/// cosignature is published.
#[tokio::test]
async fn untrusted_certificate_ledger_to_witness() {
    let cas = Cas::new();
    let (witness, hits) = counting_server(cas.attacker("witness")).await;
    let cosigner =
        Cosigner::ed25519("witness.test", SigningKey::from_bytes(&[9; 32])).expect("cosigner");
    let vkey = cosigner.verifier_key();
    let witnesses = Arc::new(
        Witnesses::with_trust(
            &[WitnessConfig {
                url: format!("https://{witness}"),
                name: vkey.name().to_owned(),
                vkey: vkey.to_string(),
            }],
            Duration::from_secs(10),
            &cas.trust(),
        )
        .expect("witnesses"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let ledger = Arc::new(test_ledger(dir.path(), &SigningKey::from_bytes(&[7; 32])));
    witnesses.gather(&ledger).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the witness got a checkpoint"
    );
}

#[tokio::test]
async fn a_plain_http_relay_is_refused_without_the_demo_flag() {
    let plain = ClientConfig {
        relay_url: "http://127.0.0.1:9/relay".into(),
        key_config_url: format!("http://127.0.0.1:9{}", cloister_wire::OHTTP_KEYS_PATH),
        ..ClientConfig::default()
    };
    let error = Client::new(plain.clone(), UncheckedKeys).expect_err("plain relay refused");
    let message = error.to_string();
    assert!(
        message.contains("relay URL http://127.0.0.1:9/relay is plain HTTP")
            && message.contains("RFC 9458"),
        "{message}"
    );
    // The command line says the same, and only its demo flag lets it pass.
    let mut config = cloister_cli::config::Config::default();
    config.network.relay_url = plain.relay_url.clone();
    let refused = match config.client() {
        Ok(settings) => Client::new(settings, UncheckedKeys)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(format!("{e:#}")),
    };
    assert!(
        refused
            .expect_err("the CLI accepted a plain relay")
            .contains("plain HTTP"),
        "the CLI refused for another reason"
    );
    config.tls.insecure_plain_http = true;
    config.network.key_config_url = plain.key_config_url.clone();
    let settings = config.client().expect("demo settings");
    Client::new(settings, UncheckedKeys).expect("a demo may use plain HTTP");
    // So does the issuer's and the ledger's client.
    let issuer = IssuerClient::new(IssuerSettings {
        issuer_url: "http://127.0.0.1:9".into(),
        ..IssuerSettings::default()
    });
    assert!(
        issuer
            .expect_err("plain issuer")
            .to_string()
            .contains("plain HTTP")
    );
    let state = tempfile::tempdir().expect("tempdir");
    let ledger = LedgerTrust::open(ledger_config(
        "http://127.0.0.1:9".into(),
        state.path(),
        &SigningKey::from_bytes(&[7; 32]),
        Outbound::default(),
    ));
    assert!(
        ledger
            .expect_err("plain ledger")
            .to_string()
            .contains("plain HTTP")
    );
}

/// Client -> relay -> gateway -> host, every hop HTTPS trusting the run's
/// CA: the host's answer comes back.
#[tokio::test]
async fn the_relay_gateway_and_host_hops_work_over_tls() {
    let cas = Cas::new();
    let host_tls = cas.trusted_server("host");
    let (host, hits) = counting_server(host_tls).await;
    let router = router_to(host, &cas.trust());
    let stack = Loopback::start_with(
        &GatewayConfig {
            tls: cas.trusted("gateway"),
            ..GatewayConfig::default()
        },
        &RelayConfig {
            tls: cas.trusted("relay"),
            ..RelayConfig::default()
        },
        NoRedeemer {
            require_tokens: false,
        },
        router,
    )
    .await;
    assert!(
        stack.relay_url.starts_with("https://"),
        "{}",
        stack.relay_url
    );
    assert!(stack.gateway_origin.starts_with("https://"));
    let client = Client::new(
        ClientConfig {
            relay_url: stack.relay_url.clone(),
            key_config_url: stack.key_config_url.clone(),
            tls: Outbound::https(cas.trust()),
            ..ClientConfig::default()
        },
        UncheckedKeys,
    )
    .expect("client");
    let answer = client.send(&inner_request()).await.expect("answer");
    assert_eq!(answer.control().status().map(u16::from), Some(200));
    assert_eq!(answer.content(), b"ok");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_issuer_hop_works_over_tls() {
    let cas = Cas::new();
    let issuer = Issuer::start(10).await;
    let tls = cas.trusted_server("issuer");
    let addr = serve_https(
        cloister_issuer::server::router(Arc::clone(&issuer.state)),
        tls,
    )
    .await;
    let client = IssuerClient::new(IssuerSettings {
        issuer_url: format!("https://{addr}"),
        tls: Outbound::https(cas.trust()),
        ..issuer.settings()
    })
    .expect("issuer client");
    let directory = client.directory().await.expect("directory over TLS");
    assert!(!directory.token_keys.is_empty());
}

#[tokio::test]
async fn the_ledger_hop_works_over_tls() {
    let cas = Cas::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let log_key = SigningKey::from_bytes(&[7; 32]);
    let ledger = test_ledger(dir.path(), &log_key);
    let tls = cas.trusted_server("ledger");
    let addr = serve_https(cloister_ledger_server::router(ledger), tls).await;
    let trust = LedgerTrust::open(ledger_config(
        format!("https://{addr}"),
        dir.path(),
        &log_key,
        Outbound::https(cas.trust()),
    ))
    .expect("open");
    trust.sync().await.expect("sync over TLS");
    assert!(trust.tree_head().is_some());
}

/// A bad PEM file is named in the error.
#[test]
fn a_missing_or_bad_pem_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.pem");
    let error = Trust::from_ca_file(&missing).expect_err("missing");
    assert!(error.to_string().contains("missing.pem"), "{error}");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not PEM").expect("write");
    let error = cloister_tls::server_config(&junk, &junk).expect_err("junk");
    assert!(error.to_string().contains("junk.pem"), "{error}");
    assert!(error.source().is_some());
}
