//! The four Privacy Pass messages and their TLS-presentation-language
//! encodings: `TokenChallenge` and `Token` (RFC 9577 §2.1.1, §2.2),
//! `TokenRequest` and `TokenResponse` for token type 0x0002 (RFC 9578 §6).
//!
//! Decoders are strict: exact lengths, no trailing bytes, and only the
//! canonical form of each value, so `encode(decode(b)) == b` for every `b`
//! that decodes.

use sha2::{Digest, Sha256};

/// Token type 0x0002: Blind RSA (2048-bit), publicly verifiable (RFC 9578 §8.2.2).
pub const TOKEN_TYPE_BLIND_RSA_2048: u16 = 0x0002;
/// Nk for token type 0x0002: the RSA modulus length in bytes.
pub const NK: usize = 256;
/// Nid: the length of a token key identifier (SHA-256 output).
pub const NID: usize = 32;
/// Length of the client nonce in a token.
pub const NONCE_LEN: usize = 32;
/// Length of a redemption context when present (RFC 9577 §2.1.1).
pub const REDEMPTION_CONTEXT_LEN: usize = 32;
/// Length of an encoded type 0x0002 `Token`.
pub const TOKEN_LEN: usize = 2 + NONCE_LEN + 32 + NID + NK;
/// Length of an encoded type 0x0002 `TokenRequest`.
pub const TOKEN_REQUEST_LEN: usize = 2 + 1 + NK;

/// Why a byte string is not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the message did.
    #[error("message truncated")]
    Truncated,
    /// Bytes were left after the message.
    #[error("{0} trailing bytes after message")]
    TrailingBytes(usize),
    /// The token type is not 0x0002.
    #[error("unsupported token type {0:#06x}")]
    UnsupportedTokenType(u16),
    /// The input has the wrong total length for its type.
    #[error("wrong length: expected {expected} bytes, got {actual}")]
    WrongLength {
        /// Required length.
        expected: usize,
        /// Length received.
        actual: usize,
    },
    /// The redemption context is neither empty nor 32 bytes.
    #[error("redemption context must be 0 or 32 bytes, got {0}")]
    BadRedemptionContext(usize),
    /// The issuer name is empty or not a printable ASCII host name.
    #[error("invalid issuer name")]
    BadIssuerName,
    /// The origin info is not a comma-separated list of printable ASCII names.
    #[error("invalid origin info")]
    BadOriginInfo,
}

/// A cursor over untrusted bytes; every read is bounds-checked.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn finish(self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// A name allowed in `issuer_name` or `origin_info`: non-empty printable
/// ASCII without spaces or commas (commas separate origins).
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

/// Reads a token type and requires it to be 0x0002.
fn read_token_type(reader: &mut Reader<'_>) -> Result<(), DecodeError> {
    match reader.u16()? {
        TOKEN_TYPE_BLIND_RSA_2048 => Ok(()),
        other => Err(DecodeError::UnsupportedTokenType(other)),
    }
}

/// What an origin asks a client to present (RFC 9577 §2.1.1). Cloister's
/// gateway uses non-interactive challenges (empty redemption context), so
/// clients can fetch tokens ahead of time and spend one per session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenChallenge {
    issuer_name: String,
    redemption_context: Option<[u8; REDEMPTION_CONTEXT_LEN]>,
    origin_info: Vec<String>,
}

impl TokenChallenge {
    /// A type 0x0002 challenge. `origin_info` empty means "any origin"
    /// (cross-origin tokens); names must be printable ASCII without commas.
    pub fn new(
        issuer_name: &str,
        redemption_context: Option<[u8; REDEMPTION_CONTEXT_LEN]>,
        origin_info: &[&str],
    ) -> Result<Self, DecodeError> {
        if !is_valid_name(issuer_name) || issuer_name.len() > usize::from(u16::MAX) {
            return Err(DecodeError::BadIssuerName);
        }
        let joined_len = origin_info.iter().map(|o| o.len() + 1).sum::<usize>();
        if !origin_info.iter().all(|o| is_valid_name(o)) || joined_len > usize::from(u16::MAX) {
            return Err(DecodeError::BadOriginInfo);
        }
        Ok(Self {
            issuer_name: issuer_name.to_owned(),
            redemption_context,
            origin_info: origin_info.iter().map(|o| (*o).to_owned()).collect(),
        })
    }

