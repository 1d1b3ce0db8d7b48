//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then one line per
//! signature: `— <key name> <base64(key id || signature)>`. It is the
//! envelope of the transparency-log ecosystem (Go's checksum database,
//! Sigsum, the witness network), so a note this module signs is one their
//! tools verify, and the reverse.
//!
//! Verification follows the spec: a signature by a key the verifier does not
//! know (name and key id both matching) is ignored; a signature by a known key
//! must verify, or the whole note is refused; and at least one known key must
//! have signed. Parsing is bounded ([`MAX_NOTE_BYTES`], [`MAX_SIGNATURES`])
//! before any signature is checked.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The largest note [`Note::parse`] reads: far above a checkpoint with many
/// cosignatures, far below what would let a peer make a client allocate much.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// The most signature lines [`Note::parse`] reads. The spec requires at
/// least 16; Go's `sumdb/note` stops at 100, and so does this.
pub const MAX_SIGNATURES: usize = 100;

/// The signature type byte of Ed25519 note signatures in key ids and verifier keys.
pub const ED25519: u8 = 0x01;

/// What precedes every signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Why a note, key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The bytes are not a note (the reason says which rule failed).
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// More than [`MAX_NOTE_BYTES`].
    #[error("note of {0} bytes exceeds the limit of {MAX_NOTE_BYTES}")]
    TooLarge(usize),
    /// More than [`MAX_SIGNATURES`] signature lines.
    #[error("note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// Empty, or contains a space or `+`.
    #[error("invalid key name {0:?}")]
    BadKeyName(String),
    /// A verifier key string that is not `<name>+<hex id>+<base64 key>`.
    #[error("malformed verifier key: {0}")]
    BadVerifierKey(&'static str),
    /// A signature by a known key that does not verify: the note is refused whole.
    #[error("invalid signature by known key {name}+{key_id:08x}")]
    InvalidSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// No signature line is by a key the verifier knows.
    #[error("note has no signature by a known key")]
    NoKnownSignature,
}

/// A key name may not be empty and may not contain spaces or `+`.
fn check_key_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains('+') {
        return Err(NoteError::BadKeyName(name.to_owned()));
    }
    Ok(())
}

/// Valid UTF-8 (given by `&str`) with no ASCII control character but newline.
fn check_characters(text: &str) -> Result<(), NoteError> {
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(NoteError::Malformed("control character"));
    }
    Ok(())
}

/// The note text rules: allowed characters, ending in a newline.
fn check_text(text: &str) -> Result<(), NoteError> {
    check_characters(text)?;
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("text does not end in a newline"));
    }
    Ok(())
}

/// `SHA-256(name || 0x0A || 0x01 || public key)[:4]`, big-endian.
pub fn ed25519_key_id(name: &str, public_key: &VerifyingKey) -> u32 {
    key_id(name, ED25519, public_key)
}

/// `SHA-256(name || 0x0A || signature type || public key)[:4]`, big-endian:
/// the key id of every Ed25519-based signature type.
fn key_id(name: &str, signature_type: u8, public_key: &VerifyingKey) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', signature_type])
        .chain_update(public_key.as_bytes())
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// An Ed25519 public key under a key name, for signature type `TYPE`: the
/// name, its key id (`SHA-256(name || 0x0A || TYPE || key)[:4]`) and the key.
///
/// Its text form (the spec's *vkey*) is `<name>+<hex id>+<base64(TYPE || key)>`,
/// what operators publish and clients pin. [`VerifierKey`] is the note
/// signature type `0x01`; witnesses' `cosignature/v1` keys are
/// [`crate::cosignature::CosignerKey`] (`0x04`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedKey<const TYPE: u8> {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

/// An Ed25519 note verifier key (signature type `0x01`).
pub type VerifierKey = NamedKey<ED25519>;

