//! The log allow-list: the only way anything leaves the host as a log line.
//!
//! Plugin events (from the WIT `log` interface) and the host's own `tracing`
//! events pass the same filter. An event whose name is not on the allow-list
//! is dropped; a field not declared for its event is dropped; a declared
//! field is reduced to what the allow-list says it may hold (a number to
//! the lower bound of its bucket, a label to a fixed set). Both are counted,
//! so an operator sees that something was suppressed without seeing what.
//!
//! # The bound on what a plugin can say
//!
//! A plugin sees the conversation and may try to write it into the log:
//! as numbers, as its choice of events and fields, as their order or their
//! count. The allow-list leaves it a finite set of outputs per request:
//! at most `plugin-events-per-request` events, each one of the forms its
//! rule allows, at a fixed level. [`AllowList::bits_per_request`] is log2 of
//! the number of distinct log outputs of one request, host events included,
//! and an allow-list above [`MAX_BITS_PER_REQUEST`] is refused.

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Detail for developers.
    Debug,
    /// Normal operation.
    #[default]
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

/// The most information one request's log output may carry, in bits: an
/// allow-list whose bound ([`AllowList::bits_per_request`]) is larger is
/// refused.
pub const MAX_BITS_PER_REQUEST: f64 = 64.0;

/// Plugin events one request may emit when the allow-list does not say.
const DEFAULT_PLUGIN_EVENTS_PER_REQUEST: u32 = 8;

/// The allow-list file, `policies/log-allowlist.toml`: which events and
/// fields may leave the host, what each field may hold, and how many plugin
/// events one request may emit. It is checked when parsed
/// ([`AllowListError`]).
///
/// Whatever a plugin does, the log lines of one request are then one of a
/// finite set of outputs, whose size [`AllowList::bits_per_request`] gives.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "AllowListFile")]
pub struct AllowList {
    limits: AllowListLimits,
    plugin: BTreeMap<String, EventRule>,
    request: BTreeMap<String, EventRule>,
    host: BTreeMap<String, EventRule>,
}

/// The file as written, before its checks.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct AllowListFile {
    #[serde(default)]
    limits: AllowListLimits,
    /// Plugin events (names from the WIT `log.event` enum) and their fields.
    #[serde(default)]
    plugin: BTreeMap<String, EventRule>,
    /// Host events emitted once per request.
    #[serde(default)]
    request: BTreeMap<String, EventRule>,
    /// Host events outside requests (start-up, shutdown).
    #[serde(default)]
    host: BTreeMap<String, EventRule>,
}

/// The `[limits]` table of the allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AllowListLimits {
    /// Events one request's plugin may emit; later ones are dropped.
    pub plugin_events_per_request: u32,
}

impl Default for AllowListLimits {
    fn default() -> Self {
        Self {
            plugin_events_per_request: DEFAULT_PLUGIN_EVENTS_PER_REQUEST,
        }
    }
}

/// What may be recorded of one event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRule {
    /// The level a plugin event is recorded at, whatever level the plugin
    /// asked for (a choice of four levels would carry two bits per event).
    /// Host events keep the level of their call site.
    #[serde(default)]
    pub level: Level,
    /// The fields that may be kept, each with what it may hold.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldRule>,
}

/// What one field may hold. Values are reduced to it: what does not fit is
/// left out of the record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FieldRule {
    /// A non-negative number, recorded as the largest bound not above it
    /// (the lower end of its bucket, so `[0, 10, 100]` records 57 as 10 and
    /// 5000 as 100). A number below the first bound is left out; a negative
    /// or fractional one counts as its whole part, if any.
    Buckets(Vec<u64>),
    /// One label of this set; any other is left out.
    Labels(BTreeSet<String>),
    /// A flag.
    Flag,
    /// Any value, as host code wrote it: only in `[host.*]` events, which
    /// happen outside requests.
    Any,
}

