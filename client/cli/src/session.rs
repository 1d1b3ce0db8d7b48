//! One feature request end to end: tokens in the wallet, an RA-TLS session
//! through relay and gateway whose every OHTTP request spends a token, the
//! host's evidence verified before the payload leaves, then the answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, bail};
use cloister_api::{FeatureRequest, FeatureResponse};
use cloister_client::chats::ChatSettings;
use cloister_client::tokens::{AccountKey, IssuerClient, IssuerKeyCheck, TokenWallet};
use cloister_client::{Client, OhttpTransport, RecoveringSession, TokenSource, is_session_gone};
use cloister_ratls::{ClientError, TransportError};
use serde::Serialize;

use crate::config::Config;
use crate::trust::{AttestationSummary, Trust};

/// OHTTP requests, hence tokens, one session takes: the TLS handshake, the
/// attestation exchange, the request. Never more: a host (or gateway) that
/// answers a step as if it needed another round trip has the session
/// stopped (`cloister_ratls::ClientSession`). A session whose host is gone
/// is replaced once, for as many again.
pub use cloister_client::TOKENS_PER_SESSION;

/// What a request produced, as printed.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// Which feature answered, where and under which release: shown with
    /// every answer.
    pub label: AnswerLabel,
    /// The feature's answer.
    pub response: FeatureResponse,
    /// What the host proved before it got the payload.
    pub attestation: AttestationSummary,
    /// Tokens this request spent.
    pub tokens_spent: usize,
    /// Sessions opened: 2 if the first one's host was gone and the request
    /// ran on a new one.
    pub sessions_opened: usize,
    /// Usable tokens left in the wallet.
    pub tokens_left: usize,
}

/// The label shown with every answer, so that a person can tell an AI
/// answer, where it was computed and under which reviewed release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnswerLabel {
    /// The feature that answered (from the answer itself).
    pub feature: String,
    /// Where it ran: an attested AMD SEV-SNP host, or a SIMULATED one.
    pub host: String,
    /// The release the host's launch belongs to.
    pub release: String,
}

impl std::fmt::Display for AnswerLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AI answer by `{}` on {}, release {}",
            self.feature, self.host, self.release
        )
    }
}

/// Runs `request` for `chat` unless the user turned AI features off for
/// it; then nothing leaves the device (see [`cloister_client::chats`]).
pub async fn run_in_chat(
    config: &Config,
    chat: Option<&str>,
    request: &FeatureRequest,
) -> anyhow::Result<Outcome> {
    if let Some(chat) = chat {
        ChatSettings::open(&config.state_dir)
            .check(chat)
            .with_context(|| format!("turn them on with `cloister chat on {chat}`"))?;
    }
    run(config, request).await
}

/// Opens the wallet for the configured challenge.
pub fn open_wallet(config: &Config) -> anyhow::Result<TokenWallet> {
    let challenge = config.issuer()?.challenge()?;
    Ok(TokenWallet::open(&config.state_dir, &challenge)?)
}

/// Fetches `count` tokens into `wallet` with the configured account, under
/// an issuer key `issuer_keys` accepts (the ledger's check, when the
/// client trusts a ledger).
pub async fn fetch_tokens(
    config: &Config,
    wallet: &TokenWallet,
    count: usize,
    issuer_keys: Option<Arc<dyn IssuerKeyCheck>>,
) -> anyhow::Result<usize> {
    let account = AccountKey::load(&config.account_file).context(
        "no usable account key: create one with `cloister account new --id NAME` and register it with the issuer",
    )?;
    let mut issuer = IssuerClient::new(config.issuer()?)?;
    if let Some(check) = issuer_keys {
        issuer = issuer.with_key_check(check);
    }
    let fetched = issuer.fetch(&account, wallet, count).await?;
    Ok(fetched)
}

/// Refills the wallet when it holds fewer than `low_water` tokens; fails
/// only if a session could then not be paid for.
pub async fn ensure_tokens(
    config: &Config,
    wallet: &TokenWallet,
    issuer_keys: Option<Arc<dyn IssuerKeyCheck>>,
) -> anyhow::Result<()> {
    let usable = wallet.status(unix_now())?.usable;
    if usable >= config.tokens.low_water {
        return Ok(());
    }
    tracing::info!(
        usable,
        batch = config.tokens.batch,
        "token wallet running low: fetching more"
    );
    match fetch_tokens(config, wallet, config.tokens.batch, issuer_keys).await {
        Ok(fetched) => {
            tracing::info!(fetched, "tokens fetched");
            Ok(())
        }
        Err(error) => {
            let usable = wallet.status(unix_now())?.usable;
            if usable >= TOKENS_PER_SESSION {
                tracing::warn!(usable, "could not refill the token wallet: {error:#}");
                Ok(())
            } else {
                Err(error.context(format!(
                    "the token wallet holds {usable} tokens and a session needs {TOKENS_PER_SESSION}"
                )))
            }
        }
    }
}