    /// The issuer host name the challenge names.
    pub fn issuer_name(&self) -> &str {
        &self.issuer_name
    }

    /// The 32-byte redemption context, if the challenge is bound to one.
    pub fn redemption_context(&self) -> Option<&[u8; REDEMPTION_CONTEXT_LEN]> {
        self.redemption_context.as_ref()
    }

    /// The origins the token may be redeemed at (empty: any).
    pub fn origin_info(&self) -> &[String] {
        &self.origin_info
    }

    /// The wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let origins = self.origin_info.join(",");
        let context: &[u8] = self
            .redemption_context
            .as_ref()
            .map_or(&[], |c| c.as_slice());
        let mut out =
            Vec::with_capacity(7 + self.issuer_name.len() + context.len() + origins.len());
        out.extend_from_slice(&TOKEN_TYPE_BLIND_RSA_2048.to_be_bytes());
        push_u16_prefixed(&mut out, self.issuer_name.as_bytes());
        // Lengths were bounded in `new`/`decode`, so these casts cannot truncate.
        out.push(context.len() as u8);
        out.extend_from_slice(context);
        push_u16_prefixed(&mut out, origins.as_bytes());
        out
    }

    /// `challenge_digest` as carried in tokens: SHA-256 of the encoding.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }

    /// Parses the wire encoding strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        read_token_type(&mut reader)?;
        let name_len = usize::from(reader.u16()?);
        let issuer_name = std::str::from_utf8(reader.take(name_len)?)
            .ok()
            .filter(|n| is_valid_name(n))
            .ok_or(DecodeError::BadIssuerName)?;
        let redemption_context = match usize::from(reader.u8()?) {
            0 => None,
            REDEMPTION_CONTEXT_LEN => Some(reader.array()?),
            other => return Err(DecodeError::BadRedemptionContext(other)),
        };
        let origins_len = usize::from(reader.u16()?);
        let origins = std::str::from_utf8(reader.take(origins_len)?)
            .map_err(|_| DecodeError::BadOriginInfo)?;
        reader.finish()?;
        let origin_info: Vec<&str> = if origins.is_empty() {
            Vec::new()
        } else {
            origins.split(',').collect()
        };
        Self::new(issuer_name, redemption_context, &origin_info).map_err(|e| match e {
            DecodeError::BadIssuerName => DecodeError::BadIssuerName,
            _ => DecodeError::BadOriginInfo,
        })
    }
}

fn push_u16_prefixed(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// What a client sends the issuer (RFC 9578 §6.1): the blinded token input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// Last byte of the issuer key id: lets the issuer pick a key while
    /// telling it next to nothing.
    pub truncated_token_key_id: u8,
    /// The RSA-blinded message.
    pub blinded_msg: [u8; NK],
}

impl TokenRequest {
    /// The wire encoding (`application/private-token-request`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(TOKEN_REQUEST_LEN);
        out.extend_from_slice(&TOKEN_TYPE_BLIND_RSA_2048.to_be_bytes());
        out.push(self.truncated_token_key_id);
        out.extend_from_slice(&self.blinded_msg);
        out
    }

    /// Parses the wire encoding strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        read_token_type(&mut reader)?;
        if bytes.len() != TOKEN_REQUEST_LEN {
            return Err(DecodeError::WrongLength {
                expected: TOKEN_REQUEST_LEN,
                actual: bytes.len(),
            });
        }
        let request = Self {
            truncated_token_key_id: reader.u8()?,
            blinded_msg: reader.array()?,
        };
        reader.finish()?;
        Ok(request)
    }
}

/// What the issuer answers (RFC 9578 §6.2): the blind signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    /// The blind RSA signature over the request's blinded message.
    pub blind_sig: [u8; NK],
}

impl TokenResponse {
    /// The wire encoding (`application/private-token-response`).
    pub fn encode(&self) -> Vec<u8> {
        self.blind_sig.to_vec()
    }

    /// Parses the wire encoding strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let blind_sig = bytes.try_into().map_err(|_| DecodeError::WrongLength {
            expected: NK,
            actual: bytes.len(),
        })?;
        Ok(Self { blind_sig })
    }
}

