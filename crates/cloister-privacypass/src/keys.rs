//! Issuer keys for token type 0x0002: RSA-2048 used as
//! RSABSSA-SHA384-PSS-Deterministic (RFC 9474 §5, as RFC 9578 §6 requires).
//!
//! The public key travels as a DER SubjectPublicKeyInfo with the
//! id-RSASSA-PSS OID and SHA-384/MGF1-SHA-384/48-byte-salt parameters
//! (RFC 9578 §6.5); its SHA-256 is the token key id. Parsing demands that
//! exact canonical encoding, so one key has exactly one id.

use std::fmt;

use blind_rsa_signatures::{DefaultRng, Deterministic, KeyPair, PSS, PublicKey, SecretKey, Sha384};
use sha2::{Digest, Sha256};

use crate::wire::{NID, NK, Token, TokenRequest, TokenResponse};

type RsaPublic = PublicKey<Sha384, PSS, Deterministic>;
type RsaSecret = SecretKey<Sha384, PSS, Deterministic>;

/// Why a key could not be loaded or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The bytes are not an RSA key the blind signature scheme accepts.
    #[error("not a usable RSA key")]
    Malformed,
    /// The modulus is not 2048 bits (token type 0x0002 fixes Nk = 256).
    #[error("RSA modulus must be 2048 bits")]
    WrongSize,
    /// The SPKI is not the canonical RSASSA-PSS (SHA-384, salt 48) encoding.
    #[error("public key is not the canonical RSASSA-PSS SPKI encoding")]
    NonCanonicalSpki,
    /// The RSA operation failed (for example a blinded message out of range).
    #[error("RSA operation failed: {0}")]
    Crypto(blind_rsa_signatures::Error),
}

/// An issuer public key with its precomputed token key id.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuerPublicKey {
    rsa: RsaPublic,
    spki: Vec<u8>,
    key_id: [u8; NID],
}

impl fmt::Debug for IssuerPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerPublicKey")
            .field("key_id", &hex::encode(self.key_id))
            .finish()
    }
}

impl IssuerPublicKey {
    /// Parses the RFC 9578 §6.5 SPKI encoding, refusing any other.
    pub fn from_spki(spki: &[u8]) -> Result<Self, KeyError> {
        let rsa = RsaPublic::from_spki(spki).map_err(|_| KeyError::Malformed)?;
        let key = Self::from_rsa(rsa)?;
        if key.spki != spki {
            return Err(KeyError::NonCanonicalSpki);
        }
        Ok(key)
    }

    fn from_rsa(rsa: RsaPublic) -> Result<Self, KeyError> {
        use blind_rsa_signatures::reexports::rsa::traits::PublicKeyParts as _;
        if rsa.as_ref().size() != NK {
            return Err(KeyError::WrongSize);
        }
        let spki = rsa.to_spki().map_err(KeyError::Crypto)?;
        let key_id = Sha256::digest(&spki).into();
        Ok(Self { rsa, spki, key_id })
    }

    /// The DER SPKI, as published in the issuer directory.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// `token_key_id = SHA-256(SPKI)`.
    pub fn key_id(&self) -> &[u8; NID] {
        &self.key_id
    }

    /// The last byte of the key id, as carried in token requests.
    pub fn truncated_key_id(&self) -> u8 {
        self.key_id[NID - 1]
    }

    /// Checks the token's RSA signature over its token input under this key.
    /// Does not check the key id, challenge or nonce: see [`crate::Redeemer`].
    pub fn verify_authenticator(&self, token: &Token) -> Result<(), KeyError> {
        let signature = blind_rsa_signatures::Signature(token.authenticator.to_vec());
        self.rsa
            .verify(&signature, None, token.token_input())
            .map_err(KeyError::Crypto)
    }

    pub(crate) fn rsa(&self) -> &RsaPublic {
        &self.rsa
    }
}

/// An issuer signing key. `Debug` shows only the key id.
#[derive(Clone)]
pub struct IssuerSecretKey {
    rsa: RsaSecret,
    public: IssuerPublicKey,
}

impl fmt::Debug for IssuerSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerSecretKey")
            .field("key_id", &hex::encode(self.public.key_id()))
            .finish()
    }
}

impl IssuerSecretKey {
    /// Generates a fresh RSA-2048 key from the operating system's RNG.
    pub fn generate() -> Result<Self, KeyError> {
        let pair = KeyPair::<Sha384, PSS, Deterministic>::generate(&mut DefaultRng, NK * 8)
            .map_err(KeyError::Crypto)?;
        Self::from_rsa(pair.sk)
    }

    /// Loads a PKCS#8 (or PKCS#1) PEM private key; validates it.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        Self::from_rsa(RsaSecret::from_pem(pem).map_err(|_| KeyError::Malformed)?)
    }

    /// Loads a PKCS#8 (or PKCS#1) DER private key; validates it.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        Self::from_rsa(RsaSecret::from_der(der).map_err(|_| KeyError::Malformed)?)
    }

    fn from_rsa(rsa: RsaSecret) -> Result<Self, KeyError> {
        let public = IssuerPublicKey::from_rsa(rsa.public_key().map_err(KeyError::Crypto)?)?;
        Ok(Self { rsa, public })
    }

    /// The PKCS#8 PEM encoding, for the issuer's key store.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.rsa.to_pem().map_err(KeyError::Crypto)
    }

    /// The matching public key.
    pub fn public_key(&self) -> &IssuerPublicKey {
        &self.public
    }

    /// RSABSSA BlindSign (RFC 9474 §4.3) over the request's blinded message.
    /// The caller must already have checked the truncated key id.
    pub fn blind_sign(&self, request: &TokenRequest) -> Result<TokenResponse, KeyError> {
        let signature = self
            .rsa
            .blind_sign(request.blinded_msg)
            .map_err(KeyError::Crypto)?;
        let blind_sig = signature
            .0
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongSize)?;
        Ok(TokenResponse { blind_sig })
    }
}
