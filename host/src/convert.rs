//! Conversions between the wire types of `cloister-api` and the component's
//! WIT types. Exhaustive matches make a WIT change a compile error here.

use cloister_api as api;

use crate::bindings::handler as wit;
use crate::bindings::inference::Error as InferenceError;
use crate::capabilities::inference::{Budget, budget_kind};

fn message(m: api::Message) -> wit::Message {
    wit::Message {
        sender: m.sender,
        sent_at: m.sent_at,
        text: m.text,
    }
}

pub(crate) fn request(request: api::FeatureRequest) -> wit::Request {
    match request {
        api::FeatureRequest::Summarise(r) => wit::Request::Summarise(wit::SummariseRequest {
            messages: r.messages.into_iter().map(message).collect(),
            max_words: r.max_words,
        }),
        api::FeatureRequest::Suggest(r) => wit::Request::Suggest(wit::SuggestRequest {
            draft: r.draft,
            context: r.context.into_iter().map(message).collect(),
            tone: match r.tone {
                api::Tone::Neutral => wit::Tone::Neutral,
                api::Tone::Friendly => wit::Tone::Friendly,
                api::Tone::Formal => wit::Tone::Formal,
                api::Tone::Concise => wit::Tone::Concise,
            },
            count: r.count,
        }),
    }
}

pub(crate) fn response(response: wit::Response) -> api::FeatureResponse {
    match response {
        wit::Response::Summary(s) => api::FeatureResponse::Summary {
            text: s.text,
            messages_covered: s.messages_covered,
        },
        wit::Response::Suggestions(items) => api::FeatureResponse::Suggestions { items },
    }
}

/// The plugin's error as the client sees it. A budget the plugin reports
/// exceeded is described with the host's own accounting of the request
/// (`budget`), never with numbers from the plugin.
pub(crate) fn feature_error(error: wit::FeatureError, budget: &Budget) -> api::FeatureError {
    match error {
        wit::FeatureError::UnsupportedRequest => api::FeatureError::UnsupportedRequest,
        wit::FeatureError::InvalidInput(reason) => api::FeatureError::InvalidInput { reason },
        wit::FeatureError::InputTooLarge(l) => api::FeatureError::InputTooLarge {
            what: l.what,
            limit: l.limit,
            actual: l.actual,
        },
        wit::FeatureError::Inference(e) => match e {
            InferenceError::BudgetExceeded(kind) => {
                let exceeded = budget.exceeded(budget_kind(kind));
                api::FeatureError::BudgetExceeded {
                    budget: exceeded.budget,
                    limit: exceeded.limit,
                    used: exceeded.used,
                }
            }
            InferenceError::ModelUnavailable(model) => {
                api::FeatureError::ModelUnavailable { model }
            }
            InferenceError::InvalidRequest(reason) => {
                api::FeatureError::InvalidInferenceRequest { reason }
            }
            InferenceError::Busy => api::FeatureError::InferenceBusy,
            InferenceError::EngineFailure => api::FeatureError::InferenceFailed,
        },
        wit::FeatureError::UnusableOutput => api::FeatureError::UnusableOutput,
    }
}
