//! The fixture itself: the relay forwards to its gateway, and the digest it
//! reports is the one of the configuration the gateway publishes.

use cloister_gateway::{Counter, EchoRouter, NoRedeemer};
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
    assert_eq!(stack.metrics.get(Counter::Requests), 1);
    assert_eq!(stack.metrics.get(Counter::DecapsulationFailed), 1);
}
