//! What can go wrong when sending a request.

use thiserror::Error;

/// A request that did not produce an inner response.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The key endpoint or the relay could not be reached, or timed out.
    #[error("transport: {0}")]
    Transport(#[source] reqwest::Error),
    /// A plain-HTTP relay or key endpoint was refused, or TLS could not be
    /// set up.
    #[error(transparent)]
    Tls(#[from] cloister_tls::TlsError),
    /// The key endpoint answered with something other than a key list.
    #[error("key endpoint answered {status} with {media_type:?}")]
    KeyEndpoint {
        /// HTTP status of the answer.
        status: u16,
        /// Its content type.
        media_type: Option<String>,
    },
    /// The key list is not a valid `application/ohttp-keys` body.
    #[error("key list: {0}")]
    KeyList(#[from] cloister_ohttp_keys::KeyListError),
    /// None of the offered key configurations is supported.
    #[error("no supported key configuration offered")]
    NoUsableKey,
    /// The key configuration is not the one published in the ledger: the
    /// gateway may be singling this client out. Nothing was sent.
    #[error("key configuration failed the consistency check: {0}")]
    KeyConsistency(String),
    /// The gateway still did not know the key after a refetch.
    #[error("gateway rejected a freshly fetched key configuration")]
    KeyRejected,
    /// The gateway could not decrypt the request even under a freshly
    /// fetched key configuration.
    #[error("gateway could not decrypt the request under a freshly fetched key configuration")]
    Undecryptable,
    /// The gateway still rejected the `Date` after adopting its clock.
    #[error("gateway rejected our clock even after correction")]
    ClockSkew,
    /// The inner request could not be encoded.
    #[error("encoding the request: {0}")]
    Encode(#[source] bhttp::Error),
    /// HPKE encapsulation failed.
    #[error("encapsulation: {0}")]
    Encapsulation(#[source] ohttp::Error),
    /// The relay or gateway answered with an error status.
    #[error("relay or gateway answered {status} (problem: {problem:?})")]
    Status {
        /// HTTP status.
        status: u16,
        /// The problem type, if the answer was a problem document.
        problem: Option<String>,
    },
    /// A 200 answer that is not `message/ohttp-res`.
    #[error("unexpected media type {0:?}")]
    UnexpectedMediaType(Option<String>),
    /// The answer did not decrypt: tampered with, or not for this request.
    #[error("decapsulation: {0}")]
    Decapsulation(#[source] ohttp::Error),
    /// The decrypted answer is not a Binary HTTP message.
    #[error("decoding the response: {0}")]
    Decode(#[source] bhttp::Error),
}