impl<const TYPE: u8> NamedKey<TYPE> {
    /// The key named `name` for `key`, with the spec's key id.
    pub fn ed25519(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        check_key_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, TYPE, &key),
            key,
        })
    }

    /// Parses `vkey`, refusing one not named `name`: how a configuration
    /// pins a key under the name it gives it.
    pub fn parse_named(vkey: &str, name: &str) -> Result<Self, NoteError> {
        let key: Self = vkey.parse()?;
        if key.name != name {
            return Err(NoteError::BadVerifierKey(
                "the vkey is named otherwise than configured",
            ));
        }
        Ok(key)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }
}

impl VerifierKey {
    /// Whether `signature` is this key's signature over `text` (strict Ed25519).
    fn verifies(&self, text: &str, signature: &[u8]) -> bool {
        Signature::from_slice(signature)
            .is_ok_and(|signature| self.key.verify_strict(text.as_bytes(), &signature).is_ok())
    }
}

impl<const TYPE: u8> FromStr for NamedKey<TYPE> {
    type Err = NoteError;

    /// Parses a vkey of this signature type, refusing a key id that is not
    /// the one its name and key hash to.
    fn from_str(vkey: &str) -> Result<Self, NoteError> {
        // Names have no `+`; base64 keys may.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadVerifierKey("not three `+`-separated parts"));
        };
        let id_ok = id.len() == 8 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let key_id =
            u32::from_str_radix(id, 16)
                .ok()
                .filter(|_| id_ok)
                .ok_or(NoteError::BadVerifierKey(
                    "key id is not 8 lower-case hex digits",
                ))?;
        let key = BASE64
            .decode(key)
            .map_err(|_| NoteError::BadVerifierKey("key is not base64"))?;
        let key = match key.split_first() {
            Some((&found, public)) if found == TYPE => public,
            _ => {
                return Err(NoteError::BadVerifierKey(
                    "not a key of this signature type",
                ));
            }
        };
        let key = <[u8; 32]>::try_from(key)
            .ok()
            .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
            .ok_or(NoteError::BadVerifierKey(
                "not a 32-byte Ed25519 public key",
            ))?;
        let parsed = Self::ed25519(name, key)?;
        if parsed.key_id != key_id {
            return Err(NoteError::BadVerifierKey(
                "key id does not match the name and key",
            ));
        }
        Ok(parsed)
    }
}

impl<const TYPE: u8> fmt::Display for NamedKey<TYPE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = vec![TYPE];
        key.extend_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            BASE64.encode(key)
        )
    }
}

/// An Ed25519 signing key under a key name: what signs notes.
pub struct NoteSigner {
    verifier: VerifierKey,
    key: SigningKey,
}

impl NoteSigner {
    /// Signs as `name` with `key`.
    pub fn ed25519(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        Ok(Self {
            verifier: VerifierKey::ed25519(name, key.verifying_key())?,
            key,
        })
    }

    /// The verifier key that checks this signer's signatures.
    pub fn verifier_key(&self) -> &VerifierKey {
        &self.verifier
    }

    /// This signer's signature line over `text`.
    fn sign(&self, text: &str) -> NoteSignature {
        NoteSignature {
            name: self.verifier.name.clone(),
            key_id: self.verifier.key_id,
            signature: self.key.sign(text.as_bytes()).to_bytes().to_vec(),
        }
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key id.
    pub key_id: u32,
    /// The signature proper, without the key id.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// Parses one line, without its newline.
    fn parse(line: &str) -> Result<Self, NoteError> {
        let rest = line
            .strip_prefix(SIGNATURE_PREFIX)
            .ok_or(NoteError::Malformed(
                "line after the blank line is not a signature",
            ))?;
        let (name, encoded) = rest
            .split_once(' ')
            .ok_or(NoteError::Malformed("signature line without a signature"))?;
        check_key_name(name)?;
        let bytes = BASE64
            .decode(encoded)
            .map_err(|_| NoteError::Malformed("signature is not base64"))?;
        match bytes.split_first_chunk::<4>() {
            Some((key_id, signature)) if !signature.is_empty() => Ok(Self {
                name: name.to_owned(),
                key_id: u32::from_be_bytes(*key_id),
                signature: signature.to_vec(),
            }),
            _ => Err(NoteError::Malformed("signature shorter than 5 bytes")),
        }
    }

    /// Parses signature lines, each ending in a newline (a witness's
    /// `add-checkpoint` answer, for example), at most [`MAX_SIGNATURES`].
    pub fn parse_lines(lines: &str) -> Result<Vec<Self>, NoteError> {
        if lines.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge(lines.len()));
        }
        check_characters(lines)?;
        let lines = lines
            .strip_suffix('\n')
            .ok_or(NoteError::Malformed("signatures do not end in a newline"))?;
        if lines.split('\n').count() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        lines.split('\n').map(Self::parse).collect()
    }

    /// Whether this line claims to be by the key `name` with `key_id`.
    pub fn claims(&self, name: &str, key_id: u32) -> bool {
        self.name == name && self.key_id == key_id
    }

    fn is_by(&self, key: &VerifierKey) -> bool {
        self.claims(&key.name, key.key_id)
    }
}

