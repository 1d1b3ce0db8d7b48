//! Cloister's client library: everything on the user's device that happens
//! before and around the RA-TLS session (`docs/DESIGN.md`, phases 1 to 3).
//!
//! It exists so that the `cloister` command, and any app that embeds
//! Cloister, cannot get the privacy-relevant steps wrong: a request leaves
//! the device only encrypted to a gateway key that the transparency ledger
//! names, only through the relay, and paid for with an unlinkable token.
//!
//! # Main types
//!
//! * [`Client`]: the Oblivious HTTP client (RFC 9458, RFC 9540).
//!   [`Client::send`] takes an [`InnerRequest`], and:
//!   1. fetches the gateway's key configurations from the relay, which
//!      serves its own copy so the fetch never reaches the gateway (cached
//!      in memory, and across runs in [`ClientConfig::key_cache_file`], for
//!      the `max-age` the endpoint gives), picks the first one it supports
//!      and has the [`KeyConsistency`] hook confirm that its digest is the
//!      published one, so the gateway cannot hand this user a key of their
//!      own;
//!   2. encodes the request as Binary HTTP (RFC 9292) with a `Date` (the
//!      gateway's replay defence) and, if given, the `Authorization:
//!      PrivateToken` header; encapsulates it with a fresh HPKE context;
//!   3. posts it to the relay and decapsulates the answer.
//!
//!   When the gateway no longer holds the key (the `ohttp-key` problem) the
//!   client refetches the configuration; when it rejects the `Date` (the
//!   `date` problem) the client adopts the gateway's clock. Either way it
//!   retries once, with a fresh encapsulation. Failures are [`ClientError`]s.
//! * [`KeyConsistency`] implementations: [`ledger::LedgerTrust`] (the
//!   client's verified view of the transparency ledger, which is also the
//!   `MeasurementAuthority` for attestation), [`PinnedDigests`], and
//!   [`UncheckedKeys`] for tests.
//! * [`OhttpTransport`]: carries `cloister-ratls` records, one OHTTP request
//!   per exchange, each with a token from a [`TokenSource`], and the route
//!   label the gateway gave the session.
//! * [`RecoveringSession`]: an attested session that, when its host is gone,
//!   opens one new session (a [`Recovery`], stating the tokens it costs)
//!   and sends the request again, once.
//! * [`tokens`]: phase 1: the account key, issuance of Privacy Pass tokens
//!   and the persistent [`tokens::TokenWallet`], which never hands out a
//!   token twice.
//! * [`chats`]: the user's per-chat switch: with features off for a chat,
//!   the client refuses before anything leaves the device.
//!
//! # Cargo features
//!
//! None.
//!
//! # Example
//!
//! A request through the relay to the gateway, sent only if the gateway's
//! key configuration is one the client pins (in production the pin is
//! [`ledger::LedgerTrust`], the client's verified view of the ledger). It
//! needs a running relay and gateway; `tests/e2e` runs the same exchange
//! against real ones on loopback.
//!
//! ```rust,no_run
//! use std::collections::HashSet;
//!
//! use cloister_client::{Client, ClientConfig, InnerRequest, PinnedDigests};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // SHA-256 of the gateway's key configuration, as logged in the ledger.
//! let logged_key_config: [u8; 32] = [0x5a; 32];
//! let client = Client::new(
//!     ClientConfig::default(), // the relay and key endpoint on loopback
//!     PinnedDigests(HashSet::from([logged_key_config])),
//! )?;
//! let request = InnerRequest::new("POST", "cloister.invalid", "/session").body("records");
//! let answer = client.send(&request).await?;
//! println!("{} bytes back", answer.content().len());
//! # Ok(())
//! # }
//! ```

pub mod chats;
mod error;
mod keys;
pub mod ledger;
mod recovery;
mod request;
pub mod tokens;
mod transport;

pub use error::ClientError;
pub use keys::{KeyConsistency, PinnedDigests, UncheckedKeys};
pub use recovery::{RecoveringSession, Recovery, TOKENS_PER_SESSION, is_session_gone};
pub use request::InnerRequest;
pub use tokens::TokenSource;
pub use transport::OhttpTransport;

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bhttp::{Message, Mode};
use cloister_ohttp_keys::KeyConfigError;

pub use cloister_tls::{Outbound, PlainHttp, Trust};
use cloister_wire::{media, problem};
use keys::CachedKeys;

