//! Conversions between the wire types of `cloister-api` and the component's
//! WIT types. Exhaustive matches make a WIT change a compile error here.

use cloister_api as api;

use crate::bindings::handler as wit;
use crate::bindings::inference::{Budget, Error as InferenceError};

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

fn budget_name(budget: Budget) -> &'static str {
    match budget {
        Budget::TokensPerCall => "tokens-per-call",
        Budget::TokensPerRequest => "tokens-per-request",
        Budget::CallsPerRequest => "calls-per-request",
        Budget::PromptBytes => "prompt-bytes",
        Budget::WallTime => "wall-time",
    }
}

fn inference_reason(error: InferenceError) -> String {
    match error {
        InferenceError::BudgetExceeded(budget) => {
            format!("budget exceeded: {}", budget_name(budget))
        }
        InferenceError::ModelUnavailable(model) => format!("model `{model}` unavailable"),
        InferenceError::InvalidRequest(why) => format!("invalid inference request: {why}"),
        InferenceError::Busy => "inference engine busy".to_owned(),
        InferenceError::EngineFailure => "inference engine failure".to_owned(),
    }
}

pub(crate) fn feature_error(error: wit::FeatureError) -> api::FeatureError {
    match error {
        wit::FeatureError::UnsupportedRequest => api::FeatureError::UnsupportedRequest,
        wit::FeatureError::InvalidInput(reason) => api::FeatureError::InvalidInput { reason },
        wit::FeatureError::InputTooLarge(l) => api::FeatureError::InputTooLarge {
            what: l.what,
            limit: l.limit,
            actual: l.actual,
        },
        wit::FeatureError::Inference(e) => api::FeatureError::Inference {
            reason: inference_reason(e),
        },
        wit::FeatureError::UnusableOutput => api::FeatureError::UnusableOutput,
    }
}
