//! Fetching, choosing, checking and caching the gateway's key configuration.
//!
//! The key list comes from the relay (which serves its own copy), and the
//! chosen configuration is kept in memory and, when the client is given a
//! file, on disk across runs, for as long as its `Cache-Control: max-age`
//! allows: the fewer fetches, the fewer moments a fetch could mark. Whatever
//! the source, the configuration is checked for consistency before use.

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;

use cloister_ohttp_keys::{client_request, key_config_digest, split_key_list};
use cloister_wire::{media, unix_now};
use serde::{Deserialize, Serialize};

use crate::ClientError;

/// How long a key list without `Cache-Control: max-age` is reused, in seconds.
const DEFAULT_CACHE_SECS: u64 = 60;

/// Confirms that a key configuration is the one everybody gets (DESIGN.md
/// phase 2): typically by finding its SHA-256 digest
/// ([`key_config_digest`]) in the transparency ledger with a valid
/// inclusion proof. Called before the configuration is first used; an error
/// stops the request before anything is sent.
pub trait KeyConsistency: Send + Sync {
    /// Check `encoded_config` (one configuration, without its list prefix).
    fn check(&self, encoded_config: &[u8]) -> impl Future<Output = Result<(), ClientError>> + Send;
}

/// **No consistency check.** Accepts every configuration, so a malicious
/// gateway could give this client a key of its own and link its requests.
/// For development and tests until the ledger client is plugged in; it logs
/// a warning each time it is consulted.
#[derive(Debug, Clone, Copy, Default)]
pub struct UncheckedKeys;

impl KeyConsistency for UncheckedKeys {
    async fn check(&self, encoded_config: &[u8]) -> Result<(), ClientError> {
        tracing::warn!(
            digest = %hex::encode(key_config_digest(encoded_config)),
            "key configuration NOT checked against the ledger (UncheckedKeys)"
        );
        Ok(())
    }
}

/// Accepts only configurations whose digests were pinned in advance, for
/// deployments that ship the expected digests with the client.
#[derive(Debug, Clone, Default)]
pub struct PinnedDigests(pub HashSet<[u8; 32]>);

impl KeyConsistency for PinnedDigests {
    async fn check(&self, encoded_config: &[u8]) -> Result<(), ClientError> {
        if self.0.contains(&key_config_digest(encoded_config)) {
            Ok(())
        } else {
            Err(ClientError::KeyConsistency(format!(
                "digest {} is not pinned",
                hex::encode(key_config_digest(encoded_config))
            )))
        }
    }
}

/// A chosen key configuration, where it came from and when to fetch again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CachedKeys {
    /// The key endpoint it was fetched from.
    url: String,
    pub(crate) config: Vec<u8>,
    /// Unix second from which it must be fetched again.
    expires_at: u64,
}

impl CachedKeys {
    /// The configuration if it came from `url` and is still fresh.
    pub(crate) fn fresh(&self, url: &str, now_unix: u64) -> Option<&[u8]> {
        (self.url == url && now_unix < self.expires_at).then_some(self.config.as_slice())
    }

    /// The copy saved at `path`, if there is a readable one.
    pub(crate) fn load(path: &Path) -> Option<Self> {
        let text = std::fs::read(path).ok()?;
        serde_json::from_slice(&text)
            .inspect_err(|error| {
                tracing::debug!(%error, path = %path.display(), "ignoring an unreadable key cache");
            })
            .ok()
    }

    /// Saves this copy at `path` (see [`cloister_ledger_verify::private_file::replace`]).
    pub(crate) fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        cloister_ledger_verify::private_file::replace(path, &json).map_err(|(_, error)| error)
    }
}

