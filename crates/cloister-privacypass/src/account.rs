//! Account-key authentication of token requests: a genuine client holds an
//! Ed25519 account key registered with the issuer and signs each token
//! request. The issuer thus knows *who* asks (to rate-limit) but the
//! signature covers only the blinded request, which tells it nothing about
//! the token later spent.
//!
//! The signed message is
//! `"cloister-token-request-v1" || u16 len(account) || account || u64 timestamp || SHA-256(body)`,
//! sent in three headers ([`ACCOUNT_HEADER`], [`TIMESTAMP_HEADER`],
//! [`SIGNATURE_HEADER`]). The timestamp bounds how long a captured request
//! can be replayed.

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::base64url;

/// Header naming the account.
pub const ACCOUNT_HEADER: &str = "cloister-account";
/// Header with the signing time, decimal Unix seconds.
pub const TIMESTAMP_HEADER: &str = "cloister-timestamp";
/// Header with the base64url Ed25519 signature.
pub const SIGNATURE_HEADER: &str = "cloister-signature";
/// Longest account identifier accepted.
pub const MAX_ACCOUNT_ID_LEN: usize = 128;

const DOMAIN: &[u8] = b"cloister-token-request-v1";

/// Why account authentication failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// A header is missing or malformed.
    #[error("malformed account authentication headers")]
    Malformed,
    /// The signing time is too far from the issuer's clock.
    #[error("request timestamp outside the allowed skew")]
    Stale,
    /// The signature does not verify under the account's key.
    #[error("bad account signature")]
    BadSignature,
}

/// The authentication a client attaches to a token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountAuth {
    /// The account identifier.
    pub account: String,
    /// Signing time, Unix seconds.
    pub timestamp: u64,
    /// Ed25519 signature over the signed message.
    pub signature: [u8; 64],
}

fn signed_message(account: &str, timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOMAIN.len() + 2 + account.len() + 8 + 32);
    out.extend_from_slice(DOMAIN);
    // Account ids are bounded by MAX_ACCOUNT_ID_LEN, so the length fits.
    out.extend_from_slice(&(account.len() as u16).to_be_bytes());
    out.extend_from_slice(account.as_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&Sha256::digest(body));
    out
}

fn is_valid_account(account: &str) -> bool {
    !account.is_empty()
        && account.len() <= MAX_ACCOUNT_ID_LEN
        && account
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

impl AccountAuth {
    /// Signs a token request `body` for `account` at `timestamp`.
    pub fn sign(
        account: &str,
        key: &SigningKey,
        timestamp: u64,
        body: &[u8],
    ) -> Result<Self, AccountError> {
        if !is_valid_account(account) {
            return Err(AccountError::Malformed);
        }
        let signature = key
            .sign(&signed_message(account, timestamp, body))
            .to_bytes();
        Ok(Self {
            account: account.to_owned(),
            timestamp,
            signature,
        })
    }

    /// The three header values, in the order account, timestamp, signature.
    pub fn header_values(&self) -> [String; 3] {
        [
            self.account.clone(),
            self.timestamp.to_string(),
            base64url::encode(&self.signature),
        ]
    }

    /// Parses the three header values (any may be absent).
    pub fn from_header_values(
        account: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
    ) -> Result<Self, AccountError> {
        let account = account
            .filter(|a| is_valid_account(a))
            .ok_or(AccountError::Malformed)?;
        let timestamp = timestamp
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
            .ok_or(AccountError::Malformed)?;
        let signature = signature
            .and_then(base64url::decode)
            .and_then(|s| <[u8; 64]>::try_from(s).ok())
            .ok_or(AccountError::Malformed)?;
        Ok(Self {
            account: account.to_owned(),
            timestamp,
            signature,
        })
    }

    /// Verifies the signature over `body` under `key` and that the
    /// timestamp is within `max_skew` seconds of `now`.
    pub fn verify(
        &self,
        key: &VerifyingKey,
        body: &[u8],
        now: u64,
        max_skew: u64,
    ) -> Result<(), AccountError> {
        if now.abs_diff(self.timestamp) > max_skew {
            return Err(AccountError::Stale);
        }
        let message = signed_message(&self.account, self.timestamp, body);
        key.verify(&message, &Signature::from_bytes(&self.signature))
            .map_err(|_| AccountError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_binds_account_body_and_time() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let auth = AccountAuth::sign("alice", &key, 1000, b"body").expect("sign");
        let [a, t, s] = auth.header_values();
        let parsed = AccountAuth::from_header_values(Some(&a), Some(&t), Some(&s)).expect("parse");
        let public = key.verifying_key();
        assert_eq!(parsed.verify(&public, b"body", 1010, 60), Ok(()));
        assert_eq!(
            parsed.verify(&public, b"other", 1010, 60),
            Err(AccountError::BadSignature)
        );
        assert_eq!(
            parsed.verify(&public, b"body", 2000, 60),
            Err(AccountError::Stale)
        );
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert_eq!(
            parsed.verify(&other, b"body", 1010, 60),
            Err(AccountError::BadSignature)
        );
        let renamed = AccountAuth {
            account: "bob".into(),
            ..parsed
        };
        assert_eq!(
            renamed.verify(&public, b"body", 1010, 60),
            Err(AccountError::BadSignature)
        );
        assert!(AccountAuth::from_header_values(Some("a b"), Some(&t), Some(&s)).is_err());
        assert!(AccountAuth::from_header_values(Some(&a), Some("+5"), Some(&s)).is_err());
    }
}