/// Where the client sends things.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The relay's OHTTP endpoint.
    pub relay_url: String,
    /// The key configuration endpoint (`…/.well-known/ohttp-gateway`):
    /// the relay's, which serves its own copy, so that fetching keys does
    /// not hand this client's address to the gateway.
    pub key_config_url: String,
    /// Where the checked key configuration is kept across runs, for as long
    /// as its `max-age` allows; unset: in memory only.
    pub key_cache_file: Option<PathBuf>,
    /// Time allowed for each HTTP exchange.
    ///
    /// A feature request is one exchange that lasts as long as the plugin's
    /// inference (up to its manifest's wall-time budget), so the default
    /// outlasts the relay's default timeout, which outlasts the gateway's,
    /// which outlasts the largest plugin budget: when something is too slow,
    /// the innermost hop's error (the host's budget error, else the
    /// gateway's or the relay's 504) is the one the client reports, rather
    /// than a bare timeout here.
    pub timeout: Duration,
    /// Whom the relay's certificate must chain to, and whether a plain
    /// `http://` relay is accepted: by default it is refused (RFC 9458
    /// expects HTTPS between client and relay; the relay sees the client's
    /// address, and a network attacker must not see or answer in its place).
    pub tls: Outbound,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            relay_url: "https://127.0.0.1:7100/relay".into(),
            key_config_url: format!("https://127.0.0.1:7100{}", cloister_wire::OHTTP_KEYS_PATH),
            key_cache_file: None,
            timeout: Duration::from_secs(105),
            tls: Outbound::default(),
        }
    }
}

/// An Oblivious HTTP client. Cheap to share: the key cache and the clock
/// correction are behind locks.
#[derive(Debug)]
pub struct Client<K = UncheckedKeys> {
    config: ClientConfig,
    consistency: K,
    http: reqwest::Client,
    keys: Mutex<Option<CachedKeys>>,
    /// Gateway clock minus ours, in seconds, learned from a `date` problem.
    clock_offset: Mutex<i64>,
}

/// Why one attempt asks for another.
enum Retry {
    /// The gateway no longer holds the key: refetch.
    KeyRejected,
    /// The gateway could not decrypt the request: the cached configuration
    /// may name an id the gateway now holds under another key (it lost its
    /// saved keys and started again): refetch once.
    Undecryptable,
    /// The gateway's clock differs: corrected, try again.
    ClockCorrected,
}

