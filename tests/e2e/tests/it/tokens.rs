//! Token issuance into the wallet against an in-process issuer: batches,
//! persistence, single hand-out, corrupt stores, rate limits, bad issuers
//! and withdrawn keys.

use std::collections::HashSet;

use axum::routing::{get, post};
use cloister_client::TokenSource as _;
use cloister_client::tokens::{
    AccountKey, IssuanceError, IssuerClient, IssuerSettings, TokenWallet, WalletError,
};
use cloister_privacypass::directory::PublishedKey;
use cloister_privacypass::directory::{
    DIRECTORY_MEDIA_TYPE, DIRECTORY_PATH, TOKEN_RESPONSE_MEDIA_TYPE,
};
use cloister_privacypass::{IssuerDirectory, IssuerSecretKey, TokenRequest, issue};
use cloister_wire::unix_now as now;
use common::Issuer;

use crate::common;

fn wallet(dir: &std::path::Path) -> TokenWallet {
    let challenge = IssuerSettings::default()
        .challenge()
        .unwrap_or_else(|e| panic!("challenge: {e}"));
    TokenWallet::open(dir, &challenge).unwrap_or_else(|e| panic!("wallet: {e}"))
}

#[tokio::test]
async fn a_batch_is_stored_verified_and_survives_reopening() {
    let issuer = Issuer::start(100).await;
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fetched = issuer
        .client()
        .fetch(&issuer.account, &wallet(state.path()), 5)
        .await;
    assert_eq!(fetched.ok(), Some(5));

    let reopened = wallet(state.path());
    let status = reopened.status(now()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (status.usable, status.expired, status.other_challenge),
        (5, 0, 0)
    );
    assert!(status.next_expiry.is_some_and(|t| t > now() + 3600));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(reopened.path())
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn a_token_is_handed_out_once_and_removed_from_disk_first() {
    let issuer = Issuer::start(100).await;
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = wallet(state.path());
    issuer
        .client()
        .fetch(&issuer.account, &first, 6)
        .await
        .unwrap_or_else(|e| panic!("fetch: {e}"));
    // A second handle on the same directory stands for a second process.
    let second = wallet(state.path());
    let mut seen = HashSet::new();
    for round in 0..6 {
        let source = if round % 2 == 0 { &first } else { &second };
        let token = source
            .next_token()
            .unwrap_or_else(|| panic!("token {round}"));
        assert!(seen.insert(token), "token handed out twice");
        // Already gone from disk when handed out: a crash now cannot revive it.
        let left = wallet(state.path())
            .status(now())
            .unwrap_or_else(|e| panic!("{e}"))
            .usable;
        assert_eq!(left, 5 - round);
    }
    assert_eq!(first.next_token(), None);
    assert_eq!(second.next_token(), None);
}

#[tokio::test]
async fn a_corrupt_store_is_reported_and_never_overwritten() {
    let issuer = Issuer::start(100).await;
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = wallet(state.path());
    issuer
        .client()
        .fetch(&issuer.account, &good, 2)
        .await
        .unwrap_or_else(|e| panic!("fetch: {e}"));
    let path = good.path().to_owned();
    let original = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));

    // One token altered by a byte: still JSON, no longer a token.
    let at = original
        .find("\"token\": \"")
        .unwrap_or_else(|| panic!("no token field"))
        + 10;
    let mut damaged = original.clone();
    damaged.replace_range(at..at + 1, "!");
    for contents in [
        damaged,
        "not json".to_owned(),
        original.replace("\"version\": 1", "\"version\": 9"),
    ] {
        std::fs::write(&path, &contents).unwrap_or_else(|e| panic!("{e}"));
        let challenge = IssuerSettings::default()
            .challenge()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            TokenWallet::open(state.path(), &challenge),
            Err(WalletError::Corrupt { .. })
        ));
        assert!(matches!(good.take(), Err(WalletError::Corrupt { .. })));
        assert_eq!(good.next_token(), None);
        let fetched = issuer.client().fetch(&issuer.account, &good, 1).await;
        assert!(fetched.is_err_and(|e| e.stored == 0
            && matches!(e.cause, IssuanceError::Wallet(WalletError::Corrupt { .. }))));
        assert_eq!(
            std::fs::read_to_string(&path).ok(),
            Some(contents),
            "corrupt store was rewritten"
        );
    }
    std::fs::write(&path, &original).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        good.status(now()).map(|s| s.usable).ok(),
        Some(2),
        "nothing was lost"
    );
}

#[tokio::test]
async fn a_rate_limit_stops_the_batch_and_keeps_what_was_issued() {
    let issuer = Issuer::start(3).await;
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tokens = wallet(state.path());
    let outcome = issuer.client().fetch(&issuer.account, &tokens, 5).await;
    let error = outcome
        .err()
        .unwrap_or_else(|| panic!("the fourth request must be refused"));
    assert_eq!(error.stored, 3);
    assert!(
        matches!(error.cause, IssuanceError::RateLimited { retry_after: Some(secs) } if secs > 0 && secs <= 3600)
    );
    assert!(error.to_string().contains("rate limit"), "{error}");
    assert_eq!(tokens.status(now()).map(|s| s.usable).ok(), Some(3));
}

