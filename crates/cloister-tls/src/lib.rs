//! TLS on Cloister's outer hops, defined once for every party.
//!
//! Client -> relay, relay -> gateway, client -> issuer, client -> ledger,
//! gateway -> host, gateway -> issuer and ledger, issuer -> ledger and
//! ledger -> witness are HTTPS (rustls, ring provider). What travels inside
//! (OHTTP, RA-TLS records, blinded tokens, signed tree heads) is protected
//! on its own; TLS keeps a network attacker from reading sizes, paths and
//! metadata, from answering in a party's place, and from forwarding a
//! client's address-revealing connection elsewhere (RFC 9458 §10 expects
//! HTTPS between client and relay).
//!
//! * [`TlsSettings`] is the `[tls]` section of every party's TOML: the
//!   certificate chain and key it serves (`cert`, `key`) and the CA bundle
//!   it trusts for its own outbound calls (`ca`).
//! * [`Listener`] serves an axum app over HTTPS, or over plain HTTP on a
//!   loopback address only, saying so loudly.
//! * [`Trust`] builds the `reqwest` client of an outbound hop that trusts
//!   exactly the configured CA bundle; [`check_url`] refuses a plain
//!   `http://` URL unless [`PlainHttp`] allows it.
//! * `DemoCa` (feature `demo-ca`) makes a throwaway CA and loopback
//!   certificates for the demo and the tests.
//!
//! Errors name the file they are about.

#[cfg(feature = "demo-ca")]
mod demo;
mod listener;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

#[cfg(feature = "demo-ca")]
pub use demo::{DemoCa, DemoCaError};
pub use listener::{ListenError, Listener, Stream};
pub use rustls::{ClientConfig, ServerConfig};

/// Why TLS could not be set up, or a plain-HTTP hop was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file is missing, unreadable or malformed.
    #[error("{}: cannot read {what} from PEM: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was expected in it.
        what: &'static str,
        /// Why.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate chain and key do not make a server configuration
    /// (for example, the key is not the certificate's).
    #[error("{} with key {}: not a usable TLS server identity: {source}", cert.display(), key.display())]
    Server {
        /// The certificate chain file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// A certificate of a CA bundle is not a usable trust anchor.
    #[error("{}: not a usable CA certificate: {source}", path.display())]
    Ca {
        /// The bundle.
        path: PathBuf,
        /// Why.
        #[source]
        source: rustls::Error,
    },
    /// `[tls]` names only one of `cert` and `key`.
    #[error("[tls] names a {present} but no {missing}: a server needs both")]
    Incomplete {
        /// The one given.
        present: &'static str,
        /// The one missing.
        missing: &'static str,
    },
    /// rustls refused the protocol versions (never with the ring provider).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// An outbound URL is not HTTPS and plain HTTP is not allowed for it.
    #[error("{what} {url} is plain HTTP: {why}")]
    PlainHttp {
        /// Which hop (for example "relay URL").
        what: String,
        /// The URL.
        url: String,
        /// What to do about it.
        why: &'static str,
    },
    /// An outbound URL is neither `https://` nor `http://`.
    #[error("{what} {url} is not an http(s) URL")]
    BadUrl {
        /// Which hop.
        what: String,
        /// The URL.
        url: String,
    },
    /// A server without `[tls]` was asked to listen beyond loopback.
    #[error(
        "refusing to serve plain HTTP on {addr}: without a [tls] section (cert, key) only a loopback address is allowed"
    )]
    PlainBeyondLoopback {
        /// The address.
        addr: std::net::SocketAddr,
    },
}

/// The `[tls]` section of a party's configuration. All paths name PEM files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The certificate chain this party serves, leaf first.
    pub cert: Option<PathBuf>,
    /// The private key of `cert` (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// The CA bundle this party trusts for its outbound HTTPS calls; no
    /// other certificate authority is trusted.
    pub ca: Option<PathBuf>,
}

