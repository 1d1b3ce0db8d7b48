//! Many hosts behind one router: health probes steer new sessions, a
//! session stays on its host (also through another replica, and when a
//! host comes back), a session whose host is gone gets `SessionHostGone`,
//! and the host list reloads from the configuration file.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bhttp::Message;
use cloister_gateway::{
    HealthSettings, HttpForwardRouter, Metrics, RouteError, Router, RouterSettings, reload_hosts,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A stand-in host: `POST /session` answers with its name, `/healthz` as
/// the real host does while `healthy` is set (503 otherwise).
struct FakeHost {
    url: String,
    name: String,
    healthy: Arc<AtomicBool>,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<()>,
}

impl FakeHost {
    async fn start(name: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let healthy = Arc::new(AtomicBool::new(true));
        let answer = name.to_owned();
        let health = Arc::clone(&healthy);
        let app = axum::Router::new()
            .route(
                "/session",
                axum::routing::post(move || async move { answer }),
            )
            .route(
                "/healthz",
                axum::routing::get(move || async move {
                    if health.load(Ordering::SeqCst) {
                        (axum::http::StatusCode::OK, r#"{"status":"ok"}"#)
                    } else {
                        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "{}")
                    }
                }),
            );
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            url,
            name: name.to_owned(),
            healthy,
            stop: Some(stop),
            served,
        }
    }

    /// Stops accepting and closes every connection: the host is gone.
    async fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.served)
            .await
            .expect("host stops")
            .expect("host task");
    }
}

async fn three_hosts() -> (FakeHost, FakeHost, FakeHost) {
    (
        FakeHost::start("a").await,
        FakeHost::start("b").await,
        FakeHost::start("c").await,
    )
}

const FAST: HealthSettings = HealthSettings {
    every_ms: 50,
    timeout_ms: 500,
    unhealthy_after: 2,
    healthy_after: 2,
};

fn fleet_router(hosts: &[&FakeHost]) -> HttpForwardRouter {
    HttpForwardRouter::from_settings(
        &RouterSettings {
            hosts: hosts.iter().map(|h| h.url.clone()).collect(),
            timeout_secs: 5,
            connect_timeout_ms: 1000,
            ..RouterSettings::default()
        },
        &cloister_tls::Trust::default(),
    )
    .expect("router")
}

/// A TLS record header and a ClientHello handshake type: what opens a session.
const CLIENT_HELLO: &[u8] = &[22, 3, 1, 0, 4, 1, 0, 0, 0];

fn exchange(session: &str, route: Option<&str>, body: &[u8]) -> Message {
    let mut message = Message::request(
        b"POST".to_vec(),
        b"https".to_vec(),
        b"cloister.invalid".to_vec(),
        b"/session".to_vec(),
    );
    message.put_header("cloister-session", session);
    if let Some(route) = route {
        message.put_header("cloister-route", route);
    }
    message.write_content(body);
    message
}

/// Opens `session`: the answering host's name and the route label.
async fn open(router: &HttpForwardRouter, session: &str) -> (String, String) {
    let answer = router
        .route(exchange(session, None, CLIENT_HELLO))
        .await
        .expect("opened");
    let route = answer
        .header()
        .get(b"cloister-route")
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .expect("a new session's answer names its route");
    (
        String::from_utf8_lossy(answer.content()).into_owned(),
        route,
    )
}

/// Sends a later record of `session` along `route`.
async fn resume(
    router: &HttpForwardRouter,
    session: &str,
    route: &str,
) -> Result<String, RouteError> {
    let answer = router
        .route(exchange(session, Some(route), b"\x17\x03\x03"))
        .await?;
    assert!(
        answer.header().get(b"cloister-route").is_none(),
        "only a new session's answer carries a route"
    );
    Ok(String::from_utf8_lossy(answer.content()).into_owned())
}

