//! Aggregate metrics for every Cloister server, on `prometheus-client`.
//!
//! Each server (relay, gateway, issuer, ledger, host) builds one
//! [`ServerMetrics`] and exports it at `GET /metrics` in OpenMetrics text
//! ([`CONTENT_TYPE`]). Every server exports the same three families under
//! its own prefix:
//!
//! * `<prefix>_requests_total{route, status}`: HTTP requests by route
//!   template (`/v1/entries/{index}`, never the concrete path) and status
//!   class (`2xx` … `5xx`);
//! * `<prefix>_request_duration_seconds{route}`: a latency histogram per
//!   route, from the first byte of the request to the response head;
//! * `<prefix>_errors_total{kind}`: failures by kind, one label value per
//!   variant of the server's own closed [`ErrorKind`] enum, all exported
//!   from the start at zero.
//!
//! Beside those, a server registers its own aggregate figures: live
//! [`Counter`]s and [`Gauge`]s ([`ServerMetrics::counter`],
//! [`ServerMetrics::gauge`], [`ServerMetrics::counter_family`]), or figures
//! read from elsewhere at each scrape ([`ServerMetrics::collect`]).
//!
//! # Only aggregates leave the CVM
//!
//! Metrics are read by operators outside the confidential VM, so they carry
//! totals only: no label ever names a client, an account, a session, a
//! token, a key or a request. Label values come from closed sets fixed when
//! the server starts (route templates, status classes, error kinds, loaded
//! feature names). Code that adds labels must keep to that rule.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use cloister_metrics::{ErrorKind, ServerMetrics};
//!
//! #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
//! enum Failure {
//!     BadMediaType,
//!     UpstreamTimeout,
//! }
//!
//! impl ErrorKind for Failure {
//!     const ALL: &'static [Self] = &[Self::BadMediaType, Self::UpstreamTimeout];
//!     fn label(self) -> &'static str {
//!         match self {
//!             Self::BadMediaType => "bad_media_type",
//!             Self::UpstreamTimeout => "upstream_timeout",
//!         }
//!     }
//! }
//!
//! let mut metrics = ServerMetrics::<Failure>::new("cloister_example");
//! let forwarded = metrics.counter("forwarded", "Requests forwarded.");
//! metrics.collect(|figures| figures.gauge("queue_depth", "Requests waiting now.", 3));
//!
//! // What the HTTP layer ([`ServerMetrics::instrument`]) and the handlers record:
//! metrics.observe("/relay", 200, Duration::from_millis(4));
//! forwarded.inc();
//! metrics.observe("/relay", 415, Duration::from_micros(80));
//! metrics.error(Failure::BadMediaType);
//!
//! assert_eq!(metrics.requests("/relay"), 2);
//! assert_eq!(metrics.errors(Failure::BadMediaType), 1);
//! let text = metrics.render();
//! for line in [
//!     "cloister_example_requests_total{route=\"/relay\",status=\"2xx\"} 1",
//!     "cloister_example_errors_total{kind=\"bad_media_type\"} 1",
//!     "cloister_example_errors_total{kind=\"upstream_timeout\"} 0",
//!     "cloister_example_request_duration_seconds_count{route=\"/relay\"} 2",
//!     "cloister_example_forwarded_total 1",
//!     "cloister_example_queue_depth 3",
//!     "# EOF",
//! ] {
//!     assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
//! }
//! ```
//!
//! # Cargo features
//!
//! None: the crate always includes its `axum` integration
//! ([`ServerMetrics::instrument`], [`ServerMetrics::track`]), since every
//! Cloister server is an axum router.

mod http;

pub use http::METRICS_PATH;

use std::fmt::{self, Debug};
use std::hash::Hash;
use std::marker::PhantomData;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::{Registry, Unit};

pub use prometheus_client::metrics::counter::Counter;
pub use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::metrics::histogram::Histogram;

/// The media type of the `/metrics` body (OpenMetrics 1.0 text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Route label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The closed set of failures a server counts, one label value each.
pub trait ErrorKind: Copy + Eq + Hash + Debug + Send + Sync + 'static {
    /// Every kind, so that each is exported (at zero) before it first happens.
    const ALL: &'static [Self];
    /// The `kind` label value: short `snake_case`, fixed per variant.
    fn label(self) -> &'static str;
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Route {
    route: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

type HistogramFamily = Family<Route, Histogram, fn() -> Histogram>;

/// Latency buckets: 1 ms doubling to about 131 s, which spans a relay hop
/// and the longest plugin wall-time budget.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 18))
}

