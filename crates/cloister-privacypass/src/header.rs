//! The `PrivateToken` HTTP authentication scheme (RFC 9577 §2):
//! `WWW-Authenticate: PrivateToken challenge="…", token-key="…"` and
//! `Authorization: PrivateToken token="…"`.
//!
//! The parser follows the RFC 9110 §11 `challenge`/`credentials` grammar
//! with auth-params (token or quoted-string values); `token68` forms are
//! rejected. Input is bounded to [`MAX_HEADER_LEN`] bytes.

use crate::base64url;
use crate::keys::IssuerPublicKey;
use crate::wire::{DecodeError, Token, TokenChallenge};

/// The authentication scheme name (matched case-insensitively).
pub const SCHEME: &str = "PrivateToken";
/// Longest header value the parsers look at.
pub const MAX_HEADER_LEN: usize = 8192;

/// Why a header value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Longer than [`MAX_HEADER_LEN`].
    #[error("header value longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    /// Not valid RFC 9110 challenge/credentials syntax.
    #[error("malformed header syntax at byte {0}")]
    Syntax(usize),
    /// The scheme is not `PrivateToken`.
    #[error("not a PrivateToken header")]
    WrongScheme,
    /// A required parameter is absent.
    #[error("missing parameter {0:?}")]
    MissingParameter(&'static str),
    /// A parameter appears twice.
    #[error("duplicate parameter {0:?}")]
    DuplicateParameter(&'static str),
    /// A parameter is not base64url.
    #[error("parameter {0:?} is not base64url")]
    NotBase64(&'static str),
    /// The decoded value is not a valid message.
    #[error("invalid {0}: {1}")]
    Invalid(&'static str, DecodeError),
    /// The token-key is not an acceptable issuer key.
    #[error("invalid token-key")]
    InvalidKey,
    /// `max-age` is not a decimal integer.
    #[error("invalid max-age")]
    InvalidMaxAge,
}

/// Formats `Authorization: PrivateToken token="…"` for `token`.
pub fn format_authorization(token: &Token) -> String {
    format!("{SCHEME} token=\"{}\"", base64url::encode(&token.encode()))
}

/// Parses an `Authorization` header value into the token it carries.
/// Only the syntax and encoding are checked here; validity is the
/// [`crate::Redeemer`]'s job.
pub fn parse_authorization(value: &str) -> Result<Token, HeaderError> {
    let items = parse_auth_list(value)?;
    let [item] = items.as_slice() else {
        return Err(HeaderError::Syntax(0));
    };
    if !item.scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(HeaderError::WrongScheme);
    }
    let bytes =
        single_base64_param(item, "token")?.ok_or(HeaderError::MissingParameter("token"))?;
    Token::decode(&bytes).map_err(|e| HeaderError::Invalid("token", e))
}

/// One `PrivateToken` challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateTokenChallenge {
    /// The decoded challenge.
    pub challenge: TokenChallenge,
    /// The issuer key the origin accepts tokens from.
    pub token_key: IssuerPublicKey,
    /// How long (seconds) the challenge may be cached, if the origin said.
    pub max_age: Option<u64>,
}

/// Formats a `WWW-Authenticate` value for one type 0x0002 challenge.
pub fn format_www_authenticate(
    challenge: &TokenChallenge,
    token_key: &IssuerPublicKey,
    max_age: Option<u64>,
) -> String {
    let mut out = format!(
        "{SCHEME} challenge=\"{}\", token-key=\"{}\"",
        base64url::encode(&challenge.encode()),
        base64url::encode(token_key.spki())
    );
    if let Some(age) = max_age {
        out.push_str(&format!(", max-age={age}"));
    }
    out
}

/// Parses a `WWW-Authenticate` value and returns its type 0x0002
/// `PrivateToken` challenges. Other schemes and other token types are
/// skipped; a malformed `PrivateToken` challenge of type 0x0002 is an error.
pub fn parse_www_authenticate(value: &str) -> Result<Vec<PrivateTokenChallenge>, HeaderError> {
    let mut out = Vec::new();
    for item in parse_auth_list(value)? {
        if !item.scheme.eq_ignore_ascii_case(SCHEME) {
            continue;
        }
        let challenge_bytes = single_base64_param(&item, "challenge")?
            .ok_or(HeaderError::MissingParameter("challenge"))?;
        let challenge = match TokenChallenge::decode(&challenge_bytes) {
            Ok(challenge) => challenge,
            Err(DecodeError::UnsupportedTokenType(_)) => continue,
            Err(e) => return Err(HeaderError::Invalid("challenge", e)),
        };
        let key_bytes = single_base64_param(&item, "token-key")?
            .ok_or(HeaderError::MissingParameter("token-key"))?;
        let token_key =
            IssuerPublicKey::from_spki(&key_bytes).map_err(|_| HeaderError::InvalidKey)?;
        let max_age = single_param(&item, "max-age")?
            .map(|v| v.parse::<u64>().map_err(|_| HeaderError::InvalidMaxAge))
            .transpose()?;
        out.push(PrivateTokenChallenge {
            challenge,
            token_key,
            max_age,
        });
    }
    Ok(out)
}

/// One challenge or credentials: a scheme and its auth-params.
#[derive(Debug)]
struct AuthItem<'a> {
    scheme: &'a str,
    params: Vec<(&'a str, String)>,
}

fn single_param<'i>(
    item: &'i AuthItem<'_>,
    name: &'static str,
) -> Result<Option<&'i str>, HeaderError> {
    let mut found = item
        .params
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name));
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(HeaderError::DuplicateParameter(name));
    }
    Ok(first)
}

