//! End-to-end properties of issuance and redemption: a valid token is
//! accepted once, replays and tokens for another key, origin or time are
//! refused, malformed headers are refused, the spent-token store fails
//! closed, and the issuer's and redeemer's views share only the public key.

use cloister_privacypass::account::AccountAuth;
use cloister_privacypass::header::format_authorization;
use cloister_privacypass::{
    IssuerSecretKey, RedeemError, Redeemer, Token, TokenChallenge, TokenRequest, TokenResponse,
    TrustedKey, issue, request_token,
};
use cloister_state_store::{OnceSet, StateStore};
use ed25519_dalek::SigningKey;

use crate::common;
use common::rfc_issuer_key;

const ISSUER: &str = "issuer.cloister.example";
const GATEWAY: &str = "gateway.cloister.example";
const NOW: u64 = 1_000;

fn gateway_challenge() -> TokenChallenge {
    TokenChallenge::new(ISSUER, None, &[GATEWAY]).expect("challenge")
}

/// Runs the whole issuance protocol and returns the token.
fn mint(secret: &IssuerSecretKey, challenge: &TokenChallenge) -> Token {
    let (request, pending) = request_token(secret.public_key(), challenge).expect("blind");
    let response = issue(std::slice::from_ref(secret), &request).expect("issue");
    pending.finalize(&response).expect("finalize")
}

/// A spent-token set of `capacity` in a fresh in-memory store.
fn spent_set(capacity: u64) -> OnceSet {
    StateStore::in_memory()
        .expect("store")
        .once_set("spent", capacity)
}

fn redeemer_for(secret: &IssuerSecretKey, capacity: u64) -> Redeemer {
    redeemer_with(secret, spent_set(capacity))
}

fn redeemer_with(secret: &IssuerSecretKey, spent: OnceSet) -> Redeemer {
    let trusted = TrustedKey {
        key: secret.public_key().clone(),
        not_before: 500,
        not_after: 2_000,
    };
    Redeemer::new(vec![trusted], &[gateway_challenge()], spent)
}

#[tokio::test]
async fn valid_token_is_accepted_once_and_its_replay_rejected() {
    let secret = rfc_issuer_key();
    let spent = spent_set(16);
    let redeemer = redeemer_with(&secret, spent.clone());
    let header = format_authorization(&mint(&secret, &gateway_challenge()));
    let redemption = redeemer.redeem_at(&header, NOW).await.expect("first spend");
    assert_eq!(&redemption.token_key_id, secret.public_key().key_id());
    assert_eq!(
        redeemer.redeem_at(&header, NOW).await,
        Err(RedeemError::DoubleSpend)
    );
    assert_eq!(
        redeemer.redeem_at(&header, NOW + 100).await,
        Err(RedeemError::DoubleSpend)
    );
    // A second, distinct token still works.
    let other = format_authorization(&mint(&secret, &gateway_challenge()));
    assert!(redeemer.redeem_at(&other, NOW).await.is_ok());
    assert_eq!(spent.count().await.ok(), Some(2));
}

#[tokio::test]
async fn token_for_another_origin_or_issuer_name_is_rejected() {
    let secret = rfc_issuer_key();
    let redeemer = redeemer_for(&secret, 16);
    let elsewhere = TokenChallenge::new(ISSUER, None, &["evil.example"]).expect("challenge");
    let header = format_authorization(&mint(&secret, &elsewhere));
    assert_eq!(
        redeemer.redeem_at(&header, NOW).await,
        Err(RedeemError::WrongChallenge)
    );
    let other_issuer = TokenChallenge::new("other.example", None, &[GATEWAY]).expect("challenge");
    let header = format_authorization(&mint(&secret, &other_issuer));
    assert_eq!(
        redeemer.redeem_at(&header, NOW).await,
        Err(RedeemError::WrongChallenge)
    );
}

#[tokio::test]
async fn token_from_another_issuer_key_is_rejected() {
    let trusted = rfc_issuer_key();
    let redeemer = redeemer_for(&trusted, 16);
    let rogue = IssuerSecretKey::generate().expect("keygen");
    let token = mint(&rogue, &gateway_challenge());
    assert_eq!(
        redeemer.redeem_at(&format_authorization(&token), NOW).await,
        Err(RedeemError::UnknownKey)
    );
    // Relabelled as the trusted key, the signature no longer verifies.
    let relabelled = Token {
        token_key_id: *trusted.public_key().key_id(),
        ..token
    };
    assert_eq!(
        redeemer
            .redeem_at(&format_authorization(&relabelled), NOW)
            .await,
        Err(RedeemError::BadSignature)
    );
}

