//! Feature requests and responses as they travel between client and host.
//!
//! The set of features is open: a request names its feature and carries its
//! input as JSON ([`FeatureRequest`]), a response names the feature that
//! answered and carries its output ([`FeatureResponse`]). Each feature
//! declares its input and output types in its own WIT world
//! (`plugins/<name>/wit/world.wit`); the host checks the input against them
//! before any plugin code runs and refuses what does not fit with
//! [`RequestError::InputMismatch`], naming the value
//! (`input.messages[2].sent-at: expected u64, found string`). The JSON form
//! of each WIT type is documented in the host (`cloister_host::convert::json`):
//! records are objects with kebab-case field names, enums are strings,
//! variants are `{"case": payload}`, options are `null` or the value.
//!
//! A new feature needs nothing here. The bundled features' records are
//! mirrored ([`SummariseRequest`], [`Summary`], [`SuggestRequest`],
//! [`Suggestions`]) only for the client's convenience commands and tests.
//!
//! # Main types
//!
//! * [`FeatureRequest`]: a feature's name and its JSON input;
//!   [`FeatureRequest::of`] builds one from a typed input ([`Typed`]).
//! * [`FeatureResponse`]: the answering feature's name and its JSON output;
//!   [`FeatureResponse::decode`] reads it as a typed output.
//! * [`FeatureError`]: the plugin's own typed refusal, with its fields.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! ```rust
//! use cloister_api::{FeatureError, FeatureRequest, FeatureResponse, SuggestRequest, Suggestions, Tone};
//!
//! let request: FeatureRequest = serde_json::from_str(
//!     r#"{"feature":"suggest","input":{"draft":"see u at 5","context":[],"tone":"formal","count":2}}"#,
//! )?;
//! assert_eq!(request.feature(), "suggest");
//! let suggest: SuggestRequest = request.decode()?;
//! assert_eq!(suggest.tone, Tone::Formal);
//!
//! // Any feature's input travels the same way.
//! let request = FeatureRequest::new("tone-check", serde_json::json!({"text": "hello"}));
//! assert_eq!(request.feature(), "tone-check");
//!
//! // A field the envelope does not name is refused, not ignored.
//! let smuggled = r#"{"feature":"summarise","input":{},"exfiltrate":true}"#;
//! assert!(serde_json::from_str::<FeatureRequest>(smuggled).is_err());
//!
//! let response = FeatureResponse::new("suggest", serde_json::json!(["See you at 5 pm."]));
//! assert_eq!(response.feature(), "suggest");
//! assert_eq!(response.decode::<Suggestions>()?.0, ["See you at 5 pm."]);
//!
//! // A feature's refusal keeps its type and fields across the wire.
//! let error = FeatureError::InputTooLarge { what: "draft".into(), limit: 4096, actual: 5000 };
//! let received: FeatureError = serde_json::from_str(&serde_json::to_string(&error)?)?;
//! assert!(matches!(received, FeatureError::InputTooLarge { limit: 4096, .. }));
//! # Ok::<(), serde_json::Error>(())
//! ```

use serde::{Deserialize, Serialize};

/// One message of a conversation (`message` of the summarise and suggest
/// worlds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Message {
    /// Display name of the author.
    pub sender: String,
    /// Seconds since the Unix epoch.
    pub sent_at: u64,
    /// Message text.
    pub text: String,
}

/// Input of the summarise feature (`summarise-input`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SummariseRequest {
    /// Oldest first.
    pub messages: Vec<Message>,
    /// Rough upper bound on summary length in words; 0 lets the feature decide.
    pub max_words: u32,
}

/// Output of the summarise feature (`summary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Summary {
    /// The summary.
    pub text: String,
    /// How many input messages it covers (the oldest may be dropped to fit).
    pub messages_covered: u32,
}

/// Tone of a suggested rewrite (`tone` of the suggest world).
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

/// Input of the suggest feature (`suggest-input`); its output is a list of
/// rewrites, best first (`Vec<String>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SuggestRequest {
    /// The user's draft.
    pub draft: String,
    /// Recent messages for context, oldest first.
    pub context: Vec<Message>,
    /// Tone of the rewrites.
    pub tone: Tone,
    /// How many rewrites to return (1 to 5).
    pub count: u8,
}

/// Output of the suggest feature: rewrites of the draft, best first (on
/// the wire, a JSON array of strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Suggestions(pub Vec<String>);

/// A typed input or output and the feature it belongs to. Implemented for
/// records of plain fields only, whose JSON encoding cannot fail.
pub trait Typed: Serialize {
    /// The feature's name.
    const FEATURE: &'static str;

    /// The value as JSON.
    fn to_json(&self) -> serde_json::Value {
        // Cannot fail: string keys and derived `Serialize` only.
        serde_json::to_value(self).expect("plain records encode as JSON")
    }
}

