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
    /// Bytes of text in the response, the measure of the host's output limit.
    pub fn text_bytes(&self) -> usize {
        match self {
            Self::Summary { text, .. } => text.len(),
            Self::Suggestions { items } => items.iter().map(String::len).sum(),
        }
    }
}

/// Why a feature could not answer (the plugin's own typed error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "kebab-case")]
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
    /// Inference failed.
    #[error("inference failed: {reason}")]
    Inference {
        /// The inference error, as the host reported it to the plugin.
        reason: String,
    },
    /// The model's output could not be turned into an answer.
    #[error("the model's output was unusable")]
    UnusableOutput,
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
    fn response_text_bytes_counts_every_item() {
        let response = FeatureResponse::Suggestions {
            items: vec!["ab".into(), "cde".into()],
        };
        assert_eq!(response.text_bytes(), 5);
    }
}
