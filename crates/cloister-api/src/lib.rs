//! Feature requests and responses as they travel between client and host.
//!
//! The client and the host agree on what a feature request looks like without
//! the client linking any WebAssembly: these types mirror the records of
//! `wit/feature.wit` (`cloister:feature/handler`) in a JSON shape that the
//! client builds and the host converts to and from the component's types. The
//! WIT stays the reviewed source of truth; a test in the host checks that
//! every WIT case has its counterpart here. Unknown fields and unknown
//! features are refused when parsing, so nothing unreviewed reaches a plugin.
//!
//! # Main types
//!
//! * [`FeatureRequest`]: a request tagged by feature name
//!   ([`SummariseRequest`], [`SuggestRequest`]); [`FeatureRequest::feature`]
//!   names the plugin that serves it.
//! * [`FeatureResponse`]: a [`FeatureResponse::Summary`] or
//!   [`FeatureResponse::Suggestions`].
//! * [`FeatureError`]: the plugin's own typed refusal, with its fields.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! ```rust
//! use cloister_api::{FeatureError, FeatureRequest, FeatureResponse, Tone};
//!
//! let request: FeatureRequest = serde_json::from_str(
//!     r#"{"feature":"suggest","draft":"see u at 5","tone":"formal","count":2}"#,
//! )?;
//! assert_eq!(request.feature(), "suggest");
//! let FeatureRequest::Suggest(suggest) = &request else {
//!     panic!("a suggest request");
//! };
//! assert_eq!(suggest.tone, Tone::Formal);
//!
//! // A field the contract does not name is refused, not ignored.
//! let smuggled = r#"{"feature":"summarise","messages":[],"exfiltrate":true}"#;
//! assert!(serde_json::from_str::<FeatureRequest>(smuggled).is_err());
//!
//! let response = FeatureResponse::Suggestions {
//!     items: vec!["See you at 5 pm.".into()],
//! };
//! assert_eq!(response.text_bytes(), 16);
//!
//! // A feature's refusal keeps its type and fields across the wire.
//! let error = FeatureError::InputTooLarge { what: "draft".into(), limit: 4096, actual: 5000 };
//! let received: FeatureError = serde_json::from_str(&serde_json::to_string(&error)?)?;
//! assert!(matches!(received, FeatureError::InputTooLarge { limit: 4096, .. }));
//! # Ok::<(), serde_json::Error>(())
//! ```

use serde::{Deserialize, Serialize};

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Display name of the author.
    pub sender: String,
    /// Seconds since the Unix epoch.
    pub sent_at: u64,
    /// Message text.
    pub text: String,
}

/// Input of the summarise feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummariseRequest {
    /// Oldest first.
    pub messages: Vec<Message>,
    /// Rough upper bound on summary length in words; 0 lets the feature decide.
    #[serde(default)]
    pub max_words: u32,
}

/// Tone of a suggested rewrite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    /// Plain and even.
    #[default]
    Neutral,
    /// Warm.
    Friendly,
    /// Polite and complete.
    Formal,
    /// As short as possible.
    Concise,
}

/// Input of the suggest feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuggestRequest {
    /// The user's draft.
    pub draft: String,
    /// Recent messages for context, oldest first.
    #[serde(default)]
    pub context: Vec<Message>,
    /// Tone of the rewrites.
    #[serde(default)]
    pub tone: Tone,
    /// How many rewrites to return (1 to 5).
    pub count: u8,
}

/// A feature request, tagged by feature name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "feature", rename_all = "lowercase")]
pub enum FeatureRequest {
    /// Summarise a conversation.
    Summarise(SummariseRequest),
    /// Suggest rewrites of a draft.
    Suggest(SuggestRequest),
}

impl FeatureRequest {
    /// The feature (plugin) that serves this request.
    pub fn feature(&self) -> &'static str {
        match self {
            Self::Summarise(_) => "summarise",
            Self::Suggest(_) => "suggest",
        }
    }
}