impl Typed for SummariseRequest {
    const FEATURE: &'static str = "summarise";
}

impl Typed for Summary {
    const FEATURE: &'static str = "summarise";
}

impl Typed for SuggestRequest {
    const FEATURE: &'static str = "suggest";
}

impl Typed for Suggestions {
    const FEATURE: &'static str = "suggest";
}

/// A feature request: the feature's name and its input, as JSON of the
/// input type its WIT world declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureRequest {
    /// The feature (plugin) that serves this request.
    pub feature: String,
    /// Its input.
    pub input: serde_json::Value,
}

impl FeatureRequest {
    /// A request for `feature` with `input`.
    pub fn new(feature: impl Into<String>, input: serde_json::Value) -> Self {
        Self {
            feature: feature.into(),
            input,
        }
    }

    /// A request with a typed input, for its feature.
    pub fn of<T: Typed>(input: &T) -> Self {
        Self::new(T::FEATURE, input.to_json())
    }

    /// The feature (plugin) that serves this request.
    pub fn feature(&self) -> &str {
        &self.feature
    }

    /// The input read as `T`.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.input)
    }
}

/// A feature's answer: which feature answered, and its output as JSON of
/// the output type its WIT world declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureResponse {
    /// The feature that answered.
    pub feature: String,
    /// Its output.
    pub output: serde_json::Value,
}

impl FeatureResponse {
    /// `feature`'s answer `output`.
    pub fn new(feature: impl Into<String>, output: serde_json::Value) -> Self {
        Self {
            feature: feature.into(),
            output,
        }
    }

    /// A typed output of its feature.
    pub fn of<T: Typed>(output: &T) -> Self {
        Self::new(T::FEATURE, output.to_json())
    }

    /// The feature whose answer this is.
    pub fn feature(&self) -> &str {
        &self.feature
    }

    /// The output read as `T` (e.g. [`Summary`] or [`Suggestions`]).
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.output)
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
    /// The input does not fit the types the feature declares.
    #[error("the input does not fit the feature's types: {path}: {reason}")]
    InputMismatch {
        /// The value that does not fit (`input.messages[2].sent-at`).
        path: String,
        /// Why.
        reason: String,
    },
    /// The feature's output cannot be written as JSON.
    #[error("the feature's output cannot be sent: {path}: {reason}")]
    OutputMismatch {
        /// The value (`output.score`).
        path: String,
        /// Why.
        reason: String,
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
    fn request_json_names_the_feature_and_carries_its_input() {
        let json = r#"{"feature":"suggest","input":{"draft":"see u at 5","context":[],"tone":"formal","count":2}}"#;
        let request: FeatureRequest = serde_json::from_str(json).expect("valid request");
        assert_eq!(request.feature(), "suggest");
        let typed = SuggestRequest {
            draft: "see u at 5".into(),
            context: vec![],
            tone: Tone::Formal,
            count: 2,
        };
        assert_eq!(request.decode::<SuggestRequest>().expect("suggest"), typed);
        assert_eq!(FeatureRequest::of(&typed), request);
        let message = Message {
            sender: "a".into(),
            sent_at: 1,
            text: "t".into(),
        };
        assert_eq!(
            serde_json::to_value(&message).expect("encodes"),
            serde_json::json!({"sender": "a", "sent-at": 1, "text": "t"}),
            "field names are WIT's kebab-case"
        );
    }

    #[test]
    fn unknown_envelope_fields_are_rejected_and_any_feature_is_carried() {
        for bad in [
            r#"{"feature":"summarise","input":{},"exfiltrate":true}"#,
            r#"{"feature":"summarise"}"#,
        ] {
            assert!(
                serde_json::from_str::<FeatureRequest>(bad).is_err(),
                "{bad}"
            );
        }
        let any: FeatureRequest =
            serde_json::from_str(r#"{"feature":"translate","input":{"text":"hola"}}"#)
                .expect("any feature");
        assert_eq!(any.feature(), "translate");
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
            RequestError::InputMismatch {
                path: "input.messages[2].sent-at".into(),
                reason: "expected u64, found string".into(),
            },
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
    fn responses_name_their_feature_and_decode_to_its_output() {
        let response = FeatureResponse::new(
            "summarise",
            serde_json::json!({"text": "Lunch Friday.", "messages-covered": 3}),
        );
        assert_eq!(response.feature(), "summarise");
        assert_eq!(
            response.decode::<Summary>().expect("a summary"),
            Summary {
                text: "Lunch Friday.".into(),
                messages_covered: 3
            }
        );
        assert!(response.decode::<Vec<String>>().is_err());
        let text = serde_json::to_string(&response).expect("encodes");
        assert_eq!(
            serde_json::from_str::<FeatureResponse>(&text).expect("decodes"),
            response
        );
    }
}