/// Why an allow-list is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AllowListError {
    /// Buckets must be a non-empty, strictly increasing list.
    #[error("`{event}.{field}`: buckets must be a non-empty, strictly increasing list")]
    BadBuckets {
        /// The event.
        event: String,
        /// The field.
        field: String,
    },
    /// A label set must name at least one label.
    #[error("`{event}.{field}`: the label set is empty")]
    EmptyLabels {
        /// The event.
        event: String,
        /// The field.
        field: String,
    },
    /// `any` in an event a request can cause.
    #[error("`{event}.{field}`: `any` is allowed only in [host.*] events, outside requests")]
    Unbounded {
        /// The event.
        event: String,
        /// The field.
        field: String,
    },
    /// A host event listed both under `[request.*]` and `[host.*]`.
    #[error("`{0}` is listed both as a request event and a host event")]
    ListedTwice(String),
    /// The events of one request could carry more than
    /// [`MAX_BITS_PER_REQUEST`].
    #[error(
        "one request's log output could carry {bits:.1} bits; at most {MAX_BITS_PER_REQUEST} are allowed"
    )]
    TooManyBits {
        /// The bound of the refused list.
        bits: f64,
    },
}

impl TryFrom<AllowListFile> for AllowList {
    type Error = AllowListError;

    fn try_from(file: AllowListFile) -> Result<Self, AllowListError> {
        if let Some(name) = file.request.keys().find(|n| file.host.contains_key(*n)) {
            return Err(AllowListError::ListedTwice(name.clone()));
        }
        let sections = [
            ("plugin", &file.plugin),
            ("request", &file.request),
            ("host", &file.host),
        ];
        for (section, events) in sections {
            for (event, rule) in events {
                for (field, kind) in &rule.fields {
                    let at = || (format!("{section}.{event}"), field.clone());
                    match kind {
                        FieldRule::Buckets(bounds)
                            if bounds.is_empty() || !bounds.windows(2).all(|w| w[0] < w[1]) =>
                        {
                            let (event, field) = at();
                            return Err(AllowListError::BadBuckets { event, field });
                        }
                        FieldRule::Labels(labels) if labels.is_empty() => {
                            let (event, field) = at();
                            return Err(AllowListError::EmptyLabels { event, field });
                        }
                        FieldRule::Any if section != "host" => {
                            let (event, field) = at();
                            return Err(AllowListError::Unbounded { event, field });
                        }
                        _ => {}
                    }
                }
            }
        }
        let list = Self {
            limits: file.limits,
            plugin: file.plugin,
            request: file.request,
            host: file.host,
        };
        let bits = list.bits_per_request();
        if bits > MAX_BITS_PER_REQUEST {
            return Err(AllowListError::TooManyBits { bits });
        }
        Ok(list)
    }
}

impl AllowList {
    /// The limits in force.
    pub fn limits(&self) -> AllowListLimits {
        self.limits
    }

    /// The events a plugin may emit, by name, each with its level and
    /// fields: the same for every plugin that imports the log interface.
    pub fn plugin_events(&self) -> &BTreeMap<String, EventRule> {
        &self.plugin
    }

    /// The most information, in bits, that the log output of one request
    /// can carry, whatever its plugin does: log2 of the number of distinct
    /// outputs. They are
    ///
    /// * the plugin's events: a sequence of at most
    ///   `plugin-events-per-request` events (any length, any order), each
    ///   one of `k` forms, where `k` sums over the plugin events the product
    ///   over their fields of (values the field may hold + 1 for leaving it
    ///   out): `sum(k^n for n in 0..=cap)` sequences;
    /// * the host's request events, each present or not, with its fields
    ///   counted the same way: `product(1 + forms(e))`;
    /// * whether the filter refused anything of the request (counted once
    ///   per request in the aggregate metrics): a factor of 2.
    ///
    /// Timing is not part of it: the gateway sees when an answer leaves
    /// anyway, and the plugin's wall time is bounded by its manifest.
    pub fn bits_per_request(&self) -> f64 {
        let forms: f64 = self.plugin.values().map(EventRule::forms).sum();
        let sequences: f64 = (0..=self.limits.plugin_events_per_request)
            .map(|length| forms.powi(i32::try_from(length).unwrap_or(i32::MAX)))
            .sum();
        let request_events: f64 = self
            .request
            .values()
            .map(|rule| 1.0 + rule.forms())
            .product();
        let refused = 2.0;
        (sequences * request_events * refused).log2()
    }