impl TlsSettings {
    /// Joins every relative path onto `base` (the configuration file's directory).
    pub fn resolve_paths(&mut self, base: &Path) {
        for path in [&mut self.cert, &mut self.key, &mut self.ca]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// The server configuration from `cert` and `key`; `None` when neither
    /// is set (plain HTTP, which [`Listener::bind`] allows on loopback only).
    ///
    /// # Errors
    /// Only one of the two is set, or see [`server_config`].
    pub fn server(&self) -> Result<Option<Arc<ServerConfig>>, TlsError> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => server_config(cert, key).map(Some),
            (None, None) => Ok(None),
            (Some(_), None) => Err(TlsError::Incomplete {
                present: "cert",
                missing: "key",
            }),
            (None, Some(_)) => Err(TlsError::Incomplete {
                present: "key",
                missing: "cert",
            }),
        }
    }

    /// The trust of this party's outbound calls: `ca`, or nothing (then
    /// only plain-HTTP hops that [`check_url`] allows can work).
    ///
    /// # Errors
    /// See [`Trust::from_ca_file`].
    pub fn trust(&self) -> Result<Trust, TlsError> {
        self.ca
            .as_deref()
            .map_or(Ok(Trust::default()), Trust::from_ca_file)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS server configuration serving the chain in `cert` with `key`.
///
/// # Errors
/// [`TlsError::Pem`] naming the file that is missing or holds no
/// certificate (key); [`TlsError::Server`] if they do not fit together.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certificates(cert, "a certificate chain")?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Pem {
        path: key.to_owned(),
        what: "a private key",
        source,
    })?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|source| TlsError::Server {
            cert: cert.to_owned(),
            key: key.to_owned(),
            source,
        })?;
    Ok(Arc::new(config))
}

fn read_certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |source| TlsError::Pem {
        path: path.to_owned(),
        what,
        source,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certificates.is_empty() {
        return Err(pem(rustls::pki_types::pem::Error::NoItemsFound));
    }
    Ok(certificates)
}

/// Whom an outbound hop trusts: the certificate authorities of one CA
/// bundle, or none at all (the default: every HTTPS server is refused).
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct Trust {
    config: Option<Arc<ClientConfig>>,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.config.is_some() {
            "Trust(CA bundle)"
        } else {
            "Trust(none)"
        })
    }
}

impl Trust {
    /// Trust exactly the certificates in the PEM bundle at `path`.
    ///
    /// # Errors
    /// [`TlsError::Pem`] (missing file, no certificate) or [`TlsError::Ca`].
    pub fn from_ca_file(path: &Path) -> Result<Self, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in read_certificates(path, "CA certificates")? {
            roots.add(certificate).map_err(|source| TlsError::Ca {
                path: path.to_owned(),
                source,
            })?;
        }
        let config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            config: Some(Arc::new(config)),
        })
    }

    /// The rustls client configuration, if a CA bundle is configured (for
    /// a caller that speaks TLS without `reqwest`).
    #[must_use]
    pub fn client_config(&self) -> Option<Arc<ClientConfig>> {
        self.config.clone()
    }

    /// Whether a CA bundle is configured.
    #[must_use]
    pub fn is_configured(&self) -> bool {
        self.config.is_some()
    }

    /// A `reqwest` client builder whose HTTPS connections verify the server
    /// against this trust (and nothing else: no built-in roots).
    pub fn http_client(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder().tls_built_in_root_certs(false);
        match &self.config {
            Some(config) => builder.use_preconfigured_tls(ClientConfig::clone(config)),
            None => builder,
        }
    }
}

impl PartialEq for Trust {
    /// The same trust: both none, or the same loaded bundle.
    fn eq(&self, other: &Self) -> bool {
        match (&self.config, &other.config) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Trust {}

/// How a client's outbound hops connect: whom they trust and whether plain
/// HTTP is allowed. The default trusts no one and refuses plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The CA bundle HTTPS servers must chain to.
    pub trust: Trust,
    /// When `http://` is accepted.
    pub plain_http: PlainHttp,
}

impl Default for Outbound {
    fn default() -> Self {
        Self {
            trust: Trust::default(),
            plain_http: PlainHttp::Refused,
        }
    }
}

impl Outbound {
    /// Plain HTTP allowed anywhere, no CA: a loopback demo or test that
    /// asked for no protection on the outer hops.
    #[must_use]
    pub fn insecure_demo() -> Self {
        Self {
            trust: Trust::default(),
            plain_http: PlainHttp::InsecureDemo,
        }
    }

    /// HTTPS to servers chaining to `trust`, never plain HTTP.
    #[must_use]
    pub fn https(trust: Trust) -> Self {
        Self {
            trust,
            plain_http: PlainHttp::Refused,
        }
    }

