//! Token redemption for the gateway (RFC 9577 §2.2, RFC 9578 §6.4).
//!
//! The gateway hands [`Redeemer::redeem`] the inner request's
//! `Authorization` value. A token is accepted only if, in this order: it
//! parses; its key id names a trusted key inside that key's validity window;
//! its challenge digest is one the gateway issues; its RSA signature
//! verifies; and its nonce was never seen under that key. Spent nonces are
//! kept in a [`OnceSet`] (a redb file, or Redis shared by every gateway
//! replica) until the key's window closes, because a token under an expired
//! key is refused anyway. The set has a fixed capacity and refuses every
//! token once full rather than forgetting nonces early, and a store that
//! cannot answer refuses the token too (fails closed).

use std::sync::{PoisonError, RwLock};

use cloister_state_store::{Inserted, OnceSet, StateError};

use crate::directory::{DirectoryError, IssuerDirectory};
use crate::header::{HeaderError, parse_authorization};
use crate::keys::IssuerPublicKey;
use crate::wire::{NID, NONCE_LEN, TokenChallenge};

/// An issuer key the gateway accepts, with the window (Unix seconds,
/// `not_before <= now < not_after`) in which its tokens may be spent.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The issuer public key.
    pub key: IssuerPublicKey,
    /// First second tokens of this key are accepted.
    pub not_before: u64,
    /// First second they are no longer accepted; spent nonces are kept until then.
    pub not_after: u64,
}

impl TrustedKey {
    /// The type 0x0002 keys of an issuer directory, each trusted from its
    /// not-before for `lifetime_secs` (the issuer's configured key lifetime).
    /// Keys without a not-before are left out: their window is unknown.
    pub fn from_directory(
        directory: &IssuerDirectory,
        lifetime_secs: u64,
    ) -> Result<Vec<Self>, DirectoryError> {
        Ok(directory
            .blind_rsa_keys()?
            .into_iter()
            .filter_map(|published| {
                let not_before = published.not_before?;
                Some(Self {
                    key: published.key,
                    not_before,
                    not_after: not_before.saturating_add(lifetime_secs),
                })
            })
            .collect())
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedeemError {
    /// The header is not a well-formed `PrivateToken` credential.
    #[error("malformed Authorization header: {0}")]
    Malformed(#[from] HeaderError),
    /// The token names a key the gateway does not trust.
    #[error("token signed under an unknown issuer key")]
    UnknownKey,
    /// The key's validity window has not opened yet or has closed.
    #[error("issuer key not valid at this time")]
    KeyNotValidNow,
    /// Two newer issuer keys are open: the gateway accepts only the current
    /// key and the one it is taking over from, so an issuer cannot have a
    /// third key in use at once (one key per account would name accounts).
    #[error("issuer key superseded by two newer keys")]
    Superseded,
    /// The token answers a challenge this gateway does not issue
    /// (another origin, another issuer name, another context).
    #[error("token is for another challenge or origin")]
    WrongChallenge,
    /// The authenticator is not a valid signature.
    #[error("token signature invalid")]
    BadSignature,
    /// The token was already spent.
    #[error("token already spent")]
    DoubleSpend,
    /// The spent-nonce store is full; every token is refused until keys expire.
    #[error("spent-token store full")]
    StoreFull,
    /// The spent-nonce store could not answer, so the token is refused.
    #[error("spent-token store unavailable: {0}")]
    StoreUnavailable(String),
}

impl RedeemError {
    /// The HTTP status a gateway should answer with: 503 when the store is
    /// full or unavailable (the client did nothing wrong), 401 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            RedeemError::StoreFull | RedeemError::StoreUnavailable(_) => 503,
            _ => 401,
        }
    }
}

impl From<StateError> for RedeemError {
    fn from(error: StateError) -> Self {
        match error {
            StateError::Full { .. } => Self::StoreFull,
            other => Self::StoreUnavailable(other.to_string()),
        }
    }
}

/// What the gateway learns from an accepted token: which key signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    /// The token key id (SHA-256 of the issuer key's SPKI).
    pub token_key_id: [u8; NID],
}

/// Verifies and spends tokens. Shareable across threads (`&self` methods).
#[derive(Debug)]
pub struct Redeemer {
    keys: RwLock<Vec<TrustedKey>>,
    accepted_challenges: Vec<[u8; 32]>,
    spent: OnceSet,
}