#[tokio::test]
async fn tampered_token_is_rejected_and_not_recorded() {
    let secret = rfc_issuer_key();
    let spent = spent_set(16);
    let redeemer = redeemer_with(&secret, spent.clone());
    let token = mint(&secret, &gateway_challenge());
    let mut forged = token.clone();
    forged.nonce[0] ^= 1;
    assert_eq!(
        redeemer
            .redeem_at(&format_authorization(&forged), NOW)
            .await,
        Err(RedeemError::BadSignature)
    );
    assert_eq!(spent.count().await.ok(), Some(0));
    assert!(
        redeemer
            .redeem_at(&format_authorization(&token), NOW)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn token_outside_its_key_window_is_rejected() {
    let secret = rfc_issuer_key();
    let redeemer = redeemer_for(&secret, 16);
    let header = format_authorization(&mint(&secret, &gateway_challenge()));
    assert_eq!(
        redeemer.redeem_at(&header, 499).await,
        Err(RedeemError::KeyNotValidNow)
    );
    assert_eq!(
        redeemer.redeem_at(&header, 2_000).await,
        Err(RedeemError::KeyNotValidNow)
    );
    assert!(redeemer.redeem_at(&header, 1_999).await.is_ok());
}

#[tokio::test]
async fn malformed_headers_are_rejected() {
    let secret = rfc_issuer_key();
    let redeemer = redeemer_for(&secret, 16);
    let good = format_authorization(&mint(&secret, &gateway_challenge()));
    let cases = [
        "".to_owned(),
        "PrivateToken".to_owned(),
        "PrivateToken token=".to_owned(),
        "PrivateToken token=\"!!!\"".to_owned(),
        good.replacen("PrivateToken", "Bearer", 1),
        good.replacen("token=\"", "token=\"AAAA", 1),
        format!("{good}, token=\"AAAA\""),
        good[..good.len() - 10].to_owned(),
    ];
    for case in &cases {
        assert!(
            matches!(
                redeemer.redeem_at(case, NOW).await,
                Err(RedeemError::Malformed(_))
            ),
            "accepted {case:?}"
        );
    }
    assert!(
        redeemer.redeem_at(&good, NOW).await.is_ok(),
        "the well-formed original is still good"
    );
}

#[tokio::test]
async fn full_store_fails_closed_until_the_key_expires() {
    let secret = rfc_issuer_key();
    let spent = spent_set(2);
    let redeemer = redeemer_with(&secret, spent.clone());
    for _ in 0..2 {
        let header = format_authorization(&mint(&secret, &gateway_challenge()));
        redeemer
            .redeem_at(&header, NOW)
            .await
            .expect("within capacity");
    }
    let header = format_authorization(&mint(&secret, &gateway_challenge()));
    let refused = redeemer.redeem_at(&header, NOW).await;
    assert_eq!(refused, Err(RedeemError::StoreFull));
    assert_eq!(refused.err().map(|e| e.http_status()), Some(503));
    // After rotation to a new window the old nonces are dropped.
    let renewed = TrustedKey {
        key: secret.public_key().clone(),
        not_before: 2_000,
        not_after: 3_000,
    };
    redeemer.set_keys(vec![renewed]);
    assert!(redeemer.redeem_at(&header, 2_500).await.is_ok());
    assert_eq!(spent.count().await.ok(), Some(1));
}

/// Every 8-byte window of `haystack`.
fn windows(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.windows(8)
}

#[tokio::test]
async fn issuer_and_redeemer_views_share_nothing_but_the_public_key() {
    let secret = rfc_issuer_key();
    let public = secret.public_key().clone();
    let account_key = SigningKey::from_bytes(&[42; 32]);

    // Issuer's view: the account's authentication and the request/response.
    let challenge = gateway_challenge();
    let (request, pending) = request_token(&public, &challenge).expect("blind");
    let request_bytes = request.encode();
    let auth = AccountAuth::sign("alice", &account_key, NOW, &request_bytes).expect("sign");
    let request_seen = TokenRequest::decode(&request_bytes).expect("issuer parses");
    let response_bytes = issue(std::slice::from_ref(&secret), &request_seen)
        .expect("issue")
        .encode();
    let mut issuer_view: Vec<Vec<u8>> = vec![request_bytes, response_bytes.clone()];
    issuer_view.extend(auth.header_values().map(String::into_bytes));
    issuer_view.push(auth.signature.to_vec());

    // Redeemer's view: the Authorization header and the token inside it.
    let token = pending
        .finalize(&TokenResponse::decode(&response_bytes).expect("parse"))
        .expect("finalize");
    let header = format_authorization(&token);
    let redeemer = redeemer_for(&secret, 4);
    let redemption = redeemer.redeem_at(&header, NOW).await.expect("redeem");
    let redeemer_view: Vec<Vec<u8>> = vec![
        header.into_bytes(),
        token.encode(),
        redemption.token_key_id.to_vec(),
    ];

    let public_material = [public.spki().to_vec(), public.key_id().to_vec()];
    let is_public = |w: &[u8]| public_material.iter().any(|p| p.windows(8).any(|x| x == w));
    let mut shared = Vec::new();
    for seen in &redeemer_view {
        for w in windows(seen).filter(|w| !is_public(w)) {
            if issuer_view.iter().any(|i| windows(i).any(|x| x == w)) {
                shared.push(w.to_vec());
            }
        }
    }
    assert!(
        shared.is_empty(),
        "issuer and redeemer views share {} byte windows",
        shared.len()
    );
    // The token does carry the public key id: the one value both sides know.
    assert_eq!(&token.token_key_id, public.key_id());
    // And the issuer never saw the nonce, the challenge digest or the signature.
    for secret_part in [
        &token.nonce[..],
        &token.challenge_digest[..],
        &token.authenticator[..],
    ] {
        assert!(
            issuer_view
                .iter()
                .all(|v| !v.windows(secret_part.len()).any(|x| x == secret_part))
        );
    }
}

#[tokio::test]
async fn gateway_trusts_exactly_the_directory_keys_for_their_lifetime() {
    use cloister_privacypass::directory::PublishedKey;
    let secret = rfc_issuer_key();
    let published = [
        PublishedKey {
            key: secret.public_key().clone(),
            not_before: Some(500),
        },
        PublishedKey {
            key: secret.public_key().clone(),
            not_before: None,
        },
    ];
    let directory = cloister_privacypass::IssuerDirectory::new(
        "https://issuer.example/token-request",
        &published,
    );
    let parsed = cloister_privacypass::IssuerDirectory::from_json(directory.to_json().as_bytes())
        .expect("json");
    let trusted = TrustedKey::from_directory(&parsed, 1_500).expect("keys");
    assert_eq!(trusted.len(), 1, "the key without not-before is left out");
    assert_eq!((trusted[0].not_before, trusted[0].not_after), (500, 2_000));
    let redeemer = Redeemer::new(trusted, &[gateway_challenge()], spent_set(4));
    let header = format_authorization(&mint(&secret, &gateway_challenge()));
    assert_eq!(
        redeemer.redeem_at(&header, 2_000).await,
        Err(RedeemError::KeyNotValidNow)
    );
    assert!(redeemer.redeem_at(&header, 1_999).await.is_ok());
}

/// An issuer colluding with the gateway could hand each account a key of
/// its own; the gateway takes tokens only under the newest open key and the
/// one it is taking over from.
#[tokio::test]
async fn tokens_are_accepted_only_under_the_current_and_the_previous_open_key() {
    let keys: Vec<IssuerSecretKey> = (0..3)
        .map(|_| IssuerSecretKey::generate().expect("key"))
        .collect();
    let trusted = keys
        .iter()
        .zip([100, 200, 300])
        .map(|(secret, not_before)| TrustedKey {
            key: secret.public_key().clone(),
            not_before,
            not_after: 5_000,
        })
        .collect();
    let redeemer = Redeemer::new(trusted, &[gateway_challenge()], spent_set(16));
    let header =
        |secret: &IssuerSecretKey| format_authorization(&mint(secret, &gateway_challenge()));
    assert_eq!(
        redeemer.redeem_at(&header(&keys[0]), NOW).await,
        Err(RedeemError::Superseded)
    );
    assert!(redeemer.redeem_at(&header(&keys[1]), NOW).await.is_ok());
    assert!(redeemer.redeem_at(&header(&keys[2]), NOW).await.is_ok());
    // Before the newest opened, the oldest was one of the two.
    assert!(redeemer.redeem_at(&header(&keys[0]), 250).await.is_ok());
}