/// Counts the tokens a session takes from the wallet.
struct Spending {
    wallet: TokenWallet,
    spent: AtomicUsize,
}

impl TokenSource for Spending {
    fn next_token(&self) -> Option<String> {
        let token = self.wallet.next_token();
        if token.is_some() {
            self.spent.fetch_add(1, Ordering::SeqCst);
        }
        token
    }
}

/// Runs `request` on an attested host; see the module documentation.
pub async fn run(config: &Config, request: &FeatureRequest) -> anyhow::Result<Outcome> {
    // The wallet first: it creates the state directory (0700) the ledger view also lives in.
    let wallet = open_wallet(config)?;
    let trust = Trust::load(config).await?;
    ensure_tokens(config, &wallet, trust.issuer_keys.clone()).await?;
    let spending = Arc::new(Spending {
        wallet: wallet.clone(),
        spent: AtomicUsize::new(0),
    });
    let client = Client::new(config.client()?, trust.keys).context("building the OHTTP client")?;
    let transport = OhttpTransport::new(Arc::new(client), &config.network.authority)
        .with_tokens(Arc::clone(&spending) as Arc<dyn TokenSource>);
    let outcome = async {
        let mut session = RecoveringSession::establish(transport, &trust.verifier)
            .await?
            .on_recovery(|recovery| eprintln!("{recovery}"));
        let attested = AttestationSummary::new(session.session().attestation());
        tracing::info!(measurement = %attested.measurement, root = %attested.root, "host attested");
        let response = session.request(request).await?;
        // The host that answered: a new session's, after a recovery.
        let answered = session.session().attestation();
        let attestation = AttestationSummary::new(answered);
        let release = trust.verifier.authority().release_of(&answered.launch());
        Ok::<_, ClientError>((response, attestation, release, session.sessions_opened()))
    }
    .await;
    let tokens_left = wallet.status(unix_now())?.usable;
    let (response, attestation, release, sessions_opened) =
        outcome.map_err(|error| explain(error, tokens_left))?;
    let host = if attestation.simulated {
        "a SIMULATED host (no hardware guarantee)".to_owned()
    } else {
        format!("an attested AMD SEV-SNP host ({})", attestation.root)
    };
    Ok(Outcome {
        label: AnswerLabel {
            feature: response.feature().to_owned(),
            host,
            release,
        },
        response,
        attestation,
        tokens_spent: spending.spent.load(Ordering::SeqCst),
        sessions_opened,
        tokens_left,
    })
}

/// Turns a session failure into a message that says what to do.
fn explain(error: ClientError, tokens_left: usize) -> anyhow::Error {
    match &error {
        ClientError::Transport(TransportError::Status { status: 401, .. }) if tokens_left == 0 => {
            anyhow::Error::new(error)
                .context("the token wallet ran dry mid-session: run `cloister tokens fetch`")
        }
        ClientError::Transport(TransportError::Status { status: 401, .. }) => {
            anyhow::Error::new(error)
                .context("the gateway refused the request's Privacy Pass token")
        }
        ClientError::Attestation(_) => {
            anyhow::Error::new(error).context("the host is not trusted: nothing was sent to it")
        }
        ClientError::Feature(_) => {
            anyhow::Error::new(error).context("the attested host answered with an error")
        }
        _ if is_session_gone(&error) => anyhow::Error::new(error).context(
            "the session's host is gone (a request opens at most one new session): try again",
        ),
        _ => anyhow::Error::new(error).context("the session failed"),
    }
}

/// Reads a feature's input: any JSON value (the host checks it against the
/// feature's declared input type).
pub fn read_input(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// Reads a request file (`{"feature": ..., "input": ...}`) of `feature`.
pub fn read_request(path: &std::path::Path, feature: &str) -> anyhow::Result<FeatureRequest> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let request: FeatureRequest = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a cloister-api feature request", path.display()))?;
    if request.feature() != feature {
        bail!(
            "{} is a {} request, not a {feature} request",
            path.display(),
            request.feature()
        );
    }
    Ok(request)
}

pub use cloister_wire::unix_now;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{read_input, read_request};

    #[test]
    fn request_files_must_match_the_command() {
        let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
        let conversation = testdata.join("summarise/testdata/team-lunch.json");
        let draft = testdata.join("suggest/testdata/running-late.json");
        assert!(read_request(&conversation, "summarise").is_ok_and(|r| r.feature() == "summarise"));
        assert!(read_request(&draft, "suggest").is_ok_and(|r| r.feature() == "suggest"));
        assert!(
            read_request(&draft, "summarise")
                .is_err_and(|e| e.to_string().contains("not a summarise"))
        );
        assert!(read_request(&testdata.join("missing.json"), "suggest").is_err());
        assert!(read_input(&draft).is_ok_and(|input| input["input"]["tone"] == "formal"));
        assert!(read_input(&testdata.join("missing.json")).is_err());
    }
}
