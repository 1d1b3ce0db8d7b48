//! Talking to the issuer: its directory (RFC 9578 §4) and token requests
//! (RFC 9578 §6), each signed with the account key.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cloister_privacypass::account::{ACCOUNT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use cloister_privacypass::directory::{
    DIRECTORY_MEDIA_TYPE, DIRECTORY_PATH, TOKEN_REQUEST_MEDIA_TYPE, TOKEN_RESPONSE_MEDIA_TYPE,
};
use cloister_privacypass::{
    IssuerDirectory, IssuerPublicKey, Token, TokenChallenge, TokenResponse, request_token,
};

use cloister_tls::{Outbound, TlsError, check_url};

use super::{AccountKey, IssuedToken, TokenWallet, WalletError, unix_now};

/// Largest issuer answer read (a directory with a handful of RSA keys, or
/// one 256-byte token response).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Which issuer, and which challenge its tokens must answer: the one the
/// gateway's redeemer expects (its `[tokens.issuer]` `issuer_name` and
/// `origin`, with no redemption context, so tokens can be fetched ahead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSettings {
    /// The issuer's base URL; the directory is at its well-known path.
    pub issuer_url: String,
    /// `issuer_name` of the challenge.
    pub issuer_name: String,
    /// The gateway's origin name in the challenge.
    pub origin: String,
    /// The issuer's key lifetime in seconds (its `keys.lifetime_secs`, the
    /// gateway's `key_lifetime_secs`): a token expires this long after its
    /// key's not-before.
    pub key_lifetime_secs: u64,
    /// Time allowed for each HTTP exchange.
    pub timeout: Duration,
    /// Whom the issuer's certificate must chain to; plain `http://` (for
    /// the issuer and the token request URL its directory names) is refused
    /// unless this allows it: the issuer sees the account, and a network
    /// attacker must not see or answer its requests.
    pub tls: Outbound,
}

impl Default for IssuerSettings {
    fn default() -> Self {
        Self {
            issuer_url: "https://127.0.0.1:7300".into(),
            issuer_name: "issuer.cloister.localhost".into(),
            origin: "gateway.cloister.localhost".into(),
            key_lifetime_secs: 7 * 24 * 3600,
            timeout: Duration::from_secs(30),
            tls: Outbound::default(),
        }
    }
}

impl IssuerSettings {
    /// The token challenge (type 0x0002, non-interactive, for the origin).
    ///
    /// # Errors
    /// [`IssuanceError::Challenge`] if a name is not a valid challenge name.
    pub fn challenge(&self) -> Result<TokenChallenge, IssuanceError> {
        TokenChallenge::new(&self.issuer_name, None, &[self.origin.as_str()])
            .map_err(|e| IssuanceError::Challenge(e.to_string()))
    }

    fn directory_url(&self) -> String {
        format!("{}{DIRECTORY_PATH}", self.issuer_url.trim_end_matches('/'))
    }
}

/// Why tokens could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum IssuanceError {
    /// The configured issuer name or origin cannot form a challenge.
    #[error("token challenge: {0}")]
    Challenge(String),
    /// The issuer could not be reached, or timed out.
    #[error("issuer unreachable: {0}")]
    Transport(#[source] reqwest::Error),
    /// The directory is not an RFC 9578 directory.
    #[error("issuer directory: {0}")]
    Directory(String),
    /// The directory lists no type 0x0002 key valid now.
    #[error("the issuer publishes no token key valid now")]
    NoCurrentKey,
    /// The issuer or its token request URL is plain HTTP and
    /// [`IssuerSettings::tls`] does not allow it.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The key the issuer would sign with is refused by the key check (not
    /// logged, outside its window, or superseded): nothing is requested
    /// under it, so an issuer cannot single an account out with a key of its own.
    #[error("the issuer's current key is not accepted: {0}")]
    KeyNotAccepted(String),
    /// The issuer does not know the account or the signature failed.
    #[error("the issuer refused account {account:?} (is it in the issuer's accounts file?)")]
    AccountRejected {
        /// The account id sent.
        account: String,
    },
    /// The account's issuance allowance for this window is used up.
    #[error("issuer rate limit reached{}", retry_hint(.retry_after))]
    RateLimited {
        /// Seconds until the issuer accepts requests again, if it said.
        retry_after: Option<u64>,
    },
    /// Any other refusal.
    #[error("issuer answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The issuer's explanation.
        message: String,
    },
    /// The response did not yield a valid token for the issuer key: a
    /// faulty or malicious issuer. The token was not kept.
    #[error("issuer response rejected: {0}")]
    BadResponse(String),
    /// Blinding the token request failed.
    #[error("blinding the token request: {0}")]
    Blinding(String),
    /// The account key refused to sign (an invalid account id).
    #[error("signing the token request: {0}")]
    Signing(String),
    /// The tokens could not be stored.
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

fn retry_hint(retry_after: &Option<u64>) -> String {
    retry_after.map_or_else(String::new, |secs| format!(": retry in {secs} s"))
}