#[tokio::test]
async fn an_unregistered_account_is_refused() {
    let issuer = Issuer::start(10).await;
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let stranger = AccountKey::generate("mallory").unwrap_or_else(|e| panic!("{e}"));
    let outcome = issuer
        .client()
        .fetch(&stranger, &wallet(state.path()), 1)
        .await;
    assert!(
        matches!(outcome, Err(e) if e.stored == 0 && matches!(e.cause, IssuanceError::AccountRejected { .. }))
    );
}

/// An issuer that publishes one key but signs with another: its tokens
/// would be refused at the gateway, so the client must not keep them.
#[tokio::test]
async fn tokens_that_do_not_verify_under_the_published_key_are_not_kept() {
    let mut keys = [(); 2].map(|()| IssuerSecretKey::generate().unwrap_or_else(|e| panic!("{e}")));
    // The wrong key must be able to sign what the client blinded under the
    // published one: a blinded message is below the published modulus, so
    // the signing key gets the larger modulus. Both SPKIs encode 2048-bit
    // moduli with identical prefixes, so their byte order is the moduli's.
    keys.sort_by(|a, b| a.public_key().spki().cmp(b.public_key().spki()));
    let [published, signing] = keys;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let directory = IssuerDirectory::new(
        &format!("http://{addr}/token-request"),
        &[PublishedKey {
            key: published.public_key().clone(),
            not_before: Some(now() - 10),
        }],
    )
    .to_json();
    let app = axum::Router::new()
        .route(
            DIRECTORY_PATH,
            get(move || async move { ([("content-type", DIRECTORY_MEDIA_TYPE)], directory) }),
        )
        .route(
            "/token-request",
            post(move |body: axum::body::Bytes| async move {
                let request = TokenRequest::decode(&body).unwrap_or_else(|e| panic!("{e}"));
                // Answer with the wrong key (truncated id forged to pass `issue`).
                let forged = TokenRequest {
                    truncated_token_key_id: signing.public_key().truncated_key_id(),
                    ..request
                };
                let response = issue(std::slice::from_ref(&signing), &forged)
                    .unwrap_or_else(|e| panic!("{e}"));
                (
                    [("content-type", TOKEN_RESPONSE_MEDIA_TYPE)],
                    response.encode(),
                )
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let settings = IssuerSettings {
        issuer_url: format!("http://{addr}"),
        tls: cloister_client::Outbound::insecure_demo(),
        ..IssuerSettings::default()
    };
    let client = IssuerClient::new(settings).unwrap_or_else(|e| panic!("{e}"));
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tokens = wallet(state.path());
    let account = AccountKey::generate("alice").unwrap_or_else(|e| panic!("{e}"));
    let outcome = client.fetch(&account, &tokens, 2).await;
    assert!(
        matches!(outcome, Err(e) if e.stored == 0 && matches!(e.cause, IssuanceError::BadResponse(_)))
    );
    assert_eq!(tokens.status(now()).map(|s| s.usable).ok(), Some(0));
}

#[tokio::test]
async fn tokens_of_withdrawn_or_expired_keys_are_dropped() {
    let old_issuer = Issuer::start(10).await;
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tokens = wallet(state.path());
    old_issuer
        .client()
        .fetch(&old_issuer.account, &tokens, 2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The issuer now publishes other keys only (as after a rotation).
    let rotated = Issuer::start(10).await;
    rotated
        .client()
        .fetch(&rotated.account, &tokens, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tokens.status(now()).map(|s| s.usable).ok(), Some(1));

    // A token past its key's lifetime is dropped, not handed out.
    let status = tokens.status(now()).unwrap_or_else(|e| panic!("{e}"));
    let expiry = status.next_expiry.unwrap_or_else(|| panic!("an expiry"));
    assert_eq!(tokens.take_at(expiry).ok(), Some(None));
    assert_eq!(tokens.status(now()).map(|s| s.usable).ok(), Some(0));
}

#[tokio::test]
async fn tokens_for_another_challenge_are_kept_but_not_spent() {
    let issuer = Issuer::start(10).await;
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let other = IssuerSettings {
        origin: "elsewhere.example".into(),
        ..issuer.settings()
    };
    let client = IssuerClient::new(other).unwrap_or_else(|e| panic!("{e}"));
    let elsewhere =
        TokenWallet::open(state.path(), client.challenge()).unwrap_or_else(|e| panic!("{e}"));
    client
        .fetch(&issuer.account, &elsewhere, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ours = wallet(state.path());
    let status = ours.status(now()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((status.usable, status.other_challenge), (0, 1));
    assert_eq!(ours.next_token(), None);
    assert!(elsewhere.next_token().is_some());
}
