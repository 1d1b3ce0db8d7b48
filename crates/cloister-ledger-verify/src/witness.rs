//! The C2SP `tlog-witness` protocol's request (<https://c2sp.org/tlog-witness>):
//! the body of `POST <prefix>/add-checkpoint`, shared by the witness that
//! parses it and the log that sends it.
//!
//! ```text
//! old <size the witness last cosigned>
//! <consistency proof hash, base64>     (zero to 63 lines)
//!
//! <signed checkpoint note>
//! ```
//!
//! The answers are status codes and, on success, cosignature lines
//! ([`crate::note::NoteSignature::parse_lines`]); on a size mismatch (409)
//! the body is the witness's size in decimal with content type
//! [`SIZE_CONTENT_TYPE`].

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::HexBytes;
use crate::checkpoint::{CheckpointError, SignedCheckpoint};
use crate::merkle::Hash;

/// The path of the call, under the witness's submission prefix.
pub const ADD_CHECKPOINT: &str = "/add-checkpoint";

/// The content type of a 409 answer's body, the witness's tree size.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// The most consistency proof lines a request may carry.
pub const MAX_PROOF_LINES: usize = 63;

/// A request body that is not an `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The framing is wrong (the reason says which rule failed).
    #[error("malformed add-checkpoint request: {0}")]
    Malformed(&'static str),
    /// The checkpoint after the blank line is not a signed checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// `add-checkpoint`: a checkpoint and the proof that it extends the tree of `old_size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the witness last cosigned for this log (0 for none).
    pub old_size: u64,
    /// RFC 6962 consistency proof from `old_size` to the checkpoint's size.
    pub proof: Vec<Hash>,
    /// The checkpoint, signed by the log (unverified).
    pub checkpoint: SignedCheckpoint,
}

impl AddCheckpoint {
    /// Parses a request body (syntax only).
    pub fn parse(body: &[u8]) -> Result<Self, RequestError> {
        let malformed = RequestError::Malformed;
        let text = std::str::from_utf8(body).map_err(|_| malformed("not UTF-8"))?;
        let (head, checkpoint) = text
            .split_once("\n\n")
            .ok_or(malformed("no blank line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|line| line.strip_prefix("old "))
            .ok_or(malformed("first line is not `old <size>`"))?;
        let canonical = !old.is_empty()
            && old.bytes().all(|b| b.is_ascii_digit())
            && (old == "0" || !old.starts_with('0'));
        let old_size = old
            .parse()
            .ok()
            .filter(|_| canonical)
            .ok_or(malformed("old size is not a canonical decimal"))?;
        let proof = lines
            .map(|line| {
                BASE64
                    .decode(line)
                    .ok()
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .map(HexBytes)
                    .ok_or(malformed("proof line is not the base64 of 32 bytes"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(malformed("more than 63 proof lines"));
        }
        Ok(Self {
            old_size,
            proof,
            checkpoint: SignedCheckpoint::parse(checkpoint.as_bytes())?,
        })
    }
}

impl fmt::Display for AddCheckpoint {
    /// The request body.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "old {}", self.old_size)?;
        for hash in &self.proof {
            writeln!(f, "{}", BASE64.encode(hash.as_bytes()))?;
        }
        writeln!(f)?;
        self.checkpoint.fmt(f)
    }
}
