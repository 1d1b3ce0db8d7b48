//! TLS configuration shared by both ends: TLS 1.3 only, the `ring`
//! provider, an ephemeral self-signed host certificate, and a client
//! verifier that takes its trust from attestation rather than from a CA.

use std::sync::Arc;

use cloister_attestation::{EXPORTER_LABEL, EXPORTER_LEN, TlsExporter};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};

/// The name the client puts in SNI and the host puts in its certificate.
/// It names no real host: the session is routed by the gateway, and trust
/// comes from attestation.
pub const HOST_NAME: &str = "cloister-host.invalid";

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The ephemeral certificate could not be generated.
    #[error("cannot generate the ephemeral host certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Tls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A host TLS configuration with a certificate and key generated now, held
/// only in memory, and forgotten when the process exits.
pub(crate) fn ephemeral_server_config() -> Result<Arc<ServerConfig>, TlsSetupError> {
    // Ed25519: its signatures have one length, so the host's handshake
    // flight is the same size in every session (ECDSA's DER varies).
    let signing_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let cert =
        rcgen::CertificateParams::new(vec![HOST_NAME.to_owned()])?.self_signed(&signing_key)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)?;
    // No resumption: every session is attested afresh, and no session state
    // outlives its connection.
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(config))
}

/// The client TLS configuration: TLS 1.3, no resumption, and the
/// [`AttestedHostVerifier`].
pub(crate) fn client_config() -> Result<Arc<ClientConfig>, TlsSetupError> {
    let provider = provider();
    let verifier = Arc::new(AttestedHostVerifier {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Accepts the host's ephemeral self-signed certificate without a CA, but
/// still checks the TLS 1.3 `CertificateVerify` signature, so the peer must
/// hold the certificate's key.
///
/// This is sound only because the client then demands attestation evidence
/// bound to this session's exporter: a party that is not the attested CVM
/// cannot produce evidence naming this session's keys. Never use this
/// verifier without that step.
#[derive(Debug)]
struct AttestedHostVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AttestedHostVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable with a TLS 1.3-only configuration; refuse regardless.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls13RequiredForQuic,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The session's exporter under [`EXPORTER_LABEL`] with an empty context,
/// as both ends compute it.
pub(crate) fn exporter(
    connection: &rustls::ConnectionCommon<impl rustls::SideData>,
) -> Result<TlsExporter, rustls::Error> {
    let mut value = [0u8; EXPORTER_LEN];
    connection.export_keying_material(&mut value, EXPORTER_LABEL, Some(&[]))?;
    Ok(TlsExporter(value))
}