    /// Checks each `(what, url)` with [`check_url`] and returns a client
    /// builder verifying against [`Outbound::trust`].
    ///
    /// # Errors
    /// See [`check_url`].
    pub fn http_client(&self, urls: &[(&str, &str)]) -> Result<reqwest::ClientBuilder, TlsError> {
        for (what, url) in urls {
            check_url(what, url, self.plain_http)?;
        }
        Ok(self.trust.http_client())
    }
}

/// `error` and each of its sources, joined by `: `. An HTTP client's
/// error names only the URL; the refused certificate is in its sources.
#[must_use]
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// When an outbound hop may use plain `http://`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainHttp {
    /// Never (the client's relay, issuer and ledger by default).
    Refused,
    /// Only to a loopback address (`127.0.0.0/8`, `::1`, `localhost`): a
    /// party without a CA bundle talking to a neighbour on the same machine.
    Loopback,
    /// Anywhere: a demo that explicitly asked for no protection.
    InsecureDemo,
}

/// Checks that `url` (the hop named `what`) is `https://`, or `http://`
/// where `plain` allows it. Every allowed plain-HTTP hop is logged as a
/// warning.
///
/// # Errors
/// [`TlsError::PlainHttp`] or [`TlsError::BadUrl`].
pub fn check_url(what: &str, url: &str, plain: PlainHttp) -> Result<(), TlsError> {
    let bad = || TlsError::BadUrl {
        what: what.to_owned(),
        url: url.to_owned(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|_| bad())?;
    match parsed.scheme() {
        "https" => return Ok(()),
        "http" => {}
        _ => return Err(bad()),
    }
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let refuse = |why| {
        Err(TlsError::PlainHttp {
            what: what.to_owned(),
            url: url.to_owned(),
            why,
        })
    };
    match plain {
        PlainHttp::Refused => refuse(
            "HTTPS is required (RFC 9458 expects it between client and relay); plain HTTP only with the explicit insecure demo setting",
        ),
        PlainHttp::Loopback if !loopback => refuse(
            "HTTPS is required beyond loopback: use an https:// URL and name its CA in [tls] ca",
        ),
        PlainHttp::Loopback | PlainHttp::InsecureDemo => {
            tracing::warn!(
                "{what} {url} is PLAIN HTTP: not encrypted or authenticated, for loopback tests and demos only"
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_allowed_only_where_the_policy_says() {
        let check = |url, plain| check_url("relay URL", url, plain).is_ok();
        for plain in [
            PlainHttp::Refused,
            PlainHttp::Loopback,
            PlainHttp::InsecureDemo,
        ] {
            assert!(check("https://relay.example/relay", plain));
        }
        assert!(!check("http://127.0.0.1:7100/relay", PlainHttp::Refused));
        for loopback in [
            "http://127.0.0.1:7100/relay",
            "http://127.8.0.1/",
            "http://[::1]:7100/",
            "http://localhost:7100/",
        ] {
            assert!(check(loopback, PlainHttp::Loopback), "{loopback}");
        }
        assert!(!check("http://10.0.0.1:7100/relay", PlainHttp::Loopback));
        assert!(!check("http://localhost.example/", PlainHttp::Loopback));
        assert!(check("http://relay.example/", PlainHttp::InsecureDemo));
        assert!(!check("ftp://relay.example/", PlainHttp::InsecureDemo));
        let refused = check_url("relay URL", "http://10.0.0.1/relay", PlainHttp::Refused)
            .expect_err("refused")
            .to_string();
        assert!(refused.contains("relay URL http://10.0.0.1/relay is plain HTTP"));
        assert!(refused.contains("RFC 9458"));
    }

    #[test]
    fn a_server_needs_both_cert_and_key() {
        assert!(matches!(TlsSettings::default().server(), Ok(None)));
        let only_cert = TlsSettings {
            cert: Some("c.pem".into()),
            ..TlsSettings::default()
        };
        assert!(matches!(
            only_cert.server(),
            Err(TlsError::Incomplete { missing: "key", .. })
        ));
    }

    #[test]
    fn relative_paths_resolve_from_the_base() {
        let mut settings = TlsSettings {
            cert: Some("tls/c.pem".into()),
            key: Some("/abs/k.pem".into()),
            ca: None,
        };
        settings.resolve_paths(Path::new("/etc/cloister"));
        assert_eq!(settings.cert, Some("/etc/cloister/tls/c.pem".into()));
        assert_eq!(settings.key, Some("/abs/k.pem".into()));
    }
}
