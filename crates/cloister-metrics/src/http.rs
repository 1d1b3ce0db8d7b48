//! The axum side: a layer that times and counts every request by route
//! template, and the `GET /metrics` endpoint.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::{CONTENT_TYPE, ErrorKind, ServerMetrics, UNMATCHED_ROUTE};

/// Path of the metrics endpoint.
pub const METRICS_PATH: &str = "/metrics";

impl<E: ErrorKind> ServerMetrics<E> {
    /// `router` with `GET /metrics` added and every route, that one
    /// included, counted and timed. Call it last: routes added to the
    /// result afterwards are not tracked.
    pub fn instrument(self: &Arc<Self>, router: axum::Router) -> axum::Router {
        let metrics = Arc::clone(self);
        self.track(router.route(METRICS_PATH, get(move || render(metrics))))
    }

    /// `router` with every route counted and timed, without serving
    /// `/metrics` (for a second origin of the same server).
    pub fn track(self: &Arc<Self>, router: axum::Router) -> axum::Router {
        router.layer(middleware::from_fn_with_state(Arc::clone(self), track::<E>))
    }
}

async fn track<E: ErrorKind>(
    State(metrics): State<Arc<ServerMetrics<E>>>,
    request: Request,
    next: Next,
) -> Response {
    // The template (`/v1/entries/{index}`), never the concrete path.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(&route, response.status().as_u16(), started.elapsed());
    response
}

/// Renders off the async workers: collectors may read a database.
async fn render<E: ErrorKind>(metrics: Arc<ServerMetrics<E>>) -> Response {
    match tokio::task::spawn_blocking(move || metrics.render()).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "metrics rendering failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt as _;

    use super::*;
    use crate::tests_support::Oops;

    async fn call(app: &axum::Router, path: &str) -> (StatusCode, String) {
        let response = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, String::from_utf8(body.to_vec()).expect("utf-8"))
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_template() {
        let metrics = Arc::new(ServerMetrics::<Oops>::new("t"));
        let app =
            metrics.instrument(axum::Router::new().route("/items/{id}", get(|| async { "item" })));
        for path in ["/items/1", "/items/2", "/nowhere"] {
            call(&app, path).await;
        }
        let (status, text) = call(&app, METRICS_PATH).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(metrics.requests("/items/{id}"), 2);
        for line in [
            "t_requests_total{route=\"/items/{id}\",status=\"2xx\"} 2",
            "t_requests_total{route=\"unmatched\",status=\"4xx\"} 1",
            "t_request_duration_seconds_count{route=\"/items/{id}\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        assert!(
            !text.contains("/items/1"),
            "a concrete path leaked:\n{text}"
        );
        assert_eq!(metrics.requests(METRICS_PATH), 1);
    }
}
