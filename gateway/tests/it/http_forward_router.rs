//! The loopback forwarding router against a real HTTP host on 127.0.0.1.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use bhttp::Message;
use cloister_gateway::{HttpForwardRouter, RouteError, Router};
use tokio::net::TcpListener;

/// A host that answers with what it received.
async fn spawn_host() -> String {
    let app = axum::Router::new().fallback(
        |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| async move {
            let names: Vec<_> = headers.keys().map(|k| k.as_str().to_owned()).collect();
            let text = format!(
                "{method} {uri} {} {}",
                names.join(","),
                String::from_utf8_lossy(&body)
            );
            // A host cannot set the route label the gateway gives clients.
            ([("x-host", "yes"), ("cloister-route", "forged")], text)
        },
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn request(path: &str) -> Message {
    let mut message = Message::request(
        b"PUT".to_vec(),
        b"https".to_vec(),
        b"cloister.invalid".to_vec(),
        path.into(),
    );
    message.put_header("cloister-session", "s1");
    message.put_header("authorization", "PrivateToken token=\"leak\"");
    message.put_header("x-app", "1");
    message.write_content("payload");
    message
}

#[tokio::test]
async fn forwards_method_path_headers_and_body_but_not_credentials() {
    let host = spawn_host().await;
    let router = HttpForwardRouter::new(vec![host], Duration::from_secs(5), 4096).expect("router");
    let response = router.route(request("/v1/run?x=1")).await.expect("routed");
    assert_eq!(
        response.control().status().map(bhttp::StatusCode::code),
        Some(200)
    );
    assert_eq!(response.header().get(b"x-host"), Some(&b"yes"[..]));
    let text = String::from_utf8(response.content().to_vec()).expect("utf8");
    assert!(text.starts_with("PUT /v1/run?x=1 "), "{text}");
    assert!(
        text.contains("cloister-session") && text.contains("x-app"),
        "{text}"
    );
    assert!(
        !text.contains("authorization"),
        "credentials are not forwarded: {text}"
    );
    assert!(text.ends_with(" payload"), "{text}");
    assert!(
        response.header().get(b"cloister-route").is_none(),
        "a host's route label does not reach the client"
    );
    let mut routed = request("/");
    let label = router.hosts().hosts()[0].route().to_owned();
    routed.put_header("cloister-route", label);
    let text = String::from_utf8(
        router
            .route(routed)
            .await
            .expect("routed by its label")
            .content()
            .to_vec(),
    )
    .expect("utf8");
    assert!(
        !text.contains("cloister-route"),
        "the route label is not forwarded to the host: {text}"
    );
}

#[tokio::test]
async fn refuses_bad_paths_oversized_answers_and_dead_hosts() {
    let host = spawn_host().await;
    let router =
        HttpForwardRouter::new(vec![host.clone()], Duration::from_secs(5), 4096).expect("router");
    assert!(matches!(
        router.route(request("@evil.example/")).await,
        Err(RouteError::BadAnswer(_))
    ));
    let tiny = HttpForwardRouter::new(vec![host], Duration::from_secs(5), 8).expect("router");
    assert!(matches!(
        tiny.route(request("/")).await,
        Err(RouteError::BadAnswer(_))
    ));
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    let dead = HttpForwardRouter::new(
        vec![format!("http://{closed}")],
        Duration::from_secs(5),
        4096,
    )
    .expect("router");
    assert!(matches!(
        dead.route(request("/")).await,
        Err(RouteError::Unavailable(_))
    ));
}
