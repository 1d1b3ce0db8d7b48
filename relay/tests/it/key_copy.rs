//! The relay's copy of the gateway's key configuration: clients get it from
//! the relay, and the gateway sees only the relay's own fetches.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::get;
use cloister_relay::{KeyCache, RelayConfig};
use cloister_wire::{OHTTP_KEYS_PATH, media};
use tokio::net::TcpListener;

/// A gateway's key endpoint that counts its fetches.
async fn key_endpoint(fetches: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().route(
        OHTTP_KEYS_PATH,
        get(move || {
            fetches.fetch_add(1, Ordering::SeqCst);
            async {
                (
                    [
                        ("content-type", media::OHTTP_KEYS),
                        ("cache-control", "public, max-age=600"),
                        ("etag", "\"k1\""),
                    ],
                    vec![0, 3, 1, 2, 3],
                )
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}{OHTTP_KEYS_PATH}")
}

/// A relay copying the key list at `key_config_url`: its key endpoint and
/// its copy.
async fn relay_copying(key_config_url: String) -> (String, Arc<KeyCache>) {
    let config = RelayConfig {
        key_config_url,
        ..RelayConfig::default()
    };
    let (app, keys) = cloister_relay::app_with_keys(config).expect("relay app");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let relay = format!(
        "http://{}{OHTTP_KEYS_PATH}",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (relay, keys)
}

#[tokio::test]
async fn clients_get_the_relays_copy_and_never_cause_a_fetch() {
    let fetches = Arc::new(AtomicUsize::new(0));
    let (relay, keys) = relay_copying(key_endpoint(Arc::clone(&fetches)).await).await;
    keys.loaded().await;
    let health = reqwest::get(relay.replace(OHTTP_KEYS_PATH, "/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200, "ready once it holds the key list");

    for _ in 0..5 {
        let answer = reqwest::get(&relay).await.expect("relay answers");
        assert_eq!(answer.status(), 200);
        let headers = answer.headers().clone();
        assert_eq!(headers["content-type"], media::OHTTP_KEYS);
        assert_eq!(headers["etag"], "\"k1\"");
        let cache = headers["cache-control"].to_str().expect("ascii").to_owned();
        let max_age: u64 = cache
            .strip_prefix("public, max-age=")
            .and_then(|age| age.parse().ok())
            .unwrap_or_else(|| panic!("{cache}"));
        assert!(
            (590..=600).contains(&max_age),
            "what is left of 600 s: {cache}"
        );
        assert_eq!(
            answer.bytes().await.expect("body").as_ref(),
            [0, 3, 1, 2, 3]
        );
    }
    assert_eq!(keys.served(), 5);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "one fetch, at start");
    // The schedule, not a client, makes the next one.
    keys.refresh().await.expect("refresh");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn without_a_copy_clients_are_told_to_come_back() {
    let (relay, keys) = relay_copying(format!("http://127.0.0.1:9{OHTTP_KEYS_PATH}")).await;
    assert!(keys.refresh().await.is_err());
    let answer = reqwest::get(&relay).await.expect("relay answers");
    assert_eq!(answer.status(), 503);
    assert_eq!(keys.served(), 0);
    let health = reqwest::get(relay.replace(OHTTP_KEYS_PATH, "/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 503, "not ready without keys to serve");
}
