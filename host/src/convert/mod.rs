//! What crosses the boundary of a feature's `run`: its input and output as
//! JSON ([`json`]), and its shared `feature-error` as the client's
//! [`api::FeatureError`].

pub mod json;

use cloister_api as api;
use wasmtime::component::Val;

use crate::capabilities::inference::Budget;

/// The cases of `cloister:feature/types.feature-error`, as the host reads
/// them; [`feature_error`] maps each.
pub(crate) const FEATURE_ERROR_CASES: [&str; 4] = [
    "invalid-input",
    "input-too-large",
    "inference",
    "unusable-output",
];

/// The plugin's error as the client sees it, from the value of its
/// `feature-error` (the load check makes sure the type is that one). A
/// budget the plugin reports exceeded is described with the host's own
/// accounting of the request (`budget`), never with numbers from the
/// plugin. `None` for a value of another shape.
pub(crate) fn feature_error(error: &Val, budget: &Budget) -> Option<api::FeatureError> {
    let Val::Variant(case, payload) = error else {
        return None;
    };
    let payload = payload.as_deref();
    Some(match (case.as_str(), payload) {
        ("invalid-input", Some(Val::String(reason))) => api::FeatureError::InvalidInput {
            reason: reason.clone(),
        },
        ("input-too-large", Some(Val::Record(fields))) => {
            let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            let (Some(Val::String(what)), Some(Val::U64(limit)), Some(Val::U64(actual))) =
                (field("what"), field("limit"), field("actual"))
            else {
                return None;
            };
            api::FeatureError::InputTooLarge {
                what: what.clone(),
                limit: *limit,
                actual: *actual,
            }
        }
        ("inference", Some(Val::Variant(kind, detail))) => {
            match (kind.as_str(), detail.as_deref()) {
                ("budget-exceeded", Some(Val::Enum(name))) => {
                    let kind: api::BudgetKind =
                        serde_json::from_value(serde_json::Value::String(name.clone())).ok()?;
                    let exceeded = budget.exceeded(kind);
                    api::FeatureError::BudgetExceeded {
                        budget: exceeded.budget,
                        limit: exceeded.limit,
                        used: exceeded.used,
                    }
                }
                ("model-unavailable", Some(Val::String(model))) => {
                    api::FeatureError::ModelUnavailable {
                        model: model.clone(),
                    }
                }
                ("invalid-request", Some(Val::String(reason))) => {
                    api::FeatureError::InvalidInferenceRequest {
                        reason: reason.clone(),
                    }
                }
                ("busy", None) => api::FeatureError::InferenceBusy,
                ("engine-failure", None) => api::FeatureError::InferenceFailed,
                _ => return None,
            }
        }
        ("unusable-output", None) => api::FeatureError::UnusableOutput,
        _ => return None,
    })
}