/// Size buckets: 64 B quadrupling to 16 MiB, coarse enough that a body's
/// bucket says nothing more than its order of magnitude (OHTTP leaks the
/// length to the relay and gateway anyway; the metric only aggregates it).
fn size_histogram() -> Histogram {
    Histogram::new(exponential_buckets(64.0, 4.0, 10))
}

/// One server's metrics: requests, errors by kind, latency, and its own
/// aggregate figures, rendered as OpenMetrics text.
pub struct ServerMetrics<E: ErrorKind> {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    latency: HistogramFamily,
    errors: ErrorCounter<E>,
}

/// The error counts of a [`ServerMetrics`], as a handle that parts of the
/// server can keep without owning the whole (e.g. a service that the
/// metrics' own collector reads from).
#[derive(Debug)]
pub struct ErrorCounter<E> {
    family: Family<Kind, Counter>,
    kinds: PhantomData<fn() -> E>,
}

impl<E> Clone for ErrorCounter<E> {
    fn clone(&self) -> Self {
        Self {
            family: self.family.clone(),
            kinds: PhantomData,
        }
    }
}

impl<E: ErrorKind> ErrorCounter<E> {
    /// Counts one failure of `kind`.
    pub fn inc(&self, kind: E) {
        self.family
            .get_or_create(&Kind { kind: kind.label() })
            .inc();
    }

    /// Failures of `kind` so far.
    #[must_use]
    pub fn get(&self, kind: E) -> u64 {
        self.family
            .get(&Kind { kind: kind.label() })
            .map_or(0, |counter| counter.get())
    }
}

impl<E: ErrorKind> Debug for ServerMetrics<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerMetrics")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl<E: ErrorKind> ServerMetrics<E> {
    /// Metrics whose names all start with `prefix` (e.g. `cloister_relay`).
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        let mut registry = Registry::with_prefix(prefix);
        let requests = Family::<RouteStatus, Counter>::default();
        registry.register(
            "requests",
            "HTTP requests by route template and status class.",
            requests.clone(),
        );
        let latency = HistogramFamily::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "request_duration",
            "Time from request to response head, by route template.",
            Unit::Seconds,
            latency.clone(),
        );
        let family = Family::<Kind, Counter>::default();
        registry.register("errors", "Failures by kind.", family.clone());
        for kind in E::ALL {
            let _ = family.get_or_create(&Kind { kind: kind.label() });
        }
        Self {
            registry,
            requests,
            latency,
            errors: ErrorCounter {
                family,
                kinds: PhantomData,
            },
        }
    }

    /// Registers and returns a counter `<prefix>_<name>_total`.
    pub fn counter(&mut self, name: &str, help: &str) -> Counter {
        let counter = Counter::default();
        self.registry.register(name, help, counter.clone());
        counter
    }

    /// Registers and returns a gauge `<prefix>_<name>`.
    pub fn gauge(&mut self, name: &str, help: &str) -> Gauge {
        let gauge = Gauge::default();
        self.registry.register(name, help, gauge.clone());
        gauge
    }

    /// Registers and returns a histogram of body sizes `<prefix>_<name>_bytes`
    /// (buckets of 64 B × 4ⁿ up to 16 MiB).
    pub fn size_histogram(&mut self, name: &str, help: &str) -> Histogram {
        let histogram = size_histogram();
        self.registry
            .register_with_unit(name, help, Unit::Bytes, histogram.clone());
        histogram
    }

    /// Registers and returns counters `<prefix>_<name>_total{labels}`.
    /// Label values must come from a closed set (see the crate docs).
    pub fn counter_family(&mut self, name: &str, help: &str) -> CounterFamily {
        let family = Family::default();
        self.registry.register(name, help, family.clone());
        CounterFamily(family)
    }

    /// Adds figures read at each scrape from state the server keeps
    /// elsewhere (a session table, a database). `figures` runs while
    /// `/metrics` renders, on a blocking thread.
    pub fn collect(&mut self, figures: impl Fn(&mut Figures) + Send + Sync + 'static) {
        self.registry
            .register_collector(Box::new(FigureCollector(Box::new(figures))));
    }

    /// Counts one failure of `kind`.
    pub fn error(&self, kind: E) {
        self.errors.inc(kind);
    }

    /// Failures of `kind` so far.
    #[must_use]
    pub fn errors(&self, kind: E) -> u64 {
        self.errors.get(kind)
    }

    /// A handle on the error counts.
    #[must_use]
    pub fn error_counter(&self) -> ErrorCounter<E> {
        self.errors.clone()
    }

    /// Records one request to `route` (a route template) answered with
    /// `status` after `elapsed`.
    pub fn observe(&self, route: &str, status: u16, elapsed: Duration) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.requests
            .get_or_create(&RouteStatus {
                route: route.to_owned(),
                status: class,
            })
            .inc();
        self.latency
            .get_or_create(&Route {
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Requests to `route` so far, whatever their status.
    #[must_use]
    pub fn requests(&self, route: &str) -> u64 {
        ["1xx", "2xx", "3xx", "4xx", "5xx"]
            .into_iter()
            .map(|status| {
                self.requests
                    .get(&RouteStatus {
                        route: route.to_owned(),
                        status,
                    })
                    .map_or(0, |counter| counter.get())
            })
            .sum()
    }

    /// Everything, as OpenMetrics text (ends with `# EOF`).
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            // Writing to a String cannot fail; a figure that refuses to
            // encode is reported and the rest still served.
            tracing::error!(%error, "metrics encoding failed");
        }
        text
    }
}