/// A feature response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FeatureResponse {
    /// Output of summarise.
    Summary {
        /// The summary.
        text: String,
        /// How many input messages it covers (the oldest may be dropped to fit).
        messages_covered: u32,
    },
    /// Output of suggest: rewrites, best first.
    Suggestions {
        /// The rewrites.
        items: Vec<String>,
    },
}

impl FeatureResponse {
    /// The feature whose answer this is.
    pub fn feature(&self) -> &'static str {
        match self {
            Self::Summary { .. } => "summarise",
            Self::Suggestions { .. } => "suggest",
        }
    }

    /// Bytes of text in the response, the measure of the host's output limit.
    pub fn text_bytes(&self) -> usize {
        match self {
            Self::Summary { text, .. } => text.len(),
            Self::Suggestions { items } => items.iter().map(String::len).sum(),
        }
    }
}

/// Why a feature could not answer (the plugin's own typed error), tagged by
/// a stable `code`.
///
/// Free text appears only where the plugin gave a reason for refusing its
/// input (`invalid-input`, `input-too-large`) or the host refused an
/// inference call it made (`invalid-inference-request`, `model-unavailable`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum FeatureError {
    /// The plugin does not serve this kind of request.
    #[error("the feature does not serve this request")]
    UnsupportedRequest,
    /// The input is malformed.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What is wrong.
        reason: String,
    },
    /// The input exceeds a limit of the feature.
    #[error("input too large: {what} is {actual}, the limit is {limit}")]
    InputTooLarge {
        /// What was measured.
        what: String,
        /// The limit.
        limit: u64,
        /// The measured value.
        actual: u64,
    },
    /// An inference call would have gone over one of the request's budgets
    /// (numbers from the host's accounting).
    #[error("inference budget exceeded: {budget} would reach {used}, the limit is {limit}")]
    BudgetExceeded {
        /// Which budget.
        budget: BudgetKind,
        /// Its limit.
        limit: u64,
        /// What the request would have used with the refused call (for
        /// wall time: had used when it was refused).
        used: u64,
    },
    /// The plugin asked for a model it is not granted or the host lacks.
    #[error("model `{model}` unavailable")]
    ModelUnavailable {
        /// The model named.
        model: String,
    },
    /// The host refused the parameters of an inference call.
    #[error("invalid inference request: {reason}")]
    InvalidInferenceRequest {
        /// What is wrong.
        reason: String,
    },
    /// The inference engine is saturated; retry later.
    #[error("inference engine busy")]
    InferenceBusy,
    /// The inference engine failed.
    #[error("inference engine failure")]
    InferenceFailed,
    /// The model's output could not be turned into an answer.
    #[error("the model's output was unusable")]
    UnusableOutput,
}

/// The budgets of one request's inference calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetKind {
    /// Tokens one call may generate.
    TokensPerCall,
    /// Tokens all calls of the request may generate together.
    TokensPerRequest,
    /// Calls in one request.
    CallsPerRequest,
    /// Bytes of prompt text in one call.
    PromptBytes,
    /// Wall time of the request, in milliseconds.
    WallTime,
}

impl BudgetKind {
    /// The stable name, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TokensPerCall => "tokens-per-call",
            Self::TokensPerRequest => "tokens-per-request",
            Self::CallsPerRequest => "calls-per-request",
            Self::PromptBytes => "prompt-bytes",
            Self::WallTime => "wall-time",
        }
    }
}

