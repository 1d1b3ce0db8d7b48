//! `cloister-gateway`: the Oblivious HTTP gateway binary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use cloister_gateway::{
    ConfiguredRedeemer, Gateway, GatewayConfig, HttpForwardRouter, IssuerSettings, KeyService,
    Metrics, NoRedeemer, PrivacyPassRedeemer, ReplayGuard, serve, serve_key_configs,
    spawn_key_maintenance, spawn_published_key_maintenance, spawn_reload_on_hangup,
};
use cloister_ledger_verify::publish::KeyPublisher;
use cloister_ohttp_keys::KeyRing;
use cloister_state_store::{OnceSet, StateStore};
use cloister_tls::{Listener, PlainHttp, Trust, check_url};
use cloister_wire::unix_now;
use tracing_subscriber::EnvFilter;

/// Cloister's Oblivious HTTP gateway: decrypts requests that arrive through
/// the relay and forwards them to hosts.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file; without it the defaults apply (see gateway.example.toml).
    #[arg(long, short, env = "CLOISTER_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Print the current key configuration (hex) and its SHA-256 digest for the ledger, then exit.
    #[arg(long)]
    print_key_config: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let config: GatewayConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => GatewayConfig::default(),
    };
    let settings = &config.keys;
    let ring = match &settings.file {
        Some(file) => {
            let (ring, created) =
                KeyRing::load_or_generate(file, settings.policy(), &settings.aeads, unix_now())?;
            if created {
                tracing::info!(file = %file.display(), "created a new key file");
            }
            ring
        }
        None => {
            tracing::warn!(
                "no key file configured: keys are in memory only and change on every restart"
            );
            KeyRing::generate(settings.policy(), &settings.aeads, unix_now())?
        }
    };
    let keys = Arc::new(KeyService::new(
        ring,
        settings.file.clone(),
        Duration::from_secs(settings.max_cache_secs),
    ));
    if settings.ledger.is_none() {
        // With a ledger, the first round of the maintenance task does this
        // (rotating only onto a logged key).
        keys.maintain(unix_now())
            .context("initial key maintenance")?;
    }
    if args.print_key_config {
        keys.with_ring(|ring| {
            let config = ring.current_config();
            println!("key_id {}", ring.current_key_id());
            println!("config {}", hex::encode(config));
            println!(
                "sha256 {}",
                hex::encode(cloister_ohttp_keys::key_config_digest(config))
            );
        });
        return Ok(());
    }
    if !config.tokens.require {
        tracing::warn!("tokens are not required: any client may use this gateway");
    }
    let trust = config.tls.trust().context("[tls] ca")?;
    let server_tls = config.tls.server().context("[tls]")?;
    let router = HttpForwardRouter::from_settings(&config.router, &trust).context("[router]")?;
    router.spawn_health_checks(config.router.health.clone());
    if let Some(path) = &args.config {
        spawn_reload_on_hangup(path.clone(), Arc::clone(router.hosts()))
            .context("installing the SIGHUP handler")?;
    }
    let metrics = Arc::new(Metrics::with_hosts(Arc::clone(router.hosts())));
    let state = StateStore::open(&config.state)
        .await
        .with_context(|| format!("opening the state store, {}", config.state))?;
    tracing::info!(state = %config.state, "spent tokens and the replay guard kept in the state store");
    let replay = ReplayGuard::new(
        Duration::from_secs(config.replay.window_secs),
        state.once_set("replay", config.replay.capacity),
    );
    let tokens = match &config.tokens.issuer {
        Some(issuer) => ConfiguredRedeemer::PrivacyPass(PrivacyPassRedeemer::new(
            start_redeemer(issuer, state.once_set("spent", issuer.max_spent), &trust).await?,
        )),
        None => ConfiguredRedeemer::Unchecked(NoRedeemer {
            require_tokens: config.tokens.require,
        }),
    };
    let gateway = Arc::new(Gateway::new(
        Arc::clone(&keys),
        replay,
        tokens,
        router,
        Arc::clone(&metrics),
    ));
    let check_every = Duration::from_secs(settings.check_every_secs.max(1));
    match &settings.ledger {
        Some(ledger) => {
            let publisher = KeyPublisher::with_trust(ledger, Duration::from_secs(30), &trust)
                .context("[keys.ledger]")?;
            tracing::info!(ledger = %ledger.url, publisher = %publisher.public_key(), "logging every OHTTP key before use");
            spawn_published_key_maintenance(
                Arc::clone(&keys),
                Arc::new(publisher),
                check_every,
                Duration::from_secs(ledger.lead_secs),
            );
        }
        None => {
            spawn_key_maintenance(Arc::clone(&keys), check_every);
        }
    }

    if let Some(addr) = settings.listen {
        let listener = Listener::bind(addr, server_tls.clone(), "gateway key endpoint")
            .await
            .with_context(|| format!("binding {addr}"))?;
        tracing::info!(%addr, "key configuration endpoint listening");
        tokio::spawn(serve_key_configs(
            listener,
            Arc::clone(&keys),
            Arc::clone(&metrics),
        ));
    }
    let listener = Listener::bind(config.listen, server_tls, "gateway")
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(addr = %config.listen, path = %config.path, key_ids = ?keys.with_ring(KeyRing::key_ids), "gateway listening");
    tokio::select! {
        served = serve(listener, gateway, &config.path, config.max_request_bytes) => served?,
        _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
    }
    Ok(())
}

/// Fetches the issuer's key directory once (start-up fails without it) and
/// then every `refresh_secs`, so rotated keys are trusted as they appear.
async fn start_redeemer(
    issuer: &IssuerSettings,
    spent: OnceSet,
    trust: &Trust,
) -> anyhow::Result<Arc<cloister_privacypass::Redeemer>> {
    use cloister_privacypass::{IssuerDirectory, Redeemer, TokenChallenge, TrustedKey};

    let challenge = TokenChallenge::new(&issuer.issuer_name, None, &[issuer.origin.as_str()])
        .map_err(|e| anyhow::anyhow!("issuer name or origin: {e}"))?;
    check_url(
        "issuer directory URL",
        &issuer.directory_url,
        PlainHttp::Loopback,
    )?;
    let http = trust
        .http_client()
        .timeout(Duration::from_secs(10))
        .build()?;
    let fetch = {
        let (http, url, lifetime) = (
            http.clone(),
            issuer.directory_url.clone(),
            issuer.key_lifetime_secs,
        );
        move || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                let body = http
                    .get(&url)
                    .send()
                    .await?
                    .error_for_status()?
                    .bytes()
                    .await?;
                let directory = IssuerDirectory::from_json(&body)?;
                anyhow::Ok(TrustedKey::from_directory(&directory, lifetime)?)
            }
        }
    };
    let keys = fetch()
        .await
        .with_context(|| format!("fetching issuer directory {}", issuer.directory_url))?;
    tracing::info!(keys = keys.len(), url = %issuer.directory_url, "privacy pass redemption enabled");
    let redeemer = Arc::new(Redeemer::new(keys, &[challenge], spent));
    let refreshed = Arc::clone(&redeemer);
    let every = Duration::from_secs(issuer.refresh_secs.max(1));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match fetch().await {
                Ok(keys) => refreshed.set_keys(keys),
                Err(error) => {
                    tracing::warn!(%error, "issuer directory refresh failed; keeping the current keys")
                }
            }
        }
    });
    Ok(redeemer)
}