/// A session id whose new session goes to `host` while every host is healthy.
async fn session_placed_on(router: &HttpForwardRouter, host: &FakeHost) -> String {
    for i in 0..1000 {
        let id = format!("probe-{i}");
        if router.hosts().candidates(id.as_bytes())[0].url() == host.url {
            return id;
        }
    }
    panic!("no session id lands on {}", host.name);
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn health_transitions_steer_new_sessions_only() {
    let (a, b, c) = three_hosts().await;
    let router = fleet_router(&[&a, &b, &c]);
    let metrics = Metrics::with_hosts(Arc::clone(router.hosts()));
    let probes = router.spawn_health_checks(FAST);
    let on_a = session_placed_on(&router, &a).await;
    let (host, route_a) = open(&router, &on_a).await;
    assert_eq!(host, "a");

    a.healthy.store(false, Ordering::SeqCst);
    let pool = Arc::clone(router.hosts());
    eventually("a is unhealthy", || !pool.hosts()[0].is_healthy()).await;
    let text = metrics.server().render();
    assert!(
        text.contains(&format!(
            "cloister_gateway_host_healthy{{host=\"{}\"}} 0",
            a.url
        )),
        "{text}"
    );
    assert!(
        text.contains("cloister_gateway_hosts_healthy 2\n"),
        "{text}"
    );
    // New sessions avoid a; the one opened on a still reaches it.
    for i in 0..30 {
        let (host, _) = open(&router, &format!("new-{i}")).await;
        assert_ne!(host, "a", "a new session went to an unhealthy host");
    }
    let (moved, _) = open(&router, &format!("{on_a}-again")).await;
    assert_ne!(moved, "a");
    assert_eq!(
        resume(&router, &on_a, &route_a).await.expect("resumed"),
        "a"
    );

    a.healthy.store(true, Ordering::SeqCst);
    eventually("a is healthy", || pool.hosts()[0].is_healthy()).await;
    assert_eq!(
        open(&router, &on_a).await.0,
        "a",
        "a takes new sessions again"
    );
    let text = metrics.server().render();
    assert!(
        text.contains(&format!(
            "cloister_gateway_host_requests_total{{host=\"{}\"}} 3",
            a.url
        )),
        "{text}"
    );
    probes.abort();
}

#[tokio::test]
async fn a_host_that_comes_back_does_not_take_sessions_opened_elsewhere() {
    let (a, b, c) = three_hosts().await;
    let router = fleet_router(&[&a, &b, &c]);
    let probes = router.spawn_health_checks(FAST);
    let pool = Arc::clone(router.hosts());
    // Sessions whose first choice is a, opened while a is down.
    let mut ids = Vec::new();
    for i in 0..1000 {
        let id = format!("s-{i}");
        if pool.candidates(id.as_bytes())[0].url() == a.url {
            ids.push(id);
        }
        if ids.len() == 10 {
            break;
        }
    }
    a.healthy.store(false, Ordering::SeqCst);
    eventually("a is unhealthy", || !pool.hosts()[0].is_healthy()).await;
    let mut opened = Vec::new();
    for id in &ids {
        let (host, route) = open(&router, id).await;
        assert_ne!(host, "a");
        opened.push((id.clone(), host, route));
    }

    // a comes back and is healthy again: the sessions stay where they are.
    a.healthy.store(true, Ordering::SeqCst);
    eventually("a is healthy", || pool.hosts()[0].is_healthy()).await;
    // Another replica, started now, with its own view of health (all
    // healthy) and no memory of these sessions, agrees.
    let replica = fleet_router(&[&a, &b, &c]);
    for (id, host, route) in &opened {
        assert_eq!(&resume(&router, id, route).await.expect("resumed"), host);
        assert_eq!(&resume(&replica, id, route).await.expect("resumed"), host);
        // A new session of the same id now goes to a: placement, not the
        // old session, follows health.
        assert_eq!(open(&replica, id).await.0, "a");
    }
    probes.abort();
}

#[tokio::test]
async fn a_session_whose_host_is_gone_is_told_so_and_new_sessions_go_elsewhere() {
    let (mut a, b, c) = three_hosts().await;
    // No probes: the refused connection alone takes a out.
    let router = fleet_router(&[&a, &b, &c]);
    let on_a = session_placed_on(&router, &a).await;
    let (_, route_a) = open(&router, &on_a).await;
    a.kill().await;

    let started = Instant::now();
    assert!(matches!(
        resume(&router, &on_a, &route_a).await,
        Err(RouteError::SessionHostGone(_))
    ));
    // The next new session that would have gone to a goes to b or c
    // without an error, whether or not a refused connection was seen yet.
    let other = fleet_router(&[&a, &b, &c]);
    let (host, _) = open(&other, &on_a).await;
    assert!(host == "b" || host == "c", "{host}");
    assert!(
        !other.hosts().hosts()[0].is_healthy(),
        "refused: marked down"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "nothing waits");
    // A route label no configured host has is gone too.
    assert!(matches!(
        resume(&router, &on_a, "0000000000000000").await,
        Err(RouteError::SessionHostGone(_))
    ));
}

#[tokio::test]
async fn the_host_list_reloads_from_the_configuration_file() {
    let (a, b, c) = three_hosts().await;
    let router = fleet_router(&[&a, &b]);
    let probes = router.spawn_health_checks(FAST);
    let pool = Arc::clone(router.hosts());
    let on_a = session_placed_on(&router, &a).await;
    let (_, route_a) = open(&router, &on_a).await;
    let on_b = session_placed_on(&router, &b).await;
    let (_, route_b) = open(&router, &on_b).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("gateway.toml");
    let write = |hosts: &[&str]| {
        let list: Vec<String> = hosts.iter().map(|h| format!("{h:?}")).collect();
        std::fs::write(&file, format!("[router]\nhosts = [{}]\n", list.join(", "))).expect("write");
    };
    // a is removed and c added.
    write(&[&b.url, &c.url]);
    let change = reload_hosts(&file, &pool).expect("reloaded");
    assert_eq!(change.added, vec![c.url.clone()]);
    assert_eq!(change.removed, vec![a.url.clone()]);
    assert_eq!(change.kept, 1);
    assert!(matches!(
        resume(&router, &on_a, &route_a).await,
        Err(RouteError::SessionHostGone(_))
    ));
    assert_eq!(resume(&router, &on_b, &route_b).await.expect("kept"), "b");
    // c takes new sessions once probed healthy.
    eventually("c is healthy", || pool.hosts()[1].is_healthy()).await;
    let mut seen_c = false;
    for i in 0..40 {
        seen_c |= open(&router, &format!("n-{i}")).await.0 == "c";
    }
    assert!(seen_c, "the added host takes new sessions");

    // Bad files keep the list in force.
    for bad in [
        "[router]\nhosts = []\n",
        "[router]\nhosts = [\"not a url\"]\n",
        "[router\n",
        "[router]\nhostz = []\n",
    ] {
        std::fs::write(&file, bad).expect("write");
        assert!(reload_hosts(&file, &pool).is_err(), "{bad}");
        assert_eq!(pool.hosts().len(), 2);
    }
    assert!(reload_hosts(&dir.path().join("missing.toml"), &pool).is_err());
    assert_eq!(resume(&router, &on_b, &route_b).await.expect("kept"), "b");
    probes.abort();
}
