//! The issuer side of issuance (RFC 9578 §6.2): pick the key the request
//! names and blind-sign. Who may ask, and how often, is the server's job.

use crate::keys::{IssuerSecretKey, KeyError};
use crate::wire::{TokenRequest, TokenResponse};

/// Why the issuer refused to sign a well-formed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// No active key has the request's truncated key id (RFC 9578 §6.2: 400).
    #[error("no active issuer key with truncated id {0:#04x}")]
    UnknownKey(u8),
    /// The blinded message is not a valid input (for example not below the modulus).
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Blind-signs `request` with the active key whose truncated key id it
/// names. Active keys must have distinct truncated ids (the key ring in the
/// issuer server guarantees this when it generates keys).
pub fn issue(
    active_keys: &[IssuerSecretKey],
    request: &TokenRequest,
) -> Result<TokenResponse, IssueError> {
    let key = active_keys
        .iter()
        .find(|k| k.public_key().truncated_key_id() == request.truncated_token_key_id)
        .ok_or(IssueError::UnknownKey(request.truncated_token_key_id))?;
    Ok(key.blind_sign(request)?)
}