impl<K: KeyConsistency> Client<K> {
    /// A client using `consistency` to check key configurations.
    ///
    /// # Errors
    /// [`ClientError::Tls`] for a plain-HTTP relay or key endpoint that
    /// [`ClientConfig::tls`] does not allow; [`ClientError::Transport`] if
    /// the HTTP client cannot be built.
    pub fn new(config: ClientConfig, consistency: K) -> Result<Self, ClientError> {
        let http = config
            .tls
            .http_client(&[
                ("relay URL", &config.relay_url),
                ("key configuration URL", &config.key_config_url),
            ])?
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ClientError::Transport)?;
        Ok(Self {
            config,
            consistency,
            http,
            keys: Mutex::new(None),
            clock_offset: Mutex::new(0),
        })
    }

    /// Send `request` through the relay and return the inner response
    /// (whatever its status: an inner 4xx or 5xx is the host's or the
    /// gateway's answer, not a transport failure).
    ///
    /// # Errors
    /// See [`ClientError`]; after one retry a repeated key, decryption or
    /// date problem is returned as [`ClientError::KeyRejected`],
    /// [`ClientError::Undecryptable`] or [`ClientError::ClockSkew`].
    pub async fn send(&self, request: &InnerRequest) -> Result<Message, ClientError> {
        match self.attempt(request).await? {
            Ok(response) => Ok(response),
            Err(Retry::KeyRejected | Retry::Undecryptable | Retry::ClockCorrected) => {
                match self.attempt(request).await? {
                    Ok(response) => Ok(response),
                    Err(Retry::KeyRejected) => Err(ClientError::KeyRejected),
                    Err(Retry::Undecryptable) => Err(ClientError::Undecryptable),
                    Err(Retry::ClockCorrected) => Err(ClientError::ClockSkew),
                }
            }
        }
    }

    async fn attempt(&self, request: &InnerRequest) -> Result<Result<Message, Retry>, ClientError> {
        let config = self.key_config().await?;
        let date = self.gateway_time();
        let mut encoded = Vec::new();
        request
            .to_message(date)
            .write_bhttp(Mode::KnownLength, &mut encoded)
            .map_err(ClientError::Encode)?;
        // Never `ClientRequest::from_encoded_config`: `ohttp` panics on a
        // configuration left with no supported suite (a saved copy is read
        // from disk, not chosen from a key list).
        let (encapsulated, decapsulator) = cloister_ohttp_keys::client_request(&config)
            .map_err(|error| match error {
                KeyConfigError::NoSupportedSuite => ClientError::NoUsableKey,
                KeyConfigError::Decode(error) => ClientError::Encapsulation(error),
            })?
            .encapsulate(&encoded)
            .map_err(ClientError::Encapsulation)?;
        let answer = self
            .http
            .post(&self.config.relay_url)
            .header("content-type", media::OHTTP_REQUEST)
            .body(encapsulated)
            .send()
            .await
            .map_err(ClientError::Transport)?;
        let status = answer.status().as_u16();
        let content_type = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = answer.bytes().await.map_err(ClientError::Transport)?;
        if status != 200 {
            let problem = problem_type(content_type.as_deref(), &body);
            if problem.as_deref() == Some(problem::OHTTP_KEY) {
                tracing::info!("gateway no longer holds the key; refetching key configuration");
                self.forget_keys();
                return Ok(Err(Retry::KeyRejected));
            }
            // RFC 9458 §5.3: a request the gateway cannot decapsulate gets a
            // bare 400, whatever the reason.
            if status == 400 && problem.is_none() {
                tracing::info!(
                    "gateway could not decrypt the request; refetching key configuration"
                );
                self.forget_keys();
                return Ok(Err(Retry::Undecryptable));
            }
            return Err(ClientError::Status { status, problem });
        }
        if content_type.as_deref() != Some(media::OHTTP_RESPONSE) {
            return Err(ClientError::UnexpectedMediaType(content_type));
        }
        let plaintext = decapsulator
            .decapsulate(&body)
            .map_err(ClientError::Decapsulation)?;
        let response = Message::read_bhttp(&mut Cursor::new(plaintext.as_slice()))
            .map_err(ClientError::Decode)?;
        if self.learn_clock(&response) {
            return Ok(Err(Retry::ClockCorrected));
        }
        Ok(Ok(response))
    }

    /// Fetches and checks the gateway's key configuration now, unless a
    /// fresh checked one is cached, so that a key-consistency refusal comes
    /// before the caller commits anything (such as a Privacy Pass token) to
    /// a request.
    ///
    /// # Errors
    /// As [`Client::send`] for fetching and checking keys.
    pub async fn ready(&self) -> Result<(), ClientError> {
        self.key_config().await.map(drop)
    }

    /// The current key configuration: cached in memory, or read from the
    /// key cache file and checked, or fetched, checked and saved there.
    async fn key_config(&self) -> Result<Vec<u8>, ClientError> {
        let url = &self.config.key_config_url;
        let now = cloister_wire::unix_now();
        if let Some(config) = self.lock_keys().as_ref().and_then(|c| c.fresh(url, now)) {
            return Ok(config.to_vec());
        }
        let saved = self
            .config
            .key_cache_file
            .as_deref()
            .and_then(CachedKeys::load)
            .filter(|saved| saved.fresh(url, now).is_some());
        let cached = match saved {
            Some(saved) => {
                // A saved copy is checked as a fetched one is: the ledger decides.
                self.consistency.check(&saved.config).await?;
                saved
            }
            None => {
                let fetched = keys::fetch(&self.http, url).await?;
                self.consistency.check(&fetched.config).await?;
                if let Some(path) = &self.config.key_cache_file
                    && let Err(error) = fetched.save(path)
                {
                    tracing::warn!(%error, path = %path.display(), "cannot save the key configuration");
                }
                fetched
            }
        };
        let config = cached.config.clone();
        *self.lock_keys() = Some(cached);
        Ok(config)
    }

    fn lock_keys(&self) -> std::sync::MutexGuard<'_, Option<CachedKeys>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drop the cached key configuration (in memory and on disk) so the
    /// next request refetches it.
    pub fn forget_keys(&self) {
        *self.lock_keys() = None;
        if let Some(path) = &self.config.key_cache_file
            && let Err(error) = std::fs::remove_file(path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, path = %path.display(), "cannot remove the saved key configuration");
        }
    }

    fn offset(&self) -> std::sync::MutexGuard<'_, i64> {
        self.clock_offset
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Our best guess of the gateway's clock.
    fn gateway_time(&self) -> SystemTime {
        let offset = *self.offset();
        let magnitude = Duration::from_secs(offset.unsigned_abs());
        if offset >= 0 {
            SystemTime::now() + magnitude
        } else {
            SystemTime::now() - magnitude
        }
    }

    /// If `response` is a `date` problem carrying the gateway's `Date`,
    /// adopt that clock and report true.
    fn learn_clock(&self, response: &Message) -> bool {
        let is_date_problem = response.control().status().is_some_and(|s| s.code() == 400)
            && problem_type(
                response
                    .header()
                    .get(b"content-type")
                    .and_then(|v| std::str::from_utf8(v).ok()),
                response.content(),
            )
            .as_deref()
                == Some(problem::DATE);
        let gateway_date = response
            .header()
            .get(b"date")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        match (is_date_problem, gateway_date) {
            (true, Some(gateway)) => {
                let ours = SystemTime::now();
                let offset = match gateway.duration_since(ours) {
                    Ok(ahead) => i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX),
                    Err(behind) => -i64::try_from(behind.duration().as_secs()).unwrap_or(i64::MAX),
                };
                tracing::info!(offset, "gateway rejected our clock; adopting its time");
                *self.offset() = offset;
                true
            }
            _ => false,
        }
    }

    /// Shift the clock used for `Date` by `seconds` (tests of the clock correction).
    pub fn set_clock_offset(&self, seconds: i64) {
        *self.offset() = seconds;
    }
}

