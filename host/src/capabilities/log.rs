//! The `cloister:feature/log` capability: typed events through the allow-list.
//!
//! The WIT leaves plugins no way to log free text; this module maps each
//! typed event to its allow-list name and hands it to the request's
//! [`RequestLog`], which keeps only what `policies/log-allowlist.toml`
//! names, reduces every field to the values it may hold, records the event
//! at the level the allow-list names, and cuts the plugin off after the
//! allow-list's `plugin-events-per-request`.

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use super::{Capability, Get, InstanceContext};
use crate::bindings::log::{
    self as wit, Event, Field, FieldName, FieldValue as WitValue, Level as WitLevel,
};
use crate::logfilter::{FieldValue, LogFilter, RequestLog};

/// The interface name manifests grant.
pub const INTERFACE: &str = "cloister:feature/log@0.1.0";

/// Per-host state: the shared filter.
pub struct LogCapability {
    filter: Arc<LogFilter>,
}

impl LogCapability {
    /// Sends plugin events through `filter`.
    pub fn new(filter: Arc<LogFilter>) -> Self {
        Self { filter }
    }
}

impl Capability for LogCapability {
    const INTERFACES: &'static [&'static str] = &[INTERFACE];
    /// Granting the interface is all there is: no section.
    type Grant = ();
    type Instance = LogInstance;

    fn add_to_linker<T, G>(linker: &mut Linker<T>) -> wasmtime::Result<()>
    where
        T: Send + 'static,
        G: Get<T, Instance = LogInstance>,
    {
        wit::add_to_linker::<T, HasSelf<LogInstance>>(linker, G::get)
    }

    fn instance(&self, context: InstanceContext<'_>) -> LogInstance {
        LogInstance {
            log: self.filter.request_log(context.plugin.clone()),
        }
    }
}

/// Per-instance state: the request's log, which counts what it refused
/// when the store drops it.
pub struct LogInstance {
    log: RequestLog,
}

/// The allow-list name of an event: its WIT name.
pub fn event_name(event: Event) -> &'static str {
    match event {
        Event::RequestStarted => "request-started",
        Event::RequestFinished => "request-finished",
        Event::InputRejected => "input-rejected",
        Event::InputTruncated => "input-truncated",
        Event::InferenceCompleted => "inference-completed",
        Event::InferenceFailed => "inference-failed",
        Event::OutputRepaired => "output-repaired",
    }
}

/// The allow-list name of a field: its WIT name.
pub fn field_name(name: FieldName) -> &'static str {
    match name {
        FieldName::MessageCount => "message-count",
        FieldName::InputBytes => "input-bytes",
        FieldName::OutputBytes => "output-bytes",
        FieldName::PromptTokens => "prompt-tokens",
        FieldName::GeneratedTokens => "generated-tokens",
        FieldName::ItemCount => "item-count",
        FieldName::Limit => "limit",
        FieldName::ErrorCode => "error-code",
    }
}

impl wit::Host for LogInstance {
    /// The plugin's `level` is not recorded: the allow-list names each
    /// event's level, so that the choice carries nothing.
    fn emit(&mut self, _level: WitLevel, event: Event, fields: Vec<Field>) -> wasmtime::Result<()> {
        let fields = fields.into_iter().map(|field| {
            let value = match field.value {
                WitValue::Count(n) => FieldValue::Count(n),
                WitValue::Signed(n) => FieldValue::Signed(n),
                WitValue::Ratio(x) => FieldValue::Ratio(x),
                WitValue::Flag(b) => FieldValue::Flag(b),
            };
            (field_name(field.name).into(), value)
        });
        self.log.submit(event_name(event), fields);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::capabilities::Grants;
    use cloister_ratls::Cancellation;

    use crate::logfilter::{AllowList, MemorySink, Source};

    fn instance(allow_list: &str) -> (LogInstance, MemorySink) {
        let allow: AllowList = toml::from_str(allow_list).expect("allow-list");
        let sink = MemorySink::default();
        let capability =
            LogCapability::new(Arc::new(LogFilter::new(allow, Arc::new(sink.clone()))));
        let now = Instant::now();
        let instance = capability.instance(InstanceContext {
            plugin: &Arc::from("p"),
            grants: &Arc::new(Grants::default()),
            started: now,
            deadline: now,
            cancel: &Cancellation::new(),
        });
        (instance, sink)
    }

    #[test]
    fn events_are_named_by_the_allow_list_and_capped_per_request() {
        let cap = 3;
        let (mut log, sink) = instance(&format!(
            "[limits]\nplugin-events-per-request = {cap}\n[plugin.request-started]\n"
        ));
        for _ in 0..cap + 10 {
            wit::Host::emit(&mut log, WitLevel::Info, Event::RequestStarted, Vec::new())
                .expect("emit");
        }
        let records = sink.records();
        assert_eq!(records.len(), cap);
        assert!(records.iter().all(|r| r.event == "request-started"));
        assert!(
            records
                .iter()
                .all(|r| r.source == Source::Plugin("p".into()))
        );
    }
}
