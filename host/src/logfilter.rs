//! The log allow-list: the only way anything leaves the host as a log line.
//!
//! Plugin events (from the WIT `log` interface) and the host's own `tracing`
//! events pass the same filter. An event whose name is not on the allow-list
//! is dropped; a field not declared for its event is dropped. Both are
//! counted, so an operator sees that something was suppressed without seeing
//! what.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The host itself.
    Host,
    /// A plugin, by manifest name (shared: every event of a request names it).
    Plugin(#[serde(serialize_with = "serialize_name")] Arc<str>),
}

fn serialize_name<S: serde::Serializer>(name: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(name)
}

/// An event or field name: usually a static name from code, so admitting
/// an event allocates nothing for its names.
pub type Name = Cow<'static, str>;

/// Severity of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Detail for developers.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected but handled.
    Warn,
    /// A failure.
    Error,
}

/// A field value. Plugins can only produce numbers and flags; labels come
/// from host code, which is reviewed to put only fixed names in them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// A non-negative count.
    Count(u64),
    /// A signed number.
    Signed(i64),
    /// A ratio or measurement.
    Ratio(f64),
    /// A flag.
    Flag(bool),
    /// A fixed name chosen by host code (plugin name, outcome).
    Label(String),
}

/// One admitted log record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogRecord {
    /// Who emitted it.
    pub source: Source,
    /// Severity.
    pub level: Level,
    /// Event name from the allow-list.
    pub event: Name,
    /// Admitted fields.
    pub fields: BTreeMap<Name, FieldValue>,
}

/// Where admitted records go.
pub trait LogSink: Send + Sync {
    /// Writes one admitted record.
    fn write(&self, record: &LogRecord);
}

/// The production sink: one JSON object per line on standard error.
#[derive(Debug, Default)]
pub struct JsonLinesSink;

impl LogSink for JsonLinesSink {
    fn write(&self, record: &LogRecord) {
        if let Ok(line) = serde_json::to_string(record) {
            // A failed write to stderr must not fail a request.
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}

/// A sink that keeps records in memory, for tests and the plugin test kit.
#[derive(Debug, Default, Clone)]
pub struct MemorySink(Arc<Mutex<Vec<LogRecord>>>);

impl MemorySink {
    /// The records written so far.
    pub fn records(&self) -> Vec<LogRecord> {
        self.0.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl LogSink for MemorySink {
    fn write(&self, record: &LogRecord) {
        if let Ok(mut records) = self.0.lock() {
            records.push(record.clone());
        }
    }
}

/// The allow-list file, `policies/log-allowlist.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AllowList {
    /// Plugin events (names from the WIT `log.event` enum) and their fields.
    #[serde(default)]
    pub plugin: BTreeMap<String, EventRule>,
    /// Host events (the `event` field of host `tracing` calls) and their fields.
    #[serde(default)]
    pub host: BTreeMap<String, EventRule>,
}

/// What may be recorded of one event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRule {
    /// Field names that may be kept.
    #[serde(default)]
    pub fields: BTreeSet<String>,
}

/// Counts of what the filter did, for aggregate metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FilterStats {
    /// Records written.
    pub kept_events: u64,
    /// Events dropped for not being on the allow-list.
    pub dropped_events: u64,
    /// Fields dropped for not being declared for their event.
    pub dropped_fields: u64,
}

/// The allow-list applied to records, with counters.
pub struct LogFilter {
    allow: AllowList,
    sink: Arc<dyn LogSink>,
    kept_events: AtomicU64,
    dropped_events: AtomicU64,
    dropped_fields: AtomicU64,
}

impl fmt::Debug for LogFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogFilter")
            .field("allow", &self.allow)
            .field("stats", &self.stats())
            .finish()
    }
}

impl LogFilter {
    /// A filter writing admitted records to `sink`.
    pub fn new(allow: AllowList, sink: Arc<dyn LogSink>) -> Self {
        Self {
            allow,
            sink,
            kept_events: AtomicU64::new(0),
            dropped_events: AtomicU64::new(0),
            dropped_fields: AtomicU64::new(0),
        }
    }