/// The `type` of an `application/problem+json` body, if that is what it is.
fn problem_type(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    let is_problem = content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(media::PROBLEM_JSON));
    if !is_problem {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("type")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_saved_key_configuration_is_used_across_runs_and_still_checked() {
        // RFC 9458 Appendix A key configuration.
        let config = hex::decode("01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003")
            .expect("hex");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ohttp-keys.json");
        // Nothing listens there: only the saved copy can answer.
        let url = "http://127.0.0.1:9/.well-known/ohttp-gateway";
        let save = |expires_at: u64| {
            let saved =
                serde_json::json!({ "url": url, "config": config, "expires_at": expires_at });
            std::fs::write(&path, saved.to_string()).expect("write");
        };
        save(cloister_wire::unix_now() + 600);
        let settings = ClientConfig {
            key_config_url: url.into(),
            key_cache_file: Some(path.clone()),
            tls: Outbound::insecure_demo(),
            ..ClientConfig::default()
        };
        let digest = cloister_ohttp_keys::key_config_digest(&config);
        let pinned = Client::new(settings.clone(), PinnedDigests([digest].into())).expect("client");
        pinned
            .ready()
            .await
            .expect("the saved copy, without a fetch");
        // The saved copy is checked like a fetched one.
        let other = Client::new(settings.clone(), PinnedDigests::default()).expect("client");
        assert!(matches!(
            other.ready().await,
            Err(ClientError::KeyConsistency(_))
        ));
        // Past its max-age it is fetched again; a refused key is forgotten.
        save(cloister_wire::unix_now().saturating_sub(1));
        let expired = Client::new(settings, PinnedDigests([digest].into())).expect("client");
        assert!(matches!(
            expired.ready().await,
            Err(ClientError::Transport(_))
        ));
        expired.forget_keys();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn a_saved_configuration_without_a_supported_suite_is_an_error_not_a_panic() {
        // RFC 9458 Appendix A's key offering only HKDF-SHA512 suites, which
        // `ohttp` decodes (dropping both) and then panicked encapsulating to.
        let mut config = hex::decode("01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003")
            .expect("hex");
        config[37..].copy_from_slice(&[0, 3, 0, 1, 0, 3, 0, 3]);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ohttp-keys.json");
        let url = "http://127.0.0.1:9/.well-known/ohttp-gateway";
        let saved = serde_json::json!({
            "url": url,
            "config": config,
            "expires_at": cloister_wire::unix_now() + 600,
        });
        std::fs::write(&path, saved.to_string()).expect("write");
        let settings = ClientConfig {
            key_config_url: url.into(),
            key_cache_file: Some(path),
            // Nothing listens there: the request must fail before it is sent.
            relay_url: "http://127.0.0.1:9/relay".into(),
            tls: Outbound::insecure_demo(),
            ..ClientConfig::default()
        };
        let digest = cloister_ohttp_keys::key_config_digest(&config);
        let client = Client::new(settings, PinnedDigests([digest].into())).expect("client");
        let request = InnerRequest::new("POST", "cloister.invalid", "/session");
        assert!(matches!(
            client.send(&request).await,
            Err(ClientError::NoUsableKey)
        ));
    }
}