impl fmt::Display for NoteSignature {
    /// The signature line, with its newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = self.key_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.signature);
        writeln!(
            f,
            "{SIGNATURE_PREFIX}{} {}",
            self.name,
            BASE64.encode(bytes)
        )
    }
}

/// A note: text and signature lines, not yet verified.
///
/// [`Note::text`] is untrusted until [`Note::verify`] succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

impl Note {
    /// Signs `text` with every signer, in order.
    pub fn sign(text: &str, signers: &[&NoteSigner]) -> Result<Self, NoteError> {
        check_text(text)?;
        if signers.is_empty() {
            return Err(NoteError::Malformed("a note needs at least one signature"));
        }
        Ok(Self {
            text: text.to_owned(),
            signatures: signers.iter().map(|signer| signer.sign(text)).collect(),
        })
    }

    /// Parses a signed note (syntax only; see [`Note::verify`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::TooLarge(bytes.len()));
        }
        let note = std::str::from_utf8(bytes).map_err(|_| NoteError::Malformed("not UTF-8"))?;
        check_characters(note)?;
        // The text ends at the last blank line; what follows is signatures.
        let split = note
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, lines) = (&note[..=split], &note[split + 2..]);
        Ok(Self {
            text: text.to_owned(),
            signatures: NoteSignature::parse_lines(lines)?,
        })
    }

    /// The text, final newline included: untrusted until verified.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Appends `signature` (a cosignature, say) unless the same line is
    /// already there, keeping the note within [`MAX_SIGNATURES`].
    pub fn add_signature(&mut self, signature: NoteSignature) -> Result<(), NoteError> {
        if self.signatures.contains(&signature) {
            return Ok(());
        }
        if self.signatures.len() >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        self.signatures.push(signature);
        Ok(())
    }

    /// Checks the signatures by `known` keys and returns the keys that signed.
    ///
    /// Signatures by other keys are ignored; one bad signature by a known key
    /// refuses the note; so does a note that no known key signed.
    pub fn verify<'k>(&self, known: &'k [VerifierKey]) -> Result<Vec<&'k VerifierKey>, NoteError> {
        let mut signed: Vec<&VerifierKey> = Vec::new();
        for signature in &self.signatures {
            let Some(key) = known.iter().find(|key| signature.is_by(key)) else {
                continue;
            };
            if !key.verifies(&self.text, &signature.signature) {
                return Err(NoteError::InvalidSignature {
                    name: key.name.clone(),
                    key_id: key.key_id,
                });
            }
            if !signed.contains(&key) {
                signed.push(key);
            }
        }
        if signed.is_empty() {
            return Err(NoteError::NoKnownSignature);
        }
        Ok(signed)
    }
}

impl fmt::Display for Note {
    /// The note's bytes: text, blank line, signature lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.text)?;
        self.signatures
            .iter()
            .try_for_each(|signature| signature.fmt(f))
    }
}