fn single_base64_param(
    item: &AuthItem<'_>,
    name: &'static str,
) -> Result<Option<Vec<u8>>, HeaderError> {
    single_param(item, name)?
        .map(|v| base64url::decode(v).ok_or(HeaderError::NotBase64(name)))
        .transpose()
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_while(&mut self, pred: impl Fn(u8) -> bool) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn skip_ows(&mut self) -> bool {
        self.skip_while(|b| b == b' ' || b == b'\t')
    }

    fn token(&mut self) -> Result<&'a str, HeaderError> {
        let start = self.pos;
        if !self.skip_while(is_tchar) {
            return Err(HeaderError::Syntax(self.pos));
        }
        Ok(&self.text[start..self.pos])
    }

    fn expect(&mut self, byte: u8) -> Result<(), HeaderError> {
        if self.peek() != Some(byte) {
            return Err(HeaderError::Syntax(self.pos));
        }
        self.pos += 1;
        Ok(())
    }

    /// `token / quoted-string` (RFC 9110 §5.6.4), unescaped.
    fn value(&mut self) -> Result<String, HeaderError> {
        if self.peek() != Some(b'"') {
            return self.token().map(str::to_owned);
        }
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(HeaderError::Syntax(self.pos)),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b) if b == b'\t' || (0x20..0x7f).contains(&b) => {
                            out.push(char::from(b))
                        }
                        _ => return Err(HeaderError::Syntax(self.pos)),
                    }
                }
                // qdtext: HTAB, SP and visible ASCII except '"' and '\'.
                Some(b) if b == b'\t' || (0x20..0x7f).contains(&b) => out.push(char::from(b)),
                Some(_) => return Err(HeaderError::Syntax(self.pos)),
            }
            self.pos += 1;
        }
    }

    /// `BWS "=" BWS value` after a parameter name.
    fn param_value(&mut self) -> Result<String, HeaderError> {
        self.skip_ows();
        self.expect(b'=')?;
        self.skip_ows();
        self.value()
    }
}

/// Parses `#( auth-scheme [ 1*SP #auth-param ] )` into items.
fn parse_auth_list(text: &str) -> Result<Vec<AuthItem<'_>>, HeaderError> {
    if text.len() > MAX_HEADER_LEN {
        return Err(HeaderError::TooLong);
    }
    let mut cursor = Cursor { text, pos: 0 };
    let mut items: Vec<AuthItem<'_>> = Vec::new();
    loop {
        cursor.skip_while(|b| b == b' ' || b == b'\t' || b == b',');
        if cursor.peek().is_none() {
            break;
        }
        let name = cursor.token()?;
        let spaced = cursor.skip_ows();
        if cursor.peek() == Some(b'=') {
            // An auth-param continuing the current scheme.
            let value = cursor.param_value()?;
            let item = items.last_mut().ok_or(HeaderError::Syntax(cursor.pos))?;
            item.params.push((name, value));
        } else {
            let mut item = AuthItem {
                scheme: name,
                params: Vec::new(),
            };
            if spaced && cursor.peek().is_some_and(is_tchar) {
                let param = cursor.token()?;
                let value = cursor.param_value()?;
                item.params.push((param, value));
            }
            items.push(item);
        }
        cursor.skip_ows();
        match cursor.peek() {
            None => break,
            Some(b',') => cursor.pos += 1,
            Some(_) => return Err(HeaderError::Syntax(cursor.pos)),
        }
    }
    if items.is_empty() {
        return Err(HeaderError::Syntax(0));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_token() -> Token {
        Token {
            nonce: [1; 32],
            challenge_digest: [2; 32],
            token_key_id: [3; 32],
            authenticator: [4; 256],
        }
    }

    #[test]
    fn authorization_round_trips_with_any_case_spacing_and_quoting() {
        let token = sample_token();
        let header = format_authorization(&token);
        assert_eq!(parse_authorization(&header), Ok(token.clone()));
        let b64 = base64url::encode(&token.encode());
        let variant = format!("privatetoken   TOKEN = {b64}, other=\"x\"");
        assert_eq!(parse_authorization(&variant), Ok(token));
    }

    #[test]
    fn malformed_authorization_headers_are_rejected() {
        let b64 = base64url::encode(&sample_token().encode());
        let cases = [
            String::new(),
            "PrivateToken".to_owned(),
            format!("Bearer token=\"{b64}\""),
            format!("PrivateToken token=\"{b64}"),
            format!("PrivateToken token=\"{b64}\", token=\"{b64}\""),
            format!("PrivateToken token=\"{}\"", &b64[..b64.len() - 4]),
            format!("PrivateToken token=\"{b64}+\""),
            format!("PrivateToken token=\"{b64}\", Basic realm=x"),
            "PrivateToken token=\"\u{e9}\"".to_owned(),
            "x".repeat(MAX_HEADER_LEN + 1),
        ];
        for case in cases {
            assert!(parse_authorization(&case).is_err(), "accepted {case:?}");
        }
    }
}
