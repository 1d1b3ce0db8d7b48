//! Typed log events in one line.

use crate::log::{self, Event, Field, FieldName, FieldValue, Level};

/// Emits `event` with counted fields. The host keeps it only if the
/// allow-list names the event and each field.
pub fn emit(level: Level, event: Event, counts: &[(FieldName, u64)]) {
    let fields: Vec<Field> = counts
        .iter()
        .map(|&(name, n)| Field {
            name,
            value: FieldValue::Count(n),
        })
        .collect();
    log::emit(level, event, &fields);
}

/// Length of `text` in bytes, as a field value.
pub fn bytes(text: &str) -> u64 {
    u64::try_from(text.len()).unwrap_or(u64::MAX)
}
