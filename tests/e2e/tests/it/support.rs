//! The fixture itself: the relay forwards to its gateway, and the digest it
//! reports is the one of the configuration the gateway publishes.

use cloister_gateway::{EchoRouter, NoRedeemer, Rejection};
use cloister_test_support::Loopback;

#[tokio::test]
async fn the_relay_reaches_its_gateway_and_the_published_key_has_the_reported_digest() {
    let stack = Loopback::start(
        NoRedeemer {
            require_tokens: false,
        },
        EchoRouter,
    )
    .await;

    let list = reqwest::get(&stack.key_config_url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|e| panic!("GET {}: {e}", stack.key_config_url));
    let list = list
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("key list body: {e}"));
    let configs =
        cloister_ohttp_keys::split_key_list(&list).unwrap_or_else(|e| panic!("key list: {e}"));
    assert_eq!(configs.len(), 1, "the current key only");
    assert_eq!(
        cloister_ohttp_keys::key_config_digest(configs[0]),
        stack.key_config_digest()
    );

    // A truncated request for the current key, through the relay, reaches
    // this gateway, which refuses it without detail.
    let key_id = configs[0][0];
    let answer = reqwest::Client::new()
        .post(&stack.relay_url)
        .header("content-type", "message/ohttp-req")
        .body(vec![key_id, 0x00, 0x20])
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {}: {e}", stack.relay_url));
    assert_eq!(answer.status(), 400);
    assert_eq!(stack.metrics.encapsulated_requests(), 1);
    assert_eq!(stack.metrics.rejections(Rejection::DecapsulationFailed), 1);

    // The gateway's /metrics shows the same, with the request and the
    // relay's one key list fetch counted by route.
    let metrics_url = format!("{}/metrics", stack.gateway_origin);
    let text = crate::common::get_text(&metrics_url).await;
    for line in [
        "cloister_gateway_encapsulated_requests_total 1",
        "cloister_gateway_errors_total{kind=\"decapsulation_failed\"} 1",
        "cloister_gateway_errors_total{kind=\"replayed\"} 0",
        "cloister_gateway_key_configs_served_total 1",
        "cloister_gateway_requests_total{route=\"/gateway\",status=\"4xx\"} 1",
        "cloister_gateway_requests_total{route=\"/.well-known/ohttp-gateway\",status=\"2xx\"} 1",
        "cloister_gateway_request_duration_seconds_count{route=\"/gateway\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
}