    /// The rule for `event` from `source`: plugin events, or host events
    /// whether per request or not.
    fn rule(&self, source: &Source, event: &str) -> Option<&EventRule> {
        match source {
            Source::Plugin(_) => self.plugin.get(event),
            Source::Host => self.request.get(event).or_else(|| self.host.get(event)),
        }
    }
}

impl EventRule {
    /// How many distinct records this rule can produce (infinite with an
    /// `any` field).
    fn forms(&self) -> f64 {
        self.fields
            .values()
            .map(|kind| kind.values() + 1.0)
            .product()
    }

    /// The record of an event under this rule, and how many of its fields
    /// were left out (undeclared, or holding what the rule does not allow).
    fn record(
        &self,
        source: Source,
        level: Level,
        event: Name,
        fields: impl IntoIterator<Item = (Name, FieldValue)>,
    ) -> (LogRecord, u64) {
        let mut kept = BTreeMap::new();
        let mut left_out = 0;
        for (name, value) in fields {
            match self
                .fields
                .get(name.as_ref())
                .and_then(|kind| kind.reduce(value))
            {
                Some(value) => {
                    kept.insert(name, value);
                }
                None => left_out += 1,
            }
        }
        let level = match source {
            Source::Plugin(_) => self.level,
            Source::Host => level,
        };
        let record = LogRecord {
            source,
            level,
            event,
            fields: kept,
        };
        (record, left_out)
    }
}

impl FieldRule {
    /// How many values the field may hold.
    fn values(&self) -> f64 {
        match self {
            Self::Buckets(bounds) => bounds.len() as f64,
            Self::Labels(labels) => labels.len() as f64,
            Self::Flag => 2.0,
            Self::Any => f64::INFINITY,
        }
    }

    /// `value` as this field records it, or `None` if it is left out.
    fn reduce(&self, value: FieldValue) -> Option<FieldValue> {
        match (self, value) {
            (Self::Any, value) => Some(value),
            (Self::Flag, FieldValue::Flag(flag)) => Some(FieldValue::Flag(flag)),
            (Self::Labels(labels), FieldValue::Label(label)) => {
                labels.contains(&label).then_some(FieldValue::Label(label))
            }
            (Self::Buckets(bounds), value) => {
                let number = match value {
                    FieldValue::Count(n) => n,
                    FieldValue::Signed(n) => u64::try_from(n).ok()?,
                    // Saturating: NaN is 0, infinity the largest number.
                    FieldValue::Ratio(x) if x >= 0.0 => x as u64,
                    _ => return None,
                };
                bounds
                    .iter()
                    .rev()
                    .find(|&&bound| bound <= number)
                    .map(|&bound| FieldValue::Count(bound))
            }
            _ => None,
        }
    }
}

