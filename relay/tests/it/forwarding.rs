//! The relay against a stand-in gateway that records what reaches it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use cloister_relay::RelayConfig;
use tokio::net::TcpListener;

/// What the stand-in gateway saw: header names (lower case) and body.
type Seen = Arc<Mutex<Vec<(Vec<String>, Vec<u8>)>>>;

async fn spawn(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A gateway stand-in that records each request and answers like a gateway
/// would, plus headers the relay must not pass back.
async fn recording_gateway(seen: Seen, delay: Duration) -> SocketAddr {
    let app = axum::Router::new().route(
        "/gateway",
        post(move |headers: HeaderMap, body: Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                let names = headers.keys().map(|k| k.as_str().to_owned()).collect();
                seen.lock().expect("lock").push((names, body.to_vec()));
                tokio::time::sleep(delay).await;
                (
                    [
                        ("content-type", "message/ohttp-res"),
                        ("set-cookie", "gw=1"),
                        ("server", "gw"),
                    ],
                    "sealed-answer",
                )
            }
        }),
    );
    spawn(app).await
}

async fn relay_to(gateway: SocketAddr, timeout_ms: u64) -> String {
    let config = RelayConfig {
        gateway_url: format!("http://{gateway}/gateway"),
        max_request_bytes: 1024,
        timeout_ms,
        ..RelayConfig::default()
    };
    let addr = spawn(cloister_relay::app(config).expect("relay app")).await;
    format!("http://{addr}")
}

/// POST a small encapsulated-looking body to the relay; the answer's status.
async fn post_ohttp(relay: &str) -> u16 {
    let answer = reqwest::Client::new()
        .post(format!("{relay}/relay"))
        .header("content-type", "message/ohttp-req")
        .body("x")
        .send()
        .await
        .expect("relay answers");
    answer.status().as_u16()
}

#[tokio::test]
async fn outbound_request_carries_no_client_identifying_header() {
    let seen = Seen::default();
    let relay = relay_to(
        recording_gateway(Arc::clone(&seen), Duration::ZERO).await,
        5_000,
    )
    .await;
    let identifying = [
        ("x-forwarded-for", "203.0.113.7"),
        ("forwarded", "for=203.0.113.7"),
        ("x-real-ip", "203.0.113.7"),
        ("true-client-ip", "203.0.113.7"),
        ("via", "1.1 client-proxy"),
        ("cookie", "session=secret"),
        ("authorization", "Bearer account-key"),
        ("user-agent", "CloisterApp/1.0 (device 1234)"),
        ("accept-language", "de-CH"),
        ("referer", "https://example.com/me"),
        ("origin", "https://example.com"),
        ("x-client-id", "device-1234"),
    ];
    let mut request = reqwest::Client::new()
        .post(format!("{relay}/relay"))
        .header("content-type", "message/ohttp-req")
        .body(&b"opaque encapsulated bytes"[..]);
    for (name, value) in identifying {
        request = request.header(name, value);
    }
    let answer = request.send().await.expect("relay answers");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.headers().get("content-type").expect("content type"),
        "message/ohttp-res"
    );
    assert!(
        answer.headers().get("set-cookie").is_none(),
        "gateway headers are not passed back"
    );
    assert_eq!(
        answer.bytes().await.expect("body"),
        "sealed-answer",
        "answer passed back unchanged"
    );

    let seen = seen.lock().expect("lock");
    let (names, body) = &seen[0];
    assert_eq!(
        body, b"opaque encapsulated bytes",
        "body forwarded unchanged"
    );
    for (name, _) in identifying {
        assert!(
            !names.iter().any(|n| n == name),
            "{name} reached the gateway"
        );
    }
    let allowed = ["host", "content-type", "content-length", "accept"];
    for name in names {
        assert!(
            allowed.contains(&name.as_str()),
            "unexpected header {name} reached the gateway"
        );
    }
}

#[tokio::test]
async fn limits_refuse_without_stopping_the_relay() {
    let seen = Seen::default();
    let relay = relay_to(
        recording_gateway(Arc::clone(&seen), Duration::ZERO).await,
        5_000,
    )
    .await;
    let http = reqwest::Client::new();
    let post = |body: Vec<u8>, content_type: &'static str| {
        http.post(format!("{relay}/relay"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_eq!(
        post(vec![0; 2048], "message/ohttp-req")
            .await
            .expect("answer")
            .status(),
        413
    );
    assert_eq!(
        post(vec![0; 16], "application/json")
            .await
            .expect("answer")
            .status(),
        415
    );
    assert!(
        seen.lock().expect("lock").is_empty(),
        "refused requests are not forwarded"
    );
    assert_eq!(
        post(vec![0; 16], "message/ohttp-req")
            .await
            .expect("answer")
            .status(),
        200
    );
    let metrics = http
        .get(format!("{relay}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for line in [
        "cloister_relay_errors_total{kind=\"bad_body\"} 1",
        "cloister_relay_errors_total{kind=\"bad_media_type\"} 1",
        "cloister_relay_errors_total{kind=\"upstream_failed\"} 0",
        "cloister_relay_forwarded_total 1",
        "cloister_relay_requests_total{route=\"/relay\",status=\"2xx\"} 1",
        "cloister_relay_requests_total{route=\"/relay\",status=\"4xx\"} 2",
        "cloister_relay_request_duration_seconds_count{route=\"/relay\"} 3",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line} in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn slow_gateway_gets_a_gateway_timeout() {
    let seen = Seen::default();
    let relay = relay_to(
        recording_gateway(Arc::clone(&seen), Duration::from_secs(5)).await,
        300,
    )
    .await;
    assert_eq!(post_ohttp(&relay).await, 504);
    // The relay keeps answering after giving up on the gateway.
    let metrics = reqwest::get(format!("{relay}/metrics"))
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
}

#[tokio::test]
async fn unreachable_gateway_is_a_bad_gateway() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let relay = relay_to(closed, 2_000).await;
    assert_eq!(post_ohttp(&relay).await, 502);
}
