//! A throwaway certificate authority for the loopback demo and the tests.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::TlsSettings;

/// Why a demo certificate could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum DemoCaError {
    /// rcgen refused the parameters.
    #[error("generating a demo certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A CA whose key exists only in this process: it issues server
/// certificates for loopback names. Trusting it protects nothing beyond the
/// run that made it, which is all a demo or a test needs.
pub struct DemoCa {
    issuer: Issuer<'static, KeyPair>,
    certificate_pem: String,
}

impl std::fmt::Debug for DemoCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DemoCa")
    }
}

/// The names every loopback server certificate carries.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl DemoCa {
    /// A new CA called `name`.
    ///
    /// # Errors
    /// [`DemoCaError::Generate`].
    pub fn new(name: &str) -> Result<Self, DemoCaError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let certificate = params.self_signed(&key)?;
        Ok(Self {
            certificate_pem: pem("CERTIFICATE", certificate.der()),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM.
    #[must_use]
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// A server certificate for `names` (DNS names or IP addresses) and its
    /// key, both PEM.
    ///
    /// # Errors
    /// [`DemoCaError::Generate`].
    pub fn issue(&self, names: &[&str]) -> Result<(String, String), DemoCaError> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        let key = KeyPair::generate()?;
        let certificate = params.signed_by(&key, &self.issuer)?;
        Ok((
            pem("CERTIFICATE", certificate.der()),
            pem("PRIVATE KEY", &key.serialize_der()),
        ))
    }

    /// Writes the CA certificate to `dir/ca.pem` and a certificate for
    /// [`LOOPBACK_NAMES`] to `dir/{party}.pem` with its key in
    /// `dir/{party}.key` (mode 0600), and returns the `[tls]` settings that
    /// serve it and trust this CA.
    ///
    /// # Errors
    /// [`DemoCaError`].
    pub fn write_loopback(&self, dir: &Path, party: &str) -> Result<TlsSettings, DemoCaError> {
        let (certificate, key) = self.issue(&LOOPBACK_NAMES)?;
        let (cert_path, key_path) = (
            dir.join(format!("{party}.pem")),
            dir.join(format!("{party}.key")),
        );
        write(&cert_path, &certificate, false)?;
        write(&key_path, &key, true)?;
        let settings = TlsSettings {
            cert: Some(cert_path),
            key: Some(key_path),
            ca: Some(self.write_ca(dir)?),
        };
        Ok(settings)
    }

    /// Writes the CA certificate to `dir/ca.pem` and returns that path.
    ///
    /// # Errors
    /// [`DemoCaError::Write`].
    pub fn write_ca(&self, dir: &Path) -> Result<PathBuf, DemoCaError> {
        let path = dir.join("ca.pem");
        write(&path, &self.certificate_pem, false)?;
        Ok(path)
    }
}

fn write(path: &Path, text: &str, secret: bool) -> Result<(), DemoCaError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    options
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|source| DemoCaError::Write {
            path: path.to_owned(),
            source,
        })
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