/// A batch that stopped early. Every token obtained before the failure was
/// verified and stored; `stored` says how many.
#[derive(Debug, thiserror::Error)]
#[error("{cause} ({stored} tokens obtained before that are in the wallet)")]
pub struct FetchError {
    /// Tokens stored before the batch stopped.
    pub stored: usize,
    /// Why it stopped.
    #[source]
    pub cause: IssuanceError,
}

/// The issuer key a batch is requested under, with its expiry.
struct CurrentKey {
    key: IssuerPublicKey,
    expires_at: u64,
}

/// Decides whether tokens may be requested under an issuer key.
/// [`crate::ledger::LedgerTrust`] implements it: the key must be logged and current.
pub trait IssuerKeyCheck: std::fmt::Debug + Send + Sync {
    /// Accepts the key named by `token_key_id`, or says why not.
    ///
    /// # Errors
    /// Why the key is refused.
    fn check_issuer_key(&self, token_key_id: &[u8; 32]) -> Result<(), String>;
}

/// Obtains tokens from one issuer for one challenge.
#[derive(Debug, Clone)]
pub struct IssuerClient {
    settings: IssuerSettings,
    challenge: TokenChallenge,
    http: reqwest::Client,
    key_check: Option<Arc<dyn IssuerKeyCheck>>,
}

impl IssuerClient {
    /// A client for the issuer in `settings`.
    ///
    /// # Errors
    /// [`IssuanceError::Challenge`] for bad names; [`IssuanceError::Transport`]
    /// if the HTTP client cannot be built.
    pub fn new(settings: IssuerSettings) -> Result<Self, IssuanceError> {
        let challenge = settings.challenge()?;
        let http = settings
            .tls
            .http_client(&[("issuer URL", &settings.issuer_url)])?
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(IssuanceError::Transport)?;
        Ok(Self {
            settings,
            challenge,
            http,
            key_check: None,
        })
    }

    /// Requests tokens only under keys `check` accepts.
    #[must_use]
    pub fn with_key_check(mut self, check: Arc<dyn IssuerKeyCheck>) -> Self {
        self.key_check = Some(check);
        self
    }

    /// The challenge tokens from this client answer.
    pub fn challenge(&self) -> &TokenChallenge {
        &self.challenge
    }

    /// Fetches the issuer directory.
    ///
    /// # Errors
    /// [`IssuanceError::Transport`], [`IssuanceError::Status`] or
    /// [`IssuanceError::Directory`].
    pub async fn directory(&self) -> Result<IssuerDirectory, IssuanceError> {
        let answer = self
            .http
            .get(self.settings.directory_url())
            .header("accept", DIRECTORY_MEDIA_TYPE)
            .send()
            .await
            .map_err(IssuanceError::Transport)?;
        let (status, media_type, body) = read(answer).await?;
        if status != 200 {
            return Err(IssuanceError::Status {
                status,
                message: String::from_utf8_lossy(&body).trim().to_owned(),
            });
        }
        if media_type.as_deref() != Some(DIRECTORY_MEDIA_TYPE) {
            return Err(IssuanceError::Directory(format!(
                "media type {media_type:?}"
            )));
        }
        IssuerDirectory::from_json(&body).map_err(|e| IssuanceError::Directory(e.to_string()))
    }

    /// Obtains `count` tokens for `account` and stores them in `wallet`.
    /// First drops wallet tokens whose key the directory no longer lists.
    ///
    /// # Errors
    /// [`FetchError`]: why the batch stopped and how many tokens were
    /// stored before it did (a rate limit mid-batch keeps what was issued).
    pub async fn fetch(
        &self,
        account: &AccountKey,
        wallet: &TokenWallet,
        count: usize,
    ) -> Result<usize, FetchError> {
        let mut obtained = Vec::new();
        let outcome = self.fetch_into(account, wallet, count, &mut obtained).await;
        let stored = obtained.len();
        if let Err(cause) = wallet.deposit(&obtained) {
            return Err(FetchError {
                stored: 0,
                cause: cause.into(),
            });
        }
        outcome
            .map(|()| stored)
            .map_err(|cause| FetchError { stored, cause })
    }

    async fn fetch_into(
        &self,
        account: &AccountKey,
        wallet: &TokenWallet,
        count: usize,
        obtained: &mut Vec<IssuedToken>,
    ) -> Result<(), IssuanceError> {
        let directory = self.directory().await?;
        let now = unix_now();
        let published = directory
            .blind_rsa_keys()
            .map_err(|e| IssuanceError::Directory(e.to_string()))?;
        let live: Vec<[u8; 32]> = published.iter().map(|k| *k.key.key_id()).collect();
        let dropped = wallet.retain_keys(&live, now)?;
        if dropped > 0 {
            tracing::info!(
                dropped,
                "dropped tokens of expired or withdrawn issuer keys"
            );
        }
        let current = self.current_key(&directory, now)?;
        if let Some(check) = &self.key_check {
            check
                .check_issuer_key(current.key.key_id())
                .map_err(IssuanceError::KeyNotAccepted)?;
        }
        for _ in 0..count {
            obtained.push(
                self.obtain_one(account, &directory.issuer_request_uri, &current)
                    .await?,
            );
        }
        Ok(())
    }