/// Fetch the key list and pick the first configuration this client supports.
pub(crate) async fn fetch(http: &reqwest::Client, url: &str) -> Result<CachedKeys, ClientError> {
    let answer = http
        .get(url)
        .header("accept", media::OHTTP_KEYS)
        .send()
        .await
        .map_err(ClientError::Transport)?;
    let status = answer.status().as_u16();
    let media_type = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if status != 200 || media_type.as_deref() != Some(media::OHTTP_KEYS) {
        return Err(ClientError::KeyEndpoint { status, media_type });
    }
    let max_age = answer
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .and_then(cloister_wire::max_age)
        .unwrap_or(DEFAULT_CACHE_SECS);
    let body = answer.bytes().await.map_err(ClientError::Transport)?;
    let config = choose(&body)?;
    Ok(CachedKeys {
        url: url.to_owned(),
        config,
        expires_at: unix_now().saturating_add(max_age),
    })
}

/// The first configuration in `list` that `ohttp` can use: it decodes and
/// offers a suite this build supports.
fn choose(list: &[u8]) -> Result<Vec<u8>, ClientError> {
    split_key_list(list)?
        .into_iter()
        .find(|config| client_request(config).is_ok())
        .map(<[u8]>::to_vec)
        .ok_or(ClientError::NoUsableKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9458 Appendix A key configuration.
    const APPENDIX_A_CONFIG: &str = "01002031e1f05a740102115220e9af918f738674aec95f54db6e04eb705aae8e79815500080001000100010003";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn chooses_the_first_supported_configuration() {
        let good = hex(APPENDIX_A_CONFIG);
        let mut unsupported_kem = good.clone();
        unsupported_kem[1..3].copy_from_slice(&[0xff, 0xff]);
        let list = cloister_ohttp_keys::encode_key_list(&[unsupported_kem.clone(), good.clone()])
            .expect("list");
        assert_eq!(choose(&list).expect("chosen"), good);
        let only_bad = cloister_ohttp_keys::encode_key_list(&[unsupported_kem]).expect("list");
        assert!(matches!(choose(&only_bad), Err(ClientError::NoUsableKey)));
        assert!(matches!(choose(&[0, 5, 1]), Err(ClientError::KeyList(_))));
    }

    #[test]
    fn a_configuration_without_a_supported_suite_is_skipped() {
        let good = hex(APPENDIX_A_CONFIG);
        // The same key offering only HKDF-SHA512 suites, which `ohttp` decodes
        // (dropping both) and then could not encapsulate to without panicking.
        let mut sha512_only = good.clone();
        sha512_only[37..].copy_from_slice(&[0, 3, 0, 1, 0, 3, 0, 3]);
        let list = cloister_ohttp_keys::encode_key_list(&[sha512_only.clone(), good.clone()])
            .expect("list");
        assert_eq!(choose(&list).expect("chosen"), good);
        let only_bad = cloister_ohttp_keys::encode_key_list(&[sha512_only]).expect("list");
        assert!(matches!(choose(&only_bad), Err(ClientError::NoUsableKey)));
    }

    #[test]
    fn a_cached_copy_is_used_only_for_its_endpoint_and_lifetime() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ohttp-keys.json");
        assert_eq!(CachedKeys::load(&path), None);
        let cached = CachedKeys {
            url: "http://relay/keys".into(),
            config: hex(APPENDIX_A_CONFIG),
            expires_at: 1_000,
        };
        cached.save(&path).expect("save");
        let loaded = CachedKeys::load(&path).expect("load");
        assert_eq!(loaded, cached);
        assert_eq!(
            loaded.fresh("http://relay/keys", 999),
            Some(&cached.config[..])
        );
        assert_eq!(loaded.fresh("http://relay/keys", 1_000), None);
        assert_eq!(loaded.fresh("http://elsewhere/keys", 999), None);
        std::fs::write(&path, "not json").expect("write");
        assert_eq!(CachedKeys::load(&path), None);
    }

    #[tokio::test]
    async fn pinned_digests_refuse_other_keys() {
        let config = hex(APPENDIX_A_CONFIG);
        let pinned = PinnedDigests([key_config_digest(&config)].into_iter().collect());
        assert!(pinned.check(&config).await.is_ok());
        let mut other = config.clone();
        other[5] ^= 1;
        assert!(matches!(
            pinned.check(&other).await,
            Err(ClientError::KeyConsistency(_))
        ));
    }
}
