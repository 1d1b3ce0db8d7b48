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
    /// The spent-token store is full or cannot answer, so no token can be
    /// spent safely: refused, whatever the token.
    #[error("token store unavailable: {0}")]
    StoreUnavailable(String),
}

/// What the gateway learned from an accepted request's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// Tokens are not required here, and none was checked.
    Unchecked,
    /// A token signed under the issuer key with this token key id.
    IssuerKey([u8; 32]),
}

/// Redeems the token on an inner request. Implementations must fail closed:
/// any doubt is a rejection. Called after the `Date` check and before the
/// replay store records the request, so that only paid requests take room
/// there; a replayed request carries a token already spent and is refused
/// as a double spend.
pub trait TokenRedeemer: Send + Sync + 'static {
    /// Redeem the token carried in `authorization` (the value of the inner
    /// request's `Authorization` header, if any).
    fn redeem(
        &self,
        authorization: Option<&[u8]>,
    ) -> impl Future<Output = Result<Redeemed, TokenRejection>> + Send;
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
    async fn redeem(&self, authorization: Option<&[u8]>) -> Result<Redeemed, TokenRejection> {
        if !self.require_tokens {
            return Ok(Redeemed::Unchecked);
        }
        match authorization {
            None => Err(TokenRejection::Missing),
            Some(_) => Err(TokenRejection::NoRedeemer),
        }
    }
}

/// Redeems Privacy Pass token type 0x0002 (RFC 9577/9578) with
/// `cloister-privacypass`: signature under a trusted issuer key, the
/// gateway's own challenge, and a single spend per token.
#[derive(Debug, Clone)]
pub struct PrivacyPassRedeemer(std::sync::Arc<cloister_privacypass::Redeemer>);

impl PrivacyPassRedeemer {
    /// Redeems with `redeemer`, whose keys may be refreshed through the shared handle.
    pub fn new(redeemer: std::sync::Arc<cloister_privacypass::Redeemer>) -> Self {
        Self(redeemer)
    }
}

impl TokenRedeemer for PrivacyPassRedeemer {
    async fn redeem(&self, authorization: Option<&[u8]>) -> Result<Redeemed, TokenRejection> {
        let value = authorization.ok_or(TokenRejection::Missing)?;
        let value = std::str::from_utf8(value)
            .map_err(|_| TokenRejection::Invalid("header is not UTF-8".into()))?;
        match self.0.redeem(value).await {
            Ok(redemption) => Ok(Redeemed::IssuerKey(redemption.token_key_id)),
            Err(cloister_privacypass::RedeemError::DoubleSpend) => Err(TokenRejection::DoubleSpend),
            Err(
                error @ (cloister_privacypass::RedeemError::StoreFull
                | cloister_privacypass::RedeemError::StoreUnavailable(_)),
            ) => Err(TokenRejection::StoreUnavailable(error.to_string())),
            Err(error) => Err(TokenRejection::Invalid(error.to_string())),
        }
    }
}

/// The redeemer a gateway runs with, chosen by its configuration.
#[derive(Debug, Clone)]
pub enum ConfiguredRedeemer {
    /// No issuer configured (see [`NoRedeemer`]).
    Unchecked(NoRedeemer),
    /// Privacy Pass tokens from the configured issuer.
    PrivacyPass(PrivacyPassRedeemer),
}

impl TokenRedeemer for ConfiguredRedeemer {
    async fn redeem(&self, authorization: Option<&[u8]>) -> Result<Redeemed, TokenRejection> {
        match self {
            Self::Unchecked(redeemer) => redeemer.redeem(authorization).await,
            Self::PrivacyPass(redeemer) => redeemer.redeem(authorization).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requiring_tokens_without_a_redeemer_refuses_everything() {
        let strict = NoRedeemer {
            require_tokens: true,
        };
        assert_eq!(strict.redeem(None).await, Err(TokenRejection::Missing));
        assert_eq!(
            strict.redeem(Some(b"PrivateToken token=abc")).await,
            Err(TokenRejection::NoRedeemer)
        );
        let open = NoRedeemer {
            require_tokens: false,
        };
        assert_eq!(open.redeem(None).await, Ok(Redeemed::Unchecked));
    }

    #[tokio::test]
    async fn privacy_pass_tokens_are_spent_once_and_forgeries_refused() {
        use cloister_privacypass::header::format_authorization;
        use cloister_privacypass::{
            IssuerSecretKey, Redeemer, TokenChallenge, TrustedKey, issue, request_token,
        };

        let challenge =
            TokenChallenge::new("issuer.example", None, &["gateway.example"]).expect("challenge");
        let secret = IssuerSecretKey::generate().expect("issuer key");
        let mint = |secret: &IssuerSecretKey| {
            let (request, pending) = request_token(secret.public_key(), &challenge).expect("blind");
            let response = issue(std::slice::from_ref(secret), &request).expect("issue");
            format_authorization(&pending.finalize(&response).expect("finalize"))
        };
        let trusted = TrustedKey {
            key: secret.public_key().clone(),
            not_before: 0,
            not_after: u64::MAX,
        };
        let spent = cloister_state_store::StateStore::in_memory()
            .expect("store")
            .once_set("spent", 64);
        let redeemer =
            ConfiguredRedeemer::PrivacyPass(PrivacyPassRedeemer::new(std::sync::Arc::new(
                Redeemer::new(vec![trusted], std::slice::from_ref(&challenge), spent),
            )));

        let header = mint(&secret);
        assert_eq!(
            redeemer.redeem(Some(header.as_bytes())).await,
            Ok(Redeemed::IssuerKey(*secret.public_key().key_id()))
        );
        assert_eq!(
            redeemer.redeem(Some(header.as_bytes())).await,
            Err(TokenRejection::DoubleSpend)
        );
        assert_eq!(redeemer.redeem(None).await, Err(TokenRejection::Missing));
        assert!(matches!(
            redeemer.redeem(Some(b"PrivateToken token=AAAA")).await,
            Err(TokenRejection::Invalid(_))
        ));
        let rogue = IssuerSecretKey::generate().expect("rogue key");
        assert!(matches!(
            redeemer.redeem(Some(mint(&rogue).as_bytes())).await,
            Err(TokenRejection::Invalid(_))
        ));
    }
}
