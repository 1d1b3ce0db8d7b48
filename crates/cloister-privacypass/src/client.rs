//! The client side of issuance (RFC 9578 §6.1, §6.3): blind a fresh token
//! input for the issuer, then unblind the issuer's answer into a token.

use blind_rsa_signatures::{BlindSignature, BlindingResult, DefaultRng};
use rand_core::{CryptoRng, Rng as _};

use crate::keys::{IssuerPublicKey, KeyError};
use crate::wire::{NONCE_LEN, Token, TokenChallenge, TokenRequest, TokenResponse, token_input};

/// Why a client-side issuance step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Blinding failed (the key or the padded message is unusable).
    #[error("blinding failed: {0}")]
    Blind(blind_rsa_signatures::Error),
    /// The issuer's blind signature does not unblind to a valid signature:
    /// a faulty or malicious issuer, or a response for another request.
    #[error("issuer response does not verify: {0}")]
    BadResponse(blind_rsa_signatures::Error),
    /// The blinded message has the wrong length for Nk.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Client state kept between sending a `TokenRequest` and receiving its
/// `TokenResponse`. Holds the blinding secret: never send it anywhere.
#[derive(Debug)]
pub struct PendingToken {
    nonce: [u8; NONCE_LEN],
    challenge_digest: [u8; 32],
    key: IssuerPublicKey,
    blinding: BlindingResult,
}

/// Starts issuance of one token for `challenge` under `key`, with a fresh
/// random nonce and blind from the operating system's RNG.
pub fn request_token(
    key: &IssuerPublicKey,
    challenge: &TokenChallenge,
) -> Result<(TokenRequest, PendingToken), ClientError> {
    let mut nonce = [0u8; NONCE_LEN];
    DefaultRng.fill_bytes(&mut nonce);
    request_token_with(key, challenge, nonce, &mut DefaultRng)
}

/// [`request_token`] with the nonce and the RNG (which supplies the PSS salt,
/// then the blind) chosen by the caller: for reproducing RFC test vectors.
/// Real clients use [`request_token`].
pub fn request_token_with<R: CryptoRng + ?Sized>(
    key: &IssuerPublicKey,
    challenge: &TokenChallenge,
    nonce: [u8; NONCE_LEN],
    rng: &mut R,
) -> Result<(TokenRequest, PendingToken), ClientError> {
    let challenge_digest = challenge.digest();
    let input = token_input(&nonce, &challenge_digest, key.key_id());
    let blinding = key.rsa().blind(rng, input).map_err(ClientError::Blind)?;
    let blinded_msg = blinding
        .blind_message
        .0
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::WrongSize)?;
    let request = TokenRequest {
        truncated_token_key_id: key.truncated_key_id(),
        blinded_msg,
    };
    Ok((
        request,
        PendingToken {
            nonce,
            challenge_digest,
            key: key.clone(),
            blinding,
        },
    ))
}

impl PendingToken {
    /// Unblinds the issuer's response (RFC 9474 §4.4 Finalize, which also
    /// verifies the signature) and assembles the token.
    pub fn finalize(self, response: &TokenResponse) -> Result<Token, ClientError> {
        let input = token_input(&self.nonce, &self.challenge_digest, self.key.key_id());
        let signature = self
            .key
            .rsa()
            .finalize(
                &BlindSignature(response.blind_sig.to_vec()),
                &self.blinding,
                input,
            )
            .map_err(ClientError::BadResponse)?;
        let authenticator = signature
            .0
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongSize)?;
        Ok(Token {
            nonce: self.nonce,
            challenge_digest: self.challenge_digest,
            token_key_id: *self.key.key_id(),
            authenticator,
        })
    }
}
