//! C2SP checkpoints (<https://c2sp.org/tlog-checkpoint>): tree heads as signed notes.
//!
//! A checkpoint's note text is three lines and optional extension lines:
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, base64>
//! ```
//!
//! The root is the RFC 6962 Merkle tree hash ([`crate::merkle`]), the same
//! root the log's own tree heads carry. A [`SignedCheckpoint`] is verified
//! under the log's [`VerifierKey`], whose name must be the origin: a
//! signature that is valid but made for another log's name is refused.
//!
//! # Example
//!
//! A log signs the checkpoint of its empty tree; a client that pinned the
//! log's vkey verifies what it fetched.
//!
//! ```rust
//! use cloister_ledger_verify::checkpoint::{Checkpoint, SignedCheckpoint};
//! use cloister_ledger_verify::merkle::empty_root;
//! use cloister_ledger_verify::note::{NoteSigner, VerifierKey};
//! use ed25519_dalek::SigningKey;
//!
//! let log = NoteSigner::ed25519("example.com/log", SigningKey::from_bytes(&[7; 32]))?;
//! let checkpoint = Checkpoint {
//!     origin: "example.com/log".into(),
//!     tree_size: 0,
//!     root_hash: empty_root(),
//!     extensions: vec![],
//! };
//! let served = SignedCheckpoint::sign(checkpoint, &log)?.to_string();
//! assert!(served.starts_with(
//!     "example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n\u{2014} example.com/log "
//! ));
//!
//! let pinned: VerifierKey = log.verifier_key().to_string().parse()?;
//! let fetched = SignedCheckpoint::parse(served.as_bytes())?;
//! assert_eq!(fetched.verify(&pinned)?.tree_size, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::merkle::Hash;
use crate::note::{Note, NoteError, NoteSignature, NoteSigner, VerifierKey};

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The note text is not a checkpoint (the reason says which rule failed).
    #[error("malformed checkpoint: {0}")]
    Malformed(&'static str),
    /// The envelope is not a valid signed note, or its signatures do not verify.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The key's name is not the checkpoint's origin.
    #[error("checkpoint origin {origin:?} is not the log key's name {key_name:?}")]
    WrongOrigin {
        /// The origin line of the checkpoint.
        origin: String,
        /// The name of the key it was checked under.
        key_name: String,
    },
}

/// A log's tree head in checkpoint form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `example.com/log42`.
    pub origin: String,
    /// Number of leaves in the tree.
    pub tree_size: u64,
    /// The RFC 6962 Merkle tree hash of the first `tree_size` leaves.
    pub root_hash: Hash,
    /// Opaque extension lines, each non-empty, without their newlines.
    pub extensions: Vec<String>,
}

/// Decimal with no sign and no leading zero (`0` alone is the empty tree).
fn parse_tree_size(line: &str) -> Result<u64, CheckpointError> {
    let canonical = !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
        && (line == "0" || !line.starts_with('0'));
    line.parse()
        .ok()
        .filter(|_| canonical)
        .ok_or(CheckpointError::Malformed(
            "tree size is not a canonical decimal",
        ))
}

/// Standard, padded base64 of exactly 32 bytes, with no non-zero padding bits.
fn parse_root_hash(line: &str) -> Result<Hash, CheckpointError> {
    BASE64
        .decode(line)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .map(crate::HexBytes)
        .ok_or(CheckpointError::Malformed(
            "root hash is not the base64 of 32 bytes",
        ))
}

impl Checkpoint {
    /// Parses a checkpoint's note text (final newline included).
    ///
    /// Any non-empty origin is accepted, as the spec requires of clients;
    /// [`SignedCheckpoint::verify`] then binds it to the log key's name.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::Malformed("text does not end in a newline"))?;
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(CheckpointError::Malformed("fewer than three lines"));
        };
        if origin.is_empty() {
            return Err(CheckpointError::Malformed("empty origin"));
        }
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(CheckpointError::Malformed("empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            tree_size: parse_tree_size(size)?,
            root_hash: parse_root_hash(root)?,
            extensions,
        })
    }
}

impl fmt::Display for Checkpoint {
    /// The note text: origin, size, root, extension lines, each ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.origin)?;
        writeln!(f, "{}", self.tree_size)?;
        writeln!(f, "{}", BASE64.encode(self.root_hash.as_bytes()))?;
        self.extensions
            .iter()
            .try_for_each(|line| writeln!(f, "{line}"))
    }
}

/// A checkpoint in its signed note: what a log serves and witnesses cosign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    checkpoint: Checkpoint,
    note: Note,
}

impl SignedCheckpoint {
    /// Signs `checkpoint` with the log's signer, whose name must be the origin.
    pub fn sign(checkpoint: Checkpoint, log: &NoteSigner) -> Result<Self, CheckpointError> {
        let key_name = log.verifier_key().name();
        if checkpoint.origin != key_name {
            return Err(CheckpointError::WrongOrigin {
                origin: checkpoint.origin,
                key_name: key_name.to_owned(),
            });
        }
        let text = checkpoint.to_string();
        // What is signed must read back as the same checkpoint.
        if Checkpoint::parse(&text)? != checkpoint {
            return Err(CheckpointError::Malformed(
                "checkpoint does not survive its own encoding",
            ));
        }
        let note = Note::sign(&text, &[log])?;
        Ok(Self { checkpoint, note })
    }

    /// Parses a signed checkpoint (syntax only; see [`SignedCheckpoint::verify`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let note = Note::parse(bytes)?;
        Ok(Self {
            checkpoint: Checkpoint::parse(note.text())?,
            note,
        })
    }

    /// Returns the checkpoint if `log_key` is named after its origin and signed it.
    ///
    /// Signatures by other keys (witnesses, a rotated log key) are ignored.
    pub fn verify(&self, log_key: &VerifierKey) -> Result<&Checkpoint, CheckpointError> {
        if self.checkpoint.origin != log_key.name() {
            return Err(CheckpointError::WrongOrigin {
                origin: self.checkpoint.origin.clone(),
                key_name: log_key.name().to_owned(),
            });
        }
        self.note.verify(std::slice::from_ref(log_key))?;
        Ok(&self.checkpoint)
    }

    /// The checkpoint, unverified.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// The signed note around it.
    pub fn note(&self) -> &Note {
        &self.note
    }

    /// Adds a signature line over this checkpoint, such as a witness's
    /// cosignature; it is verified only by whoever verifies the checkpoint.
    pub fn add_cosignature(&mut self, signature: NoteSignature) -> Result<(), CheckpointError> {
        Ok(self.note.add_signature(signature)?)
    }
}

impl fmt::Display for SignedCheckpoint {
    /// The bytes a log serves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.note.fmt(f)
    }
}