impl std::fmt::Display for BudgetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the host answered a feature request with an error: what travels back
/// to the client, tagged by a stable `code` with its fields.
///
/// The host's own refusals are listed here; the plugin's are
/// [`FeatureError`]s, whose codes appear at the same level on the wire
/// (`{"code": "budget-exceeded", "budget": "tokens-per-call", ...}`).
/// Nothing here carries plugin-controlled text beyond [`FeatureError`]'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum RequestError {
    /// The request is not a valid feature request.
    #[error("malformed feature request: {reason}")]
    MalformedRequest {
        /// The parser's reason.
        reason: String,
    },
    /// No plugin serves this feature.
    #[error("no feature named `{name}`")]
    UnknownFeature {
        /// The feature asked for.
        name: String,
    },
    /// Every instance slot is in use; retry later.
    #[error("the host is at capacity; retry later")]
    AtCapacity,
    /// The request ran past its wall-time limit.
    #[error("the feature exceeded its time limit of {limit_ms} ms")]
    TimeLimit {
        /// The limit.
        limit_ms: u64,
    },
    /// The plugin tried to grow its memory past its limit.
    #[error("the feature exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit {
        /// The limit.
        limit_bytes: u64,
    },
    /// The plugin tried to grow a table past its limit.
    #[error("the feature exceeded its table limit")]
    TableLimit,
    /// The plugin recursed past the host's stack limit.
    #[error("the feature overflowed its stack")]
    StackOverflow,
    /// The plugin trapped (a panic, an invalid access).
    #[error("the feature trapped")]
    PluginTrapped,
    /// The response is larger than the plugin's manifest allows.
    #[error("the feature returned a {actual}-byte response; its limit is {limit} bytes")]
    OutputTooLarge {
        /// The limit.
        limit: u64,
        /// The response size.
        actual: u64,
    },
    /// The plugin answered with its own typed error.
    #[error(transparent)]
    #[serde(untagged)]
    Feature(FeatureError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_json_is_tagged_by_feature() {
        let json = r#"{"feature":"suggest","draft":"see u at 5","tone":"formal","count":2}"#;
        let request: FeatureRequest = serde_json::from_str(json).expect("valid request");
        assert_eq!(request.feature(), "suggest");
        assert_eq!(
            request,
            FeatureRequest::Suggest(SuggestRequest {
                draft: "see u at 5".into(),
                context: vec![],
                tone: Tone::Formal,
                count: 2
            })
        );
    }

    #[test]
    fn unknown_fields_and_features_are_rejected() {
        for bad in [
            r#"{"feature":"translate","text":"hola"}"#,
            r#"{"feature":"summarise","messages":[],"exfiltrate":true}"#,
        ] {
            assert!(
                serde_json::from_str::<FeatureRequest>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn errors_travel_as_a_code_with_their_fields() {
        let budget = RequestError::Feature(FeatureError::BudgetExceeded {
            budget: BudgetKind::TokensPerCall,
            limit: 16,
            used: 64,
        });
        let json = serde_json::to_value(&budget).expect("encodes");
        assert_eq!(
            json,
            serde_json::json!({
                "code": "budget-exceeded",
                "budget": "tokens-per-call",
                "limit": 16,
                "used": 64
            })
        );
        let cases = [
            budget,
            RequestError::UnknownFeature {
                name: "translate".into(),
            },
            RequestError::PluginTrapped,
            RequestError::TimeLimit { limit_ms: 500 },
            RequestError::Feature(FeatureError::InvalidInput {
                reason: "empty".into(),
            }),
            RequestError::Feature(FeatureError::UnusableOutput),
        ];
        for error in cases {
            let text = serde_json::to_string(&error).expect("encodes");
            let back: RequestError = serde_json::from_str(&text).expect("decodes");
            assert_eq!(back, error, "{text}");
        }
        assert_eq!(
            serde_json::to_value(RequestError::PluginTrapped).expect("encodes"),
            serde_json::json!({"code": "plugin-trapped"})
        );
        assert!(serde_json::from_str::<RequestError>(r#"{"code":"no-such-code"}"#).is_err());
    }

    #[test]
    fn errors_print_their_fields() {
        let error = RequestError::Feature(FeatureError::BudgetExceeded {
            budget: BudgetKind::CallsPerRequest,
            limit: 4,
            used: 5,
        });
        assert_eq!(
            error.to_string(),
            "inference budget exceeded: calls-per-request would reach 5, the limit is 4"
        );
    }

    #[test]
    fn response_text_bytes_counts_every_item() {
        let response = FeatureResponse::Suggestions {
            items: vec!["ab".into(), "cde".into()],
        };
        assert_eq!(response.text_bytes(), 5);
    }
}