/// Counters that share a name and differ by labels, e.g.
/// `feature_requests_total{feature="summarise",outcome="ok"}`.
#[derive(Debug, Clone)]
pub struct CounterFamily(Family<Vec<(&'static str, String)>, Counter>);

impl CounterFamily {
    fn key(labels: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        labels
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned()))
            .collect()
    }

    /// Creates the counter for `labels` at zero, so it is exported before
    /// its first event.
    pub fn declare(&self, labels: &[(&'static str, &str)]) {
        let _ = self.0.get_or_create(&Self::key(labels));
    }

    /// Adds one to the counter for `labels`.
    pub fn inc(&self, labels: &[(&'static str, &str)]) {
        self.0.get_or_create(&Self::key(labels)).inc();
    }

    /// The counter for `labels`.
    #[must_use]
    pub fn get(&self, labels: &[(&'static str, &str)]) -> u64 {
        self.0.get(&Self::key(labels)).map_or(0, |c| c.get())
    }
}

/// Figures read at scrape time; see [`ServerMetrics::collect`].
#[derive(Debug, Default)]
pub struct Figures(Vec<Figure>);

#[derive(Debug)]
struct Figure {
    name: &'static str,
    help: &'static str,
    value: Value,
}

#[derive(Debug)]
enum Value {
    Counter(u64),
    Gauge(i64),
    Counters(&'static str, Vec<(String, u64)>),
    Gauges(&'static str, Vec<(String, i64)>),
}

impl Figures {
    /// A running total kept elsewhere, exported as `<prefix>_<name>_total`.
    pub fn counter(&mut self, name: &'static str, help: &'static str, value: u64) {
        self.0.push(Figure {
            name,
            help,
            value: Value::Counter(value),
        });
    }

    /// A current level, exported as `<prefix>_<name>`.
    pub fn gauge(&mut self, name: &'static str, help: &'static str, value: i64) {
        self.0.push(Figure {
            name,
            help,
            value: Value::Gauge(value),
        });
    }

    /// Running totals, one per value of `label`, exported as
    /// `<prefix>_<name>_total{label="…"}`. Label values must come from a
    /// closed set (see the crate docs).
    pub fn labelled_counters(
        &mut self,
        name: &'static str,
        help: &'static str,
        label: &'static str,
        series: Vec<(String, u64)>,
    ) {
        self.0.push(Figure {
            name,
            help,
            value: Value::Counters(label, series),
        });
    }

    /// Current levels, one per value of `label`, exported as
    /// `<prefix>_<name>{label="…"}`. Label values must come from a closed
    /// set (see the crate docs).
    pub fn labelled_gauges(
        &mut self,
        name: &'static str,
        help: &'static str,
        label: &'static str,
        series: Vec<(String, i64)>,
    ) {
        self.0.push(Figure {
            name,
            help,
            value: Value::Gauges(label, series),
        });
    }
}

type FigureSource = Box<dyn Fn(&mut Figures) + Send + Sync>;

struct FigureCollector(FigureSource);

impl Debug for FigureCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FigureCollector")
    }
}

impl Collector for FigureCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let mut figures = Figures::default();
        (self.0)(&mut figures);
        for figure in figures.0 {
            match figure.value {
                Value::Counter(value) => {
                    let counter = ConstCounter::new(value);
                    let metric = encoder.encode_descriptor(
                        figure.name,
                        figure.help,
                        None,
                        counter.metric_type(),
                    )?;
                    counter.encode(metric)?;
                }
                Value::Gauge(value) => {
                    let gauge = ConstGauge::new(value);
                    let metric = encoder.encode_descriptor(
                        figure.name,
                        figure.help,
                        None,
                        gauge.metric_type(),
                    )?;
                    gauge.encode(metric)?;
                }
                Value::Counters(label, series) => {
                    let mut metric = encoder.encode_descriptor(
                        figure.name,
                        figure.help,
                        None,
                        ConstCounter::new(0u64).metric_type(),
                    )?;
                    for (value, count) in series {
                        ConstCounter::new(count)
                            .encode(metric.encode_family(&[(label, value)])?)?;
                    }
                }
                Value::Gauges(label, series) => {
                    let mut metric = encoder.encode_descriptor(
                        figure.name,
                        figure.help,
                        None,
                        ConstGauge::new(0i64).metric_type(),
                    )?;
                    for (value, level) in series {
                        ConstGauge::new(level).encode(metric.encode_family(&[(label, value)])?)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests_support {
    use super::ErrorKind;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub(crate) enum Oops {
        One,
        Two,
    }

    impl ErrorKind for Oops {
        const ALL: &'static [Self] = &[Self::One, Self::Two];
        fn label(self) -> &'static str {
            match self {
                Self::One => "one",
                Self::Two => "two",
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests_support::Oops;

    #[test]
    fn latency_lands_in_its_bucket_and_statuses_in_their_class() {
        let metrics = ServerMetrics::<Oops>::new("t");
        metrics.observe("/a", 204, Duration::from_millis(3));
        metrics.observe("/a", 503, Duration::from_millis(3));
        metrics.observe("/b", 404, Duration::from_secs(2));
        assert_eq!(metrics.requests("/a"), 2);
        assert_eq!(metrics.requests("/b"), 1);
        assert_eq!(metrics.requests("/c"), 0);
        let text = metrics.render();
        for line in [
            "t_requests_total{route=\"/a\",status=\"2xx\"} 1",
            "t_requests_total{route=\"/a\",status=\"5xx\"} 1",
            "t_requests_total{route=\"/b\",status=\"4xx\"} 1",
            // 3 ms is above the 2 ms bound and within the 4 ms one.
            "t_request_duration_seconds_bucket{le=\"0.002\",route=\"/a\"} 0",
            "t_request_duration_seconds_bucket{le=\"0.004\",route=\"/a\"} 2",
            "t_request_duration_seconds_count{route=\"/b\"} 1",
            "t_errors_total{kind=\"one\"} 0",
            "t_errors_total{kind=\"two\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn sizes_land_in_quadrupling_byte_buckets() {
        let mut metrics = ServerMetrics::<Oops>::new("t");
        let sizes = metrics.size_histogram("body", "Body sizes.");
        sizes.observe(64.0);
        sizes.observe(65.0);
        sizes.observe(20_000_000.0);
        let text = metrics.render();
        for line in [
            "# UNIT t_body_bytes bytes",
            "t_body_bytes_bucket{le=\"64.0\"} 1",
            "t_body_bytes_bucket{le=\"256.0\"} 2",
            "t_body_bytes_bucket{le=\"16777216.0\"} 2",
            "t_body_bytes_bucket{le=\"+Inf\"} 3",
            "t_body_bytes_count 3",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn counter_families_and_figures_render_with_the_prefix() {
        let mut metrics = ServerMetrics::<Oops>::new("t");
        let family = metrics.counter_family("things", "Things.");
        family.declare(&[("a", "x")]);
        family.inc(&[("a", "y")]);
        family.inc(&[("a", "y")]);
        metrics.collect(|f| {
            f.counter("seen", "Seen.", 7);
            f.gauge("open", "Open.", -1);
            f.labelled_counters("hits", "Hits.", "h", vec![("x".into(), 3), ("y".into(), 4)]);
            f.labelled_gauges("up", "Up.", "h", vec![("x".into(), 1), ("y".into(), 0)]);
        });
        metrics.error(Oops::Two);
        assert_eq!(family.get(&[("a", "y")]), 2);
        assert_eq!(metrics.errors(Oops::Two), 1);
        let text = metrics.render();
        for line in [
            "t_things_total{a=\"x\"} 0",
            "t_things_total{a=\"y\"} 2",
            "# TYPE t_seen counter",
            "t_seen_total 7",
            "t_open -1",
            "# TYPE t_hits counter",
            "t_hits_total{h=\"x\"} 3",
            "t_hits_total{h=\"y\"} 4",
            "# TYPE t_up gauge",
            "t_up{h=\"x\"} 1",
            "t_up{h=\"y\"} 0",
            "t_errors_total{kind=\"two\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