impl Redeemer {
    /// A redeemer trusting `keys`, accepting tokens for any of
    /// `accepted_challenges`, keeping spent nonces in `spent` (whose
    /// capacity bounds how many are remembered).
    pub fn new(
        keys: Vec<TrustedKey>,
        accepted_challenges: &[TokenChallenge],
        spent: OnceSet,
    ) -> Self {
        Self {
            keys: RwLock::new(keys),
            accepted_challenges: accepted_challenges
                .iter()
                .map(TokenChallenge::digest)
                .collect(),
            spent,
        }
    }

    /// Replaces the trusted keys (issuer key rotation). Spent nonces of keys
    /// that stay trusted are kept.
    pub fn set_keys(&self, keys: Vec<TrustedKey>) {
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = keys;
    }

    /// Redeems the token in an `Authorization` header value, now.
    pub async fn redeem(&self, authorization: &str) -> Result<Redemption, RedeemError> {
        self.redeem_at(authorization, cloister_wire::unix_now())
            .await
    }

    /// Redeems at a given Unix time (seconds).
    pub async fn redeem_at(
        &self,
        authorization: &str,
        now: u64,
    ) -> Result<Redemption, RedeemError> {
        let token = parse_authorization(authorization)?;
        let trusted = {
            let keys = self.keys.read().unwrap_or_else(PoisonError::into_inner);
            let trusted = keys
                .iter()
                .find(|k| k.key.key_id() == &token.token_key_id)
                .cloned()
                .ok_or(RedeemError::UnknownKey)?;
            if now < trusted.not_before || now >= trusted.not_after {
                return Err(RedeemError::KeyNotValidNow);
            }
            let open_and_newer = keys
                .iter()
                .filter(|k| k.not_before <= now && now < k.not_after)
                .filter(|k| {
                    (k.not_before, k.key.key_id()) > (trusted.not_before, trusted.key.key_id())
                })
                .count();
            if open_and_newer >= 2 {
                return Err(RedeemError::Superseded);
            }
            trusted
        };
        if !self.accepted_challenges.contains(&token.challenge_digest) {
            return Err(RedeemError::WrongChallenge);
        }
        trusted
            .key
            .verify_authenticator(&token)
            .map_err(|_| RedeemError::BadSignature)?;
        // Only verified tokens reach the store, so forgeries cannot fill it.
        spend(
            &self.spent,
            now,
            &token.token_key_id,
            trusted.not_after,
            token.nonce,
        )
        .await?;
        Ok(Redemption {
            token_key_id: token.token_key_id,
        })
    }
}

/// Records `nonce` under `key_id` as spent until the key's window closes at
/// `not_after`; a nonce already recorded is a double spend.
async fn spend(
    spent: &OnceSet,
    now: u64,
    key_id: &[u8; NID],
    not_after: u64,
    nonce: [u8; NONCE_LEN],
) -> Result<(), RedeemError> {
    let key = [&key_id[..], &nonce[..]].concat();
    match spent.insert(&key, not_after, now).await? {
        Inserted::Fresh => Ok(()),
        Inserted::Present => Err(RedeemError::DoubleSpend),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn store_expires_with_the_key_and_fails_closed_when_full() {
        let store = cloister_state_store::StateStore::in_memory()
            .expect("store")
            .once_set("spent", 2);
        spend(&store, 10, &[1; 32], 100, [1; 32])
            .await
            .expect("first");
        assert_eq!(
            spend(&store, 10, &[1; 32], 100, [1; 32]).await,
            Err(RedeemError::DoubleSpend)
        );
        spend(&store, 10, &[2; 32], 50, [2; 32])
            .await
            .expect("second");
        assert_eq!(
            spend(&store, 10, &[1; 32], 100, [3; 32]).await,
            Err(RedeemError::StoreFull)
        );
        // Key 2's window closes at 50: its nonces are dropped, making room.
        spend(&store, 50, &[1; 32], 100, [3; 32])
            .await
            .expect("room after expiry");
        assert_eq!(store.count().await.ok(), Some(2));
        assert_eq!(
            spend(&store, 60, &[1; 32], 100, [1; 32]).await,
            Err(RedeemError::DoubleSpend)
        );
    }
}
