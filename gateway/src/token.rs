//! The seam for Privacy Pass token redemption (RFC 9577 `PrivateToken`).
//!
//! The issuer and the double-spend store are built elsewhere; the gateway
//! only calls a [`TokenRedeemer`] on every inner request before routing it,
//! and refuses the request unless the redeemer accepts.

use std::future::Future;

use thiserror::Error;

/// Why a request's token was not accepted. The client sees only the status.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenRejection {
    /// No `Authorization: PrivateToken` header, and tokens are required.
    #[error("no PrivateToken presented")]
    Missing,
    /// The token is malformed, badly signed, or for another issuer or origin.
    #[error("token invalid: {0}")]
    Invalid(String),
    /// The token was already spent.
    #[error("token already spent")]
    DoubleSpend,
    /// Tokens are required but no redeemer is able to check them.
    #[error("no token redeemer configured")]
    NoRedeemer,
}

/// Redeems the token on an inner request. Implementations must fail closed:
/// any doubt is a rejection. Called after the replay check, so a replayed
/// request never spends a token twice.
pub trait TokenRedeemer: Send + Sync + 'static {
    /// Redeem the token carried in `authorization` (the value of the inner
    /// request's `Authorization` header, if any).
    fn redeem(&self, authorization: Option<&[u8]>) -> impl Future<Output = Result<(), TokenRejection>> + Send;
}

/// The redeemer used until a Privacy Pass redeemer is plugged in. It cannot
/// verify tokens, so with `require_tokens` it refuses **every** request
/// (with a token or without); without it, tokens are not asked for. The
/// gateway logs a warning at start-up when tokens are not required.
#[derive(Debug, Clone, Copy)]
pub struct NoRedeemer {
    /// Whether requests must carry a token.
    pub require_tokens: bool,
}

impl TokenRedeemer for NoRedeemer {
    async fn redeem(&self, authorization: Option<&[u8]>) -> Result<(), TokenRejection> {
        if !self.require_tokens {
            return Ok(());
        }
        match authorization {
            None => Err(TokenRejection::Missing),
            Some(_) => Err(TokenRejection::NoRedeemer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requiring_tokens_without_a_redeemer_refuses_everything() {
        let strict = NoRedeemer { require_tokens: true };
        assert_eq!(strict.redeem(None).await, Err(TokenRejection::Missing));
        assert_eq!(strict.redeem(Some(b"PrivateToken token=abc")).await, Err(TokenRejection::NoRedeemer));
        let open = NoRedeemer { require_tokens: false };
        assert_eq!(open.redeem(None).await, Ok(()));
    }
}