/// Counts of what the filter did, for aggregate metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FilterStats {
    /// Records written.
    pub kept_events: u64,
    /// Host events dropped for not being on the allow-list, plus requests
    /// whose plugin emitted anything the filter refused (one per request,
    /// however much it was).
    pub dropped_events: u64,
    /// Fields of host events dropped for not being declared or not fitting.
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

    /// Applies the allow-list to an event and writes what is admitted,
    /// counting each dropped event and field. Returns whether the event was
    /// kept. Plugin events of a request go through [`RequestLog`] instead.
    pub fn submit(
        &self,
        source: Source,
        level: Level,
        event: impl Into<Name>,
        fields: impl IntoIterator<Item = (Name, FieldValue)>,
    ) -> bool {
        let event = event.into();
        let Some(rule) = self.allow.rule(&source, &event) else {
            self.dropped_events.fetch_add(1, Ordering::Relaxed);
            return false;
        };
        let (record, left_out) = rule.record(source, level, event, fields);
        self.dropped_fields.fetch_add(left_out, Ordering::Relaxed);
        self.write(&record);
        true
    }

    /// The log of one request's plugin, named `plugin`.
    pub fn request_log(self: &Arc<Self>, plugin: Arc<str>) -> RequestLog {
        RequestLog {
            filter: Arc::clone(self),
            source: Source::Plugin(plugin),
            submitted: 0,
            refused: false,
        }
    }

    fn write(&self, record: &LogRecord) {
        self.kept_events.fetch_add(1, Ordering::Relaxed);
        self.sink.write(record);
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

/// The plugin events of one request. The first `plugin-events-per-request`
/// are filtered and written; later ones are dropped. That anything was
/// refused (an unlisted event, a field left out, an event past the cap) is
/// counted once, when the request ends: a count of refusals would be a
/// channel of its own.
pub struct RequestLog {
    filter: Arc<LogFilter>,
    source: Source,
    submitted: u32,
    refused: bool,
}

impl RequestLog {
    /// Filters and writes one event of the plugin; returns whether it was
    /// kept. The plugin's level is replaced by the one its rule names.
    pub fn submit(
        &mut self,
        event: impl Into<Name>,
        fields: impl IntoIterator<Item = (Name, FieldValue)>,
    ) -> bool {
        let event = event.into();
        self.submitted = self.submitted.saturating_add(1);
        let rule = self.filter.allow.rule(&self.source, &event);
        let rule = match rule {
            Some(rule) if self.submitted <= self.filter.allow.limits.plugin_events_per_request => {
                rule
            }
            _ => {
                self.refused = true;
                return false;
            }
        };
        let (record, left_out) = rule.record(self.source.clone(), rule.level, event, fields);
        self.refused |= left_out > 0;
        self.filter.write(&record);
        true
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        if self.refused {
            self.filter.dropped_events.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Replaces the process's panic hook with one that logs a single
/// `host-panicked` event through `tracing`, and so through the allow-list,
/// and nothing of the panic: its message and location may hold
/// conversation text, which the default hook prints to stderr beside the
/// allow-listed records. Install it once the [`AllowListLayer`] is the
/// global subscriber.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|_| tracing::error!(event = "host-panicked")));
}

/// A `tracing` layer that routes the host's own events through a [`LogFilter`].
///
/// Host code names each event with an `event` field
/// (`tracing::info!(event = "plugin-loaded", plugin = %name)`). An event
/// without one, including every event of third-party crates, is dropped
/// without being counted: some of them (wasmtime-wasi traces each WASI call)
/// happen as often as a plugin likes, and their count would be a channel.
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
        if let Some(name) = collector.event {
            self.0.submit(Source::Host, level, name, collector.fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    fn filter() -> (Arc<LogFilter>, MemorySink) {
        let allow: AllowList = toml::from_str(
            r#"
[plugin.request-finished.fields]
output-bytes.buckets = [0, 10, 100]
[host.plugin-loaded.fields]
plugin = "any"
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
        // The named event is counted; the nameless one is not.
        assert_eq!(filter.stats().dropped_events, 1);
    }

    #[test]
    fn fields_are_reduced_to_what_the_allow_list_says_they_hold() {
        let rule: EventRule = toml::from_str(
            r#"
level = "warn"
[fields]
bytes.buckets = [1, 10, 100]
outcome.labels = ["ok", "trap"]
truncated = "flag"
"#,
        )
        .expect("rule");
        let fields: Vec<(Name, FieldValue)> = vec![
            ("bytes".into(), FieldValue::Count(5_000)),
            ("outcome".into(), FieldValue::Label("secret text".into())),
            ("truncated".into(), FieldValue::Count(1)),
        ];
        let (record, left_out) =
            rule.record(Source::Plugin("p".into()), Level::Error, "e".into(), fields);
        assert_eq!(
            record.level,
            Level::Warn,
            "the rule's level, not the plugin's"
        );
        assert_eq!(
            record.fields,
            BTreeMap::from([("bytes".into(), FieldValue::Count(100))])
        );
        assert_eq!(left_out, 2);
        let bytes = &rule.fields["bytes"];
        for (value, recorded) in [
            (FieldValue::Count(0), None),
            (FieldValue::Count(57), Some(10)),
            (FieldValue::Signed(-3), None),
            (FieldValue::Signed(12), Some(10)),
            (FieldValue::Ratio(99.9), Some(10)),
            (FieldValue::Ratio(f64::NAN), None),
            (FieldValue::Ratio(f64::INFINITY), Some(100)),
            (FieldValue::Flag(true), None),
        ] {
            assert_eq!(
                bytes.reduce(value.clone()),
                recorded.map(FieldValue::Count),
                "{value:?}"
            );
        }
    }

    #[test]
    fn allow_lists_that_leave_a_field_unbounded_are_refused() {
        for (list, expected) in [
            (
                "[plugin.request-started.fields]\ninput-bytes.buckets = []\n",
                "buckets must be",
            ),
            (
                "[plugin.request-started.fields]\ninput-bytes.buckets = [10, 1]\n",
                "buckets must be",
            ),
            (
                "[request.request-completed.fields]\noutcome = \"any\"\n",
                "only in [host.*]",
            ),
            (
                "[request.request-completed.fields]\noutcome.labels = []\n",
                "label set is empty",
            ),
            ("[request.x]\n[host.x]\n", "listed both"),
            (
                "[limits]\nplugin-events-per-request = 100\n\
                 [plugin.request-started.fields]\ninput-bytes.buckets = [0, 1]\n",
                "bits",
            ),
        ] {
            let error = toml::from_str::<AllowList>(list).expect_err(list);
            assert!(error.to_string().contains(expected), "{list}: {error}");
        }
    }

    #[test]
    fn the_bound_counts_every_form_order_and_length_of_a_requests_events() {
        // One plugin event with one two-bucket field: 3 forms (absent, or
        // one of two buckets). Up to 2 events: 1 + 3 + 9 = 13 sequences.
        // One request event with a flag: absent, or 3 forms: 4. Whether
        // anything was refused: 2.
        let allow: AllowList = toml::from_str(
            r#"
[limits]
plugin-events-per-request = 2
[plugin.request-started.fields]
input-bytes.buckets = [0, 100]
[request.request-completed.fields]
ok = "flag"
[host.host-started.fields]
anything = "any"
"#,
        )
        .expect("allow-list");
        let expected = (13.0_f64 * 4.0 * 2.0).log2();
        assert!(
            (allow.bits_per_request() - expected).abs() < 1e-9,
            "{} != {expected}",
            allow.bits_per_request()
        );
    }

    #[test]
    fn a_request_log_keeps_its_first_events_and_counts_refusals_once() {
        let allow: AllowList =
            toml::from_str("[limits]\nplugin-events-per-request = 2\n[plugin.request-started]\n")
                .expect("allow-list");
        let sink = MemorySink::default();
        let filter = Arc::new(LogFilter::new(allow, Arc::new(sink.clone())));
        let mut log = filter.request_log("p".into());
        assert!(!log.submit("input-rejected", []));
        assert!(log.submit("request-started", []));
        for _ in 0..100 {
            assert!(!log.submit("request-started", []));
        }
        drop(log);
        assert_eq!(sink.records().len(), 1);
        assert_eq!(
            filter.stats(),
            FilterStats {
                kept_events: 1,
                dropped_events: 1,
                dropped_fields: 0
            }
        );
    }
}