    /// The key to request under at `now`: the newest key already valid and
    /// not expired. Keys without a not-before are skipped, because the
    /// gateway (which learns keys from the same directory) cannot know
    /// their validity window and does not accept them.
    fn current_key(
        &self,
        directory: &IssuerDirectory,
        now: u64,
    ) -> Result<CurrentKey, IssuanceError> {
        let lifetime = self.settings.key_lifetime_secs;
        directory
            .blind_rsa_keys()
            .map_err(|e| IssuanceError::Directory(e.to_string()))?
            .into_iter()
            .filter_map(|published| {
                let not_before = published.not_before?;
                let expires_at = not_before.saturating_add(lifetime);
                (not_before <= now && now < expires_at).then_some((
                    not_before,
                    CurrentKey {
                        key: published.key,
                        expires_at,
                    },
                ))
            })
            .max_by_key(|(not_before, _)| *not_before)
            .map(|(_, current)| current)
            .ok_or(IssuanceError::NoCurrentKey)
    }

    async fn obtain_one(
        &self,
        account: &AccountKey,
        request_uri: &str,
        current: &CurrentKey,
    ) -> Result<IssuedToken, IssuanceError> {
        let (request, pending) = request_token(&current.key, &self.challenge)
            .map_err(|e| IssuanceError::Blinding(e.to_string()))?;
        check_url(
            "token request URL",
            request_uri,
            self.settings.tls.plain_http,
        )?;
        let body = request.encode();
        let auth = account
            .sign(&body, unix_now())
            .map_err(|e| IssuanceError::Signing(e.to_string()))?;
        let [account_id, timestamp, signature] = auth.header_values();
        let answer = self
            .http
            .post(request_uri)
            .header("content-type", TOKEN_REQUEST_MEDIA_TYPE)
            .header(ACCOUNT_HEADER, account_id)
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(IssuanceError::Transport)?;
        let retry_after = answer
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let (status, media_type, body) = read(answer).await?;
        match status {
            200 if media_type.as_deref() == Some(TOKEN_RESPONSE_MEDIA_TYPE) => {}
            200 => {
                return Err(IssuanceError::BadResponse(format!(
                    "media type {media_type:?}"
                )));
            }
            401 => {
                return Err(IssuanceError::AccountRejected {
                    account: account.id().to_owned(),
                });
            }
            429 => return Err(IssuanceError::RateLimited { retry_after }),
            _ => {
                let message = String::from_utf8_lossy(&body).trim().to_owned();
                return Err(IssuanceError::Status { status, message });
            }
        }
        let response =
            TokenResponse::decode(&body).map_err(|e| IssuanceError::BadResponse(e.to_string()))?;
        let token = pending
            .finalize(&response)
            .map_err(|e| IssuanceError::BadResponse(e.to_string()))?;
        self.check(&token, &current.key)?;
        Ok(IssuedToken {
            token,
            expires_at: current.expires_at,
        })
    }

    /// Checks a finalized token the way the gateway will: our challenge,
    /// the issuer key's id, and the signature under that key.
    fn check(&self, token: &Token, key: &IssuerPublicKey) -> Result<(), IssuanceError> {
        if token.challenge_digest != self.challenge.digest() || &token.token_key_id != key.key_id()
        {
            return Err(IssuanceError::BadResponse(
                "token is not for our challenge and key".into(),
            ));
        }
        key.verify_authenticator(token)
            .map_err(|e| IssuanceError::BadResponse(e.to_string()))
    }
}

/// Status, media type and (bounded) body of an answer.
async fn read(answer: reqwest::Response) -> Result<(u16, Option<String>, Vec<u8>), IssuanceError> {
    let status = answer.status().as_u16();
    let media_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if answer
        .content_length()
        .is_some_and(|len| len > MAX_ANSWER_BYTES as u64)
    {
        return Err(IssuanceError::Status {
            status,
            message: "answer too large".into(),
        });
    }
    let body = answer.bytes().await.map_err(IssuanceError::Transport)?;
    if body.len() > MAX_ANSWER_BYTES {
        return Err(IssuanceError::Status {
            status,
            message: "answer too large".into(),
        });
    }
    Ok((status, media_type, body.to_vec()))
}

/// `Retry-After` as seconds: a delay, or an HTTP date from now.
fn parse_retry_after(value: &str) -> Option<u64> {
    let value = value.trim();
    value.parse().ok().or_else(|| {
        let at = httpdate::parse_http_date(value).ok()?;
        Some(
            at.duration_since(SystemTime::now())
                .map_or(0, |d| d.as_secs()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after(" 120 "), Some(120));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(0));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn the_challenge_is_the_gateways() {
        let settings = IssuerSettings::default();
        let expected = TokenChallenge::new(
            "issuer.cloister.localhost",
            None,
            &["gateway.cloister.localhost"],
        );
        assert_eq!(settings.challenge().ok(), expected.ok());
        let bad = IssuerSettings {
            origin: "a,b".into(),
            ..IssuerSettings::default()
        };
        assert!(matches!(bad.challenge(), Err(IssuanceError::Challenge(_))));
    }
}