/// A spendable token (RFC 9577 §2.2), for type 0x0002.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The client's random nonce; the redeemer's double-spend key.
    pub nonce: [u8; NONCE_LEN],
    /// SHA-256 of the `TokenChallenge` this token answers.
    pub challenge_digest: [u8; 32],
    /// SHA-256 of the issuer public key's SPKI.
    pub token_key_id: [u8; NID],
    /// The RSA signature over the token input.
    pub authenticator: [u8; NK],
}

impl Token {
    /// The message the authenticator signs: everything before it.
    pub fn token_input(&self) -> [u8; TOKEN_LEN - NK] {
        token_input(&self.nonce, &self.challenge_digest, &self.token_key_id)
    }

    /// The wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(TOKEN_LEN);
        out.extend_from_slice(&self.token_input());
        out.extend_from_slice(&self.authenticator);
        out
    }

    /// Parses the wire encoding strictly.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new(bytes);
        read_token_type(&mut reader)?;
        if bytes.len() != TOKEN_LEN {
            return Err(DecodeError::WrongLength {
                expected: TOKEN_LEN,
                actual: bytes.len(),
            });
        }
        let token = Self {
            nonce: reader.array()?,
            challenge_digest: reader.array()?,
            token_key_id: reader.array()?,
            authenticator: reader.array()?,
        };
        reader.finish()?;
        Ok(token)
    }
}

/// `token_input = concat(0x0002, nonce, challenge_digest, token_key_id)` (RFC 9578 §6.1).
pub(crate) fn token_input(
    nonce: &[u8; NONCE_LEN],
    challenge_digest: &[u8; 32],
    token_key_id: &[u8; NID],
) -> [u8; TOKEN_LEN - NK] {
    let mut out = [0u8; TOKEN_LEN - NK];
    out[..2].copy_from_slice(&TOKEN_TYPE_BLIND_RSA_2048.to_be_bytes());
    out[2..34].copy_from_slice(nonce);
    out[34..66].copy_from_slice(challenge_digest);
    out[66..].copy_from_slice(token_key_id);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_round_trips_and_rejects_bad_context_length() {
        let challenge =
            TokenChallenge::new("issuer.example", Some([7; 32]), &["a.example", "b.example"])
                .expect("valid challenge");
        let bytes = challenge.encode();
        assert_eq!(TokenChallenge::decode(&bytes), Ok(challenge));

        let mut bad = TokenChallenge::new("issuer.example", None, &[])
            .expect("valid")
            .encode();
        // Redemption context length byte sits after type (2) + name length (2) + name (14).
        bad[18] = 5;
        assert!(TokenChallenge::decode(&bad).is_err());
    }

    #[test]
    fn challenge_rejects_empty_origin_between_commas_and_other_types() {
        let mut bytes = TokenChallenge::new("i.example", None, &[])
            .expect("valid")
            .encode();
        bytes.truncate(bytes.len() - 2);
        bytes.extend_from_slice(&[0, 3, b'a', b',', b'b']);
        assert!(TokenChallenge::decode(&bytes).is_ok());
        let last = bytes.len() - 1;
        bytes[last] = b',';
        assert_eq!(
            TokenChallenge::decode(&bytes),
            Err(DecodeError::BadOriginInfo)
        );
        bytes[1] = 1;
        assert_eq!(
            TokenChallenge::decode(&bytes),
            Err(DecodeError::UnsupportedTokenType(1))
        );
    }

    #[test]
    fn token_and_request_reject_wrong_lengths() {
        let token = Token {
            nonce: [1; 32],
            challenge_digest: [2; 32],
            token_key_id: [3; 32],
            authenticator: [4; NK],
        };
        let mut bytes = token.encode();
        assert_eq!(Token::decode(&bytes), Ok(token));
        bytes.push(0);
        assert!(Token::decode(&bytes).is_err());
        bytes.truncate(TOKEN_LEN - 1);
        assert!(Token::decode(&bytes).is_err());

        let request = TokenRequest {
            truncated_token_key_id: 9,
            blinded_msg: [5; NK],
        };
        let bytes = request.encode();
        assert_eq!(TokenRequest::decode(&bytes), Ok(request));
        assert!(TokenRequest::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(TokenResponse::decode(&[0; NK + 1]).is_err());
    }
}