    /// Applies the allow-list to an event and writes what is admitted.
    /// Returns whether the event was kept.
    pub fn submit(
        &self,
        source: Source,
        level: Level,
        event: impl Into<Name>,
        fields: impl IntoIterator<Item = (Name, FieldValue)>,
    ) -> bool {
        let event = event.into();
        let rules = match source {
            Source::Host => &self.allow.host,
            Source::Plugin(_) => &self.allow.plugin,
        };
        let Some(rule) = rules.get(event.as_ref()) else {
            self.dropped_events.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let mut kept = BTreeMap::new();
        for (name, value) in fields {
            if rule.fields.contains(name.as_ref()) {
                kept.insert(name, value);
            } else {
                self.dropped_fields.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.kept_events.fetch_add(1, Ordering::Relaxed);
        self.sink.write(&LogRecord {
            source,
            level,
            event,
            fields: kept,
        });
        true
    }

    /// What the filter has done since start.
    pub fn stats(&self) -> FilterStats {
        FilterStats {
            kept_events: self.kept_events.load(Ordering::Relaxed),
            dropped_events: self.dropped_events.load(Ordering::Relaxed),
            dropped_fields: self.dropped_fields.load(Ordering::Relaxed),
        }
    }
}

/// A `tracing` layer that routes the host's own events through a [`LogFilter`].
///
/// Host code names each event with an `event` field
/// (`tracing::info!(event = "plugin-loaded", plugin = %name)`); an event without
/// one, including every event of third-party crates, is dropped and counted.
pub struct AllowListLayer(Arc<LogFilter>);

impl AllowListLayer {
    /// A layer feeding `filter`.
    pub fn new(filter: Arc<LogFilter>) -> Self {
        Self(filter)
    }
}

#[derive(Default)]
struct FieldCollector {
    event: Option<String>,
    fields: Vec<(Name, FieldValue)>,
}

impl Visit for FieldCollector {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.fields
            .push((Cow::Borrowed(field.name()), FieldValue::Count(value)));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.fields
            .push((Cow::Borrowed(field.name()), FieldValue::Signed(value)));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.fields
            .push((Cow::Borrowed(field.name()), FieldValue::Ratio(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.fields
            .push((Cow::Borrowed(field.name()), FieldValue::Flag(value)));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "event" {
            self.event = Some(value.to_owned());
        } else {
            self.fields.push((
                Cow::Borrowed(field.name()),
                FieldValue::Label(value.to_owned()),
            ));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AllowListLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut collector = FieldCollector::default();
        event.record(&mut collector);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::INFO => Level::Info,
            _ => Level::Debug,
        };
        let name = collector.event.unwrap_or_default();
        self.0.submit(Source::Host, level, name, collector.fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    fn filter() -> (Arc<LogFilter>, MemorySink) {
        let allow: AllowList = toml::from_str(
            r#"
[plugin.request-finished]
fields = ["output-bytes"]
[host.plugin-loaded]
fields = ["plugin"]
"#,
        )
        .expect("allow-list");
        let sink = MemorySink::default();
        (
            Arc::new(LogFilter::new(allow, Arc::new(sink.clone()))),
            sink,
        )
    }

    #[test]
    fn drops_unlisted_events_and_undeclared_fields() {
        let (filter, sink) = filter();
        let plugin = || Source::Plugin("p".into());
        assert!(!filter.submit(plugin(), Level::Info, "input-rejected", []));
        assert!(filter.submit(
            plugin(),
            Level::Info,
            "request-finished",
            [
                ("output-bytes".into(), FieldValue::Count(7)),
                ("input-bytes".into(), FieldValue::Count(9))
            ],
        ));
        // A host event name is not a plugin event name.
        assert!(!filter.submit(plugin(), Level::Info, "plugin-loaded", []));
        assert_eq!(
            filter.stats(),
            FilterStats {
                kept_events: 1,
                dropped_events: 2,
                dropped_fields: 1
            }
        );
        let records = sink.records();
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].fields.keys().collect::<Vec<_>>(),
            ["output-bytes"]
        );
    }

    #[test]
    fn host_tracing_passes_the_same_filter() {
        let (filter, sink) = filter();
        let subscriber = tracing_subscriber::registry().with(AllowListLayer::new(filter.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                event = "plugin-loaded",
                plugin = "summarise",
                secret = "user text"
            );
            tracing::info!("free text without an event name");
            tracing::warn!(event = "not-listed");
        });
        let records = sink.records();
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].fields.get("plugin"),
            Some(&FieldValue::Label("summarise".into()))
        );
        assert!(!records[0].fields.contains_key("secret"));
        assert!(!records[0].fields.contains_key("message"));
        assert_eq!(filter.stats().dropped_events, 2);
    }
}
